//! The public reads (`/avatar/{hash}`, `/images/{id}`) as their own sub-router with a lean
//! layer stack: request metrics and the panic boundary only. They are GETs without a body,
//! so the body limit does not apply, and their one slow path (a cache miss that reads the
//! database) carries its own timeout, so a cache hit pays for no timer.
//!
//! `http::service` answers plain GETs and HEADs of these routes without the router; this
//! sub-router answers the rest (other methods, percent-escaped segments) and anyone who
//! serves `http::router` alone.

use axum::{
    http::{Method, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    http::{error::ApiError, AppState},
    telemetry,
};

use super::{avatar, images};

/// The public-read routes with their layers, ready to merge into the main router.
pub fn router(state: AppState) -> Router {
    routes()
        .layer(middleware::from_fn(telemetry::track))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .with_state(state)
}

fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/avatar/{hash}",
            get(avatar::get_avatar).fallback(method_not_allowed),
        )
        .route(
            "/images/{id}",
            get(images::get_image).fallback(method_not_allowed),
        )
}

async fn method_not_allowed(method: Method) -> Response {
    let mut res = ApiError::BadRequest(format!(
        "method {method} is not allowed on this resource; use GET or HEAD"
    ))
    .into_response();
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res
}
