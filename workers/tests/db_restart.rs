//! MySQL/MariaDB restarted while uploads flow: every accepted upload still ends `ready`.
//!
//! It restarts the server named by `MOOCARD_TEST_MYSQL_URL`, so it is `#[ignore]`d and
//! run alone by `.ci/run` (`--ignored --test-threads=1`); it fails when the variable is
//! missing rather than passing without having run.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::http::Method;
use moocard::{App, Migrations};
use support::{fixture, TestApp};

fn mysqladmin(args: &[&str]) -> bool {
    std::process::Command::new("mysqladmin")
        .args([
            "--host=127.0.0.1",
            "--port=3306",
            "--user=root",
            "--connect-timeout=2",
        ])
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn restart_mariadb() {
    assert!(mysqladmin(&["shutdown"]), "mysqladmin shutdown failed");
    let down = Instant::now();
    while mysqladmin(&["ping"]) {
        assert!(
            down.elapsed() < Duration::from_secs(60),
            "server did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stay down a moment so requests and workers really see the outage.
    std::thread::sleep(Duration::from_secs(2));
    let status = std::process::Command::new("start-stop-daemon")
        .args([
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ])
        .status()
        .expect("start-stop-daemon");
    assert!(status.success());
    let up = Instant::now();
    while !mysqladmin(&["ping"]) {
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "server did not come back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts the MySQL server; run alone with --ignored"]
async fn database_restart_under_load() {
    assert!(
        std::env::var(support::MYSQL_ENV).is_ok_and(|v| !v.is_empty()),
        "set {} to run this test",
        support::MYSQL_ENV
    );
    let t = TestApp::with_config(|c| {
        c.queue.uploads_per_window = 1000;
        c.queue.orphan_after_secs = 5;
        c.database.acquire_timeout_secs = 2;
    })
    .await;
    let worker = App::build((*t.app.config).clone(), Migrations::Require)
        .await
        .expect("worker app");
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let pool = tokio::spawn(async move {
        moocard_worker::pool::run_pool(&worker, 2, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await
    });

    let image = fixture("images/orient-1-le.jpg");
    let mut accepted = Vec::new();
    let mut refused = 0;
    let mut restart = None;
    for i in 0..40 {
        let email = format!("u{i}@example.org");
        let tok = t.token(&email);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let r = t
                .call(
                    Method::PUT,
                    &format!("/v1/profiles/{email}/avatar"),
                    Some(&tok),
                    Some(("image/jpeg", image.clone())),
                )
                .await;
            match r.status.as_u16() {
                202 => {
                    accepted.push((
                        email.clone(),
                        tok.clone(),
                        r.json()["job"].as_str().expect("job").to_owned(),
                    ));
                    break;
                }
                // The outage must surface as a clear JSON 503, never a crash or a hang.
                503 | 500 => {
                    let v = r.json();
                    assert!(v["code"].is_string() && v["message"].is_string(), "{v}");
                    refused += 1;
                }
                other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
            }
            assert!(Instant::now() < deadline, "uploads never recovered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if i == 8 {
            restart = Some(tokio::task::spawn_blocking(restart_mariadb));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    restart.expect("restarted").await.expect("restart ok");

    for (email, tok, job) in &accepted {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = t
                .get(&format!("/v1/profiles/{email}/avatar"), Some(tok))
                .await;
            if r.status == 200 {
                let v = r.json();
                if v["state"] == "ready" && v["job"] == job.as_str() {
                    break;
                }
                assert_ne!(v["state"], "failed", "{email}: {v}");
            }
            assert!(Instant::now() < deadline, "{email} never became ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let _ = stop.send(true);
    pool.await.expect("join").expect("pool stopped cleanly");
    eprintln!(
        "accepted {} uploads, {refused} refused with 503 during the outage",
        accepted.len()
    );
}
