//! Against a real OpenID provider: `oidc-provider` from the npm registry, run by
//! `tests/oidc/provider.mjs` on a loopback port (installed here with `npm ci` on first use).
//! Tokens come from its real authorization-code flow with PKCE. Without node the tests
//! are skipped with a message, except under `CI=true`, where they fail.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use axum::{body::Body, http::Request};
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

use crate::support::TestApp;

const CLIENT_ID: &str = "moocard-page";

/// The running provider; killed on drop.
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    child: tokio::process::Child,
    http: reqwest::Client,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Installs the npm packages once per test binary.
fn install() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let lock = dir().join("package-lock.json");
        let marker = dir().join("node_modules/.package-lock.json");
        let fresh = std::fs::metadata(&marker)
            .and_then(|m| m.modified())
            .ok()
            .zip(std::fs::metadata(&lock).and_then(|m| m.modified()).ok())
            .is_some_and(|(installed, wanted)| installed >= wanted);
        if fresh {
            return Ok(());
        }
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir())
            .output()
            .map_err(|e| format!("npm: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "npm ci failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    })
    .clone()
}

impl OidcProvider {
    /// Starts the provider, or `None` (with a message) when node is missing outside CI.
    pub async fn start() -> Option<Self> {
        let node = std::process::Command::new("node").arg("--version").output();
        if node.is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but node is missing: the OpenID provider tests need node and npm"
            );
            eprintln!("SKIPPED: node is not installed (the OpenID provider tests need it)");
            return None;
        }
        install().unwrap_or_else(|e| panic!("{e}"));
        let mut child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .current_dir(dir())
            .env("CLIENT_ID", CLIENT_ID)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node provider.mjs");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider starts within 30 s")
            .expect("read")
            .expect("a ready line");
        // Keep draining stdout so the provider never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let ready: serde_json::Value = serde_json::from_str(&first).expect("ready JSON");
        Some(Self {
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            child,
            http: reqwest::Client::new(),
        })
    }

    /// An ID token for `email` from the provider's code flow with PKCE.
    pub async fn token(&self, email: &str) -> String {
        let url = format!("{}/test/token?email={email}", self.issuer);
        let res = self.http.get(url).send().await.expect("token request");
        assert!(
            res.status().is_success(),
            "{}",
            res.text().await.unwrap_or_default()
        );
        let v: serde_json::Value =
            serde_json::from_slice(&res.bytes().await.expect("body")).expect("json");
        v["id_token"].as_str().expect("id_token").to_owned()
    }

    /// Makes the provider sign with a new key; returns its kid.
    pub async fn rotate(&self) -> String {
        let url = format!("{}/test/rotate", self.issuer);
        let res = self.http.post(url).send().await.expect("rotate");
        let v: serde_json::Value =
            serde_json::from_slice(&res.bytes().await.expect("body")).expect("json");
        v["kid"].as_str().expect("kid").to_owned()
    }

    /// Stops the provider.
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

async fn app_for(p: &OidcProvider) -> TestApp {
    let issuer = p.issuer.clone();
    TestApp::with_config(move |c| {
        c.auth.issuer = issuer.clone();
        c.auth.audience = CLIENT_ID.into();
        c.auth.jwks_refetch_interval_ms = 200;
        c.server.cors_origins = vec![issuer];
    })
    .await
}

fn kid_of(token: &str) -> String {
    let header = jsonwebtoken::decode_header(token).expect("header");
    header.kid.expect("kid")
}

#[tokio::test]
async fn code_flow_rotation_outage_and_forgeries_against_oidc_provider() {
    let Some(mut p) = OidcProvider::start().await else {
        return;
    };
    let t = app_for(&p).await;
    let uri = "/v1/profiles/ada@example.org";

    // 1. Discovery and JWKS; a token from the real code flow updates a profile.
    let first = p.token("ada@example.org").await;
    let r = t
        .patch_json(uri, &first, json!({"display_name": "Ada"}))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["display_name"], "Ada");
    assert_eq!(
        t.get("/__heartbeat__", None).await.json()["checks"]["auth"],
        "ok"
    );

    // 2. The provider rotates its signing key: the new kid works at once, no restart.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let new_kid = p.rotate().await;
    let second = p.token("ada@example.org").await;
    assert_eq!(kid_of(&second), new_kid);
    assert_ne!(kid_of(&first), new_kid);
    let started = Instant::now();
    let r = t.get(uri, Some(&second)).await;
    let latency = started.elapsed();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    eprintln!("oidc-provider: key-refresh latency after rotation: {latency:?}");

    // 4. Forged tokens fail: tampered payload, foreign key under the provider's kid, alg none.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = second.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).expect("b64")).expect("json");
    claims["email"] = json!("eve@example.org");
    let payload = b64.encode(claims.to_string());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    let none = format!("{}.{payload}.", b64.encode(r#"{"alg":"none"}"#));
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(new_kid.clone());
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(&crate::support::fixture("keys/rsa-private.pem"))
            .expect("key");
    let foreign = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    for forged in [tampered, none, foreign] {
        t.get("/v1/profiles/eve@example.org", Some(&forged))
            .await
            .assert_error(401, "invalid_token");
    }

    // 6. CORS: the provider's origin may call the owner API from a browser; others not.
    for (origin, allowed) in [(p.issuer.as_str(), true), ("https://evil.example", false)] {
        let req = Request::builder()
            .method("OPTIONS")
            .uri(uri)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .body(Body::empty())
            .expect("request");
        let r = t.send(req).await;
        assert_eq!(
            r.header("access-control-allow-origin").is_some(),
            allowed,
            "{origin}"
        );
    }

    // 3. The provider stops: cached keys keep working; an unknown kid is 401 with no hang.
    p.stop().await;
    let mut refused = 0;
    for _ in 0..50 {
        for tok in [&first, &second] {
            if t.get(uri, Some(tok)).await.status != 200 {
                refused += 1;
            }
        }
    }
    eprintln!("oidc-provider: requests refused during the outage: {refused} of 100");
    assert_eq!(refused, 0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("rotated-while-down".into());
    let unknown = jsonwebtoken::encode(&h, &claims, &key).expect("sign");
    crate::oidc::all_refused_quickly(&t, "/v1/profiles/eve@example.org", &[unknown]).await;
    let hb = t.get("/__heartbeat__", None).await;
    assert_eq!(hb.status, 200);
    assert_eq!(hb.json()["status"], "degraded", "{}", hb.json());
}
