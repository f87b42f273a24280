//! Lookups, sizes, defaults, identicons and conditional GETs.

use super::*;

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
async fn sizes_snap_to_the_configured_set_and_bad_values_are_clamped() {
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
    // API.md v1.1: nonsense is never an error; < 1 or non-numeric is 80 (-> 128),
    // above the largest is the largest, unknown d= is the configured default.
    for (q, want) in [
        ("s=0", 128),
        ("s=-1", 128),
        ("s=abc", 128),
        ("s=", 128),
        ("size=1.5", 32),
        ("s=2049", 512),
        ("s=300x300", 512),
        ("s=99999999999999999999999", 512),
    ] {
        let a = t.get(&format!("/avatar/{md5}?{q}")).await;
        assert_eq!(a.status, StatusCode::OK, "{q}");
        assert_eq!(a.body, format!("ada-{want}").as_bytes(), "{q}");
        let d = t.get(&format!("/avatar/{UNKNOWN}?d=retro&{q}")).await;
        assert_eq!(d.status, StatusCode::OK, "{q}");
        assert_eq!(png_size(&d.body), want, "default at {q}");
    }
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
        assert_eq!(
            h.headers[header::CONTENT_LENGTH],
            a.body.len().to_string().as_str()
        );
    }
    // Each size is its own representation.
    let small = t.get(&format!("/avatar/{md5}?s=32")).await;
    let big = t.get(&format!("/avatar/{md5}?s=512")).await;
    assert_ne!(small.headers[header::ETAG], big.headers[header::ETAG]);
}

/// `moocard::serve` answers plain public reads without the axum router (http/service.rs);
/// every answer must be the router's, and odd requests must still reach the router.
#[tokio::test]
async fn direct_dispatch_answers_exactly_as_the_router() {
    let t = test_app(|_| {}).await;
    let ada = email("ada@example.com");
    let ids = t.make_live(&ada, "ada").await;
    let [md5, sha, public] = t.hashes(&ada);
    let etag = t.get(&format!("/avatar/{md5}")).await.headers[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    let cases = [
        (Method::GET, format!("/avatar/{md5}"), None),
        (Method::GET, format!("/avatar/{md5}"), Some(etag.as_str())),
        (Method::HEAD, format!("/avatar/{sha}.png?s=32"), None),
        (Method::GET, format!("/avatar/{public}?s=999&d=404"), None),
        (Method::GET, format!("/avatar/{UNKNOWN}?d=identicon"), None),
        (Method::GET, format!("/avatar/{UNKNOWN}?d=404"), None),
        (Method::GET, format!("/avatar/{md5}?s=0"), None),
        (Method::GET, "/avatar/not-a-hash".to_owned(), None),
        (Method::GET, format!("/images/{}", ids[&64]), None),
        (Method::HEAD, format!("/images/{}", ids[&512]), None),
        (Method::GET, "/images/nope".to_owned(), None),
        (Method::GET, "/images/../etc".to_owned(), None),
        // Left to the router by the dispatcher:
        (Method::GET, format!("/avatar/{md5}%2Ejpg"), None),
        (Method::GET, "/avatar/".to_owned(), None),
        (Method::GET, format!("/avatar/{md5}/x"), None),
        (Method::POST, format!("/avatar/{md5}"), None),
        (Method::DELETE, format!("/images/{}", ids[&64]), None),
    ];
    for (method, uri, inm) in cases {
        let via_service = t.call(method.clone(), &uri, inm).await;
        let via_router = t.call_on(t.router.clone(), method.clone(), &uri, inm).await;
        let what = format!("{method} {uri} {inm:?}");
        assert_eq!(via_service.status, via_router.status, "{what}");
        assert_eq!(via_service.body, via_router.body, "{what}");
        // The router states GET lengths itself; hyper does it on the wire for the other.
        let headers = |a: &Answer| {
            let mut h: Vec<(String, String)> = a
                .headers
                .iter()
                .filter(|(n, _)| method == Method::HEAD || *n != header::CONTENT_LENGTH)
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            h.sort();
            h
        };
        assert_eq!(headers(&via_service), headers(&via_router), "{what}");
    }
    // The escaped suffix still names Ada's avatar.
    let escaped = t.get(&format!("/avatar/{md5}%2Ejpg")).await;
    assert_eq!(
        escaped.body,
        t.get(&format!("/avatar/{md5}.jpg")).await.body
    );
    // Requests answered directly are counted under their route template.
    let metrics = moocard::telemetry::render();
    assert!(
        metrics.contains(r#"route="/avatar/{hash}""#)
            && metrics.contains(r#"route="/images/{id}""#),
        "{metrics}"
    );
}
