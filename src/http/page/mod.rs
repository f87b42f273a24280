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
use crate::config::Config;

/// The policy sent with the page and its assets (not with API answers, which set their own).
pub const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy with the issuer's origin added to `connect-src`: the page reads its
/// discovery document and redeems the code at its token endpoint (which must share the
/// issuer's origin, as with Keycloak, Auth0 or oidc-provider).
pub fn csp(config: &Config) -> String {
    let issuer = &config.auth.issuer;
    let origin = issuer
        .find("://")
        .map(|i| {
            let rest = &issuer[i + 3..];
            let host = rest.split('/').next().unwrap_or_default();
            format!("{}{host}", &issuer[..i + 3])
        })
        .filter(|o| o.is_ascii() && !o.contains([';', ' ', '\'', ',']));
    match origin {
        Some(o) => format!("{CSP}; connect-src 'self' {o}"),
        None => CSP.to_owned(),
    }
}

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const CROP_JS: &str = include_str!("crop.js");
const CHECK_JS: &str = include_str!("check.js");
const SIGNIN_JS: &str = include_str!("signin.js");
const APP_CSS: &str = include_str!("app.css");

/// `/`, `/app.js`, `/check.js`, `/crop.js`, `/signin.js` and `/app.css`, with the page's
/// security headers.
pub fn routes(config: &Config) -> Router<AppState> {
    let csp = HeaderValue::from_str(&csp(config)).unwrap_or(HeaderValue::from_static(CSP));
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/crop.js", get(crop_js))
        .route("/check.js", get(check_js))
        .route("/signin.js", get(signin_js))
        .route("/app.css", get(app_css))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
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

async fn signin_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SIGNIN_JS,
    )
}

async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}
