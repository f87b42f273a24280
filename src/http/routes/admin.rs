//! `/v1/admin/...` (API.md §Operators): takedowns and upload blocks, for operators.
//!
//! The credential is a random bearer token whose SHA-256 is listed in `admin.tokens`
//! with a name. Why not a claim in the identity provider's ID token: those tokens are
//! minted for users and carried by browsers, and API.md forbids a user's token from ever
//! being an operator credential; a separate secret cannot be confused with one, works
//! when the provider is down, and a leaked config file holds no usable token. The tokens
//! are 256-bit random values, so a plain SHA-256 (not a password hash) is enough, and
//! comparing digests leaks nothing useful through timing.

use axum::{
    extract::{FromRequestParts, Path, State},
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get},
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::{
    admin::{parse_duration, rfc3339_ms, Resolved, TakedownRow, Target},
    audit::{Event, EventKind},
    auth::AuthError,
    http::{error::ApiError, extract::ApiJson, service::ClientAddr, AppState},
    profiles::now_ms,
};

/// The admin routes (merged into the main router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/takedowns",
            get(list_takedowns).post(post_takedown),
        )
        .route("/v1/admin/takedowns/{target}", delete(delete_takedown))
}

/// An authenticated operator: the configured name of the presented token.
pub struct Operator(pub String);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        let digest = hex::encode(Sha256::digest(token.as_bytes()));
        let found = state
            .config
            .admin
            .tokens
            .iter()
            .find(|t| !token.is_empty() && t.sha256 == digest);
        match found {
            Some(t) => Ok(Self(t.name.clone())),
            None => {
                let reason = if token.is_empty() {
                    "no operator token"
                } else {
                    "unknown operator token"
                };
                let mut e = Event::new(EventKind::AdminRefused, false);
                e.reason = Some(reason.into());
                e.src = parts.extensions.get::<ClientAddr>().map(|a| a.0);
                state.audit.record(&e);
                Err(AuthError::Invalid(if token.is_empty() {
                    "no operator token: /v1/admin needs a token listed in admin.tokens"
                } else {
                    "unknown operator token: /v1/admin needs a token listed in admin.tokens"
                })
                .into())
            }
        }
    }
}

/// `POST /v1/admin/takedowns` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakedownRequest {
    /// Email, MD5, SHA-256 or public id.
    target: String,
    /// Why (shown in the list and the audit log).
    #[serde(default)]
    reason: String,
    /// Also block uploads for this long, e.g. `7d`.
    #[serde(default)]
    block_uploads: Option<String>,
}

fn row_json(row: &TakedownRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "subject": row.subject,
        "target_kind": row.target_kind,
        "reason": row.reason,
        "actor": row.actor,
        "created_at": rfc3339_ms(row.created_at_ms),
        "uploads_blocked_until": row.blocked_until_ms.map(rfc3339_ms),
    })
}

/// Drops this node's cached answers for the target, so the change shows at once here.
fn forget(state: &AppState, resolved: &Resolved) {
    for h in &resolved.hashes {
        state.avatar_cache.invalidate_hash(h);
    }
    if let Some(owner) = &resolved.owner {
        state.avatar_cache.invalidate_owner(owner);
    }
}

/// `POST /v1/admin/takedowns`: take an avatar down (201 with the takedown).
pub async fn post_takedown(
    State(state): State<AppState>,
    Operator(actor): Operator,
    ApiJson(body): ApiJson<TakedownRequest>,
) -> Result<Response, ApiError> {
    let target = Target::parse(&body.target).map_err(ApiError::BadRequest)?;
    let block = body
        .block_uploads
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let until = block.map(|d| now_ms().saturating_add(d.as_millis() as i64));
    let (row, resolved) = state
        .operators
        .takedown(&target, body.reason.trim(), &actor, until)
        .await?;
    forget(&state, &resolved);
    let mut e = Event::new(EventKind::Takedown, true);
    e.actor = Some(actor);
    e.owner = Some(row.subject.clone());
    e.reason = Some(row.reason.clone());
    e.until = until.map(rfc3339_ms);
    state.audit.record(&e);
    Ok((StatusCode::CREATED, Json(row_json(&row))).into_response())
}

/// `DELETE /v1/admin/takedowns/{target}`: lift it (204), 404 when there was none.
pub async fn delete_takedown(
    State(state): State<AppState>,
    Operator(actor): Operator,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let target = Target::parse(&raw).map_err(ApiError::BadRequest)?;
    let (n, resolved) = state.operators.restore(&target).await?;
    if n == 0 {
        return Err(ApiError::NotFound("no takedown covers this target".into()));
    }
    forget(&state, &resolved);
    let mut e = Event::new(EventKind::Restore, true);
    e.actor = Some(actor);
    e.owner = resolved.owner.as_ref().map(|o| state.audit.owner_id(o));
    state.audit.record(&e);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/admin/takedowns`: every takedown, newest first.
pub async fn list_takedowns(
    State(state): State<AppState>,
    Operator(_): Operator,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = state.operators.list().await?;
    Ok(Json(json!({
        "takedowns": rows.iter().map(row_json).collect::<Vec<_>>()
    })))
}
