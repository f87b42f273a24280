//! Public reads (API.md §Public reads) through the real router over a temp SQLite file:
//! lookups by every kind of hash, size snapping, defaults, conditional GETs, headers,
//! `/images/{id}` and cache invalidation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

use std::collections::BTreeMap;

use axum::{
    body::Body,
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use http_body_util::BodyExt as _;
use moocard::{
    config::Config,
    domain::{
        avatar::{AvatarRecord, AvatarState, LiveAvatar, VariantRef},
        email::Email,
        ids::{random_id, AvatarHash, PublicId},
        record::RecordKey,
    },
    http::{router, AppState},
    profiles::{now_ms, now_rfc3339},
    store::NewImage,
    App, Migrations,
};
use tower::ServiceExt as _;

struct TestApp {
    _dir: tempfile::TempDir,
    app: App,
    state: AppState,
    router: Router,
}

async fn test_app(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    tweak(&mut config);
    let app = App::build(config.validate().unwrap(), Migrations::Run)
        .await
        .unwrap();
    let state = app.state();
    TestApp {
        _dir: dir,
        router: router(state.clone()),
        state,
        app,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl TestApp {
    async fn call(&self, method: Method, uri: &str, inm: Option<&str>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(tag) = inm {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None).await
    }

    /// Stores one JPEG-labelled variant per size (bytes `"<tag>-<size>"`) and makes them
    /// the live set, as a worker's commit would. Returns size -> content id.
    async fn make_live(&self, email: &Email, tag: &str) -> BTreeMap<u32, String> {
        let profiles = &self.app.profiles;
        let owner = profiles.owner(email);
        let (rec, _) = profiles
            .read::<AvatarRecord>(&owner, RecordKey::Avatar)
            .await
            .unwrap()
            .unwrap_or_default();
        let generation = rec.generation + 1;
        let images: Vec<NewImage> = [32, 64, 128, 256, 512]
            .into_iter()
            .map(|size| NewImage {
                id: random_id(),
                owner,
                generation,
                size,
                content_type: "image/jpeg".into(),
                bytes: format!("{tag}-{size}").into_bytes(),
            })
            .collect();
        profiles
            .store()
            .put_images(&images, now_ms())
            .await
            .unwrap();
        let variants: BTreeMap<u32, VariantRef> = images
            .iter()
            .map(|i| {
                let v = VariantRef {
                    id: i.id.clone(),
                    content_type: i.content_type.clone(),
                };
                (i.size, v)
            })
            .collect();
        self.set_current(
            email,
            Some(LiveAvatar {
                generation,
                variants: variants.clone(),
                updated_at: now_rfc3339(),
            }),
            AvatarState::Ready,
        )
        .await;
        variants.into_iter().map(|(s, v)| (s, v.id)).collect()
    }

    async fn set_current(&self, email: &Email, current: Option<LiveAvatar>, state: AvatarState) {
        let owner = self.app.profiles.owner(email);
        self.app
            .profiles
            .update::<AvatarRecord, _>(Some(email), &owner, RecordKey::Avatar, |mut rec| {
                rec.generation += 1;
                rec.state = state;
                rec.current = current.clone();
                Ok(Some(rec))
            })
            .await
            .unwrap();
    }

    fn hashes(&self, email: &Email) -> [String; 3] {
        let [md5, sha, _] = AvatarHash::all_for(self.app.profiles.ids(), email);
        [
            hex::encode(md5.bytes()),
            hex::encode(sha.bytes()),
            PublicId::of(self.app.profiles.ids(), email).0,
        ]
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn png_size(body: &[u8]) -> u32 {
    let reader = png::Decoder::new(body).read_info().unwrap();
    assert_eq!(reader.info().width, reader.info().height);
    reader.info().width
}

fn json_code(a: &Answer) -> String {
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert!(v["message"].is_string());
    v["code"].as_str().unwrap().to_owned()
}

const UNKNOWN: &str = "00000000000000000000000000000000";

#[tokio::test]
async fn lookups_by_md5_sha256_and_public_id_with_suffixes() {
    let t = test_app(|_| {}).await;
    let ada = email("Ada@Example.com");
    t.make_live(&ada, "ada").await;
    for h in t.hashes(&ada) {
        for uri in [
            format!("/avatar/{h}"),
            format!("/avatar/{h}.jpg"),
            format!("/avatar/{h}.png"),
            format!("/avatar/{}", h.to_uppercase()),
        ] {
            let a = t.get(&uri).await;
            assert_eq!(a.status, StatusCode::OK, "{uri}");
            assert_eq!(a.body, b"ada-128", "{uri}: default s=80 snaps to 128");
            assert_eq!(a.headers[header::CONTENT_TYPE], "image/jpeg");
        }
    }
}

#[tokio::test]
async fn sizes_snap_to_the_configured_set_and_bad_values_are_400() {
    let t = test_app(|_| {}).await;
    let ada = email("ada@example.com");
    t.make_live(&ada, "ada").await;
    let [md5, ..] = t.hashes(&ada);
    let table = [
        ("s=1", 32),
        ("s=32", 32),
        ("s=33", 64),
        ("size=64", 64),
        ("s=80", 128),
        ("s=129", 256),
        ("s=256", 256),
        ("s=500", 512),
        ("s=512", 512),
        ("s=513", 512),
        ("s=2048", 512),
    ];
    for (q, want) in table {
        let a = t.get(&format!("/avatar/{md5}?{q}")).await;
        assert_eq!(a.body, format!("ada-{want}").as_bytes(), "{q}");
        let d = t.get(&format!("/avatar/{UNKNOWN}?{q}")).await;
        assert_eq!(png_size(&d.body), want, "default at {q}");
    }
    for q in [
        "s=0",
        "s=2049",
        "s=abc",
        "s=",
        "size=1.5",
        "d=retro",
        "d=http%3A%2F%2Fx",
    ] {
        let a = t.get(&format!("/avatar/{md5}?{q}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(json_code(&a), "bad_request");
        assert_eq!(a.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
    let a = t.get(&format!("/avatar/{md5}?d=wavatar")).await;
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("identicon"));
}

#[tokio::test]
async fn every_default_and_forcedefault() {
    let t = test_app(|_| {}).await;
    let mut bodies = Vec::new();
    for d in [
        "",
        "&d=moocard",
        "&d=mp",
        "&d=identicon",
        "&d=blank",
        "&default=mp",
    ] {
        let a = t.get(&format!("/avatar/{UNKNOWN}?s=64{d}")).await;
        assert_eq!(a.status, StatusCode::OK, "{d}");
        assert_eq!(a.headers[header::CONTENT_TYPE], "image/png");
        assert_eq!(png_size(&a.body), 64);
        bodies.push(a.body);
    }
    assert_eq!(bodies[0], bodies[1], "moocard is the default");
    assert_eq!(bodies[2], bodies[5], "default= is d=");
    assert_ne!(bodies[1], bodies[2]);
    let a = t.get(&format!("/avatar/{UNKNOWN}?d=404")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(json_code(&a), "not_found");
    assert_eq!(a.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    // Malformed hashes name nobody: they get the default too.
    assert_eq!(t.get("/avatar/not-a-hash").await.status, StatusCode::OK);
    assert_eq!(
        t.get("/avatar/not-a-hash?d=404").await.status,
        StatusCode::NOT_FOUND
    );

    let ada = email("ada@example.com");
    t.make_live(&ada, "ada").await;
    let [md5, ..] = t.hashes(&ada);
    assert_eq!(
        t.get(&format!("/avatar/{md5}?d=404")).await.body,
        b"ada-128"
    );
    for q in ["f=y", "forcedefault=y", "f=Y"] {
        let a = t.get(&format!("/avatar/{md5}?s=64&{q}")).await;
        assert_eq!(a.body, bodies[0], "{q}");
    }
    let a = t.get(&format!("/avatar/{md5}?f=y&d=404")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get(&format!("/avatar/{md5}?f=n")).await.body, b"ada-128");
}

#[tokio::test]
async fn identicons_are_deterministic_per_hash() {
    let t = test_app(|_| {}).await;
    let one = "11111111111111111111111111111111";
    let two = "22222222222222222222222222222222";
    let a = t.get(&format!("/avatar/{one}?d=identicon")).await.body;
    let b = t.get(&format!("/avatar/{one}?d=identicon")).await.body;
    let c = t.get(&format!("/avatar/{two}?d=identicon")).await.body;
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Same picture from a fresh process: nothing depends on the instance's keys.
    let t2 = test_app(|_| {}).await;
    assert_eq!(t2.get(&format!("/avatar/{one}?d=identicon")).await.body, a);
}

#[tokio::test]
async fn headers_etags_and_conditional_gets() {
    let t = test_app(|_| {}).await;
    let ada = email("ada@example.com");
    t.make_live(&ada, "ada").await;
    let [md5, ..] = t.hashes(&ada);
    for uri in [format!("/avatar/{md5}"), format!("/avatar/{UNKNOWN}")] {
        let a = t.get(&uri).await;
        assert_eq!(a.headers[header::CACHE_CONTROL], "public, max-age=300");
        assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            a.headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'"
        );
        assert_eq!(a.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let etag = a.headers[header::ETAG].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2);
        let weak = format!("W/{etag}");
        let listed = format!("\"other\", {etag}");
        for inm in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
            let c = t.call(Method::GET, &uri, Some(inm)).await;
            assert_eq!(c.status, StatusCode::NOT_MODIFIED, "{inm}");
            assert!(c.body.is_empty());
            assert_eq!(c.headers[header::ETAG], etag.as_str());
            assert_eq!(c.headers[header::CACHE_CONTROL], "public, max-age=300");
        }
        let c = t.call(Method::GET, &uri, Some("\"nope\"")).await;
        assert_eq!(c.status, StatusCode::OK);
        let h = t.call(Method::HEAD, &uri, None).await;
        assert_eq!(h.status, StatusCode::OK);
        assert!(h.body.is_empty());
        assert_eq!(h.headers[header::ETAG], etag.as_str());
    }
    // Each size is its own representation.
    let small = t.get(&format!("/avatar/{md5}?s=32")).await;
    let big = t.get(&format!("/avatar/{md5}?s=512")).await;
    assert_ne!(small.headers[header::ETAG], big.headers[header::ETAG]);
}

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
