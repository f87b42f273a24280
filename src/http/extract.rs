//! Extractors whose rejections are `ApiError`s, so axum's plain-text errors never escape.

use axum::{
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::{error::ApiError, service::ClientAddr, AppState};
use crate::audit::{Event, EventKind};
use crate::domain::email::Email;

/// JSON body with `{code, message}` rejections.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(
                    state.config.limits.max_upload_bytes,
                ))
            }
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// A query string with `{code, message}` rejections: a malformed or duplicated parameter
/// (`?crop=..&crop=..`) is a 400 JSON error naming it, never axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Self)
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))
    }
}

/// The authenticated owner of the `{email}` in the path: a valid token whose normalized
/// `email` equals the path's normalized email (API.md §Identity; anything else is 403).
pub struct Owner(pub Email);

impl FromRequestParts<AppState> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(crate::auth::AuthError::Missing)?;
        let token_email = match state.verifier.authenticate(token).await {
            Ok(email) => email,
            Err(e) => {
                let mut event = Event::new(EventKind::TokenRefused, false);
                event.reason = Some(e.to_string());
                event.src = parts.extensions.get::<ClientAddr>().map(|a| a.0);
                state.audit.record(&event);
                return Err(e.into());
            }
        };
        let Path(raw): Path<String> = Path::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let path_email = Email::parse(&raw)
            .map_err(|e| ApiError::InvalidEmail(format!("the email in the path: {e}")))?;
        if path_email != token_email {
            return Err(crate::auth::AuthError::OtherEmail.into());
        }
        Ok(Self(path_email))
    }
}
