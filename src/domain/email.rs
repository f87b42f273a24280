//! Email normalization (API.md §Identity: `trim(lowercase(email))`).

/// A normalized email. Never logged, never stored in plaintext.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl std::fmt::Debug for Email {
    // Redacted so that an email can't reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Email(..)")
    }
}

impl Email {
    /// Normalizes and checks the rough shape of an address (`local@domain`, at most 254
    /// bytes, no whitespace or control characters inside).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.len() > 254 {
            return Err("an email must be 1..=254 bytes long".into());
        }
        if email.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("an email must not contain spaces or control characters".into());
        }
        match email.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(Self(email)),
            _ => Err("an email must look like local@domain".into()),
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

    #[test]
    fn normalizes() {
        assert_eq!(
            Email::parse("  Ada@Example.ORG \n")
                .expect("valid")
                .as_str(),
            "ada@example.org"
        );
        assert!(Email::parse("nobody").is_err());
        assert!(Email::parse("a b@c").is_err());
        assert!(Email::parse("@c").is_err());
        assert_eq!(
            format!("{:?}", Email::parse("a@b").expect("valid")),
            "Email(..)"
        );
    }
}
