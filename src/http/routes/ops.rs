//! Dockerflow endpoints and Prometheus metrics.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::{auth::oidc::KeysHealth, http::AppState};

/// `GET /__lbheartbeat__`: 200 while the process runs.
#[utoipa::path(get, path = "/__lbheartbeat__", tag = "ops",
    responses((status = 200, description = "The process runs")))]
pub async fn lbheartbeat() -> StatusCode {
    StatusCode::OK
}

/// `GET /__heartbeat__`: 200 when the database and queue answer, else 503 naming the failure.
#[utoipa::path(get, path = "/__heartbeat__", tag = "ops",
    responses((status = 200, description = "`{status, checks: {database, queue}}`, all \"ok\""),
        (status = 503, description = "A check failed: `checks` names it, with `code` and `message`")))]
pub async fn heartbeat(State(state): State<AppState>) -> Response {
    let database = match state.profiles.store().ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat: database check failed");
            "error: database unreachable".to_owned()
        }
    };
    let queue = match state.queue_ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat: queue check failed");
            "error: queue unreachable".to_owned()
        }
    };
    // Keys from discovery: cached keys that still serve are "degraded", not a failure.
    let auth = state.verifier.remote_keys().map(|k| match k.health() {
        KeysHealth::Ok => "ok".to_owned(),
        KeysHealth::Degraded(why) => format!("degraded: using cached keys; last refresh: {why}"),
        KeysHealth::Failing(why) => format!("error: no signing keys from the issuer: {why}"),
    });
    let auth_failing = auth.as_deref().is_some_and(|a| a.starts_with("error"));
    let ok = database == "ok" && queue == "ok" && !auth_failing;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if ok { "ok" } else { "error" },
        "checks": { "database": database, "queue": queue },
    });
    if let Some(auth) = auth {
        if ok && auth != "ok" {
            body["status"] = json!("degraded");
        }
        body["checks"]["auth"] = json!(auth);
    }
    if ok {
        (status, Json(body)).into_response()
    } else {
        body["code"] = json!("unavailable");
        body["message"] = json!("a dependency is failing: see checks");
        (status, Json(body)).into_response()
    }
}

/// `GET /__version__`: `version.json` from the working directory (written by the deploy
/// build), else what this binary was built from.
#[utoipa::path(get, path = "/__version__", tag = "ops",
    responses((status = 200, description = "`{version, commit, source, build}`", content_type = "application/json")))]
pub async fn version() -> Response {
    if let Ok(text) = tokio::fs::read_to_string("version.json").await {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            return Json(v).into_response();
        }
    }
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("MOOCARD_COMMIT").unwrap_or("unknown"),
        "source": env!("CARGO_PKG_REPOSITORY"),
        "build": option_env!("MOOCARD_BUILD").unwrap_or("dev"),
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.refresh_gauges().await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::render(),
    )
        .into_response()
}
