//! Derived images (issue 15) end to end on a real database (SQLite, or MySQL when
//! `MOOCARD_TEST_MYSQL_URL` is set), the real router and a real worker pool: the sealed
//! master, WebP variants and their serving, key rotation over masters, and
//! `moocard reprocess` (missing variants only, atomic switch, resume after a kill).

#[path = "../../../tests/support/mod.rs"]
mod support;
#[path = "../worker_pool/mod.rs"]
mod worker_pool;

mod reprocess;

use std::time::{Duration, Instant};

use axum::http::{Method, Request};
use moocard::{
    config::Config,
    domain::{derivation::ExtraFormat, email::Email, ids::OwnerKey},
    keys::generate_b64,
    masters::{master_aad, open_master},
    profiles::ProfileError,
    App, Migrations,
};
use serde_json::Value;
use support::{fixture, with_keks, TestApp};
use worker_pool::Pool;

fn with_webp(c: &mut Config) {
    c.avatars.formats = vec![ExtraFormat::Webp];
}

fn owner(app: &App, email: &str) -> OwnerKey {
    app.profiles.owner(&Email::parse(email).expect("email"))
}

async fn upload(t: &TestApp, email: &str, file: &str) {
    let r = t
        .call(
            Method::PUT,
            &format!("/v1/profiles/{email}/avatar"),
            Some(&t.token(email)),
            Some(("image/jpeg", fixture(&format!("images/{file}")))),
        )
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
}

async fn status(t: &TestApp, email: &str) -> Value {
    t.get(
        &format!("/v1/profiles/{email}/avatar"),
        Some(&t.token(email)),
    )
    .await
    .json()
}

async fn ready(t: &TestApp, email: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = status(t, email).await;
        if v["state"] == "ready" {
            return v;
        }
        assert!(v["state"] != "failed", "{v}");
        assert!(Instant::now() < deadline, "timed out: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn master_is_sealed_bound_to_owner_and_deleted_with_the_avatar() {
    let t = TestApp::with_config(with_webp).await;
    let pool = Pool::start(&t.app.config, 2).await;
    upload(&t, "ada@example.org", "photo-hubble.jpg").await;
    let v = ready(&t, "ada@example.org").await;
    let webp = v["formats"]["webp"].as_object().expect("webp urls");
    assert_eq!(webp.len(), 5, "{v}");
    assert_eq!(v["urls"].as_object().expect("urls").len(), 5);

    let ada = owner(&t.app, "ada@example.org");
    let master = open_master(&t.app.profiles, &ada, 1)
        .await
        .expect("opens")
        .expect("kept");
    let img = image::load_from_memory(&master).expect("a WebP");
    assert_eq!(img.width(), img.height());
    assert!((512..=1024).contains(&img.width()), "{}", img.width());
    assert!(!master.windows(4).any(|w| w == b"EXIF" || w == b"XMP "));

    // Sealed: the stored bytes are not the WebP, and a flipped bit or a row moved to
    // another owner fails the integrity check.
    let store = t.app.profiles.store();
    let sealed = store.get_master(&ada, 1).await.expect("get").expect("row");
    assert!(!sealed.ciphertext.windows(4).any(|w| w == b"WEBP"));
    assert!(t
        .app
        .profiles
        .ring()
        .open(&sealed, &master_aad(&ada, 1))
        .is_ok());
    let mut tampered = sealed.clone();
    tampered.ciphertext[20] ^= 1;
    store.put_master(&ada, 1, &tampered, 0).await.expect("put");
    assert!(matches!(
        open_master(&t.app.profiles, &ada, 1).await,
        Err(ProfileError::Crypto(_))
    ));
    let eve = owner(&t.app, "eve@example.org");
    store.put_master(&eve, 1, &sealed, 0).await.expect("put");
    assert!(matches!(
        open_master(&t.app.profiles, &eve, 1).await,
        Err(ProfileError::Crypto(_))
    ));
    store
        .put_master(&ada, 1, &sealed, 0)
        .await
        .expect("restore");

    // Deleting the avatar deletes its master; deleting the profile deletes everything.
    let tok = t.token("ada@example.org");
    let r = t
        .call(
            Method::DELETE,
            "/v1/profiles/ada@example.org/avatar",
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(store.get_master(&ada, 1).await.expect("get").is_none());
    upload(&t, "ada@example.org", "photo-hubble.jpg").await;
    ready(&t, "ada@example.org").await;
    assert!(store.get_master(&ada, 3).await.expect("get").is_some());
    let r = t
        .call(
            Method::DELETE,
            "/v1/profiles/ada@example.org",
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(store.get_master(&ada, 3).await.expect("get").is_none());
    pool.stop().await;
}

async fn fetch(t: &TestApp, uri: &str, accept: Option<&str>) -> support::TestResponse {
    let mut req = Request::builder().uri(uri);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    t.send(req.body(axum::body::Body::empty()).expect("request"))
        .await
}

#[tokio::test]
async fn suffix_and_accept_pick_the_format() {
    let t = TestApp::with_config(|c| {
        with_webp(c);
        c.avatars.negotiate_format = true;
    })
    .await;
    let pool = Pool::start(&t.app.config, 2).await;
    upload(&t, "ada@example.org", "photo-hubble.jpg").await;
    ready(&t, "ada@example.org").await;
    let md5 = "5bfcf2d8e394674550332640d72db509"; // md5("ada@example.org")

    let webp = fetch(&t, &format!("/avatar/{md5}.webp?s=100"), None).await;
    assert_eq!(webp.status, 200);
    assert_eq!(webp.header("content-type"), Some("image/webp"));
    let img = image::load_from_memory(&webp.body).expect("decodes");
    assert_eq!(img.width(), 128);
    let jpg = fetch(&t, &format!("/avatar/{md5}.jpg?s=100"), Some("image/webp")).await;
    assert_eq!(
        jpg.header("content-type"),
        Some("image/jpeg"),
        "the suffix wins"
    );
    assert_ne!(
        webp.header("etag"),
        jpg.header("etag"),
        "ETags differ per format"
    );
    let negotiated = fetch(&t, &format!("/avatar/{md5}?s=100"), Some("image/webp,*/*")).await;
    assert_eq!(negotiated.header("content-type"), Some("image/webp"));
    assert_eq!(negotiated.header("vary"), Some("Accept"));
    assert_eq!(negotiated.header("etag"), webp.header("etag"));
    let plain = fetch(&t, &format!("/avatar/{md5}?s=100"), Some("*/*")).await;
    assert_eq!(plain.header("content-type"), Some("image/jpeg"));
    assert_eq!(plain.header("vary"), Some("Accept"));
    // AVIF is not stored: the asked format falls back to JPEG/PNG, never an error.
    let avif = fetch(&t, &format!("/avatar/{md5}.avif"), None).await;
    assert_eq!(avif.status, 200);
    assert_eq!(avif.header("content-type"), Some("image/jpeg"));
    // 304 per format.
    let etag = webp.header("etag").expect("etag").to_owned();
    let req = Request::builder()
        .uri(format!("/avatar/{md5}.webp?s=100"))
        .header("if-none-match", etag)
        .body(axum::body::Body::empty())
        .expect("request");
    assert_eq!(t.send(req).await.status, 304);
    pool.stop().await;
}

#[tokio::test]
async fn avif_variants_are_stored_served_and_preferred() {
    let t = TestApp::with_config(|c| {
        c.avatars.formats = vec![ExtraFormat::Webp, ExtraFormat::Avif];
        c.avatars.negotiate_format = true;
    })
    .await;
    let pool = Pool::start(&t.app.config, 2).await;
    upload(&t, "ada@example.org", "photo-hubble.jpg").await;
    let v = ready(&t, "ada@example.org").await;
    let avif_urls = v["formats"]["avif"].as_object().expect("avif urls");
    assert_eq!(avif_urls.len(), 5, "{v}");
    assert_eq!(v["formats"]["webp"].as_object().map(|m| m.len()), Some(5));
    let md5 = "5bfcf2d8e394674550332640d72db509";

    let avif = fetch(&t, &format!("/avatar/{md5}.avif?s=100"), None).await;
    assert_eq!(avif.status, 200);
    assert_eq!(avif.header("content-type"), Some("image/avif"));
    assert_eq!(&avif.body[4..12], b"ftypavif");
    // Smaller or not depends on the picture (bench/formats.py measures it over a corpus):
    // at 128 px this noise-like photo is 5.0 KB in AVIF q85 and 3.9 KB in JPEG.
    let jpg = fetch(&t, &format!("/avatar/{md5}.jpg?s=100"), None).await;
    assert_eq!(jpg.header("content-type"), Some("image/jpeg"));
    assert_ne!(avif.header("etag"), jpg.header("etag"));
    // A browser that takes both prefers AVIF; one that takes WebP only gets WebP.
    let both = "image/avif,image/webp,image/apng,*/*;q=0.8";
    let r = fetch(&t, &format!("/avatar/{md5}?s=100"), Some(both)).await;
    assert_eq!(r.header("content-type"), Some("image/avif"));
    assert_eq!(r.header("etag"), avif.header("etag"));
    let r = fetch(&t, &format!("/avatar/{md5}?s=100"), Some("image/webp,*/*")).await;
    assert_eq!(r.header("content-type"), Some("image/webp"));
    // The status lists each size's AVIF as an /images URL.
    let url = avif_urls["32"].as_str().expect("32 px url");
    assert!(url.starts_with("/images/"), "{url}");
    let small = fetch(&t, url, None).await;
    assert_eq!(small.header("content-type"), Some("image/avif"));
    assert!(small.body.len() < avif.body.len());
    pool.stop().await;
}

#[tokio::test]
async fn without_negotiation_no_suffix_means_jpeg() {
    let t = TestApp::with_config(with_webp).await;
    let pool = Pool::start(&t.app.config, 2).await;
    upload(&t, "ada@example.org", "photo-hubble.jpg").await;
    ready(&t, "ada@example.org").await;
    let md5 = "5bfcf2d8e394674550332640d72db509";
    let r = fetch(&t, &format!("/avatar/{md5}"), Some("image/webp")).await;
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("vary"), None);
    let r = fetch(&t, &format!("/avatar/{md5}.webp"), None).await;
    assert_eq!(r.header("content-type"), Some("image/webp"));
    pool.stop().await;
}

#[tokio::test]
async fn rotate_keys_rewraps_masters() {
    let (index, k1, k2) = (generate_b64(), generate_b64(), generate_b64());
    let t = TestApp::with_config(|c| *c = with_keks(c.clone(), &[("k1", &k1)], "k1", &index)).await;
    let pool = Pool::start(&t.app.config, 2).await;
    upload(&t, "ada@example.org", "photo-hubble.jpg").await;
    ready(&t, "ada@example.org").await;
    pool.stop().await;
    let ada = owner(&t.app, "ada@example.org");
    let before = open_master(&t.app.profiles, &ada, 1).await.expect("opens");

    let base = (*t.app.config).clone();
    let both = App::build(
        with_keks(base.clone(), &[("k1", &k1), ("k2", &k2)], "k2", &index),
        Migrations::Run,
    )
    .await
    .expect("both keys");
    while both.profiles.rotate_batch(2).await.expect("rotate").0 > 0 {}
    let sealed = both
        .profiles
        .store()
        .get_master(&ada, 1)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(sealed.kek_id, "k2");
    let only_new = App::build(
        with_keks(base, &[("k2", &k2)], "k2", &index),
        Migrations::Run,
    )
    .await
    .expect("old key no longer needed");
    let after = open_master(&only_new.profiles, &ada, 1)
        .await
        .expect("opens");
    assert_eq!(before, after);
}
