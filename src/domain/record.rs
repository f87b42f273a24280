//! The well-defined record keys of a profile and the rules for their values.
//!
//! The storage schema is a generic key/value table; this enum is the only place that
//! decides which keys exist, so a typo can't create a new column of personal data.

use serde::{Deserialize, Serialize};

/// A record key. Stored as its `as_str()` name; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKey {
    /// The user's display name (PATCH-able).
    DisplayName,
    /// The avatar state machine (written by uploads and workers, not PATCH-able).
    Avatar,
}

impl RecordKey {
    /// Every key, in storage order.
    pub const ALL: [RecordKey; 2] = [RecordKey::DisplayName, RecordKey::Avatar];
    /// Keys a client may set with `PATCH /v1/profiles/{email}`.
    pub const PATCHABLE: [RecordKey; 1] = [RecordKey::DisplayName];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DisplayName => "display_name",
            Self::Avatar => "avatar",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Longest display name, in Unicode scalar values (API.md: 1..=64 after trimming).
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;

/// Validates and trims a display name.
pub fn validate_display_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > DISPLAY_NAME_MAX_CHARS {
        return Err(format!(
            "display_name must be 1 to {DISPLAY_NAME_MAX_CHARS} characters after trimming; got {chars}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("display_name must not contain control characters".into());
    }
    // A bidi override would let a name display as some other text (API.md §Owner endpoints).
    if name.chars().any(super::text::is_bidi_control) {
        return Err(
            "display_name must not contain bidi control characters (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C)"
                .into(),
        );
    }
    // Joiners and variation selectors are fine inside emoji and scripts, not on their own.
    if !name.chars().any(super::text::is_visible) {
        return Err(
            "display_name must contain at least one visible character (not only zero-width or invisible ones)"
                .into(),
        );
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_rules() {
        assert_eq!(validate_display_name("  Ada  ").expect("ok"), "Ada");
        assert_eq!(
            validate_display_name(&"é".repeat(64))
                .expect("64 scalar values")
                .chars()
                .count(),
            64
        );
        assert!(validate_display_name(&"é".repeat(65)).is_err());
        assert!(validate_display_name("   ").is_err());
        assert!(validate_display_name("a\u{7}b").is_err());
        assert!(validate_display_name("a\nb").is_err());
        for bad in [
            "\u{202E}adA",
            "Ada\u{2066}",
            "a\u{200F}b",
            "\u{200B}",
            "\u{200B}\u{200D}\u{FEFF}",
            "\u{3164}",
            "\u{2800}",
            "\u{00AD}",
            "\u{0301}",
        ] {
            assert!(validate_display_name(bad).is_err(), "{bad:?}");
        }
        for good in [
            "李小龍",
            "山田 太郎",
            "محمد علي",
            "👩\u{200D}👩\u{200D}👧\u{200D}👦",
            "🏳\u{FE0F}\u{200D}🌈",
            "می\u{200C}خواهم",
            "José",
            "Zoë O'Brien-Åström",
        ] {
            assert_eq!(validate_display_name(good).as_deref(), Ok(good), "{good:?}");
        }
    }

    #[test]
    fn keys_round_trip() {
        for k in RecordKey::ALL {
            assert_eq!(RecordKey::parse(k.as_str()), Some(k));
        }
        assert_eq!(RecordKey::parse("email"), None);
    }
}
