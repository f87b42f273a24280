//! `moocard::serve` over real TCP: keep-alive, HEAD, the idle watchdog
//! (`server.idle_timeout_secs`) and graceful shutdown.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

use crate::support::TestApp;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

async fn start(t: &TestApp) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(moocard::serve(listener, t.router.clone(), async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        server,
    }
}

/// One HTTP/1.1 response read off `s`: status line, headers (lowercased) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response; `head_only` for the answer to a HEAD (no body follows).
async fn read_reply(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Reply {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("status line")[9..12]
        .parse()
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().expect("length"));
    let len = if head_only { 0 } else { len };
    while buf.len() < end + len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[end..end + len].to_vec();
    buf.drain(..end + len);
    Reply {
        status,
        headers,
        body,
    }
}

/// How long until the server closes `s` (EOF or reset), failing after `limit`.
async fn closed_after(s: &mut TcpStream, since: Instant, limit: Duration) -> Duration {
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, s.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn keep_alive_serves_several_requests_and_head() {
    let t = TestApp::new().await;
    let srv = start(&t).await;
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    let mut buf = Vec::new();
    let md5 = "0123456789abcdef0123456789abcdef";
    let req = format!(
        "GET /v1/limits HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /avatar/{md5}?s=64 HTTP/1.1\r\nHost: x\r\n\r\n\
         HEAD /avatar/{md5}?s=64 HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /avatar/{md5}?d=404 HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let limits = read_reply(&mut s, &mut buf, false).await;
    assert_eq!(limits.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&limits.body).expect("json");
    assert_eq!(v["sizes"][0], 512);
    let img = read_reply(&mut s, &mut buf, false).await;
    assert_eq!(img.status, 200);
    assert_eq!(img.header("content-type"), Some("image/png"));
    assert!(img.body.starts_with(b"\x89PNG"));
    let head = read_reply(&mut s, &mut buf, true).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(img.body.len().to_string().as_str())
    );
    assert_eq!(head.header("etag"), img.header("etag"));
    let missing = read_reply(&mut s, &mut buf, false).await;
    assert_eq!(missing.status, 404);
    let v: serde_json::Value = serde_json::from_slice(&missing.body).expect("json");
    assert_eq!(v["code"], "not_found");
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let t = TestApp::with_config(|c| c.server.idle_timeout_secs = 1).await;
    let srv = start(&t).await;
    let limit = Duration::from_secs(5);
    let since = Instant::now();

    // Opened and never used.
    let mut silent = TcpStream::connect(srv.addr).await.expect("connect");
    // A request head sent a few bytes at a time, never finished (slowloris).
    let mut slow = TcpStream::connect(srv.addr).await.expect("connect");
    let dribble = tokio::spawn(async move {
        for b in b"GET /v1/limits HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slow
    });
    // One request answered, then idle keep-alive.
    let mut idle = TcpStream::connect(srv.addr).await.expect("connect");
    idle.write_all(b"GET /v1/limits HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    assert_eq!(read_reply(&mut idle, &mut buf, false).await.status, 200);

    for (what, s) in [("silent", &mut silent), ("idle", &mut idle)] {
        let after = closed_after(s, since, limit).await;
        assert!(
            after >= Duration::from_millis(900),
            "{what} closed after {after:?}"
        );
        assert!(
            after < Duration::from_millis(2500),
            "{what} closed after {after:?}"
        );
    }
    let mut slow = dribble.await.expect("dribble");
    let after = closed_after(&mut slow, since, limit).await;
    assert!(
        after < Duration::from_millis(2500),
        "slow closed after {after:?}"
    );
    // The server itself is fine.
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_reply(&mut s, &mut Vec::new(), false).await.status, 200);
}

/// Sends a PATCH of a display name whose body arrives over `over`, a byte at a time.
async fn slow_patch(s: &mut TcpStream, token: &str, name: &str, over: Duration) {
    let body = serde_json::json!({ "display_name": name }).to_string();
    let head = format!(
        "PATCH /v1/profiles/slow@example.com HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("head");
    let pause = over / u32::try_from(body.len()).expect("short body");
    for b in body.bytes() {
        tokio::time::sleep(pause).await;
        s.write_all(&[b]).await.expect("body byte");
    }
}

#[tokio::test]
async fn a_request_in_flight_outlives_the_idle_timeout() {
    let t = TestApp::with_config(|c| c.server.idle_timeout_secs = 1).await;
    let srv = start(&t).await;
    let token = t.token("slow@example.com");
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    slow_patch(&mut s, &token, "Slow Sender", Duration::from_millis(2500)).await;
    let r = read_reply(&mut s, &mut Vec::new(), false).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["display_name"], "Slow Sender");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_then_returns() {
    let t = TestApp::new().await;
    let mut srv = start(&t).await;
    let token = t.token("slow@example.com");
    let mut busy = TcpStream::connect(srv.addr).await.expect("connect");
    let mut idle = TcpStream::connect(srv.addr).await.expect("connect");
    idle.write_all(b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        read_reply(&mut idle, &mut Vec::new(), false).await.status,
        200
    );

    let stop = srv.stop.take().expect("stop");
    let patch = async {
        slow_patch(&mut busy, &token, "Last Words", Duration::from_millis(800)).await;
        read_reply(&mut busy, &mut Vec::new(), false).await
    };
    let signal = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop.send(());
    };
    let (r, ()) = tokio::join!(patch, signal);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("connection"), Some("close"));
    // The idle connection was closed at once, and the server returned.
    let since = Instant::now();
    closed_after(&mut idle, since, Duration::from_secs(5)).await;
    tokio::time::timeout(Duration::from_secs(5), &mut srv.server)
        .await
        .expect("serve returns")
        .expect("no panic")
        .expect("no error");
    assert!(
        TcpStream::connect(srv.addr).await.is_err(),
        "still accepting"
    );
    // The write went through.
    let v = t
        .get("/v1/profiles/slow@example.com", Some(&token))
        .await
        .json();
    assert_eq!(v["display_name"], "Last Words");
}
