//! Bearer-token authentication (API.md §Identity): OIDC-style ID tokens signed RS256,
//! ES256 or EdDSA, with `iss`, `aud`, `exp`, `email` and `email_verified: true`.

pub mod dev;
pub mod jwt;
pub mod oidc;

pub use jwt::{AuthError, Verifier};
