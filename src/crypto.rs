//! Envelope encryption and keyed identifiers.
//!
//! Every stored value is sealed with its own random 256-bit data key (AES-256-GCM, random
//! 96-bit nonce); the data key is wrapped with AES key wrap (RFC 3394, `aes-kw`) under a
//! key-encryption key (KEK) named by an id. Rotating KEKs only rewraps the 40-byte data
//! keys, never the data. The AAD binds each ciphertext to its row (owner and record key),
//! so a ciphertext copied to another row fails to open instead of leaking across owners.

use std::collections::BTreeMap;

use aes_gcm::{aead::Aead, aead::Payload, Aes256Gcm, KeyInit};
use aes_kw::KwAes256;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const DEK_LEN: usize = 32;
const WRAPPED_LEN: usize = DEK_LEN + 8;

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The row names a KEK this process was not given.
    #[error("data key is wrapped under key-encryption key {0:?}, which is not configured")]
    UnknownKek(String),
    /// The wrapped data key failed its integrity check: wrong KEK material for that id,
    /// or a tampered row.
    #[error("data key wrapped under key-encryption key {0:?} failed its integrity check (wrong key, or tampered row)")]
    UnwrapFailed(String),
    /// The ciphertext failed authentication: tampered, truncated or moved to another row.
    #[error("ciphertext failed authentication (tampered, truncated or moved between rows)")]
    Tampered,
}

/// One key-encryption key and its id.
pub struct Kek {
    id: String,
    cipher: KwAes256,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A sealed value as stored: `nonce || ciphertext || tag`, the wrapped data key, and its KEK id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// `nonce || AES-256-GCM ciphertext || tag`.
    pub ciphertext: Vec<u8>,
    /// The data key wrapped with AES-KW (40 bytes).
    pub wrapped_dek: Vec<u8>,
    /// Which KEK wrapped the data key.
    pub kek_id: String,
}

/// The configured KEKs: one active (for new writes) plus older ones still able to unwrap.
#[derive(Debug)]
pub struct KeyRing {
    keks: BTreeMap<String, Kek>,
    active: String,
}

/// Fills a buffer from the OS CSPRNG; failure here means the host is unusable.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[expect(
        clippy::expect_used,
        reason = "no safe way to continue without an OS RNG"
    )]
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

impl KeyRing {
    /// Builds a ring from `(id, 32-byte key)` pairs; `active` must be one of them.
    pub fn new(keys: Vec<(String, [u8; 32])>, active: &str) -> Result<Self, String> {
        let mut keks = BTreeMap::new();
        for (id, key) in keys {
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "key id {id:?} must be 1..=32 characters of [A-Za-z0-9_-]"
                ));
            }
            let key = Zeroizing::new(key);
            let cipher = KwAes256::new_from_slice(key.as_slice())
                .map_err(|_| "bad KEK length".to_string())?;
            if keks
                .insert(
                    id.clone(),
                    Kek {
                        id: id.clone(),
                        cipher,
                    },
                )
                .is_some()
            {
                return Err(format!("key id {id:?} is configured twice"));
            }
        }
        if !keks.contains_key(active) {
            return Err(format!(
                "the active key id {active:?} is not among the configured keys"
            ));
        }
        Ok(Self {
            keks,
            active: active.to_owned(),
        })
    }

    /// The id new data keys are wrapped under.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// Whether `id` is configured.
    pub fn has(&self, id: &str) -> bool {
        self.keks.contains_key(id)
    }

    fn kek(&self, id: &str) -> Result<&Kek, CryptoError> {
        self.keks
            .get(id)
            .ok_or_else(|| CryptoError::UnknownKek(id.to_owned()))
    }

    /// Seals `plaintext` under a fresh data key; `aad` names the row it belongs to.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Sealed {
        let dek = Zeroizing::new(random_bytes::<DEK_LEN>());
        let nonce = random_bytes::<NONCE_LEN>();
        #[expect(clippy::expect_used, reason = "lengths are fixed by construction")]
        let cipher = Aes256Gcm::new_from_slice(dek.as_slice()).expect("32-byte key");
        #[expect(
            clippy::expect_used,
            reason = "AES-GCM only fails beyond 64 GiB messages"
        )]
        let ct = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory sizes");
        let mut ciphertext = Vec::with_capacity(NONCE_LEN + ct.len());
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&ct);
        let kek = &self.keks[&self.active];
        Sealed {
            ciphertext,
            wrapped_dek: wrap(kek, &dek),
            kek_id: kek.id.clone(),
        }
    }

    /// Opens a sealed value stored for the row named by `aad`.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let dek = self.unwrap_dek(&sealed.kek_id, &sealed.wrapped_dek)?;
        if sealed.ciphertext.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Tampered);
        }
        let (nonce, ct) = sealed.ciphertext.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Tampered)?;
        #[expect(clippy::expect_used, reason = "lengths are fixed by construction")]
        let cipher = Aes256Gcm::new_from_slice(dek.as_slice()).expect("32-byte key");
        cipher
            .decrypt(&nonce.into(), Payload { msg: ct, aad })
            .map_err(|_| CryptoError::Tampered)
    }

    /// Unwraps a data key (used by the start-up key check and by rotation).
    pub fn unwrap_dek(
        &self,
        kek_id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; DEK_LEN]>, CryptoError> {
        let kek = self.kek(kek_id)?;
        if wrapped.len() != WRAPPED_LEN {
            return Err(CryptoError::UnwrapFailed(kek_id.to_owned()));
        }
        let mut buf = Zeroizing::new([0u8; DEK_LEN]);
        kek.cipher
            .unwrap_key(wrapped, buf.as_mut_slice())
            .map_err(|_| CryptoError::UnwrapFailed(kek_id.to_owned()))?;
        Ok(buf)
    }

    /// Rewraps a data key under the active KEK. Returns `None` when it already is.
    pub fn rewrap(
        &self,
        kek_id: &str,
        wrapped: &[u8],
    ) -> Result<Option<(Vec<u8>, String)>, CryptoError> {
        if kek_id == self.active {
            return Ok(None);
        }
        let dek = self.unwrap_dek(kek_id, wrapped)?;
        let kek = &self.keks[&self.active];
        Ok(Some((wrap(kek, &dek), kek.id.clone())))
    }
}

fn wrap(kek: &Kek, dek: &[u8; DEK_LEN]) -> Vec<u8> {
    let mut out = vec![0u8; WRAPPED_LEN];
    #[expect(
        clippy::expect_used,
        reason = "a 32-byte key always wraps into 40 bytes"
    )]
    kek.cipher
        .wrap_key(dek, &mut out)
        .expect("wrap of a 32-byte key");
    out
}

/// HMAC-SHA-256 keys for the identifiers derived from an email. Separate labels keep the
/// database owner key, the public id and the lookup aliases unlinkable to each other
/// without the secret.
#[derive(Clone)]
pub struct IdKeys {
    secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for IdKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdKeys(..)")
    }
}

impl IdKeys {
    /// Wraps the configured index secret.
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            secret: Zeroizing::new(secret),
        }
    }

    /// `HMAC(secret, label || 0x00 || input)`.
    pub fn mac(&self, label: &str, input: &[u8]) -> [u8; 32] {
        #[expect(clippy::expect_used, reason = "HMAC accepts any key length")]
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.secret.as_slice()).expect("any key length");
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(input);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[(&str, u8)], active: &str) -> KeyRing {
        KeyRing::new(
            ids.iter()
                .map(|(id, b)| ((*id).to_owned(), [*b; 32]))
                .collect(),
            active,
        )
        .expect("ring")
    }

    #[test]
    fn round_trip_and_aad_binding() {
        let r = ring(&[("k1", 1)], "k1");
        let s = r.seal(b"Ada", b"row-a");
        assert_eq!(s.wrapped_dek.len(), 40);
        assert_eq!(r.open(&s, b"row-a").expect("opens"), b"Ada");
        assert_eq!(r.open(&s, b"row-b"), Err(CryptoError::Tampered));
        assert_ne!(
            r.seal(b"Ada", b"row-a").ciphertext,
            s.ciphertext,
            "fresh nonce and key"
        );
    }

    #[test]
    fn tamper_is_detected() {
        let r = ring(&[("k1", 1)], "k1");
        let s = r.seal(b"Ada Lovelace", b"row");
        for i in 0..s.ciphertext.len() {
            let mut t = s.clone();
            t.ciphertext[i] ^= 0x01;
            assert_eq!(r.open(&t, b"row"), Err(CryptoError::Tampered), "byte {i}");
        }
        let mut t = s.clone();
        t.wrapped_dek[3] ^= 0x80;
        assert_eq!(
            r.open(&t, b"row"),
            Err(CryptoError::UnwrapFailed("k1".into()))
        );
        let mut t = s;
        t.ciphertext.truncate(20);
        assert_eq!(r.open(&t, b"row"), Err(CryptoError::Tampered));
    }

    #[test]
    fn rotation_rewraps_without_touching_data() {
        let old = ring(&[("k1", 1)], "k1");
        let s = old.seal(b"data", b"row");
        let both = ring(&[("k1", 1), ("k2", 2)], "k2");
        let (wrapped, id) = both
            .rewrap(&s.kek_id, &s.wrapped_dek)
            .expect("rewrap")
            .expect("changed");
        assert_eq!(id, "k2");
        let moved = Sealed {
            wrapped_dek: wrapped,
            kek_id: id,
            ..s.clone()
        };
        assert_eq!(both.open(&moved, b"row").expect("opens"), b"data");
        assert_eq!(both.rewrap("k2", &moved.wrapped_dek).expect("noop"), None);
        let wrong = ring(&[("k1", 9)], "k1");
        assert_eq!(
            wrong.open(&s, b"row"),
            Err(CryptoError::UnwrapFailed("k1".into()))
        );
        let only_new = ring(&[("k2", 2)], "k2");
        assert_eq!(
            only_new.open(&s, b"row"),
            Err(CryptoError::UnknownKek("k1".into()))
        );
    }

    #[test]
    fn rejects_bad_rings() {
        assert!(KeyRing::new(vec![("a".into(), [0; 32])], "b").is_err());
        assert!(KeyRing::new(vec![("a b".into(), [0; 32])], "a b").is_err());
        assert!(KeyRing::new(vec![("a".into(), [0; 32]), ("a".into(), [1; 32])], "a").is_err());
    }
}
