//! Which characters are invisible or change text direction: the rules behind emails
//! (API.md §Identity) and display names, kept in one place so both refuse the same set.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// Unicode `Bidi_Control`: marks and embeddings that reorder how text is shown (U+202E
/// makes `moc.elpmaxe@` read as something else).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Unicode `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt, Unicode 15):
/// characters a renderer shows as nothing, such as zero-width space and joiner, soft
/// hyphen, variation selectors and the Hangul fillers.
pub fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Control (Cc), format (Cf), separator (Zs, Zl, Zp) or default-ignorable: nothing that
/// may appear inside an email address.
pub fn is_invisible_or_control(c: char) -> bool {
    is_default_ignorable(c)
        || matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::SpaceSeparator
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::Unassigned
                | GeneralCategory::Surrogate
        )
}

/// Whether a character draws something on its own: not invisible, not whitespace, and not
/// a combining mark (which only decorates the character before it), nor the braille blank.
pub fn is_visible(c: char) -> bool {
    !is_invisible_or_control(c)
        && !c.is_whitespace()
        && c != '\u{2800}'
        && !matches!(
            c.general_category(),
            GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        for c in [
            '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{00A0}', '\u{202E}', '\u{2066}', '\u{7}',
            '\u{3164}',
        ] {
            assert!(is_invisible_or_control(c), "{:04X}", c as u32);
            assert!(!is_visible(c), "{:04X}", c as u32);
        }
        for c in ['a', 'é', '李', 'ع', '😀', '\u{FF21}', '\u{0130}'] {
            assert!(!is_invisible_or_control(c), "{:04X}", c as u32);
            assert!(is_visible(c), "{:04X}", c as u32);
        }
        assert!(is_bidi_control('\u{202E}') && !is_bidi_control('\u{200D}'));
        assert!(!is_visible('\u{0301}'));
    }
}
