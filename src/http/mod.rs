//! The HTTP layer: router, shared state and middleware. No SQL and no crypto here;
//! handlers parse, call domain code and map the result.

pub mod admission;
pub mod alias_filter;
pub mod avatar_cache;
pub mod avatar_query;
pub mod breaker;
pub mod error;
pub mod extract;
pub mod formats;
pub mod graphics;
pub mod openapi;
pub mod owner;
pub mod owner_limit;
pub mod page;
pub mod routes;
pub mod served;
pub mod server;
pub mod service;

pub use service::HttpService;

use std::{sync::Arc, time::Duration};

use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderValue, Method, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use serde::Serialize;
use tower_http::{catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer};

use crate::{
    auth::Verifier, config::Config, domain::email::Email, profiles::Profiles, telemetry,
    uploads::Uploads, ErrorCode,
};
use error::ApiError;

/// The JSON error body, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: ErrorCode,
    /// Human sentence.
    pub message: String,
}

/// State shared by every handler: one `Arc`, so a request clones one pointer (axum
/// clones the state per request; this is on the hot avatar path).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    /// Wraps the shared state.
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] points at.
pub struct SharedState {
    /// Configuration.
    pub config: Arc<Config>,
    /// Profile records.
    pub profiles: Profiles,
    /// Token verification.
    pub verifier: Arc<Verifier>,
    /// Upload intake and the job queue.
    pub uploads: Uploads,
    /// Caches of the public reads (`/avatar`, `/images`) on this node.
    pub avatar_cache: Arc<avatar_cache::AvatarCache>,
    /// The dev-mode signer behind the page's one-click sign-in; `None` unless the server
    /// runs in dev mode on a loopback address.
    pub dev_signer: Option<Arc<crate::auth::dev::DevSigner>>,
    /// Operator actions and shared limits.
    pub operators: crate::admin::Operators,
    /// The audit log.
    pub audit: Arc<crate::audit::AuditLog>,
    /// Per-client-address limit of owner requests on this node.
    pub owner_ip_limit: Option<Arc<owner_limit::OwnerIpLimit>>,
}

impl AppState {
    /// Checks the job queue for `__heartbeat__`.
    pub async fn queue_ping(&self) -> Result<(), String> {
        self.uploads.queue().ping().await.map_err(|e| e.to_string())
    }

    /// Refreshes gauges (queue depth) before `/metrics` renders.
    pub async fn refresh_gauges(&self) {
        // Finished jobs are not counted per scrape (issue 14): the runner counts them.
        if let Ok(c) = self.uploads.queue().live_counts().await {
            metrics::gauge!("moocard_queue_depth").set((c.pending + c.queued + c.running) as f64);
            let states = [
                ("pending", c.pending),
                ("queued", c.queued),
                ("running", c.running),
                ("failed", c.failed),
            ];
            for (state, n) in states {
                metrics::gauge!("moocard_queue_jobs", "state" => state).set(n as f64);
            }
        }
    }

    /// Drops cached public answers for an email after its avatar or profile changed. Call
    /// it after the database write; other nodes catch up within `avatars.cache_ttl_secs`.
    pub fn on_avatar_changed(&self, email: &Email) {
        self.avatar_cache.invalidate_email(&self.profiles, email);
    }
}

/// Builds the router with every route and layer.
pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config.limits.max_upload_bytes).unwrap_or(usize::MAX);
    let timeout = state.config.request_timeout();
    let mut app = Router::new()
        .merge(owner::routes(&state))
        .merge(routes::admin::routes())
        .route("/v1/limits", get(routes::limits::get_limits))
        .merge(ops_routes(state.config.server.ops_listen.is_none()))
        // Issue 6: the profile page (its CSP applies to these routes only) and the API document.
        .merge(page::routes(&state.config))
        .route("/v1/auth/config", get(routes::signin::get_sign_in_config))
        .route("/v1/openapi.json", get(openapi::get_openapi));
    if state.dev_signer.is_some() {
        app = app.route(
            "/v1/dev/sign-in",
            axum::routing::post(routes::signin::post_dev_sign_in),
        );
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // axum's own 413 is plain text; `limit_body` rewrites it as our JSON error.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |req, next| {
            limit_errors(req, next, body_limit as u64)
        }))
        .layer(middleware::from_fn(move |req, next| {
            with_timeout(req, next, timeout)
        }))
        .layer(middleware::from_fn(telemetry::track))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state.clone())
        // Public reads keep a lean layer stack of their own (routes/public.rs); merged
        // after `.layer` so that the layers above don't wrap them.
        .merge(routes::public::router(state))
}

/// The Dockerflow routes; `/metrics` and `/__heartbeat__` only with `private` (they move
/// to `server.ops_listen` when it is set).
fn ops_routes(private: bool) -> Router<AppState> {
    let r = Router::new()
        .route("/__lbheartbeat__", get(routes::ops::lbheartbeat))
        .route("/__version__", get(routes::ops::version));
    if !private {
        return r;
    }
    r.route("/__heartbeat__", get(routes::ops::heartbeat))
        .route("/metrics", get(routes::ops::metrics))
}

/// The router of `server.ops_listen`: every Dockerflow route and `/metrics`.
pub fn ops_router(state: AppState) -> Router {
    ops_routes(true)
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

async fn method_not_allowed(method: Method) -> Response {
    let mut res = ApiError::BadRequest(format!("method {method} is not allowed on this resource"))
        .into_response();
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res
}

/// Answers a declared `Content-Length` over the limit at once (rather than after reading
/// or waiting for the body), and turns axum's plain-text 413 (from `DefaultBodyLimit`)
/// into the JSON error with the limit.
async fn limit_errors(req: axum::extract::Request, next: middleware::Next, limit: u64) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError::PayloadTooLarge(limit).into_response();
    }
    let res = next.run(req).await;
    let is_plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE && is_plain {
        return ApiError::PayloadTooLarge(limit).into_response();
    }
    res
}

async fn with_timeout(
    req: axum::extract::Request,
    next: middleware::Next,
    limit: Duration,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::Unavailable(format!(
            "the request took longer than {} seconds",
            limit.as_secs()
        ))
        .into_response(),
    }
}

fn panic_response(_err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal("handler panicked".into()).into_response()
}
