//! The one error type at the HTTP boundary. Every 4xx/5xx body is `{code, message}`
//! (API.md §Errors); internal causes are logged once by `log_errors`, never sent.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::{auth::AuthError, profiles::ProfileError, store::StoreError, ErrorCode};

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a reason.
    #[error("{0}")]
    BadRequest(String),
    /// 401/403 from authentication.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 400 `unknown_key`.
    #[error("{0}")]
    UnknownKey(String),
    /// 400 `invalid_value`.
    #[error("{0}")]
    InvalidValue(String),
    /// 413 with the limit in bytes.
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(u64),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422.
    #[error("{0}")]
    ImageTooLarge(String),
    /// 422 for an upload refused with another image code (`undecodable_image`,
    /// `invalid_crop`).
    #[error("{1}")]
    Unprocessable(ErrorCode, String),
    /// 429 with seconds to wait and a message stating the limit.
    #[error("{1}")]
    RateLimited(u64, String),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
    /// 400 `invalid_email`: the path's or the token's email is not acceptable.
    #[error("{0}")]
    InvalidEmail(String),
    /// 403 `uploads_blocked`, saying until when.
    #[error("{0}")]
    UploadsBlocked(String),
    /// 500; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// 500: a stored value failed authentication (tampered row or wrong key). Said
    /// plainly instead of returning garbage; the detail is logged.
    #[error("stored data failed its integrity check: {0}")]
    Integrity(String),
}

#[derive(Serialize)]
struct Body<'a> {
    code: ErrorCode,
    message: &'a str,
}

/// The detail of a 5xx, carried to the logging middleware in a response extension.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

impl ApiError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Auth(AuthError::InvalidEmail(_)) | Self::InvalidEmail(_) => {
                ErrorCode::InvalidEmail
            }
            Self::Auth(e) if e.is_forbidden() => ErrorCode::Forbidden,
            Self::Auth(_) => ErrorCode::InvalidToken,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::UnknownKey(_) => ErrorCode::UnknownKey,
            Self::InvalidValue(_) => ErrorCode::InvalidValue,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::ImageTooLarge(_) => ErrorCode::ImageTooLarge,
            Self::Unprocessable(code, _) => *code,
            Self::RateLimited(..) => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::UploadsBlocked(_) => ErrorCode::UploadsBlocked,
            Self::Internal(_) | Self::Integrity(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_)
            | Self::UnknownKey(_)
            | Self::InvalidValue(_)
            | Self::InvalidEmail(_)
            | Self::Auth(AuthError::InvalidEmail(_)) => StatusCode::BAD_REQUEST,
            Self::Auth(e) if e.is_forbidden() => StatusCode::FORBIDDEN,
            Self::UploadsBlocked(_) => StatusCode::FORBIDDEN,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ImageTooLarge(_) | Self::Unprocessable(..) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) | Self::Integrity(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(_) => "internal server error".to_owned(),
            Self::Integrity(_) => {
                "stored data for this profile failed its integrity check (tampered, or the wrong \
                                   encryption key is configured); nothing was returned"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let mut res = (
            status,
            Json(Body {
                code: self.code(),
                message: &message,
            }),
        )
            .into_response();
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Self::Auth(e) if !e.is_forbidden() && !matches!(e, AuthError::InvalidEmail(_)) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited(secs, _) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            _ => {}
        }
        if status.is_server_error() {
            res.extensions_mut().insert(ErrorDetail(self.to_string()));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                Self::Unavailable("the database is unavailable; try again shortly".into())
            }
            StoreError::Conflict => {
                Self::Unavailable("the record is being changed concurrently; try again".into())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Store(s) => s.into(),
            ProfileError::Invalid(m) => Self::InvalidValue(m),
            ProfileError::Busy => Self::Unavailable(e.to_string()),
            ProfileError::Crypto(c) => Self::Integrity(c.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}
