//! `d=initials`: up to three letters in white on the hash's colour card (API.md §Public
//! reads). Letters come from `initials=` or the first and last words of `name=`; drawing
//! them is text.rs's job.

use super::{canvas::Canvas, color, text};

/// At most this many letters are drawn (more would not be legible at 32 px).
pub const MAX_LETTERS: usize = 3;

/// The letters to draw: `initials` as given, else the first letter of the first and the
/// last word of `name`; letters and digits only, upper-cased, at most [`MAX_LETTERS`].
pub fn letters(initials: Option<&str>, name: Option<&str>) -> Vec<char> {
    let keep = |c: &char| c.is_alphanumeric();
    let mut out: Vec<char> = match (initials, name) {
        (Some(i), _) if i.chars().any(|c| keep(&c)) => i.chars().filter(keep).collect(),
        (_, Some(n)) => {
            let words: Vec<&str> = n
                .split(|c: char| c.is_whitespace() || c == '+' || c == '.' || c == '-')
                .filter(|w| w.chars().any(|c| keep(&c)))
                .collect();
            let first = |w: &str| w.chars().find(keep);
            match words.as_slice() {
                [] => Vec::new(),
                [one] => first(one).into_iter().collect(),
                [a, .., b] => first(a).into_iter().chain(first(b)).collect(),
            }
        }
        _ => Vec::new(),
    };
    out.truncate(MAX_LETTERS);
    out.into_iter()
        .flat_map(char::to_uppercase)
        .take(MAX_LETTERS)
        .collect()
}

/// The card of colour `design` with `letters` on it; just the card when the font cannot
/// draw them.
pub fn initials(design: u64, letters: &str, size: u32) -> Canvas {
    let mut c = color::color(design, size);
    let cap = match letters.chars().count() {
        0 | 1 => 0.42,
        2 => 0.36,
        _ => 0.27,
    };
    text::draw_centred(&mut c, letters, cap, [0xFF, 0xFF, 0xFF]);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_from_initials_or_name() {
        let s = |v: Vec<char>| v.into_iter().collect::<String>();
        assert_eq!(s(letters(Some("ab"), Some("Zed Q"))), "AB");
        assert_eq!(s(letters(None, Some("Ada King Lovelace"))), "AL");
        assert_eq!(s(letters(None, Some("  josé  "))), "J");
        assert_eq!(s(letters(Some("?!"), Some("Émile+Zola"))), "ÉZ");
        assert_eq!(s(letters(Some("abcdef"), None)), "ABC");
        assert!(letters(None, None).is_empty());
        assert!(letters(Some(""), Some("   ")).is_empty());
    }
}
