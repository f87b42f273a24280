//! The outside review's findings (issue 16), each through the real server or router:
//! connection caps that keep `/__lbheartbeat__` answering, the header budget, an early
//! 413, JSON for bad query strings, a percent-encoded `Location`, private files, and the
//! ops listener.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::http::Method;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

use crate::support::{fixture, TestApp};

async fn start(service: moocard::http::HttpService) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(moocard::serve(listener, service, std::future::pending()));
    addr
}

/// Sends one request on a fresh connection and reads until the server closes it or a
/// whole response (by `Content-Length`) has arrived; returns (status, body).
async fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    read_response(&mut s).await
}

async fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head[9..12].parse().expect("status");
                return (status, body[..len].to_owned());
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("answered within 5 s")
            .expect("read");
        assert!(n > 0, "closed before a full response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    v["code"].as_str().expect("code").to_owned()
}

#[tokio::test]
async fn connection_cap_answers_at_once_and_keeps_lbheartbeat() {
    let t = TestApp::with_config(|c| {
        c.server.max_connections = 3;
        c.server.max_connections_per_ip = 0;
    })
    .await;
    let addr = start(t.router.clone()).await;
    // Three clients hold every place without sending anything.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let (status, body) = exchange(addr, &get("/v1/limits")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(code(&body), "unavailable");
    assert!(body.contains("3 connections"), "states the limit: {body}");
    let (status, _) = exchange(addr, &get("/__lbheartbeat__")).await;
    assert_eq!(status, 200, "the balancer still sees the node alive");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once"
    );
    // A place given back is served again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = exchange(addr, &get("/v1/limits")).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "place never given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn per_address_cap_is_429() {
    let t = TestApp::with_config(|c| c.server.max_connections_per_ip = 2).await;
    let addr = start(t.router.clone()).await;
    let _a = TcpStream::connect(addr).await.expect("connect");
    let _b = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = exchange(addr, &get("/v1/limits")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(code(&body), "rate_limited");
    assert!(body.contains("at most 2"), "{body}");
}

#[tokio::test]
async fn oversized_head_is_refused() {
    let t = TestApp::with_config(|c| c.server.max_header_bytes = 8192).await;
    let addr = start(t.router.clone()).await;
    let req = format!(
        "GET /v1/limits HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered at once")
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(
        n == 0 || head.starts_with("HTTP/1.1 431"),
        "a head over the budget is refused, not buffered: {head}"
    );
}

#[tokio::test]
async fn declared_length_over_the_limit_is_413_at_once() {
    let t = TestApp::with_config(|c| c.limits.max_upload_bytes = 1000).await;
    let addr = start(t.router.clone()).await;
    let tok = t.token("a@b.c");
    let req = format!(
        "PUT /v1/profiles/a@b.c/avatar HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n"
    );
    let started = Instant::now();
    let (status, body) = exchange(addr, req.as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(code(&body), "payload_too_large");
    assert!(body.contains("1000 bytes"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn bad_query_strings_are_json_and_location_is_encoded() {
    let t = TestApp::new().await;
    let email = "a+b@c.d";
    let tok = t.token(email);
    let img = fixture("images/photo-hubble.jpg");
    let uri = format!("/v1/profiles/{email}/avatar?crop=0,0,10,10&crop=1,1,5,5");
    let r = t
        .call(
            Method::PUT,
            &uri,
            Some(&tok),
            Some(("image/jpeg", img.clone())),
        )
        .await;
    let message = r.assert_error(400, "bad_request");
    assert!(message.contains("crop"), "{message}");
    let uri = format!("/v1/profiles/{email}/avatar?crop=%ZZ");
    t.call(
        Method::PUT,
        &uri,
        Some(&tok),
        Some(("image/jpeg", img.clone())),
    )
    .await
    .assert_error(400, "bad_request");
    let r = t
        .call(
            Method::PUT,
            &format!("/v1/profiles/{email}/avatar"),
            Some(&tok),
            Some(("image/jpeg", img)),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("location"), Some("/v1/profiles/a%2Bb@c.d/avatar"));
}

#[cfg(unix)]
#[tokio::test]
async fn data_dir_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("new").join("data");
    let mut config = moocard::config::Config {
        data_dir: data.clone(),
        ..Default::default()
    };
    config = config.validate().expect("valid");
    let app = moocard::App::build(config, moocard::Migrations::Run)
        .await
        .expect("builds");
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("moocard.db")), 0o600);
    assert_eq!(mode(&data.join("moocard.db-wal")), 0o600);
    app.pool.close().await;
}

#[tokio::test]
async fn metrics_and_heartbeat_move_to_the_ops_listener() {
    let t = TestApp::with_config(|c| {
        c.server.ops_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let main = start(t.router.clone()).await;
    let ops = start(moocard::http::HttpService::ops(t.app.state())).await;
    assert_eq!(exchange(main, &get("/metrics")).await.0, 404);
    assert_eq!(exchange(main, &get("/__heartbeat__")).await.0, 404);
    assert_eq!(exchange(main, &get("/__lbheartbeat__")).await.0, 200);
    let (status, body) = exchange(ops, &get("/metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("moocard_"), "{body}");
    assert_eq!(exchange(ops, &get("/__heartbeat__")).await.0, 200);
    assert_eq!(exchange(ops, &get("/v1/limits")).await.0, 404);
}

#[tokio::test]
async fn owner_requests_are_limited_per_address() {
    let t = TestApp::with_config(|c| c.quotas.owner_requests_per_minute_per_ip = 2).await;
    let addr = start(t.router.clone()).await;
    let path = "/v1/profiles/a@b.c";
    assert_eq!(exchange(addr, &get(path)).await.0, 401);
    assert_eq!(exchange(addr, &get(path)).await.0, 401);
    let (status, body) = exchange(addr, &get(path)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(code(&body), "rate_limited");
    assert!(body.contains("at most 2 per minute"), "{body}");
    // Public reads and other routes are not counted.
    assert_eq!(exchange(addr, &get("/v1/limits")).await.0, 200);
}

#[tokio::test]
async fn limits_are_published() {
    let t = TestApp::new().await;
    let v = t.get("/v1/limits", None).await.json();
    assert_eq!(v["max_upload_bytes"], 10 * 1024 * 1024);
    assert_eq!(v["uploads_per_window"], 10);
    assert_eq!(v["upload_window_secs"], 60);
    assert_eq!(v["uploads_per_day"], 100);
    assert_eq!(v["owner_requests_per_minute_per_ip"], 600);
}
