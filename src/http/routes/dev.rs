//! `POST /v1/dev/sign-in`: the page's one-click sign-in in dev mode (API.md §Identity).
//! The route exists only when the server runs in dev mode on a loopback address, so a
//! deployment with an issuer, or one reachable from the network, never mints tokens.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};

use crate::{
    domain::email::Email,
    http::{error::ApiError, extract::ApiJson, AppState},
};

/// Lifetime of a dev sign-in token, in seconds (as `moocard token`).
pub const DEV_TOKEN_SECS: i64 = 3600;

/// The request: which email to sign in as.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    email: String,
}

/// The answer: an ID token as the issuer would send it.
#[derive(Serialize)]
pub struct SignedIn {
    /// The normalized email the token is for.
    email: String,
    /// A dev-mode ID token.
    id_token: String,
    /// Seconds until it expires.
    expires_in: i64,
}

/// `POST /v1/dev/sign-in` with `{"email": "..."}`.
pub async fn post_dev_sign_in(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Json<SignedIn>, ApiError> {
    let Some(signer) = state.dev_signer.as_ref() else {
        return Err(ApiError::NotFound("no such resource".into()));
    };
    let email = Email::parse(&body.email).map_err(|e| ApiError::InvalidEmail(e.to_string()))?;
    let id_token = signer
        .token(email.as_str(), DEV_TOKEN_SECS, true)
        .map_err(ApiError::Internal)?;
    Ok(Json(SignedIn {
        email: email.as_str().to_owned(),
        id_token,
        expires_in: DEV_TOKEN_SECS,
    }))
}
