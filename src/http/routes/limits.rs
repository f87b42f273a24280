//! `GET /v1/limits`: the upload limits, so a page can check a file before sending it.

use axum::{extract::State, Json};

use crate::{http::AppState, limits::ImageLimits};

/// `GET /v1/limits`.
#[utoipa::path(get, path = "/v1/limits", tag = "limits", responses((status = 200, body = ImageLimits)))]
pub async fn get_limits(State(state): State<AppState>) -> Json<ImageLimits> {
    Json(state.config.limits.clone())
}
