//! Keys from OpenID discovery (API.md §Identity, v1.1) against a provider served over real
//! loopback HTTP: discovery and JWKS fetch, key rotation without restart, garbage and
//! oversized answers, and an outage in which cached keys keep working.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use crate::{
    auth::{claims, sign, AUD},
    support::{fixture, TestApp},
};

/// What the provider answers at its `jwks_uri`.
#[derive(Clone)]
enum Jwks {
    Keys(Vec<&'static str>),
    Garbage,
    Huge,
}

#[derive(Clone)]
struct Provider {
    issuer: String,
    jwks: Arc<Mutex<Jwks>>,
    fetches: Arc<Mutex<u32>>,
}

fn jwks_with(kids: &[&str]) -> Value {
    let all: Value = serde_json::from_slice(&fixture("keys/jwks.json")).expect("jwks");
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap_or_default()))
        .cloned()
        .collect();
    json!({ "keys": keys })
}

async fn discovery(State(p): State<Provider>) -> impl IntoResponse {
    axum::Json(json!({
        "issuer": p.issuer,
        "jwks_uri": format!("{}/jwks", p.issuer),
        "authorization_endpoint": format!("{}/auth", p.issuer),
    }))
}

async fn jwks(State(p): State<Provider>) -> impl IntoResponse {
    *p.fetches.lock().expect("lock") += 1;
    let current = p.jwks.lock().expect("lock").clone();
    let body = match current {
        Jwks::Keys(kids) => jwks_with(&kids).to_string(),
        Jwks::Garbage => "<html>502 Bad Gateway</html>".to_owned(),
        Jwks::Huge => format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(300_000)),
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

/// Starts the provider on a loopback port; the handle stops it.
async fn start_provider(kids: Vec<&'static str>) -> (Provider, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let issuer = format!("http://{}", listener.local_addr().expect("addr"));
    let p = Provider {
        issuer,
        jwks: Arc::new(Mutex::new(Jwks::Keys(kids))),
        fetches: Arc::new(Mutex::new(0)),
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .with_state(p.clone());
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (p, handle)
}

fn token(iss: &str, alg: Algorithm, key: &str, kid: &str) -> String {
    let mut c = claims("ada@example.org", json!(true), 600);
    c["iss"] = json!(iss);
    sign(alg, key, Some(kid), c)
}

async fn app_for(issuer: &str) -> TestApp {
    let issuer = issuer.to_owned();
    TestApp::with_config(move |c| {
        c.auth.issuer = issuer;
        c.auth.audience = AUD.into();
        c.auth.jwks_refetch_interval_ms = 200;
        c.auth.max_document_bytes = 64 * 1024;
        c.auth.fetch_timeout_ms = 2_000;
    })
    .await
}

#[tokio::test]
async fn discovery_rotation_garbage_and_outage() {
    let (p, server) = start_provider(vec!["rsa1"]).await;
    let t = app_for(&p.issuer).await;
    let uri = "/v1/profiles/ada@example.org";
    let rsa = token(&p.issuer, Algorithm::RS256, "keys/rsa-private.pem", "rsa1");
    let ec = token(&p.issuer, Algorithm::ES256, "keys/ec-private.pem", "ec1");
    let ed = token(
        &p.issuer,
        Algorithm::EdDSA,
        "keys/ed25519-private.pem",
        "ed1",
    );

    // 1. Discovery, then the key set: a provider token updates the profile.
    let r = t
        .patch_json(uri, &rsa, json!({"display_name": "Ada"}))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let hb = t.get("/__heartbeat__", None).await;
    assert_eq!(hb.status, 200);
    assert_eq!(hb.json()["checks"]["auth"], "ok", "{}", hb.json());
    // The signature is what counts: a token naming rsa1 but signed by another key fails.
    let spoofed = token(&p.issuer, Algorithm::RS256, "keys/rsa-private.pem", "rsa1")
        .rsplit_once('.')
        .map(|(head, _)| format!("{head}.AAAA"))
        .expect("jwt");
    t.get(uri, Some(&spoofed))
        .await
        .assert_error(401, "invalid_token");

    // 2. Rotation: the provider publishes ec1; a token with the new kid works at once.
    tokio::time::sleep(Duration::from_millis(250)).await;
    *p.jwks.lock().expect("lock") = Jwks::Keys(vec!["rsa1", "ec1"]);
    let started = Instant::now();
    let r = t.get(uri, Some(&ec)).await;
    let refresh = started.elapsed();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    eprintln!("key-refresh latency after rotation: {refresh:?}");
    assert!(refresh < Duration::from_secs(2), "{refresh:?}");

    // 3. Garbage and oversized answers: the last good set keeps working, "degraded".
    for bad in [Jwks::Garbage, Jwks::Huge] {
        tokio::time::sleep(Duration::from_millis(250)).await;
        *p.jwks.lock().expect("lock") = bad;
        t.get(uri, Some(&ed))
            .await
            .assert_error(401, "invalid_token");
        assert_eq!(t.get(uri, Some(&rsa)).await.status, 200);
        assert_eq!(t.get(uri, Some(&ec)).await.status, 200);
        let hb = t.get("/__heartbeat__", None).await;
        assert_eq!(hb.status, 200, "degraded is not a failure");
        assert_eq!(hb.json()["status"], "degraded");
        let why = hb.json()["checks"]["auth"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(why.starts_with("degraded"), "{why}");
    }

    // 4. Outage: cached keys keep working; an unknown kid is 401 at once, not a hang.
    server.abort();
    let _ = server.await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut refused = 0;
    for _ in 0..50 {
        for tok in [&rsa, &ec] {
            if t.get(uri, Some(tok)).await.status != 200 {
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 0, "requests refused during the outage");
    // An unknown kid, and forged ones, are refused quickly (signed beforehand: RSA
    // signing in a debug build is the slow part).
    let forged: Vec<String> = (0..20)
        .map(|i| {
            token(
                &p.issuer,
                Algorithm::RS256,
                "keys/rsa-private.pem",
                &format!("x{i}"),
            )
        })
        .chain([ed])
        .collect();
    all_refused_quickly(&t, uri, &forged).await;
}

/// Every token gets 401 `invalid_token`, all within 3 s: an unreachable provider never
/// makes a request hang.
pub async fn all_refused_quickly(t: &TestApp, uri: &str, tokens: &[String]) {
    let started = Instant::now();
    for tok in tokens {
        t.get(uri, Some(tok))
            .await
            .assert_error(401, "invalid_token");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unknown_kids_share_one_fetch_and_are_rate_limited() {
    let (p, _server) = start_provider(vec!["rsa1"]).await;
    let t = app_for(&p.issuer).await;
    let uri = "/v1/profiles/ada@example.org";
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = *p.fetches.lock().expect("lock");
    let forged: Vec<String> = (0..30)
        .map(|i| {
            token(
                &p.issuer,
                Algorithm::RS256,
                "keys/rsa-private.pem",
                &format!("k{i}"),
            )
        })
        .collect();
    let calls = forged.iter().map(|tok| t.get(uri, Some(tok)));
    for r in futures::future::join_all(calls).await {
        r.assert_error(401, "invalid_token");
    }
    let after = *p.fetches.lock().expect("lock");
    assert!(
        after - before <= 1,
        "{} fetches for 30 unknown kids",
        after - before
    );
}

#[tokio::test]
async fn a_provider_down_at_start_up_fails_the_heartbeat_not_the_start() {
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let t = app_for(&issuer).await;
    let hb = t.get("/__heartbeat__", None).await;
    assert_eq!(hb.status, 503);
    let why = hb.json()["checks"]["auth"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        why.starts_with("error") && why.contains("connection failed"),
        "{why}"
    );
    let tok = token(&issuer, Algorithm::RS256, "keys/rsa-private.pem", "rsa1");
    t.get("/v1/profiles/ada@example.org", Some(&tok))
        .await
        .assert_error(401, "invalid_token");
}
