//! The owner endpoints (`/v1/profiles/{email}...`) and the layers only they get
//! (API.md §Owner endpoints, v1.1): `Cache-Control: no-store` on every answer, and CORS
//! for the origins in `server.cors_origins` (preflight answered; `Authorization` and
//! `Content-Type` allowed; no cookies, so no credentials).

use std::time::Duration;

use axum::{
    http::{header, HeaderValue, Method, StatusCode},
    middleware,
    routing::{get, MethodRouter},
    Router,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    set_header::SetResponseHeaderLayer,
};

use super::{routes, AppState};
use crate::config::Config;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The owner routes with their layers.
pub fn routes(state: &AppState) -> Router<AppState> {
    let cors = cors(&state.config);
    // The CORS layer answers preflights itself, but only for a method the route has: the
    // router's JSON 405 fallback replaces a layered fallback, so OPTIONS gets a route.
    let with_options = |r: MethodRouter<AppState>| match cors {
        Some(_) => r.options(|| async { StatusCode::NO_CONTENT }),
        None => r,
    };
    let router = Router::new()
        .route(
            "/v1/profiles/{email}",
            with_options(
                get(routes::profiles::get_profile)
                    .patch(routes::profiles::patch_profile)
                    .delete(routes::profiles::delete_profile),
            ),
        )
        .route(
            "/v1/profiles/{email}/avatar",
            with_options(
                get(routes::uploads::get_avatar_status)
                    .put(routes::uploads::put_avatar)
                    .delete(routes::uploads::delete_avatar),
            ),
        )
        // Issue 16: the per-address limit; inside CORS so that a browser can read its 429.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            super::owner_limit::limit_owner_requests,
        ))
        // Profiles are personal: no shared or browser cache may keep them.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    match cors {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// The CORS layer, or `None` when no origin is configured (then browsers on other
/// origins are refused by their own same-origin rule).
fn cors(config: &Config) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = config
        .server
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::PATCH, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
