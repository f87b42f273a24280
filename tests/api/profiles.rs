//! Owner profile endpoints (API.md §Owner endpoints).

use axum::http::Method;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn create_read_update_delete_profile() {
    let t = TestApp::new().await;
    let tok = t.token("Ada@Example.org");
    let uri = "/v1/profiles/ada@example.org";

    let r = t.get(uri, Some(&tok)).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["email"], "ada@example.org");
    assert_eq!(v["display_name"], json!(null));
    assert_eq!(v["avatar"]["state"], "none");
    assert_eq!(v["avatar"]["urls"], json!(null));
    let public_id = v["public_id"].as_str().expect("public_id").to_owned();
    assert_eq!(public_id.len(), 40);
    assert!(public_id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));

    let r = t
        .patch_json(uri, &tok, json!({"display_name": "  Ada Lovelace  "}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["display_name"], "Ada Lovelace");
    // Path case and whitespace normalize to the same profile.
    let r = t.get("/v1/profiles/ADA@example.ORG", Some(&tok)).await;
    assert_eq!(r.json()["display_name"], "Ada Lovelace");
    assert_eq!(r.json()["public_id"], public_id.as_str());

    let r = t.patch_json(uri, &tok, json!({"display_name": null})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["display_name"], json!(null));

    t.patch_json(uri, &tok, json!({"display_name": "Ada"}))
        .await;
    let r = t.call(Method::DELETE, uri, Some(&tok), None).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let r = t.get(uri, Some(&tok)).await;
    assert_eq!(r.json()["display_name"], json!(null));
}

#[tokio::test]
async fn patch_validation() {
    let t = TestApp::new().await;
    let tok = t.token("a@b.c");
    let uri = "/v1/profiles/a@b.c";
    let msg = t
        .patch_json(uri, &tok, json!({"nickname": "x"}))
        .await
        .assert_error(400, "unknown_key");
    assert!(
        msg.contains("display_name"),
        "names the allowed keys: {msg}"
    );
    t.patch_json(uri, &tok, json!({"avatar": "x"}))
        .await
        .assert_error(400, "unknown_key");
    t.patch_json(uri, &tok, json!({"display_name": "   "}))
        .await
        .assert_error(400, "invalid_value");
    t.patch_json(uri, &tok, json!({"display_name": "x".repeat(65)}))
        .await
        .assert_error(400, "invalid_value");
    t.patch_json(uri, &tok, json!({"display_name": "a\u{0}b"}))
        .await
        .assert_error(400, "invalid_value");
    t.patch_json(uri, &tok, json!({"display_name": 5}))
        .await
        .assert_error(400, "invalid_value");
    t.patch_json(uri, &tok, json!(["display_name"]))
        .await
        .assert_error(400, "bad_request");
    // A bad key next to a good one changes nothing.
    t.patch_json(uri, &tok, json!({"display_name": "Kept", "bogus": 1}))
        .await
        .assert_error(400, "unknown_key");
    assert_eq!(
        t.get(uri, Some(&tok)).await.json()["display_name"],
        json!(null)
    );
    // 64 scalar values (multi-byte) are fine.
    let r = t
        .patch_json(uri, &tok, json!({"display_name": "ü".repeat(64)}))
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .call(
            Method::PATCH,
            uri,
            Some(&tok),
            Some(("application/json", b"{\"display_name\":".to_vec())),
        )
        .await;
    r.assert_error(400, "bad_request");
    let r = t
        .call(
            Method::PATCH,
            uri,
            Some(&tok),
            Some(("text/plain", b"{}".to_vec())),
        )
        .await;
    r.assert_error(400, "bad_request");
}

#[tokio::test]
async fn body_limit_is_json_and_states_the_limit() {
    let t = TestApp::with_config(|c| c.limits.max_upload_bytes = 1000).await;
    let tok = t.token("a@b.c");
    let body = format!("{{\"display_name\": \"{}\"}}", "x".repeat(5000)).into_bytes();
    let r = t
        .call(
            Method::PATCH,
            "/v1/profiles/a@b.c",
            Some(&tok),
            Some(("application/json", body)),
        )
        .await;
    let msg = r.assert_error(413, "payload_too_large");
    assert!(msg.contains("1000"), "{msg}");
}

#[tokio::test]
async fn concurrent_patches_do_not_fail() {
    let t = TestApp::new().await;
    let tok = t.token("a@b.c");
    let mut tasks = Vec::new();
    // The last of N writers on one record loses up to N - 1 compare-and-set rounds.
    for i in 0..24 {
        let router = t.router.clone();
        let tok = tok.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt as _;
            let req = axum::http::Request::builder()
                .method("PATCH")
                .uri("/v1/profiles/a@b.c")
                .header("authorization", format!("Bearer {tok}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    json!({"display_name": format!("name {i}")}).to_string(),
                ))
                .expect("req");
            router
                .oneshot(req)
                .await
                .expect("infallible")
                .status()
                .as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join"), 200);
    }
    let name = t.get("/v1/profiles/a@b.c", Some(&tok)).await.json()["display_name"].clone();
    assert!(name.as_str().expect("set").starts_with("name "));
}
