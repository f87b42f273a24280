//! The stable error vocabulary shared by the HTTP API and the workers (API.md §Errors).
//!
//! Avatar `error.code` values written by workers use the same enum, so clients see one
//! vocabulary whether a problem is found at upload time or while processing.

use serde::{Deserialize, Serialize};

/// A stable, snake_case error code. Never rename a variant: clients match on the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed request: bad query, path or JSON.
    BadRequest,
    /// Missing, malformed, expired or otherwise unacceptable bearer token.
    InvalidToken,
    /// A valid token that may not act on this resource.
    Forbidden,
    /// No such resource.
    NotFound,
    /// A PATCH named a key that is not a well-defined record key.
    UnknownKey,
    /// A value for a known key broke that key's rules.
    InvalidValue,
    /// Request body over the configured byte limit.
    PayloadTooLarge,
    /// Not JPEG, PNG, GIF or WebP by content.
    UnsupportedMediaType,
    /// Dimensions or megapixels over the configured limits.
    ImageTooLarge,
    /// The image could not be decoded (corrupt, truncated, or rejected by the decoder).
    UndecodableImage,
    /// The crop rectangle does not fit the oriented image.
    InvalidCrop,
    /// Processing took longer than the configured job timeout.
    ProcessingTimeout,
    /// Too many requests; see `Retry-After`.
    RateLimited,
    /// A dependency (database, queue) is unavailable or overloaded.
    Unavailable,
    /// An unexpected server fault.
    Internal,
    /// An email (in a path or a token) that is malformed or holds invisible, bidi-control
    /// or non-NFC characters (API.md §Identity).
    InvalidEmail,
    /// An operator blocked this owner's uploads for a while (the message says until when).
    UploadsBlocked,
}

impl ErrorCode {
    /// The wire string, e.g. `"image_too_large"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidToken => "invalid_token",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::UnknownKey => "unknown_key",
            Self::InvalidValue => "invalid_value",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ImageTooLarge => "image_too_large",
            Self::UndecodableImage => "undecodable_image",
            Self::InvalidCrop => "invalid_crop",
            Self::ProcessingTimeout => "processing_timeout",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::InvalidEmail => "invalid_email",
            Self::UploadsBlocked => "uploads_blocked",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
