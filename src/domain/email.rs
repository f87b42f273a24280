//! Email normalization (API.md §Identity, v1.1): trim ASCII whitespace, lowercase ASCII
//! `A-Z` only, and refuse what could make two different mailboxes share an owner key or
//! make one address look like another.
//!
//! Non-ASCII characters are kept exactly as sent. Input that is not in Unicode NFC is
//! refused rather than normalized: NFC maps the Kelvin sign U+212A to ASCII `K` (and so,
//! after lowercasing, to `k`), which would hand `\u{212A}@x` the profile of `k@x`. Refusing
//! keeps one owner per accepted string while canonically equivalent spellings (a decomposed
//! `é`) cannot open a second owner either: only the composed form is accepted.

use unicode_normalization::{is_nfc_quick, IsNormalized};

use super::text::is_invisible_or_control;

/// Longest address in bytes (RFC 5321 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// A normalized email. Never logged, never stored in plaintext.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl std::fmt::Debug for Email {
    // Redacted so that an email can't reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Email(..)")
    }
}

/// Why a string is not an acceptable email (the message names the rule, never the input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(pub &'static str);

impl Email {
    /// Normalizes and checks an address: exactly one `@` with text on both sides, at most
    /// 254 bytes, NFC, and no whitespace, control, bidi, zero-width or other invisible
    /// character inside.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.is_empty() || trimmed.len() > MAX_EMAIL_BYTES {
            return Err(EmailError("an email must be 1 to 254 bytes long"));
        }
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || is_invisible_or_control(c))
        {
            return Err(EmailError(
                "an email must not contain spaces, control, bidi, zero-width or other invisible characters",
            ));
        }
        if !matches!(is_nfc_quick(trimmed.chars()), IsNormalized::Yes)
            && !unicode_normalization::is_nfc(trimmed)
        {
            return Err(EmailError(
                "an email must be in Unicode NFC (composed) form; compatibility characters such as the Kelvin sign are not letters",
            ));
        }
        let mut parts = trimmed.split('@');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => {
                Ok(Self(trimmed.to_ascii_lowercase()))
            }
            _ => Err(EmailError(
                "an email must have exactly one @ with text on both sides (local@domain)",
            )),
        }
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    fn ok(raw: &str) -> String {
        Email::parse(raw)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
            .as_str()
            .to_owned()
    }

    #[test]
    fn the_identity_table() {
        // (input, Some(normalized) or None for invalid_email)
        let table: &[(&str, Option<&str>)] = &[
            ("  Ada@Example.ORG \n", Some("ada@example.org")),
            ("\tada@example.org\r\n", Some("ada@example.org")),
            // Kelvin sign and Angstrom sign: NFC would fold them; refused instead.
            ("\u{212A}im@example.org", None),
            ("\u{212B}sa@example.org", None),
            // Å (U+00C5) is a letter in NFC and stays as it is (not lowercased).
            ("\u{00C5}sa@example.org", Some("\u{00C5}sa@example.org")),
            // Fullwidth letters are NFC and distinct from ASCII: kept, not folded.
            ("\u{FF21}da@example.org", Some("\u{FF21}da@example.org")),
            // U+0130 is not lowercased to `i` (nor to `i̇`).
            ("\u{0130}nci@example.org", Some("\u{0130}nci@example.org")),
            ("ada\u{200B}@example.org", None),
            ("ada\u{200D}@example.org", None),
            ("ada\u{200C}@example.org", None),
            ("ada\u{FEFF}@example.org", None),
            ("gro.elpmaxe@\u{202E}ada", None),
            ("ada@\u{2066}example.org", None),
            ("ada\u{00A0}@example.org", None),
            ("\u{00A0}ada@example.org", None),
            ("ada\u{00AD}@example.org", None),
            ("ada@exa\u{7}mple.org", None),
            ("ad a@example.org", None),
            ("a@b@example.org", None),
            ("ada.example.org", None),
            ("@example.org", None),
            ("ada@", None),
            ("", None),
            ("   ", None),
            // A decomposed é is refused; the composed one is accepted as is.
            ("jose\u{0301}@example.org", None),
            ("jos\u{00E9}@example.org", Some("jos\u{00E9}@example.org")),
            ("\u{00C9}MILE@Example.org", Some("\u{00C9}mile@example.org")),
        ];
        for (raw, want) in table {
            match want {
                Some(w) => assert_eq!(ok(raw), *w, "{raw:?}"),
                None => assert!(Email::parse(raw).is_err(), "{raw:?} must be refused"),
            }
        }
        assert!(Email::parse(&format!("{}@b.c", "a".repeat(251))).is_err());
        assert_eq!(
            format!("{:?}", Email::parse("a@b").expect("valid")),
            "Email(..)"
        );
    }

    #[test]
    fn no_two_mailboxes_share_a_normal_form() {
        let distinct = [
            "kim@example.org",
            "\u{00C5}sa@example.org",
            "\u{00E5}sa@example.org",
            "\u{FF21}da@example.org",
            "ada@example.org",
            "\u{0130}nci@example.org",
            "inci@example.org",
            "i\u{0307}nci@example.org",
        ];
        let mut seen = std::collections::HashSet::new();
        for raw in distinct {
            assert!(seen.insert(ok(raw)), "{raw:?} collided");
        }
    }
}
