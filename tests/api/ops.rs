//! Dockerflow endpoints, limits and generic JSON errors.

use axum::http::Method;

use crate::support::TestApp;

#[tokio::test]
async fn dockerflow_and_limits() {
    let t = TestApp::new().await;
    assert_eq!(t.get("/__lbheartbeat__", None).await.status, 200);
    let r = t.get("/__heartbeat__", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["checks"]["database"], "ok");
    let v = t.get("/__version__", None).await.json();
    assert!(v["version"].is_string() && v["commit"].is_string() && v["source"].is_string());
    let limits = t.get("/v1/limits", None).await.json();
    assert_eq!(limits["max_upload_bytes"], 10 * 1024 * 1024);
    assert_eq!(limits["max_dimension"], 16384);
    assert_eq!(limits["max_megapixels"], 50.0);
    assert_eq!(limits["sizes"], serde_json::json!([512, 256, 128, 64, 32]));
    let metrics = t.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body).expect("utf8");
    assert!(text.contains("moocard_http_requests_total"), "{text}");
    assert!(!text.contains("a@b.c"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let t = TestApp::new().await;
    t.get("/nope", None).await.assert_error(404, "not_found");
    t.call(Method::POST, "/v1/limits", None, None)
        .await
        .assert_error(405, "bad_request");
    let r = t.get("/v1/profiles/a@b.c", None).await;
    r.assert_error(401, "invalid_token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn heartbeat_reports_a_dead_database() {
    let t = TestApp::new().await;
    t.app.pool.close().await;
    let r = t.get("/__heartbeat__", None).await;
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["code"], "unavailable");
    assert!(v["checks"]["database"]
        .as_str()
        .expect("check")
        .starts_with("error"));
    // And owner endpoints answer 503 JSON, not a crash.
    let tok = t.token("a@b.c");
    t.get("/v1/profiles/a@b.c", Some(&tok))
        .await
        .assert_error(503, "unavailable");
}
