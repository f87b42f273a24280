//! Identifiers derived from an email with the server's index secret (never reversible
//! without it), and the random ids of uploads and jobs.

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::email::Email;
use crate::crypto::{random_bytes, IdKeys};

/// The database key of an owner: HMAC of the normalized email. Not exposed publicly.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerKey(pub [u8; 32]);

impl std::fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerKey({}..)", &self.to_hex()[..8])
    }
}

impl OwnerKey {
    /// Derives the owner key of an email.
    pub fn of(keys: &IdKeys, email: &Email) -> Self {
        Self(keys.mac("owner.v1", email.as_str().as_bytes()))
    }

    /// Lowercase hex, as carried in job payloads.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

/// The opaque public id of a profile: 40 lowercase hex characters (API.md §Identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicId(pub String);

impl PublicId {
    /// Derives the public id of an email.
    pub fn of(keys: &IdKeys, email: &Email) -> Self {
        Self(hex::encode(
            &keys.mac("public.v1", email.as_str().as_bytes())[..20],
        ))
    }
}

/// What a public `/avatar/{hash}` path segment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarHash {
    /// 32 hex: Gravatar MD5 of the normalized email.
    Md5([u8; 16]),
    /// 64 hex: Libravatar SHA-256 of the normalized email.
    Sha256([u8; 32]),
    /// 40 hex: our opaque public id.
    Public([u8; 20]),
}

impl AvatarHash {
    /// Parses a path segment (case-insensitive hex); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        // `hex` decodes either case, so no lowercase copy is needed.
        match s.len() {
            32 => {
                let mut b = [0u8; 16];
                hex::decode_to_slice(s, &mut b).ok().map(|()| Self::Md5(b))
            }
            64 => {
                let mut b = [0u8; 32];
                hex::decode_to_slice(s, &mut b)
                    .ok()
                    .map(|()| Self::Sha256(b))
            }
            40 => {
                let mut b = [0u8; 20];
                hex::decode_to_slice(s, &mut b)
                    .ok()
                    .map(|()| Self::Public(b))
            }
            _ => None,
        }
    }

    /// Whether this is a guessable Gravatar/Libravatar hash (as opposed to an opaque id).
    pub fn is_email_hash(&self) -> bool {
        !matches!(self, Self::Public(_))
    }

    /// The alias row key under which the owner is indexed. Stored keyed, so the
    /// database holds no MD5 or SHA-256 of an email that could be looked up offline.
    pub fn alias(&self, keys: &IdKeys) -> [u8; 32] {
        match self {
            Self::Md5(b) => keys.mac("alias.md5.v1", b),
            Self::Sha256(b) => keys.mac("alias.sha256.v1", b),
            Self::Public(b) => keys.mac("alias.public.v1", b),
        }
    }

    /// Bytes that identify this request target, for identicons and cache keys.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Md5(b) => b,
            Self::Sha256(b) => b,
            Self::Public(b) => b,
        }
    }

    /// All three lookup hashes of an email.
    pub fn all_for(keys: &IdKeys, email: &Email) -> [Self; 3] {
        let md5: [u8; 16] = Md5::digest(email.as_str().as_bytes()).into();
        let sha: [u8; 32] = Sha256::digest(email.as_str().as_bytes()).into();
        let mut public = [0u8; 20];
        public.copy_from_slice(&keys.mac("public.v1", email.as_str().as_bytes())[..20]);
        [Self::Md5(md5), Self::Sha256(sha), Self::Public(public)]
    }
}

/// A random 128-bit id in lowercase hex, for uploads and images.
pub fn random_id() -> String {
    hex::encode(random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_gravatar_and_libravatar() {
        let keys = IdKeys::new([7; 32]);
        let email = Email::parse(" MyEmailAddress@example.com ").expect("valid");
        let [md5, sha, public] = AvatarHash::all_for(&keys, &email);
        // Gravatar's documented example hash.
        assert_eq!(
            md5,
            AvatarHash::parse("0bc83cb571cd1c50ba6f3e8a78ef1346").expect("md5")
        );
        assert_eq!(
            sha,
            AvatarHash::parse("84059b07d4be67b806386c0aad8070a23f18836bbaae342275dc0a83414c32ee")
                .expect("sha")
        );
        assert_eq!(
            public,
            AvatarHash::parse(&PublicId::of(&keys, &email).0).expect("public")
        );
        assert_eq!(
            Some(md5),
            AvatarHash::parse("0BC83CB571CD1C50BA6F3E8A78EF1346"),
            "hex is case-insensitive"
        );
        assert_ne!(md5.alias(&keys), sha.alias(&keys));
        assert!(AvatarHash::parse("xyz").is_none());
        assert!(AvatarHash::parse(&"g".repeat(32)).is_none());
    }

    #[test]
    fn owner_keys_are_keyed() {
        let email = Email::parse("a@b.c").expect("valid");
        assert_ne!(
            OwnerKey::of(&IdKeys::new([1; 32]), &email),
            OwnerKey::of(&IdKeys::new([2; 32]), &email)
        );
        let k = OwnerKey::of(&IdKeys::new([1; 32]), &email);
        assert_eq!(OwnerKey::from_hex(&k.to_hex()), Some(k));
    }
}
