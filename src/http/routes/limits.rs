//! `GET /v1/limits`: the upload limits, so a page can check a file before sending it, and
//! the request limits a client meets (issue 16).

use axum::{extract::State, Json};
use serde::Serialize;

use crate::{http::AppState, limits::ImageLimits};

/// Every limit a client meets; each refusal's message names the one it hit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublishedLimits {
    /// The image limits.
    #[serde(flatten)]
    pub image: ImageLimits,
    /// Uploads per owner per `upload_window_secs`, over every API node.
    pub uploads_per_window: u32,
    /// The window of `uploads_per_window`, in seconds.
    pub upload_window_secs: u64,
    /// Uploads per owner per rolling 24 hours, over every API node (0: none).
    pub uploads_per_day: u32,
    /// Requests to `/v1/profiles/...` per client address per minute (0: none).
    pub owner_requests_per_minute_per_ip: u32,
}

/// `GET /v1/limits`.
#[utoipa::path(get, path = "/v1/limits", tag = "limits", responses((status = 200, body = PublishedLimits)))]
pub async fn get_limits(State(state): State<AppState>) -> Json<PublishedLimits> {
    let c = &state.config;
    Json(PublishedLimits {
        image: c.limits.clone(),
        uploads_per_window: c.queue.uploads_per_window,
        upload_window_secs: c.queue.window_secs,
        uploads_per_day: c.quotas.uploads_per_day,
        owner_requests_per_minute_per_ip: c.quotas.owner_requests_per_minute_per_ip,
    })
}
