//! Token verification: the rules every ID token must pass (API.md §Identity), over keys
//! from PEM files, a JWKS document, the dev key or the issuer's discovery (`oidc.rs`).

use std::{path::Path, sync::Arc};

use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::oidc::RemoteKeys;
use crate::domain::email::Email;

/// Why a request is not authenticated or not authorized. Messages are our own sentences,
/// never a library's internals (they go to clients in 401 bodies).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send Authorization: Bearer <JWT>")]
    Missing,
    /// Not a JWT, an unsupported algorithm, a bad signature or a malformed claim.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// `exp` is in the past.
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is later than now plus the leeway.
    #[error("token is not valid yet (nbf or iat is in the future)")]
    NotYetValid,
    /// The header lists `crit` extensions; this service understands none.
    #[error("token has a critical header extension (crit) this service does not understand")]
    UnknownCritical,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not contain the configured audience, or `azp` names another party.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// `aud` lists several audiences and `azp` is missing or is not this service.
    #[error(
        "token audience is not accepted: aud lists several audiences and azp is not this service"
    )]
    AzpMismatch,
    /// The token names a key this service does not have (after asking the issuer again).
    #[error("invalid token: no verification key matches its kid")]
    UnknownKey,
    /// The `email` claim is malformed or holds invisible, bidi or non-NFC characters.
    #[error("the token's email claim is not acceptable: {0}")]
    InvalidEmail(String),
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

/// One verification key and the algorithms it may verify.
pub struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algs: Vec<Algorithm>,
}

const ALLOWED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Parses a PEM public key (RSA, EC P-256 or Ed25519).
pub fn key_from_pem(pem: &[u8]) -> Result<Key, String> {
    let (key, alg) = if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        (k, Algorithm::EdDSA)
    } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        (k, Algorithm::ES256)
    } else if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        (k, Algorithm::RS256)
    } else {
        return Err("not an RSA, EC P-256 or Ed25519 public key in PEM form".into());
    };
    Ok(Key {
        kid: None,
        key,
        algs: vec![alg],
    })
}

/// Every usable signing key of a JWKS document (encryption keys are skipped).
pub fn keys_from_jwks(json: &[u8]) -> Result<Vec<Key>, String> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("invalid JWKS: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let algs = match jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => vec![Algorithm::RS256],
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => vec![Algorithm::ES256],
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
            _ => continue,
        };
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            key,
            algs,
        });
    }
    if keys.is_empty() {
        return Err("the JWKS document has no RSA, EC P-256 or Ed25519 signing keys".into());
    }
    Ok(keys)
}

/// Where the keys come from.
enum Keys {
    /// Fixed at start-up (PEM files, a JWKS file, the dev key).
    Static(Vec<Key>),
    /// The issuer's `jwks_uri`, cached and refreshed.
    Remote(Arc<RemoteKeys>),
}

/// Verifies tokens for one issuer and audience.
pub struct Verifier {
    issuer: String,
    audience: String,
    leeway: u64,
    keys: Keys,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with no keys yet.
    pub fn new(issuer: &str, audience: &str, leeway: u64) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway,
            keys: Keys::Static(Vec::new()),
        }
    }

    /// A verifier over the issuer's published keys.
    pub fn remote(issuer: &str, audience: &str, leeway: u64, keys: Arc<RemoteKeys>) -> Self {
        Self {
            keys: Keys::Remote(keys),
            ..Self::new(issuer, audience, leeway)
        }
    }

    /// The remote key set, when keys come from discovery (for `__heartbeat__`).
    pub fn remote_keys(&self) -> Option<&Arc<RemoteKeys>> {
        match &self.keys {
            Keys::Remote(r) => Some(r),
            Keys::Static(_) => None,
        }
    }

    fn static_keys(&mut self) -> &mut Vec<Key> {
        if let Keys::Remote(_) = self.keys {
            self.keys = Keys::Static(Vec::new());
        }
        match &mut self.keys {
            Keys::Static(k) => k,
            Keys::Remote(_) => unreachable!("replaced above"),
        }
    }

    /// Adds a public key in PEM form (RSA, EC P-256 or Ed25519).
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<(), String> {
        let key = key_from_pem(pem)?;
        self.static_keys().push(key);
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
        let keys = keys_from_jwks(json.as_bytes())?;
        let n = keys.len();
        self.static_keys().extend(keys);
        Ok(n)
    }

    /// How many keys are loaded now.
    pub fn key_count(&self) -> usize {
        match &self.keys {
            Keys::Static(k) => k.len(),
            Keys::Remote(r) => r.current().len(),
        }
    }

    /// Verifies a token and returns its normalized, verified email. With remote keys, a
    /// `kid` not in the cached set makes one (single-flight, rate-limited) refetch first.
    pub async fn authenticate(&self, token: &str) -> Result<Email, AuthError> {
        match &self.keys {
            Keys::Static(keys) => self.verify_with(keys, token),
            Keys::Remote(remote) => {
                let keys = remote.current();
                match self.verify_with(&keys, token) {
                    Err(AuthError::UnknownKey) => {
                        let kid = decode_header(token).ok().and_then(|h| h.kid);
                        match remote.refresh_for_unknown_kid(kid.as_deref()).await {
                            Some(fresh) => self.verify_with(&fresh, token),
                            None => Err(AuthError::UnknownKey),
                        }
                    }
                    other => other,
                }
            }
        }
    }

    /// Verifies against static keys only (dev mode and key files; tests).
    pub fn verify(&self, token: &str) -> Result<Email, AuthError> {
        match &self.keys {
            Keys::Static(keys) => self.verify_with(keys, token),
            Keys::Remote(remote) => self.verify_with(&remote.current(), token),
        }
    }

    fn verify_with(&self, keys: &[Key], token: &str) -> Result<Email, AuthError> {
        let header =
            decode_header(token).map_err(|_| AuthError::Invalid("it is not a well-formed JWT"))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(AuthError::Invalid(
                "only RS256, ES256 and EdDSA signatures are accepted",
            ));
        }
        // RFC 7515 §4.1.6: a recipient must refuse `crit` extensions it does not know; we
        // know none.
        if header.crit.is_some() {
            return Err(AuthError::UnknownCritical);
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| k.algs.contains(&header.alg))
            .filter(|k| match (&k.kid, &header.kid) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(AuthError::UnknownKey);
        }
        let mut last = AuthError::Invalid("the signature does not verify");
        for key in candidates {
            match decode::<Value>(token, &key.key, &validation) {
                Ok(data) => return self.check_claims(&data.claims),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    last = match e.kind() {
                        K::InvalidSignature => AuthError::Invalid("the signature does not verify"),
                        K::ExpiredSignature => return Err(AuthError::Expired),
                        K::ImmatureSignature => return Err(AuthError::NotYetValid),
                        K::InvalidIssuer => return Err(AuthError::WrongIssuer),
                        K::InvalidAudience => return Err(AuthError::WrongAudience),
                        // The library counts an `exp` it cannot read as a number as missing.
                        K::MissingRequiredClaim(_) => {
                            return Err(AuthError::Invalid(
                                "a required claim (exp, iss, aud) is missing, or exp is not an integer number of seconds",
                            ))
                        }
                        K::InvalidClaimFormat(_) => {
                            return Err(AuthError::Invalid(
                                "exp, nbf and iat must be integer numbers of seconds",
                            ))
                        }
                        _ => AuthError::Invalid("it could not be verified"),
                    };
                }
            }
        }
        Err(last)
    }

    /// The claims the library does not check: integer times, `iat` not in the future, `azp`
    /// against a list `aud`, and the email.
    fn check_claims(&self, claims: &Value) -> Result<Email, AuthError> {
        let now = chrono::Utc::now().timestamp();
        for name in ["exp", "nbf", "iat"] {
            match claims.get(name) {
                None => {}
                Some(v) if v.is_i64() || v.is_u64() => {}
                Some(_) => {
                    return Err(AuthError::Invalid(
                        "exp, nbf and iat must be integer numbers of seconds",
                    ))
                }
            }
        }
        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        if let Some(iat) = claims.get("iat").and_then(Value::as_i64) {
            if iat > now.saturating_add(leeway) {
                return Err(AuthError::NotYetValid);
            }
        }
        // OpenID Connect Core §3.1.3.7: with several audiences, `azp` says who the token
        // was issued to; when present it must be us.
        let azp = claims.get("azp");
        if let Some(azp) = azp {
            if azp.as_str() != Some(self.audience.as_str()) {
                return Err(AuthError::AzpMismatch);
            }
        }
        if let Some(Value::Array(list)) = claims.get("aud") {
            if list.len() > 1 && azp.is_none() {
                return Err(AuthError::AzpMismatch);
            }
        }
        let raw = claims
            .get("email")
            .and_then(Value::as_str)
            .ok_or(AuthError::Invalid("the email claim is missing"))?;
        let email = Email::parse(raw).map_err(|e| AuthError::InvalidEmail(e.to_string()))?;
        // Some IdPs send "true" as a string; accept only an explicit true.
        match claims.get("email_verified") {
            Some(Value::Bool(true)) => Ok(email),
            Some(Value::String(s)) if s == "true" => Ok(email),
            _ => Err(AuthError::Unverified),
        }
    }
}
