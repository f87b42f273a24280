//! The profile page at `/`: one HTML file, one script and one stylesheet, embedded in the
//! binary with `include_str!` so a deployment has nothing extra to ship (issue 6).
//!
//! Every page response carries a strict Content-Security-Policy. The page has no inline
//! script or style, so `default-src 'self'` holds; `img-src` adds `blob:` for the local
//! preview of a picked file and `data:` for nothing but future-proof icons.

use axum::{
    http::{header, HeaderName, HeaderValue},
    response::IntoResponse,
    routing::get,
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;

/// The policy sent with the page and its assets (not with API answers, which set their own).
pub const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const CROP_JS: &str = include_str!("crop.js");
const CHECK_JS: &str = include_str!("check.js");
const APP_CSS: &str = include_str!("app.css");

/// `/`, `/app.js`, `/check.js`, `/crop.js` and `/app.css`, with the page's security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/crop.js", get(crop_js))
        .route("/check.js", get(check_js))
        .route("/app.css", get(app_css))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // The files change with every release but keep their names: revalidate each time.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn crop_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CROP_JS,
    )
}

async fn check_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CHECK_JS,
    )
}

async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}
