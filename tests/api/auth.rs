//! Every way a bearer token can fail (API.md §Identity), in dev mode and with a
//! configured issuer whose keys come from PEM files or a JWKS document.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::{fixture, TestApp};

pub const ISS: &str = "https://idp.example.test";
pub const AUD: &str = "moocard-test";

pub fn sign(
    alg: Algorithm,
    key_file: &str,
    kid: Option<&str>,
    claims: serde_json::Value,
) -> String {
    let pem = fixture(key_file);
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .expect("private key");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, &claims, &key).expect("sign")
}

pub fn claims(email: &str, verified: serde_json::Value, exp_in: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": ISS, "aud": AUD, "exp": now + exp_in, "iat": now, "email": email, "email_verified": verified})
}

async fn issuer_app(jwks: bool) -> TestApp {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
    TestApp::with_config(|c| {
        c.auth.issuer = ISS.into();
        c.auth.audience = AUD.into();
        c.auth.leeway_secs = 0;
        if jwks {
            c.auth.jwks_file = Some(root.join("jwks.json"));
        } else {
            c.auth.pem_files = vec![
                root.join("rsa-public.pem"),
                root.join("ec-public.pem"),
                root.join("ed25519-public.pem"),
            ];
        }
    })
    .await
}

#[tokio::test]
async fn configured_issuer_accepts_rs256_es256_eddsa_from_pem_and_jwks() {
    for jwks in [false, true] {
        let t = issuer_app(jwks).await;
        assert!(t.app.dev.is_none());
        for (alg, key, kid) in [
            (Algorithm::RS256, "keys/rsa-private.pem", "rsa1"),
            (Algorithm::ES256, "keys/ec-private.pem", "ec1"),
            (Algorithm::EdDSA, "keys/ed25519-private.pem", "ed1"),
        ] {
            let tok = sign(
                alg,
                key,
                Some(kid),
                claims("Ada@Example.org", json!(true), 600),
            );
            let r = t.get("/v1/profiles/ada@example.org", Some(&tok)).await;
            assert_eq!(
                r.status,
                200,
                "{alg:?} jwks={jwks}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}

#[tokio::test]
async fn every_token_failure_has_its_status_and_code() {
    let t = issuer_app(false).await;
    let uri = "/v1/profiles/ada@example.org";
    let good = |c: serde_json::Value| sign(Algorithm::RS256, "keys/rsa-private.pem", None, c);

    t.get(uri, None).await.assert_error(401, "invalid_token");
    t.get(uri, Some("garbage"))
        .await
        .assert_error(401, "invalid_token");
    let r = t.call(axum::http::Method::GET, uri, None, None).await;
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));

    // Signed by a key the server does not trust.
    let dev =
        moocard::auth::dev::DevSigner::load_or_create(t.db.dir.path().join("other").as_path(), AUD)
            .expect("key");
    let foreign = dev
        .token_with("ada@example.org", 600, true, ISS, AUD)
        .expect("token");
    t.get(uri, Some(&foreign))
        .await
        .assert_error(401, "invalid_token");

    // Tampered payload: re-encode the claims with another email, keep the signature.
    let tok = good(claims("ada@example.org", json!(true), 600));
    let parts: Vec<&str> = tok.split('.').collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged = b64.encode(claims("eve@example.org", json!(true), 600).to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
    t.get("/v1/profiles/eve@example.org", Some(&tampered))
        .await
        .assert_error(401, "invalid_token");

    let msg = t
        .get(
            uri,
            Some(&good(claims("ada@example.org", json!(true), -60))),
        )
        .await
        .assert_error(401, "invalid_token");
    assert!(msg.contains("expired"), "{msg}");

    let mut c = claims("ada@example.org", json!(true), 600);
    c["aud"] = json!("someone-else");
    let msg = t
        .get(uri, Some(&good(c)))
        .await
        .assert_error(401, "invalid_token");
    assert!(msg.contains("audience"), "{msg}");

    let mut c = claims("ada@example.org", json!(true), 600);
    c["iss"] = json!("https://evil.example");
    let msg = t
        .get(uri, Some(&good(c)))
        .await
        .assert_error(401, "invalid_token");
    assert!(msg.contains("issuer"), "{msg}");

    let mut c = claims("ada@example.org", json!(true), 600);
    c.as_object_mut().expect("object").remove("exp");
    t.get(uri, Some(&good(c)))
        .await
        .assert_error(401, "invalid_token");

    let mut c = claims("ada@example.org", json!(true), 600);
    c.as_object_mut().expect("object").remove("email");
    t.get(uri, Some(&good(c)))
        .await
        .assert_error(401, "invalid_token");

    for unverified in [json!(false), json!(null), json!("yes")] {
        let msg = t
            .get(
                uri,
                Some(&good(claims("ada@example.org", unverified.clone(), 600))),
            )
            .await
            .assert_error(403, "forbidden");
        assert!(msg.contains("verified"), "{unverified}: {msg}");
    }

    // A valid token for another email.
    t.get(
        "/v1/profiles/bob@example.org",
        Some(&good(claims("ada@example.org", json!(true), 600))),
    )
    .await
    .assert_error(403, "forbidden");
    // HS256 (symmetric) tokens are refused outright.
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &claims("ada@example.org", json!(true), 600),
        &EncodingKey::from_secret(b"k"),
    )
    .expect("sign");
    t.get(uri, Some(&hs))
        .await
        .assert_error(401, "invalid_token");
}

#[tokio::test]
async fn dev_mode_tokens() {
    let t = TestApp::new().await;
    let dev = t.app.dev.as_ref().expect("dev mode");
    let ok = dev.token("a@b.c", 60, true).expect("token");
    assert_eq!(t.get("/v1/profiles/a@b.c", Some(&ok)).await.status, 200);
    let expired = dev.token("a@b.c", -120, true).expect("token");
    t.get("/v1/profiles/a@b.c", Some(&expired))
        .await
        .assert_error(401, "invalid_token");
    let unverified = dev.token("a@b.c", 60, false).expect("token");
    t.get("/v1/profiles/a@b.c", Some(&unverified))
        .await
        .assert_error(403, "forbidden");
    t.get("/v1/profiles/x@b.c", Some(&ok))
        .await
        .assert_error(403, "forbidden");
    t.get("/v1/profiles/not-an-email", Some(&ok))
        .await
        .assert_error(400, "invalid_email");
}

/// API.md §Identity v1.1: the strict cases, each with our own sentence (never a library's).
#[tokio::test]
async fn strict_token_rules() {
    let t = issuer_app(false).await;
    let uri = "/v1/profiles/ada@example.org";
    let now = chrono::Utc::now().timestamp();
    let rsa = |c: serde_json::Value| sign(Algorithm::RS256, "keys/rsa-private.pem", None, c);
    let base = || claims("ada@example.org", json!(true), 600);
    let refused = |c: serde_json::Value, want: &'static str| {
        let tok = rsa(c);
        let t = &t;
        async move {
            let msg = t
                .get(uri, Some(&tok))
                .await
                .assert_error(401, "invalid_token");
            assert!(msg.contains(want), "want {want:?} in {msg:?}");
            assert!(
                !msg.contains("ErrorKind") && !msg.contains("InvalidClaimFormat"),
                "{msg}"
            );
        }
    };
    // nbf and iat in the future (leeway is 0 here); a past nbf is fine.
    let mut c = base();
    c["nbf"] = json!(now + 120);
    refused(c, "not valid yet").await;
    let mut c = base();
    c["iat"] = json!(now + 120);
    refused(c, "not valid yet").await;
    let mut c = base();
    c["nbf"] = json!(now - 10);
    assert_eq!(t.get(uri, Some(&rsa(c))).await.status, 200);
    // Times must be integers.
    for exp in [
        json!((now + 600) as f64 + 0.5),
        json!((now + 600).to_string()),
    ] {
        let mut c = base();
        c["exp"] = exp;
        refused(c, "integer").await;
    }
    let mut c = base();
    c["iat"] = json!(now as f64 + 0.25);
    refused(c, "integer").await;
    // An audience list needs azp = us; a single audience, or a list with our azp, passes.
    let mut c = base();
    c["aud"] = json!([AUD, "other-service"]);
    refused(c.clone(), "azp").await;
    c["azp"] = json!("other-service");
    refused(c.clone(), "azp").await;
    c["azp"] = json!(AUD);
    assert_eq!(t.get(uri, Some(&rsa(c))).await.status, 200);
    let mut c = base();
    c["azp"] = json!("someone-else");
    refused(c, "azp").await;
    // An unknown critical header extension.
    let pem = fixture("keys/rsa-private.pem");
    let mut header = Header::new(Algorithm::RS256);
    header.crit = Some(vec!["exp-ext".into()]);
    header.extras.insert("exp-ext".into(), "1".into());
    let tok = encode(
        &header,
        &base(),
        &EncodingKey::from_rsa_pem(&pem).expect("key"),
    )
    .expect("sign");
    let msg = t
        .get(uri, Some(&tok))
        .await
        .assert_error(401, "invalid_token");
    assert!(msg.contains("crit"), "{msg}");
    // An unknown kid among a JWKS file's keys (PEM keys have no kid and match any).
    let tok = sign(
        Algorithm::RS256,
        "keys/rsa-private.pem",
        Some("nope"),
        base(),
    );
    let jwks = issuer_app(true).await;
    let msg = jwks
        .get(uri, Some(&tok))
        .await
        .assert_error(401, "invalid_token");
    assert!(msg.contains("kid"), "{msg}");
    // An email claim with invisible or bidi characters, or two @: 400 invalid_email.
    for bad in [
        "ada\u{200B}@example.org",
        "ada@\u{202E}example.org",
        "a@b@example.org",
        "\u{212A}@example.org",
    ] {
        let tok = rsa(claims(bad, json!(true), 600));
        t.get(uri, Some(&tok))
            .await
            .assert_error(400, "invalid_email");
    }
}
