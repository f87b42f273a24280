//! `PUT/GET/DELETE /v1/profiles/{email}/avatar` (API.md §Owner endpoints, §Upload rules).

use axum::{
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    crop::Crop,
    domain::avatar::AvatarStatus,
    http::{
        error::ApiError,
        extract::{ApiQuery, Owner},
        AppState,
    },
    probe::ProbeError,
    uploads::UploadError,
    ErrorCode,
};

/// `?crop=x,y,w,h`.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    crop: Option<String>,
}

/// `PUT /v1/profiles/{email}/avatar`: the image bytes; 202 with the job id.
#[utoipa::path(put, path = "/v1/profiles/{email}/avatar", tag = "avatar",
    params(("email" = String, Path, description = "The token's email"),
           ("crop" = Option<String>, Query, description = "x,y,w,h in source pixels after orientation")),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 202, description = "Queued: {\"job\", \"state\": \"queued\"}"),
              (status = 413, body = crate::http::ErrorBody), (status = 415, body = crate::http::ErrorBody),
              (status = 422, body = crate::http::ErrorBody), (status = 429, body = crate::http::ErrorBody),
              (status = 503, body = crate::http::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_avatar(
    State(state): State<AppState>,
    Owner(email): Owner,
    ApiQuery(query): ApiQuery<UploadQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let crop = query
        .crop
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<Crop>()
                .map_err(|e| ApiError::BadRequest(format!("invalid crop: {e}")))
        })
        .transpose()?;
    let limit = state.config.limits.max_upload_bytes;
    let body = Bytes::from_request(req, &state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the request body must be the image bytes".into(),
        ));
    }
    let accepted = match state.uploads.accept(&email, &body, crop).await {
        Ok(accepted) => accepted,
        Err(e) => {
            let err = upload_error(e);
            audit_refusal(&state, &email, &err);
            return Err(err);
        }
    };
    state.on_avatar_changed(&email);
    let location = avatar_location(&email);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(json!({"job": accepted.job, "state": "queued"})),
    )
        .into_response())
}

/// `Location` of an upload: the status path, the email percent-encoded (an email may
/// hold characters that are not valid in a header or a path segment).
fn avatar_location(email: &crate::domain::email::Email) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // RFC 3986 unreserved characters and `@` stay as they are.
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'@');
    format!(
        "/v1/profiles/{}/avatar",
        utf8_percent_encode(email.as_str(), SEGMENT)
    )
}

/// Writes a refused upload to the audit log (a rate limit as `rate_limited`).
fn audit_refusal(state: &AppState, email: &crate::domain::email::Email, err: &ApiError) {
    use crate::audit::{Event, EventKind};
    if err.status().is_server_error() {
        return;
    }
    let kind = match err {
        ApiError::RateLimited(..) => EventKind::RateLimited,
        _ => EventKind::UploadRefused,
    };
    let mut e = Event::new(kind, false);
    e.owner = Some(state.audit.owner_id(&state.profiles.owner(email)));
    e.code = Some(err.code().as_str().into());
    e.reason = Some(err.to_string());
    state.audit.record(&e);
}

fn upload_error(e: UploadError) -> ApiError {
    let message = e.to_string();
    match e {
        UploadError::Blocked { .. } => ApiError::UploadsBlocked(message),
        UploadError::RateLimited { retry_after, .. } => ApiError::RateLimited(retry_after, message),
        UploadError::Probe(p) => match p {
            ProbeError::TooManyBytes { limit, .. } => ApiError::PayloadTooLarge(limit),
            p => match p.code() {
                ErrorCode::UnsupportedMediaType => ApiError::UnsupportedMediaType(p.to_string()),
                ErrorCode::ImageTooLarge => ApiError::ImageTooLarge(p.to_string()),
                // A header problem that is not about size (API.md §Errors).
                code => ApiError::Unprocessable(code, p.to_string()),
            },
        },
        UploadError::Crop(message) => ApiError::Unprocessable(ErrorCode::InvalidCrop, message),
        e @ (UploadError::QueueFull { .. } | UploadError::QueueUnavailable) => {
            ApiError::Unavailable(e.to_string())
        }
        UploadError::Profile(p) => p.into(),
    }
}

/// `GET /v1/profiles/{email}/avatar`: the avatar status.
#[utoipa::path(get, path = "/v1/profiles/{email}/avatar", tag = "avatar",
    params(("email" = String, Path, description = "The token's email")),
    responses((status = 200, body = AvatarStatus)),
    security(("bearer" = [])))]
pub async fn get_avatar_status(
    State(state): State<AppState>,
    Owner(email): Owner,
) -> Result<Json<AvatarStatus>, ApiError> {
    Ok(Json(state.uploads.status(&email).await?.status()))
}

/// `DELETE /v1/profiles/{email}/avatar`: back to the default moocard.
#[utoipa::path(delete, path = "/v1/profiles/{email}/avatar", tag = "avatar",
    params(("email" = String, Path, description = "The token's email")),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete_avatar(
    State(state): State<AppState>,
    Owner(email): Owner,
) -> Result<StatusCode, ApiError> {
    state.uploads.delete(&email).await?;
    state.on_avatar_changed(&email);
    Ok(StatusCode::NO_CONTENT)
}
