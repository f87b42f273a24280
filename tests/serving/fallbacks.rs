//! API.md v1.1 §Public reads: every `d=`, nonsense queries, redirects, the filter of known
//! aliases (unknown hashes never reach the database) and answers while the store is gone.

use std::time::{Duration, Instant};

use super::*;

const KINDS: [&str; 13] = [
    "mm",
    "mp",
    "mysteryman",
    "identicon",
    "monsterid",
    "wavatar",
    "retro",
    "robohash",
    "blank",
    "initials&name=Ada+Lovelace",
    "initials",
    "color",
    "moocard",
];

#[tokio::test]
async fn every_gravatar_default_draws_at_every_size_and_is_deterministic() {
    let t = test_app(|_| {}).await;
    let other = "ffffffffffffffffffffffffffffffff";
    for d in KINDS {
        for (s, want) in [("32", 32), ("96", 128), ("512", 512)] {
            let uri = format!("/avatar/{UNKNOWN}?d={d}&s={s}&r=g");
            let a = t.get(&uri).await;
            assert_eq!(a.status, StatusCode::OK, "{uri}");
            assert_eq!(a.headers[header::CONTENT_TYPE], "image/png", "{uri}");
            assert_eq!(png_size(&a.body), want, "{uri}");
            assert_eq!(t.get(&uri).await.body, a.body, "{uri} is deterministic");
        }
    }
    // Per-hash graphics differ between these two hashes; fixed ones do not.
    for d in [
        "identicon",
        "monsterid",
        "wavatar",
        "retro",
        "robohash",
        "color",
    ] {
        let a = t.get(&format!("/avatar/{UNKNOWN}?d={d}")).await.body;
        let b = t.get(&format!("/avatar/{other}?d={d}")).await.body;
        assert_ne!(a, b, "{d}");
    }
    let mut initials = Vec::new();
    for q in ["name=Ada+Lovelace", "initials=al", "name=Bob"] {
        let uri = format!("/avatar/{UNKNOWN}?d=initials&{q}");
        initials.push(t.get(&uri).await.body);
    }
    assert_eq!(initials[0], initials[1]);
    assert_ne!(initials[0], initials[2]);
}

#[tokio::test]
async fn nonsense_queries_and_hashes_still_get_an_image() {
    let t = test_app(|_| {}).await;
    for q in [
        "%",
        "s=%ZZ&d=%",
        "&&&=&s&d",
        "s=1&s=abc",
        "d=unknown-thing",
        "d=http%3A%2F%2Fevil.example%2Fx.png",
        "d=javascript%3Aalert(1)",
        "r=x&rating=zz",
        "s=300x300&r=pg&d=https%3A%2F%2Fevil.example%2F",
        "d=%F0%9F%90%AE&name=%FF%FE",
        "initials=%E2%80%AE&d=initials",
    ] {
        for path in [
            UNKNOWN,
            "not-a-hash",
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ.png",
        ] {
            let uri = format!("/avatar/{path}?{q}");
            let a = t.get(&uri).await;
            assert_eq!(a.status, StatusCode::OK, "{uri}");
            assert_eq!(a.headers[header::CONTENT_TYPE], "image/png", "{uri}");
            assert_eq!(a.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        }
    }
    // The router (percent-escaped path segments) gives the same answers.
    let a = t
        .get(&format!("/avatar/%30{}?d=retro", &UNKNOWN[1..]))
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn default_urls_redirect_only_to_listed_hosts() {
    let t = test_app(|c| c.avatars.default_url_hosts = vec!["Img.Example.org".into()]).await;
    let to = "https%3A%2F%2Fimg.example.org%2Fdefault.png%3Fv%3D2";
    let a = t.get(&format!("/avatar/{UNKNOWN}?d={to}&s=96")).await;
    assert_eq!(a.status, StatusCode::FOUND);
    assert_eq!(
        a.headers[header::LOCATION],
        "https://img.example.org/default.png?v=2"
    );
    assert_eq!(a.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    for bad in [
        "https%3A%2F%2Fevil.example%2F",
        "https%3A%2F%2Fimg.example.org%40evil.example%2F",
        "ftp%3A%2F%2Fimg.example.org%2Fx",
    ] {
        let a = t.get(&format!("/avatar/{UNKNOWN}?d={bad}")).await;
        assert_eq!(a.status, StatusCode::OK, "{bad}");
        assert_eq!(a.headers[header::CONTENT_TYPE], "image/png");
    }
    // A hash with an avatar is served, whatever d= says.
    let ada = email("ada@example.com");
    t.make_live(&ada, "ada").await;
    let [md5, ..] = t.hashes(&ada);
    assert_eq!(
        t.get(&format!("/avatar/{md5}?d={to}")).await.body,
        b"ada-128"
    );
}

#[tokio::test]
async fn gravatar_fallback_redirects_unknown_email_hashes_only() {
    let t = test_app(|c| c.avatars.fallback = "gravatar".into()).await;
    let a = t.get(&format!("/avatar/{UNKNOWN}?s=96&d=mm&r=g")).await;
    assert_eq!(a.status, StatusCode::FOUND);
    assert_eq!(
        a.headers[header::LOCATION],
        format!("https://www.gravatar.com/avatar/{UNKNOWN}?s=96&d=mm&r=g").as_str()
    );
    // Not for opaque ids or malformed names (Gravatar knows neither), nor with f=y.
    let id = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(t.get(&format!("/avatar/{id}")).await.status, StatusCode::OK);
    assert_eq!(t.get("/avatar/nope").await.status, StatusCode::OK);
    let forced = t.get(&format!("/avatar/{UNKNOWN}?f=y")).await;
    assert_eq!(forced.status, StatusCode::OK);
    let ada = email("ada@example.com");
    t.make_live(&ada, "ada").await;
    let [md5, sha, _] = t.hashes(&ada);
    assert_eq!(t.get(&format!("/avatar/{md5}")).await.body, b"ada-128");
    assert_eq!(
        t.get(&format!("/avatar/{sha}?s=512")).await.body,
        b"ada-512"
    );
}

#[tokio::test]
async fn libravatar_clients_get_sha256_lookups() {
    // pyLibravatar and the Libravatar federation spec: lowercase SHA-256 of the trimmed,
    // lowercased address, `s=` and `d=` as Gravatar.
    let t = test_app(|_| {}).await;
    let ada = email("Ada@Example.com");
    t.make_live(&ada, "ada").await;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"ada@example.com"));
    let a = t.get(&format!("/avatar/{sha}?s=80&d=404")).await;
    assert_eq!(
        (a.status, a.body.as_slice()),
        (StatusCode::OK, &b"ada-128"[..])
    );
    let unknown = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        b"nobody@example.com",
    ));
    let a = t.get(&format!("/avatar/{unknown}?s=80&d=404")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = t.get(&format!("/avatar/{unknown}?s=80&d=retro")).await;
    assert_eq!(png_size(&a.body), 128);
}

async fn filter_ready(t: &TestApp) {
    let started = Instant::now();
    while !t.state.avatar_cache.filter.is_ready() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "filter never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unknown_hashes_never_reach_the_database_and_a_flood_keeps_avatars_cached() {
    let t = test_app(|c| c.avatars.cache_bytes = 1 << 20).await;
    let ada = email("ada@example.com");
    let bob = email("bob@example.com");
    t.make_live(&ada, "ada").await;
    t.make_live(&bob, "bob").await;
    let [md5, ..] = t.hashes(&ada);
    filter_ready(&t).await;
    assert_eq!(t.get(&format!("/avatar/{md5}")).await.body, b"ada-128");
    // A flood of new hashes, mixed with the real avatar.
    for i in 0..3000u32 {
        let h = format!("{:032x}", u128::from(i) * 0x9E37_79B9_7F4A_7C15 + 1);
        let d = ["identicon", "404", "retro", "monsterid"][i as usize % 4];
        let a = t.get(&format!("/avatar/{h}?d={d}")).await;
        assert!(a.status == StatusCode::OK || d == "404", "{h} {d}");
        if i % 500 == 0 {
            assert_eq!(t.get(&format!("/avatar/{md5}")).await.body, b"ada-128");
        }
    }
    // With the database gone, unknown hashes still answer as before (the filter, not
    // the store, knows them) and the real avatar is still a fresh cache entry.
    t.app.pool.close().await;
    let a = t.get(&format!("/avatar/{UNKNOWN}?d=404")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.headers[header::CACHE_CONTROL], "public, max-age=300");
    let a = t.get(&format!("/avatar/{md5}")).await;
    assert_eq!(a.body, b"ada-128");
    assert_eq!(a.headers[header::CACHE_CONTROL], "public, max-age=300");
    let (designs, bytes) = t.state.avatar_cache.graphics.usage();
    assert!(bytes <= 32 << 20, "{designs} renderings weigh {bytes}");
    // Bob has a profile (the filter says maybe) but nothing cached: a default at once,
    // with a short max-age; d=404 stays 404.
    let [bob_md5, ..] = t.hashes(&bob);
    let started = Instant::now();
    let a = t.get(&format!("/avatar/{bob_md5}?d=identicon")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(a.headers[header::CACHE_CONTROL], "public, max-age=10");
    let a = t.get(&format!("/avatar/{bob_md5}?d=404")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.headers[header::CACHE_CONTROL], "public, max-age=10");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stale_entries_are_served_while_the_store_is_gone() {
    let t = test_app(|c| c.avatars.cache_ttl_secs = 1).await;
    let ada = email("ada@example.com");
    t.make_live(&ada, "ada").await;
    let [md5, ..] = t.hashes(&ada);
    assert_eq!(t.get(&format!("/avatar/{md5}?s=64")).await.body, b"ada-64");
    t.app.pool.close().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..5 {
        let a = t.get(&format!("/avatar/{md5}?s=64")).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, b"ada-64", "stale-if-error");
        assert_eq!(a.headers[header::CACHE_CONTROL], "public, max-age=10");
    }
}

#[tokio::test]
async fn another_nodes_new_profile_shows_within_the_filter_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let node = |dir: &std::path::Path| {
        let mut c = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        c.avatars.filter_refresh_ms = 50;
        c
    };
    let a = test_app_in(node(dir.path())).await;
    let b = test_app_in(node(dir.path())).await;
    filter_ready(&a).await;
    let ada = email("ada@example.com");
    let [md5, ..] = b.hashes(&ada);
    assert_eq!(
        a.get(&format!("/avatar/{md5}?d=404")).await.status,
        StatusCode::NOT_FOUND
    );
    b.make_live(&ada, "ada").await;
    let started = Instant::now();
    loop {
        let r = a.get(&format!("/avatar/{md5}?d=404")).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.body, b"ada-128");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "node A never saw it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
