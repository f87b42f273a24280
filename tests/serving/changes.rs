//! `hash_lookup`, `/images/{id}`, cache invalidation, method and error handling.

use super::*;

#[tokio::test]
async fn hash_lookup_off_serves_only_public_ids() {
    let t = test_app(|c| c.avatars.hash_lookup = false).await;
    let ada = email("ada@example.com");
    t.make_live(&ada, "ada").await;
    let [md5, sha, public] = t.hashes(&ada);
    let default = t.get(&format!("/avatar/{UNKNOWN}")).await.body;
    assert_eq!(t.get(&format!("/avatar/{md5}")).await.body, default);
    assert_eq!(t.get(&format!("/avatar/{sha}")).await.body, default);
    assert_eq!(
        t.get(&format!("/avatar/{md5}?d=404")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.get(&format!("/avatar/{public}")).await.body, b"ada-128");
}

#[tokio::test]
async fn images_by_content_id() {
    let t = test_app(|_| {}).await;
    let ada = email("ada@example.com");
    let ids = t.make_live(&ada, "ada").await;
    let a = t.get(&format!("/images/{}", ids[&256])).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, b"ada-256");
    assert_eq!(a.headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(
        a.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(a.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let etag = a.headers[header::ETAG].to_str().unwrap().to_owned();
    let c = t
        .call(Method::GET, &format!("/images/{}", ids[&256]), Some(&etag))
        .await;
    assert_eq!(c.status, StatusCode::NOT_MODIFIED);
    for bad in [
        "/images/ffffffffffffffffffffffffffffffff",
        "/images/..%2Fx",
        "/images/a.b",
    ] {
        let a = t.get(bad).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(json_code(&a), "not_found");
    }
}

#[tokio::test]
async fn changes_are_seen_after_invalidation_and_in_flight_uploads_keep_the_old_avatar() {
    let t = test_app(|_| {}).await;
    let ada = email("ada@example.com");
    let [md5, sha, public] = t.hashes(&ada);
    let default = t.get(&format!("/avatar/{md5}")).await.body;
    // "No avatar" is cached too, and dropped by the hook.
    t.make_live(&ada, "one").await;
    assert_eq!(t.get(&format!("/avatar/{md5}")).await.body, default);
    t.state.on_avatar_changed(&ada);
    for h in [&md5, &sha, &public] {
        assert_eq!(t.get(&format!("/avatar/{h}")).await.body, b"one-128");
    }
    // A new upload that is queued (or failed) keeps serving the live set.
    t.app
        .profiles
        .update::<AvatarRecord, _>(
            Some(&ada),
            &t.app.profiles.owner(&ada),
            RecordKey::Avatar,
            |mut r| {
                r.state = AvatarState::Queued;
                r.generation += 1;
                Ok(Some(r))
            },
        )
        .await
        .unwrap();
    t.state.on_avatar_changed(&ada);
    assert_eq!(t.get(&format!("/avatar/{sha}")).await.body, b"one-128");
    // A new live set: served from cache until invalidated, then everywhere at once.
    t.make_live(&ada, "two").await;
    assert_eq!(t.get(&format!("/avatar/{sha}")).await.body, b"one-128");
    t.state.on_avatar_changed(&ada);
    for h in [&md5, &sha, &public] {
        assert_eq!(t.get(&format!("/avatar/{h}")).await.body, b"two-128");
    }
    // Deleting the avatar falls back to the default.
    t.set_current(&ada, None, AvatarState::None).await;
    t.state.on_avatar_changed(&ada);
    assert_eq!(t.get(&format!("/avatar/{public}")).await.body, default);
    // A second profile is independent of the first.
    let bob = email("bob@example.com");
    t.make_live(&bob, "bob").await;
    t.state.on_avatar_changed(&bob);
    let [bob_md5, ..] = t.hashes(&bob);
    assert_eq!(t.get(&format!("/avatar/{bob_md5}")).await.body, b"bob-128");
}

#[tokio::test]
async fn sizes_added_after_processing_fall_back_to_the_largest_variant() {
    let t = test_app(|c| c.limits.sizes = vec![32, 64, 128, 256, 512, 1024]).await;
    let ada = email("ada@example.com");
    t.make_live(&ada, "ada").await;
    let [md5, ..] = t.hashes(&ada);
    assert_eq!(
        t.get(&format!("/avatar/{md5}?s=600")).await.body,
        b"ada-512"
    );
    assert_eq!(
        png_size(&t.get(&format!("/avatar/{UNKNOWN}?s=600")).await.body),
        1024
    );
}

#[tokio::test]
async fn other_methods_and_errors_are_json_with_public_headers() {
    let t = test_app(|_| {}).await;
    for uri in [format!("/avatar/{UNKNOWN}"), "/images/abc".to_owned()] {
        let a = t.call(Method::POST, &uri, None).await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
        assert_eq!(json_code(&a), "bad_request");
    }
    let a = t.get("/images/abc").await;
    assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
}
