//! `GET/PATCH/DELETE /v1/profiles/{email}` (API.md §Owner endpoints).

use axum::{extract::State, http::StatusCode, Json};
use serde_json::{Map, Value};

use crate::{
    domain::record::RecordKey,
    http::{
        error::ApiError,
        extract::{ApiJson, Owner},
        AppState,
    },
    profiles::ProfileView,
};

/// `GET /v1/profiles/{email}`.
#[utoipa::path(get, path = "/v1/profiles/{email}", tag = "profiles",
    params(("email" = String, Path, description = "The token's email")),
    responses((status = 200, body = ProfileView), (status = 401, body = crate::http::ErrorBody), (status = 403, body = crate::http::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_profile(
    State(state): State<AppState>,
    Owner(email): Owner,
) -> Result<Json<ProfileView>, ApiError> {
    Ok(Json(state.profiles.get(&email).await?))
}

/// `PATCH /v1/profiles/{email}` with well-defined keys only; `null` clears.
#[utoipa::path(patch, path = "/v1/profiles/{email}", tag = "profiles",
    params(("email" = String, Path, description = "The token's email")),
    request_body(content = Object, description = "e.g. {\"display_name\": \"Ada\"}; null clears"),
    responses((status = 200, body = ProfileView), (status = 400, body = crate::http::ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_profile(
    State(state): State<AppState>,
    Owner(email): Owner,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<ProfileView>, ApiError> {
    let changes = parse_patch(body)?;
    for (key, value) in changes {
        match key {
            RecordKey::DisplayName => {
                state
                    .profiles
                    .set_display_name(&email, value.as_deref())
                    .await?
            }
            RecordKey::Avatar => unreachable_patch()?,
        }
    }
    Ok(Json(state.profiles.get(&email).await?))
}

fn unreachable_patch() -> Result<(), ApiError> {
    Err(ApiError::UnknownKey(
        "avatar is set with PUT /v1/profiles/{email}/avatar".into(),
    ))
}

/// Checks every key and value before anything is written, so a bad PATCH changes nothing.
fn parse_patch(body: Value) -> Result<Vec<(RecordKey, Option<String>)>, ApiError> {
    let Value::Object(map): Value = body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object, e.g. {\"display_name\": \"Ada\"}".into(),
        ));
    };
    let allowed = || RecordKey::PATCHABLE.map(RecordKey::as_str).join(", ");
    let map: Map<String, Value> = map;
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let key = RecordKey::parse(&name)
            .filter(|k| RecordKey::PATCHABLE.contains(k))
            .ok_or_else(|| {
                ApiError::UnknownKey(format!("unknown key {name:?}; allowed keys: {}", allowed()))
            })?;
        let value = match value {
            Value::Null => None,
            Value::String(s) => {
                crate::domain::record::validate_display_name(&s).map_err(ApiError::InvalidValue)?;
                Some(s)
            }
            _ => {
                return Err(ApiError::InvalidValue(format!(
                    "{name} must be a string or null"
                )))
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// `DELETE /v1/profiles/{email}`: every record and image of that email is gone.
#[utoipa::path(delete, path = "/v1/profiles/{email}", tag = "profiles",
    params(("email" = String, Path, description = "The token's email")),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete_profile(
    State(state): State<AppState>,
    Owner(email): Owner,
) -> Result<StatusCode, ApiError> {
    state.profiles.delete(&email).await?;
    state.on_avatar_changed(&email);
    Ok(StatusCode::NO_CONTENT)
}
