//! How the page signs in (issue 12): `GET /v1/auth/config` says whether this server uses
//! an issuer (code flow with PKCE as a public client) or dev mode, and
//! `POST /v1/dev/sign-in` is dev mode's one-click sign-in (API.md §Identity). That route
//! exists only in dev mode on a loopback address, so a deployment with an issuer, or one
//! reachable from the network, never mints tokens.

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

/// What the page needs to sign in.
#[derive(Serialize)]
pub struct SignInConfig {
    /// `"oidc"` or `"dev"`.
    mode: &'static str,
    /// The issuer (empty in dev mode).
    issuer: String,
    /// The page's client id at the issuer.
    client_id: String,
    /// Whether `POST /v1/dev/sign-in` exists.
    dev_sign_in: bool,
}

/// `GET /v1/auth/config`: public, no secrets.
pub async fn get_sign_in_config(State(state): State<AppState>) -> Json<SignInConfig> {
    let auth = &state.config.auth;
    let client_id = if auth.client_id.is_empty() {
        auth.audience.clone()
    } else {
        auth.client_id.clone()
    };
    Json(SignInConfig {
        mode: if state.config.dev_mode() {
            "dev"
        } else {
            "oidc"
        },
        issuer: auth.issuer.clone(),
        client_id,
        dev_sign_in: state.dev_signer.is_some(),
    })
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
