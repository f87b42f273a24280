//! Token verification against keys from PEM files, a JWKS document or the dev key.

use std::path::Path;

use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::domain::email::Email;

/// Why a request is not authenticated or not authorized.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send Authorization: Bearer <JWT>")]
    Missing,
    /// Not a JWT, an unsupported algorithm, or a bad signature.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// `exp` is in the past.
    #[error("token has expired")]
    Expired,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// `email_verified` is not `true`.
    #[error("the token's email is not verified")]
    Unverified,
    /// The token is for another email than the path.
    #[error("the token does not grant access to this profile")]
    OtherEmail,
}

impl AuthError {
    /// Whether this is 403 (authenticated but not allowed) rather than 401.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Unverified | Self::OtherEmail)
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
}

struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algs: Vec<Algorithm>,
}

/// Verifies tokens for one issuer and audience.
pub struct Verifier {
    issuer: String,
    audience: String,
    leeway: u64,
    keys: Vec<Key>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys.len())
            .finish()
    }
}

const ALLOWED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

impl Verifier {
    /// A verifier with no keys yet.
    pub fn new(issuer: &str, audience: &str, leeway: u64) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
            keys: Vec::new(),
        }
    }

    /// Adds a public key in PEM form (RSA, EC P-256 or Ed25519).
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<(), String> {
        let (key, alg) = if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (k, Algorithm::EdDSA)
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (k, Algorithm::ES256)
        } else if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, Algorithm::RS256)
        } else {
            return Err("not an RSA, EC P-256 or Ed25519 public key in PEM form".into());
        };
        self.keys.push(Key {
            kid: None,
            key,
            algs: vec![alg],
        });
        Ok(())
    }

    /// Adds a PEM file.
    pub fn add_pem_file(&mut self, path: &Path) -> Result<(), String> {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.add_pem(&pem)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Adds every usable key of a JWKS document.
    pub fn add_jwks(&mut self, json: &str) -> Result<usize, String> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("invalid JWKS: {e}"))?;
        let mut added = 0;
        for jwk in &set.keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let algs = match jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => vec![Algorithm::RS256],
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => vec![Algorithm::ES256],
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
                _ => continue,
            };
            self.keys.push(Key {
                kid: jwk.common.key_id.clone(),
                key,
                algs,
            });
            added += 1;
        }
        if added == 0 {
            return Err("the JWKS document has no RSA, EC P-256 or Ed25519 keys".into());
        }
        Ok(added)
    }

    /// How many keys are loaded.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies a token and returns its normalized, verified email.
    pub fn verify(&self, token: &str) -> Result<Email, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.leeway;
        let mut last = AuthError::Invalid("no verification key matches this token".into());
        let candidates = self
            .keys
            .iter()
            .filter(|k| k.algs.contains(&header.alg))
            .filter(|k| match (&k.kid, &header.kid) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            });
        for key in candidates {
            match decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => return check_claims(data.claims),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    last = match e.kind() {
                        K::ExpiredSignature => return Err(AuthError::Expired),
                        K::InvalidIssuer => return Err(AuthError::WrongIssuer),
                        K::InvalidAudience => return Err(AuthError::WrongAudience),
                        K::InvalidSignature => AuthError::Invalid("bad signature".into()),
                        K::MissingRequiredClaim(c) => {
                            return Err(AuthError::Invalid(format!("missing claim {c}")))
                        }
                        other => AuthError::Invalid(format!("{other:?}")),
                    };
                }
            }
        }
        Err(last)
    }
}

fn check_claims(claims: Claims) -> Result<Email, AuthError> {
    let raw = claims
        .email
        .ok_or_else(|| AuthError::Invalid("missing claim email".into()))?;
    let email = Email::parse(&raw).map_err(|e| AuthError::Invalid(format!("email claim: {e}")))?;
    // Some IdPs send "true" as a string; accept only an explicit true.
    match claims.email_verified {
        Some(serde_json::Value::Bool(true)) => Ok(email),
        Some(serde_json::Value::String(s)) if s == "true" => Ok(email),
        _ => Err(AuthError::Unverified),
    }
}
