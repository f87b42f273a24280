//! The profile page and the OpenAPI document through the real router: the page and its
//! assets carry the strict CSP, API answers don't, and `/v1/openapi.json` describes the API.

use axum::{body::Body, http::Request};
use http_body_util::BodyExt as _;
use moocard::{config::Config, http::HttpService, App, Migrations};
use tower::ServiceExt as _;

async fn router(dir: &tempfile::TempDir) -> HttpService {
    let config = Config::from_table(
        toml::Table::new(),
        vec![(
            "MOOCARD_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        )]
        .into_iter(),
    )
    .expect("config");
    let app = App::build(config, Migrations::Run).await.expect("app");
    HttpService::new(app.state())
}

async fn get(router: &HttpService, path: &str) -> (axum::http::response::Parts, String) {
    let res = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (parts, String::from_utf8(bytes.to_vec()).expect("utf-8"))
}

#[tokio::test]
async fn page_assets_and_openapi() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = router(&dir).await;
    for (path, ty, needle) in [
        ("/", "text/html", "<script src=\"/app.js\""),
        ("/app.js", "text/javascript", "XMLHttpRequest"),
        ("/crop.js", "text/javascript", "moocardCrop"),
        ("/check.js", "text/javascript", "max_upload_bytes"),
        ("/app.css", "text/css", ":focus-visible"),
    ] {
        let (parts, body) = get(&router, path).await;
        assert_eq!(parts.status, 200, "{path}");
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(ty), "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.starts_with("default-src 'self'; img-src 'self' blob: data:"),
            "{path}: {csp}"
        );
        assert!(body.contains(needle), "{path}");
        // No inline code: the CSP forbids it, so the page must not need it.
        assert!(
            !body.contains("style=\"") && !body.contains("onclick"),
            "{path}"
        );
    }

    let (parts, body) = get(&router, "/v1/openapi.json").await;
    assert_eq!(parts.status, 200);
    assert!(parts.headers.get("content-security-policy").is_none());
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    for path in ["/v1/profiles/{email}", "/v1/limits", "/v1/openapi.json"] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let (parts, _) = get(&router, "/v1/limits").await;
    assert!(parts.headers.get("content-security-policy").is_none());
}
