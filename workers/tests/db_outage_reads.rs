//! Public reads while MySQL/MariaDB is really stopped (API.md v1.1 §Public reads, issue 13):
//! a real avatar (uploaded, processed by a worker pool) keeps being served from this node's
//! memory after its cache TTL has passed, every other `/avatar` request gets a default
//! graphic or the 404 it asked for, each at once (store timeout and circuit breaker, no
//! pool timeout), and once the server is back, writes and new avatars work again without
//! restarting the app.
//!
//! `tests/serving/outage.rs` covers the same contract with a TCP proxy it cuts; this test
//! stops the server itself (`mysqladmin shutdown`) and starts it again (`start-stop-daemon
//! ... /usr/sbin/mariadbd`), like `db_restart.rs`. So it is `#[ignore]`d and run alone by
//! `.ci/run` (`--ignored --test-threads=1`), needs the server named by
//! `MOOCARD_TEST_MYSQL_URL` to be the local one, and fails when the variable is missing
//! rather than passing without having run. A guard starts the server again even when an
//! assertion fails, so later CI steps still have a database.

#[path = "../../tests/support/mod.rs"]
mod support;
#[path = "worker_pool/mod.rs"]
mod worker_pool;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use axum::http::{Method, StatusCode};
use moocard::domain::{email::Email, ids::AvatarHash};
use serde_json::json;
use support::{fixture, TestApp, TestResponse};
use worker_pool::Pool;

/// Every `/avatar` answer during the outage must take less than this (wall time).
const FAST: Duration = Duration::from_millis(500);
/// `avatars.cache_ttl_secs` in this test: the outage outlasts it.
const TTL: Duration = Duration::from_secs(1);
/// Bound on recovery once the server answers pings again.
const RECOVERY: Duration = Duration::from_secs(30);
/// The server binary `.ci/run` starts (as root, through start-stop-daemon).
const MARIADBD: &str = "/usr/sbin/mariadbd";
/// Never registered: the filter of known aliases rules it out.
const UNKNOWN: &str = "00000000000000000000000000000000";

/// The local MariaDB server of `MOOCARD_TEST_MYSQL_URL`, which this test stops and starts.
#[derive(Clone)]
struct LocalServer {
    host: String,
    port: u16,
    user: String,
}

impl LocalServer {
    /// From `mysql://user[:password]@host[:port]/db`; the host must be this machine, since
    /// the server is started again from `/usr/sbin/mariadbd` here.
    fn from_url(url: &str) -> Self {
        let rest = url
            .strip_prefix("mysql://")
            .unwrap_or_else(|| panic!("{} is not a mysql:// URL: {url}", support::MYSQL_ENV));
        let authority = rest.split('/').next().unwrap_or_default();
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("root", authority));
        let user = userinfo.split(':').next().unwrap_or("root").to_owned();
        assert!(
            !userinfo.contains(':'),
            "this test runs mysqladmin without a password; use a passwordless local user"
        );
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().expect("port")),
            None => (hostport.to_owned(), 3306),
        };
        assert!(
            host == "127.0.0.1" || host == "localhost",
            "{} must name the local server ({host} does not): this test stops and starts it",
            support::MYSQL_ENV
        );
        Self {
            host: if host == "localhost" {
                "127.0.0.1".into()
            } else {
                host
            },
            port,
            user,
        }
    }

    fn admin(&self, args: &[&str]) -> bool {
        Command::new("mysqladmin")
            .arg(format!("--host={}", self.host))
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={}", self.user))
            .arg("--connect-timeout=2")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn alive(&self) -> bool {
        self.admin(&["ping"])
    }

    /// Whether a `mariadbd` process exists (it may refuse connections while it shuts down).
    fn running() -> bool {
        Command::new("start-stop-daemon")
            .args(["--status", "--exec", MARIADBD])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Shuts the server down and waits until its process has exited (else `--oknodo`
    /// would take the exiting process for a running server and start nothing).
    fn stop(&self) {
        assert!(self.admin(&["shutdown"]), "mysqladmin shutdown failed");
        let down = Instant::now();
        while self.alive() || Self::running() {
            assert!(
                down.elapsed() < Duration::from_secs(60),
                "server did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the server and waits until it answers pings; false if it did not come back.
    fn start(&self) -> bool {
        let started = Command::new("start-stop-daemon")
            .args(["--start", "--oknodo", "--background", "--exec", MARIADBD])
            .status()
            .is_ok_and(|s| s.success());
        if !started {
            return false;
        }
        let up = Instant::now();
        while !self.alive() {
            if up.elapsed() > Duration::from_secs(60) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        true
    }
}

/// Starts the server again when dropped if it is down, also when the test panics.
struct StartOnDrop(LocalServer);

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        if !self.0.alive() {
            eprintln!("starting MariaDB again (the test stopped before it did)");
            if !self.0.start() {
                eprintln!("MariaDB did not come back: start it by hand");
            }
        }
    }
}

/// The Gravatar MD5 of `email` as this app hashes it (hex).
fn md5_of(t: &TestApp, email: &str) -> String {
    let email = Email::parse(email).expect("email");
    let [md5, _, _] = AvatarHash::all_for(t.app.profiles.ids(), &email);
    hex::encode(md5.bytes())
}

/// The alias the filter of known aliases holds for `email`'s MD5.
fn alias_of(t: &TestApp, email: &str) -> [u8; 32] {
    let email = Email::parse(email).expect("email");
    let [md5, _, _] = AvatarHash::all_for(t.app.profiles.ids(), &email);
    md5.alias(t.app.profiles.ids())
}

/// Uploads `fixtures/images/{file}` for `email`, retrying while the database is still
/// coming back (503), until `deadline`.
async fn upload(t: &TestApp, email: &str, file: &str, deadline: Instant) {
    let tok = t.token(email);
    loop {
        let r = t
            .call(
                Method::PUT,
                &format!("/v1/profiles/{email}/avatar"),
                Some(&tok),
                Some(("image/jpeg", fixture(&format!("images/{file}")))),
            )
            .await;
        if r.status == StatusCode::ACCEPTED {
            return;
        }
        assert!(
            r.status.is_server_error(),
            "upload for {email}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            Instant::now() < deadline,
            "upload for {email} still refused: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `email`'s avatar is ready; returns the stored 128 px variant's bytes.
async fn ready_128(t: &TestApp, email: &str, deadline: Instant) -> Vec<u8> {
    let tok = t.token(email);
    let status = loop {
        let r = t
            .get(&format!("/v1/profiles/{email}/avatar"), Some(&tok))
            .await;
        if r.status == StatusCode::OK {
            let v = r.json();
            if v["state"] == "ready" {
                break v;
            }
            assert_ne!(v["state"], "failed", "{email}: {v}");
        }
        assert!(Instant::now() < deadline, "{email} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let url = status["urls"]["128"].as_str().expect("128 url");
    let img = t
        .app
        .profiles
        .store()
        .get_image(url.trim_start_matches("/images/"))
        .await
        .expect("get image")
        .expect("stored");
    assert_eq!(img.content_type, "image/jpeg");
    img.bytes
}

async fn patch_name(t: &TestApp, email: &str, name: &str) -> TestResponse {
    t.patch_json(
        &format!("/v1/profiles/{email}"),
        &t.token(email),
        json!({ "display_name": name }),
    )
    .await
}

fn is_image(r: &TestResponse) -> bool {
    r.header("content-type")
        .is_some_and(|c| c.starts_with("image/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops the MySQL server; run alone with --ignored"]
async fn public_reads_survive_a_stopped_database_and_recover_without_restart() {
    let url = std::env::var(support::MYSQL_ENV).unwrap_or_default();
    assert!(
        !url.is_empty(),
        "set {} to run this test",
        support::MYSQL_ENV
    );
    let t = TestApp::with_config(|c| {
        c.avatars.cache_ttl_secs = TTL.as_secs();
        c.avatars.store_timeout_ms = 200;
        c.avatars.breaker_failures = 2;
        c.avatars.breaker_open_ms = 300;
        c.database.acquire_timeout_secs = 2;
        c.queue.orphan_after_secs = 5;
    })
    .await;
    assert!(t.db.is_mysql());
    // Declared after the app: dropped (the server started again) before the app's test
    // database is dropped, whatever happens in between.
    let server = LocalServer::from_url(&url);
    assert!(server.alive(), "the server of {url} does not answer pings");
    let guard = StartOnDrop(server.clone());
    let pool = Pool::start(&t.app.config, 2).await;

    // 1. A real avatar, processed by the worker, served and seen by this node; bob has a
    //    profile (the filter of known aliases knows his hashes) but no avatar, and this
    //    node never looked him up.
    let (ada, bob, cat) = ("ada@example.org", "bob@example.org", "cat@example.org");
    let (ada_md5, bob_md5, cat_md5) = (md5_of(&t, ada), md5_of(&t, bob), md5_of(&t, cat));
    upload(
        &t,
        ada,
        "photo-astronaut-meta.jpg",
        Instant::now() + Duration::from_secs(30),
    )
    .await;
    let ada_128 = ready_128(&t, ada, Instant::now() + Duration::from_secs(120)).await;
    let r = t.get(&format!("/avatar/{ada_md5}?s=128"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert!(
        r.body == ada_128,
        "the avatar itself, not a default graphic"
    );
    let etag = r.header("etag").expect("etag").to_owned();
    assert_eq!(patch_name(&t, bob, "Bob").await.status, StatusCode::OK);
    // A profile edit reaches this node's filter through its refresh (alias log).
    let filter = &t.app.avatar_cache.filter;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(filter.is_ready() && filter.may_contain(&alias_of(&t, bob))) {
        assert!(Instant::now() < deadline, "bob never reached the filter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !filter.may_contain(&alias_of(&t, cat)),
        "cat has no profile"
    );

    // 2. The server stopped, for longer than the cache TTL.
    let stopping = Instant::now();
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.stop())
        .await
        .expect("stopped");
    eprintln!("MariaDB stopped in {:?}", stopping.elapsed());
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;

    let mut slowest = (Duration::ZERO, String::new());
    let mut took_all = Vec::new();
    // Several rounds, over more than one breaker pause (300 ms), so requests meet the
    // breaker closed (first failures), open, and probing in the background.
    let outage = Instant::now();
    for round in 0..4 {
        let mut get = async |uri: String| {
            let started = Instant::now();
            let r = t.get(&uri, None).await;
            let took = started.elapsed();
            took_all.push(took);
            if took > slowest.0 {
                slowest = (took, uri.clone());
            }
            assert!(took < FAST, "{uri} took {took:?} (round {round})");
            let code = r.status.as_u16();
            assert!(
                code != 400 && code < 500,
                "{uri}: {code} {}",
                String::from_utf8_lossy(&r.body)
            );
            (uri, r)
        };

        // The known avatar: the same image (stale-if-error), with the short max-age.
        for q in ["?s=128", "", "?s=100&d=404", "?d=identicon&s=128"] {
            let (uri, r) = get(format!("/avatar/{ada_md5}{q}")).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}");
            assert_eq!(r.header("content-type"), Some("image/jpeg"), "{uri}");
            assert!(r.body == ada_128, "{uri}: not the avatar it served before");
            assert_eq!(r.header("etag"), Some(etag.as_str()), "{uri}");
            assert_eq!(
                r.header("cache-control"),
                Some("public, max-age=10"),
                "{uri}: not served as stale"
            );
        }

        // A hash nobody registered: the filter answers without the store.
        let (uri, r) = get(format!("/avatar/{UNKNOWN}")).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(is_image(&r), "{uri}: {:?}", r.header("content-type"));
        let cc = r.header("cache-control").unwrap_or_default().to_owned();
        assert!(
            cc == "public, max-age=10" || cc == "public, max-age=300",
            "{uri}: {cc}"
        );
        if round == 0 {
            eprintln!("unregistered hash during the outage: Cache-Control {cc}");
        }

        // bob (registered, never seen here) and cat (no profile; the filter says no):
        // defaults, with the short max-age where the store would have been asked.
        for (hash, short) in [(&bob_md5, true), (&cat_md5, false)] {
            for d in ["mm", "identicon", "retro", "initials&name=A+B", "moocard"] {
                let (uri, r) = get(format!("/avatar/{hash}?d={d}&s=64")).await;
                assert_eq!(r.status, StatusCode::OK, "{uri}");
                assert!(is_image(&r), "{uri}: {:?}", r.header("content-type"));
                if short {
                    assert_eq!(
                        r.header("cache-control"),
                        Some("public, max-age=10"),
                        "{uri}"
                    );
                }
            }
            let (uri, r) = get(format!("/avatar/{hash}?d=404")).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
            if short {
                assert_eq!(
                    r.header("cache-control"),
                    Some("public, max-age=10"),
                    "{uri}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    took_all.sort();
    eprintln!(
        "{} /avatar requests over {:?} of outage: median {:?}, third slowest {:?}, slowest {:?} ({})",
        took_all.len(),
        outage.elapsed(),
        took_all[took_all.len() / 2],
        took_all[took_all.len() - 3],
        slowest.0,
        slowest.1
    );

    // A write during the outage is refused with a JSON error (not a hang).
    let started = Instant::now();
    let r = patch_name(&t, bob, "Bob Down").await;
    eprintln!(
        "PATCH during the outage: {} in {:?}",
        r.status,
        started.elapsed()
    );
    assert!(r.status.is_server_error(), "{}", r.status);
    let v = r.json();
    assert!(v["code"].is_string() && v["message"].is_string(), "{v}");

    // 3. The server back; the app (and the worker node) not restarted.
    let starting = Instant::now();
    let s = server.clone();
    let up = tokio::task::spawn_blocking(move || s.start())
        .await
        .expect("join");
    assert!(up, "MariaDB did not come back");
    eprintln!("MariaDB started again in {:?}", starting.elapsed());
    let back = Instant::now();

    // A write works again.
    let write_ok = loop {
        let r = patch_name(&t, bob, "Bob Back").await;
        if r.status == StatusCode::OK {
            assert_eq!(r.json()["display_name"], "Bob Back");
            break back.elapsed();
        }
        assert!(
            back.elapsed() < RECOVERY,
            "writes did not recover: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("first successful write {write_ok:?} after the server was back");

    // The known avatar is served fresh again (the breaker closed).
    loop {
        let r = t.get(&format!("/avatar/{ada_md5}?s=128"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body == ada_128);
        if r.header("cache-control") == Some("public, max-age=300") {
            break;
        }
        assert!(
            back.elapsed() < RECOVERY,
            "public reads still degraded after the server was back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A new upload is processed and becomes visible on /avatar.
    upload(&t, cat, "p3.jpg", back + RECOVERY).await;
    let cat_128 = ready_128(&t, cat, back + RECOVERY).await;
    assert!(cat_128 != ada_128);
    loop {
        let r = t.get(&format!("/avatar/{cat_md5}?s=128"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        if r.body == cat_128 {
            assert_eq!(r.header("content-type"), Some("image/jpeg"));
            assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
            break;
        }
        assert!(
            back.elapsed() < RECOVERY,
            "the new avatar was not served within {RECOVERY:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "new avatar uploaded, processed and served {:?} after the server was back",
        back.elapsed()
    );

    pool.stop().await;
    drop(guard);
}
