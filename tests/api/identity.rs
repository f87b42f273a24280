//! Email identity, display names, the dev sign-in route, CORS and `no-store` on owner
//! endpoints (API.md §Identity and §Owner endpoints, v1.1), through the real router.

use axum::{body::Body, http::Request};
use serde_json::json;

use crate::support::TestApp;

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"@.-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn emails_in_paths_follow_the_identity_rules() {
    let t = TestApp::new().await;
    for bad in [
        "\u{212A}im@example.org",
        "\u{212B}sa@example.org",
        "ada\u{200B}@example.org",
        "ada\u{200D}@example.org",
        "ada@\u{202E}example.org",
        "ada\u{00A0}@example.org",
        " ada@example.org\u{00A0}",
        "a@b@example.org",
        "jose\u{0301}@example.org",
    ] {
        // Even a token minted for that exact string cannot use it.
        let tok = t.token(bad);
        t.get(&format!("/v1/profiles/{}", pct(bad)), Some(&tok))
            .await
            .assert_error(400, "invalid_email");
    }
    // Non-ASCII letters are kept, so these are other owners than their ASCII look-alikes.
    let ascii = t.token("ada@example.org");
    for other in [
        "\u{FF21}da@example.org",
        "\u{0130}da@example.org",
        "\u{00C5}da@example.org",
    ] {
        t.get(&format!("/v1/profiles/{}", pct(other)), Some(&ascii))
            .await
            .assert_error(403, "forbidden");
        let own = t.token(other);
        let r = t
            .get(&format!("/v1/profiles/{}", pct(other)), Some(&own))
            .await;
        assert_eq!(
            r.status,
            200,
            "{other:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["email"], other);
        assert_ne!(
            r.json()["public_id"],
            t.get("/v1/profiles/ada@example.org", Some(&ascii))
                .await
                .json()["public_id"]
        );
    }
    // ASCII case and surrounding ASCII whitespace still fold, as in v1.
    let r = t
        .get(
            &format!("/v1/profiles/{}", pct(" ADA@Example.ORG ")),
            Some(&ascii),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["email"], "ada@example.org");
}

#[tokio::test]
async fn display_names_keep_every_script_and_refuse_invisible_text() {
    let t = TestApp::new().await;
    let tok = t.token("ada@example.org");
    let uri = "/v1/profiles/ada@example.org";
    for good in [
        "李小龍",
        "محمد علي",
        "👩\u{200D}👩\u{200D}👧\u{200D}👦",
        "🏳\u{FE0F}\u{200D}🌈",
        "می\u{200C}خواهم",
    ] {
        let r = t
            .patch_json(uri, &tok, json!({ "display_name": good }))
            .await;
        assert_eq!(
            r.status,
            200,
            "{good:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["display_name"], good);
    }
    for (bad, said) in [
        ("\u{202E}nimda", "bidi"),
        ("Ada\u{2066}", "bidi"),
        ("\u{200B}", "visible"),
        ("\u{200B}\u{200D}\u{FEFF}", "visible"),
        ("\u{3164}", "visible"),
    ] {
        let msg = t
            .patch_json(uri, &tok, json!({ "display_name": bad }))
            .await
            .assert_error(400, "invalid_value");
        assert!(msg.contains(said), "{bad:?}: {msg}");
    }
}

async fn post(t: &TestApp, body: serde_json::Value) -> crate::support::TestResponse {
    let req = Request::post("/v1/dev/sign-in")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    t.send(req).await
}

#[tokio::test]
async fn dev_sign_in_exists_only_in_dev_mode_on_loopback() {
    let t = TestApp::new().await;
    let r = post(&t, json!({"email": "Ada@Example.org"})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["email"], "ada@example.org");
    let tok = v["id_token"].as_str().expect("token");
    assert_eq!(
        t.get("/v1/profiles/ada@example.org", Some(tok))
            .await
            .status,
        200
    );
    post(&t, json!({"email": "a\u{200B}@b.c"}))
        .await
        .assert_error(400, "invalid_email");

    // With an issuer the route does not exist.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
    let prod = TestApp::with_config(|c| {
        c.auth.issuer = "https://idp.example.test".into();
        c.auth.pem_files = vec![root.join("rsa-public.pem")];
    })
    .await;
    post(&prod, json!({"email": "ada@example.org"}))
        .await
        .assert_error(404, "not_found");
    // What the page reads to choose its sign-in, and the CSP that lets it reach the issuer.
    let dev_cfg = t.get("/v1/auth/config", None).await.json();
    assert_eq!(dev_cfg["mode"], "dev");
    assert_eq!(dev_cfg["dev_sign_in"], true);
    let cfg = prod.get("/v1/auth/config", None).await.json();
    assert_eq!(cfg["mode"], "oidc");
    assert_eq!(cfg["issuer"], "https://idp.example.test");
    assert_eq!(cfg["client_id"], "moocard");
    assert_eq!(cfg["dev_sign_in"], false);
    let csp = prod.get("/", None).await;
    let csp = csp.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.ends_with("connect-src 'self' https://idp.example.test"),
        "{csp}"
    );
    // Dev mode explicitly allowed on the network: no one-click sign-in either.
    let open = TestApp::with_config(|c| {
        c.server.listen = "0.0.0.0:8080".parse().expect("addr");
        c.auth.allow_dev_mode_on_network = true;
    })
    .await;
    post(&open, json!({"email": "ada@example.org"}))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn cors_for_listed_origins_and_no_store_on_owner_answers() {
    let allowed = "https://idp.example.test";
    let t = TestApp::with_config(|c| c.server.cors_origins = vec![allowed.into()]).await;
    let tok = t.token("ada@example.org");
    let uri = "/v1/profiles/ada@example.org";
    let preflight = |origin: &str, method: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri(uri)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .body(Body::empty())
            .expect("request")
    };
    for method in ["GET", "PATCH", "PUT", "DELETE"] {
        let r = t.send(preflight(allowed, method)).await;
        assert!(r.status.is_success(), "{method}: {}", r.status);
        assert_eq!(r.header("access-control-allow-origin"), Some(allowed));
        let methods = r.header("access-control-allow-methods").unwrap_or_default();
        assert!(methods.contains(method), "{methods}");
        let headers = r
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "{headers}"
        );
        assert_eq!(r.header("access-control-allow-credentials"), None);
    }
    let r = t.send(preflight("https://evil.example", "PATCH")).await;
    assert_eq!(r.header("access-control-allow-origin"), None);

    let get = |origin: &str, token: Option<&str>| {
        let mut req = Request::get(uri).header("origin", origin);
        if let Some(tok) = token {
            req = req.header("authorization", format!("Bearer {tok}"));
        }
        req.body(Body::empty()).expect("request")
    };
    let r = t.send(get(allowed, Some(&tok))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(allowed));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = t.send(get("https://evil.example", Some(&tok))).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // Errors carry both too, so a page can read why.
    let r = t.send(get(allowed, None)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some(allowed));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Every owner answer is no-store: PATCH, avatar status, DELETE.
    let r = t
        .patch_json(uri, &tok, json!({"display_name": "Ada"}))
        .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = t.get(&format!("{uri}/avatar"), Some(&tok)).await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = t
        .call(axum::http::Method::DELETE, uri, Some(&tok), None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Without configured origins, no CORS headers at all.
    let plain = TestApp::new().await;
    let r = plain
        .send(get(allowed, Some(&plain.token("ada@example.org"))))
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}
