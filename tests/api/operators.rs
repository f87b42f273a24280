//! Operators (issue 16): takedowns, upload blocks, restore and list through
//! `/v1/admin/...`, seen by a second API node on the same database; per-owner upload
//! limits shared by both nodes; `/images/{id}` of replaced and deleted avatars.

use std::{collections::BTreeMap, time::Duration};

use axum::http::Method;
use md5::Digest as _;
use moocard::{
    config::operators::AdminToken,
    domain::{
        avatar::{AvatarRecord, AvatarState, LiveAvatar, VariantRef},
        email::Email,
        ids::{random_id, PublicId},
        record::RecordKey,
    },
    http::HttpService,
    store::{NewImage, Staged},
    App, Migrations,
};
use serde_json::json;

use crate::support::{fixture, send_to, test_config, TestApp, TestResponse};

pub(crate) const OPERATOR_TOKEN: &str = "operator-secret-for-tests-0123456789";

pub(crate) fn with_operator(c: &mut moocard::config::Config) {
    c.admin.tokens = vec![AdminToken {
        name: "alice".into(),
        sha256: hex::encode(sha2::Sha256::digest(OPERATOR_TOKEN.as_bytes())),
    }];
    c.avatars.cache_ttl_secs = 1;
}

/// A second API node on the same database (and keys) as `t`.
async fn second_node(
    t: &TestApp,
    tweak: impl FnOnce(&mut moocard::config::Config),
) -> (App, HttpService) {
    let mut config = test_config(&t.db);
    with_operator(&mut config);
    tweak(&mut config);
    let app = App::build(config, Migrations::Run)
        .await
        .expect("second node");
    let router = HttpService::new(app.state());
    (app, router)
}

pub(crate) async fn send(
    router: &HttpService,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> TestResponse {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => req
            .header("content-type", "application/json")
            .body(axum::body::Body::from(v.to_string())),
        None => req.body(axum::body::Body::empty()),
    };
    send_to(router, req.expect("request")).await
}

/// `PUT` of a small JPEG as `email`'s avatar through `router`.
async fn put_jpeg(t: &TestApp, router: &HttpService, email: &str) -> TestResponse {
    let req = axum::http::Request::put(format!("/v1/profiles/{email}/avatar"))
        .header("authorization", format!("Bearer {}", t.token(email)))
        .body(axum::body::Body::from(fixture("images/grey.jpg")))
        .expect("request");
    send_to(router, req).await
}

/// Uploads through the API, then does what a worker does on success (variants stored,
/// record and live images switched in one transaction), without linking the codecs.
async fn make_ready(t: &TestApp, email: &str) -> BTreeMap<u32, String> {
    let tok = t.token(email);
    let r = t
        .call(
            Method::PUT,
            &format!("/v1/profiles/{email}/avatar"),
            Some(&tok),
            Some(("image/jpeg", fixture("images/grey.jpg"))),
        )
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let profiles = &t.app.profiles;
    let owner = profiles.owner(&Email::parse(email).expect("email"));
    let (rec, _) = profiles
        .read::<AvatarRecord>(&owner, RecordKey::Avatar)
        .await
        .expect("read")
        .expect("record");
    let generation = rec.generation;
    let images: Vec<NewImage> = [32u32, 64, 128, 256, 512]
        .into_iter()
        .map(|size| NewImage {
            id: random_id(),
            owner,
            generation,
            size,
            content_type: "image/jpeg".into(),
            bytes: fixture("images/grey.jpg"),
        })
        .collect();
    profiles
        .store()
        .put_images(&images, 1)
        .await
        .expect("images");
    let variants: BTreeMap<u32, VariantRef> =
        images.iter().map(|i| (i.size, i.variant_ref())).collect();
    profiles
        .commit_avatar(&owner, &Staged::default(), |mut rec| {
            rec.state = AvatarState::Ready;
            rec.upload_id = None;
            rec.current = Some(LiveAvatar {
                generation,
                variants: variants.clone(),
                updated_at: "2026-01-01T00:00:00Z".into(),
                formats: Default::default(),
                made_by: None,
            });
            Some((rec, Some(generation)))
        })
        .await
        .expect("commit")
        .expect("committed");
    t.app.avatar_cache.invalidate_owner(&owner);
    images.into_iter().map(|i| (i.size, i.id)).collect()
}

pub(crate) fn md5_of(email: &str) -> String {
    hex::encode(md5::Md5::digest(email.as_bytes()))
}

fn content_type(r: &TestResponse) -> &str {
    r.header("content-type").unwrap_or_default()
}

#[tokio::test]
async fn takedown_hides_on_every_node_survives_recreation_and_restores() {
    let t = TestApp::with_config(with_operator).await;
    let email = "taken@example.com";
    let md5 = md5_of(email);
    let images = make_ready(&t, email).await;
    // Started after the profile exists, so its filter of known aliases (issue 13) has it
    // without waiting for the next refresh.
    let (_b, node_b) = second_node(&t, |_| {}).await;
    let public = PublicId::of(t.app.profiles.ids(), &Email::parse(email).expect("email")).0;
    let avatar = format!("/avatar/{md5}?s=64");
    let image = format!("/images/{}", images[&64]);
    assert_eq!(content_type(&t.get(&avatar, None).await), "image/jpeg");
    assert_eq!(
        content_type(&send(&node_b, Method::GET, &avatar, None, None).await),
        "image/jpeg"
    );
    assert_eq!(
        send(&node_b, Method::GET, &image, None, None).await.status,
        200
    );

    // Without an operator token (or with a user's token) the admin API refuses.
    let body = json!({"target": md5, "reason": "abuse report 42"});
    t.call(Method::GET, "/v1/admin/takedowns", None, None)
        .await
        .assert_error(401, "invalid_token");
    let user = t.token(email);
    send(
        &t.router,
        Method::POST,
        "/v1/admin/takedowns",
        Some(&user),
        Some(body.clone()),
    )
    .await
    .assert_error(401, "invalid_token");

    let r = send(
        &t.router,
        Method::POST,
        "/v1/admin/takedowns",
        Some(OPERATOR_TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // This node: the default and 404 at once, by every lookup.
    assert_eq!(content_type(&t.get(&avatar, None).await), "image/png");
    assert_eq!(
        content_type(&t.get(&format!("/avatar/{public}"), None).await),
        "image/png"
    );
    t.get(&image, None).await.assert_error(404, "not_found");
    // The other node within the cache TTL (1 s here).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        content_type(&send(&node_b, Method::GET, &avatar, None, None).await),
        "image/png"
    );
    send(&node_b, Method::GET, &image, None, None)
        .await
        .assert_error(404, "not_found");

    // Deleting the profile and starting again changes nothing.
    let tok = t.token(email);
    assert_eq!(
        t.call(
            Method::DELETE,
            &format!("/v1/profiles/{email}"),
            Some(&tok),
            None
        )
        .await
        .status,
        204
    );
    let again = make_ready(&t, email).await;
    assert_eq!(content_type(&t.get(&avatar, None).await), "image/png");
    t.get(&format!("/images/{}", again[&64]), None)
        .await
        .assert_error(404, "not_found");

    let list = send(
        &t.router,
        Method::GET,
        "/v1/admin/takedowns",
        Some(OPERATOR_TOKEN),
        None,
    )
    .await
    .json();
    let row = &list["takedowns"][0];
    assert_eq!(row["reason"], "abuse report 42");
    assert_eq!(row["actor"], "alice");
    assert_eq!(row["target_kind"], "md5");
    assert!(row["created_at"].as_str().expect("when").starts_with("20"));
    assert!(!list.to_string().contains(email) && !list.to_string().contains(&md5));

    // Restoring by email lifts it; the new avatar is served at once here.
    let r = send(
        &t.router,
        Method::DELETE,
        &format!("/v1/admin/takedowns/{email}"),
        Some(OPERATOR_TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(content_type(&t.get(&avatar, None).await), "image/jpeg");
    assert_eq!(
        t.get(&format!("/images/{}", again[&64]), None).await.status,
        200
    );
    send(
        &t.router,
        Method::DELETE,
        &format!("/v1/admin/takedowns/{email}"),
        Some(OPERATOR_TOKEN),
        None,
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn blocked_uploads_are_403_until_a_stated_time_on_every_node() {
    let t = TestApp::with_config(with_operator).await;
    let (_b, node_b) = second_node(&t, |_| {}).await;
    let email = "blocked@example.com";
    let body = json!({"target": email, "reason": "spam", "block_uploads": "2h"});
    let r = send(
        &t.router,
        Method::POST,
        "/v1/admin/takedowns",
        Some(OPERATOR_TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(r.status, 201);
    let until = r.json()["uploads_blocked_until"]
        .as_str()
        .expect("until")
        .to_owned();
    for router in [&t.router, &node_b] {
        let message = put_jpeg(&t, router, email)
            .await
            .assert_error(403, "uploads_blocked");
        assert!(message.contains(&until), "{message}");
    }
    let bad = json!({"target": email, "block_uploads": "2 years"});
    send(
        &t.router,
        Method::POST,
        "/v1/admin/takedowns",
        Some(OPERATOR_TOKEN),
        Some(bad),
    )
    .await
    .assert_error(400, "bad_request");
}

#[tokio::test]
async fn two_nodes_share_the_upload_rate() {
    let t = TestApp::with_config(|c| {
        c.queue.uploads_per_window = 2;
        c.queue.window_secs = 3600;
    })
    .await;
    let (_b, node_b) = second_node(&t, |c| {
        c.queue.uploads_per_window = 2;
        c.queue.window_secs = 3600;
    })
    .await;
    let email = "busy@example.com";
    assert_eq!(put_jpeg(&t, &t.router, email).await.status, 202);
    assert_eq!(put_jpeg(&t, &node_b, email).await.status, 202);
    let r = put_jpeg(&t, &t.router, email).await;
    let message = r.assert_error(429, "rate_limited");
    assert!(message.contains("at most 2 per 3600 seconds"), "{message}");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((3500..=3600).contains(&retry), "{retry}");
    // The other node counts the same uploads.
    put_jpeg(&t, &node_b, email)
        .await
        .assert_error(429, "rate_limited");
}

#[tokio::test]
async fn replaced_and_deleted_images_are_404_at_once() {
    let t = TestApp::new().await;
    let email = "replaced@example.com";
    let first = make_ready(&t, email).await;
    let old = format!("/images/{}", first[&128]);
    assert_eq!(t.get(&old, None).await.status, 200, "cached on this node");
    let second = make_ready(&t, email).await;
    t.get(&old, None).await.assert_error(404, "not_found");
    let new = format!("/images/{}", second[&128]);
    assert_eq!(t.get(&new, None).await.status, 200);
    let tok = t.token(email);
    let r = t
        .call(
            Method::DELETE,
            &format!("/v1/profiles/{email}/avatar"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    t.get(&new, None).await.assert_error(404, "not_found");
}
