//! Dev mode: with no issuer configured, the server signs and accepts its own tokens with
//! an Ed25519 key kept in the data directory; `moocard token <email>` mints one.

use std::path::{Path, PathBuf};

use ed25519_dalek::{
    pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey, EncodePublicKey},
    SigningKey,
};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::Verifier;
use crate::keys::write_private;

/// The issuer dev tokens carry.
pub const DEV_ISSUER: &str = "moocard-dev";

/// The local signing key.
pub struct DevSigner {
    key: SigningKey,
    audience: String,
}

impl std::fmt::Debug for DevSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevSigner(..)")
    }
}

#[derive(Serialize)]
struct DevClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    email: &'a str,
    email_verified: bool,
    iat: i64,
    exp: i64,
}

/// Where the dev key lives.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-signing-key.pem")
}

impl DevSigner {
    /// Loads the key from the data directory, creating it (mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path, audience: &str) -> Result<Self, String> {
        let path = key_path(data_dir);
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => {
                SigningKey::from_pkcs8_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&mut rand_core::OsRng);
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| e.to_string())?;
                write_private(&path, pem.as_bytes())?;
                key
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Self {
            key,
            audience: audience.to_owned(),
        })
    }

    /// A verifier that accepts this key's tokens.
    pub fn verifier(&self, leeway: u64) -> Result<Verifier, String> {
        let pem = self
            .key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?;
        let mut v = Verifier::new(DEV_ISSUER, &self.audience, leeway);
        v.add_pem(pem.as_bytes())?;
        Ok(v)
    }

    /// Signs a token for `email` valid for `ttl_secs` (negative: already expired, for tests).
    pub fn token(&self, email: &str, ttl_secs: i64, verified: bool) -> Result<String, String> {
        self.token_with(email, ttl_secs, verified, DEV_ISSUER, &self.audience)
    }

    /// Signs a token with explicit issuer and audience (tests of rejection paths).
    pub fn token_with(
        &self,
        email: &str,
        ttl_secs: i64,
        verified: bool,
        iss: &str,
        aud: &str,
    ) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let claims = DevClaims {
            iss,
            aud,
            sub: email,
            email,
            email_verified: verified,
            iat: now,
            exp: now + ttl_secs,
        };
        let der = self.key.to_pkcs8_der().map_err(|e| e.to_string())?;
        let key = EncodingKey::from_ed_der(der.as_bytes());
        encode(&Header::new(Algorithm::EdDSA), &claims, &key).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthError;

    #[test]
    fn dev_tokens_verify_and_fail_correctly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = DevSigner::load_or_create(dir.path(), "moocard").expect("key");
        let v = signer.verifier(0).expect("verifier");
        let t = signer.token("Ada@Example.org", 3600, true).expect("token");
        assert_eq!(v.verify(&t).expect("valid").as_str(), "ada@example.org");
        assert_eq!(
            v.verify(&signer.token("a@b", -120, true).expect("t")),
            Err(AuthError::Expired)
        );
        assert_eq!(
            v.verify(&signer.token("a@b", 60, false).expect("t")),
            Err(AuthError::Unverified)
        );
        assert_eq!(
            v.verify(
                &signer
                    .token_with("a@b", 60, true, "evil", "moocard")
                    .expect("t")
            ),
            Err(AuthError::WrongIssuer)
        );
        assert_eq!(
            v.verify(
                &signer
                    .token_with("a@b", 60, true, DEV_ISSUER, "other")
                    .expect("t")
            ),
            Err(AuthError::WrongAudience)
        );
        let other = DevSigner::load_or_create(tempfile::tempdir().expect("d").path(), "moocard")
            .expect("key");
        assert!(matches!(
            v.verify(&other.token("a@b", 60, true).expect("t")),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(v.verify("not.a.jwt"), Err(AuthError::Invalid(_))));
        // The same key file is reused.
        let again = DevSigner::load_or_create(dir.path(), "moocard").expect("key");
        assert!(v.verify(&again.token("a@b", 60, true).expect("t")).is_ok());
    }
}
