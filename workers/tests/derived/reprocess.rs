//! `moocard reprocess`: exactly the missing variants, an atomic switch of the live set,
//! avatars without a master left served, and resumption after a worker is SIGKILLed.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use moocard::{
    config::Config,
    domain::{avatar::AvatarRecord, derivation::ExtraFormat},
    store::Staged,
    App, Migrations,
};
use moocard_worker::reprocess;
use serde_json::Value;

use super::{owner, ready, status, upload, Pool, TestApp};

fn bigger_with_webp(base: &Config) -> Config {
    let mut c = base.clone();
    c.limits.sizes = vec![1024, 512, 256, 128, 64, 32];
    c.avatars.formats = vec![ExtraFormat::Webp];
    c
}

/// (JPEG/PNG sizes, WebP sizes) of a status.
fn shape(v: &Value) -> (usize, usize) {
    let n = |x: &Value| x.as_object().map_or(0, |m| m.len());
    (n(&v["urls"]), n(&v["formats"]["webp"]))
}

#[tokio::test]
async fn reprocess_adds_only_missing_variants_and_switches_atomically() {
    let t = TestApp::new().await;
    let pool = Pool::start(&t.app.config, 2).await;
    for email in ["ada@example.org", "bob@example.org", "old@example.org"] {
        upload(&t, email, "photo-hubble.jpg").await;
    }
    let before = ready(&t, "ada@example.org").await;
    ready(&t, "bob@example.org").await;
    ready(&t, "old@example.org").await;
    pool.stop().await;
    // An avatar made before masters existed: no `made_by`, no master row.
    let old = owner(&t.app, "old@example.org");
    t.app
        .profiles
        .commit_avatar(&old, &Staged::default(), |mut rec: AvatarRecord| {
            let live = rec.current.as_mut()?;
            live.made_by = None;
            let g = live.generation;
            Some((rec, Some(g)))
        })
        .await
        .expect("legacy record");
    t.app
        .profiles
        .store()
        .delete_master(&old, 1)
        .await
        .expect("no master");
    let old_before = status(&t, "old@example.org").await;

    let config = bigger_with_webp(&t.app.config);
    let app = App::build(config.clone(), Migrations::Require)
        .await
        .expect("app");
    let dry = reprocess::run(&app, true).await.expect("dry run");
    assert_eq!(dry.plan.to_do.len(), 2);
    assert_eq!(dry.plan.not_rederivable, 1);
    assert!(dry.sample_cpu.is_some());
    let said = reprocess::report(&dry, true);
    assert!(
        said.contains("2 avatars would be re-derived") && said.contains("1 not re-derivable"),
        "{said}"
    );

    // Watch the live set while it switches: only the old or the whole new set is seen.
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (seen, stop, profiles) = (seen.clone(), stop.clone(), t.app.profiles.clone());
        let ada = owner(&t.app, "ada@example.org");
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(Some((rec, _))) = profiles
                    .read::<AvatarRecord>(&ada, moocard::domain::record::RecordKey::Avatar)
                    .await
                {
                    let v = serde_json::to_value(rec.status()).expect("json");
                    seen.lock().expect("lock").insert(shape(&v));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let pool = Pool::start(&config, 2).await;
    let done = reprocess::run(&app, false).await.expect("reprocess");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.await.expect("watcher");
    assert_eq!((done.done, done.failed), (2, 0));
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter().all(|s| *s == (5, 0) || *s == (6, 6)),
        "{seen:?}"
    );
    assert!(seen.contains(&(6, 6)));

    let after = status(&t, "ada@example.org").await;
    assert_eq!(shape(&after), (6, 6), "{after}");
    for size in ["32", "64", "128", "256", "512"] {
        assert_eq!(
            after["urls"][size], before["urls"][size],
            "kept, not re-made"
        );
    }
    for url in after["formats"]["webp"].as_object().expect("webp").values() {
        let id = url.as_str().expect("url").trim_start_matches("/images/");
        let img = app
            .profiles
            .store()
            .get_image(id)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(img.content_type, "image/webp");
    }
    let id = after["urls"]["1024"]
        .as_str()
        .expect("1024")
        .trim_start_matches("/images/");
    let img = app
        .profiles
        .store()
        .get_image(id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        image::load_from_memory(&img.bytes).expect("jpeg").width(),
        1024
    );
    assert_eq!(
        status(&t, "old@example.org").await["urls"],
        old_before["urls"],
        "left served"
    );

    let again = reprocess::run(&app, false).await.expect("idempotent");
    assert_eq!((again.plan.to_do.len(), again.plan.up_to_date), (0, 2));
    pool.stop().await;
}

/// A `moocard worker` process (the real binary) on `config`; SIGKILLed when dropped.
struct WorkerProcess(std::process::Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reprocess_resumes_after_its_worker_is_killed() {
    let t = TestApp::with_config(|c| c.queue.orphan_after_secs = 2).await;
    let pool = Pool::start(&t.app.config, 2).await;
    let emails: Vec<String> = (0..6).map(|i| format!("u{i}@example.org")).collect();
    for e in &emails {
        upload(&t, e, "big.jpg").await;
    }
    for e in &emails {
        ready(&t, e).await;
    }
    pool.stop().await;

    let config = bigger_with_webp(&t.app.config);
    let file = t.db.dir.path().join("reprocess.toml");
    std::fs::write(&file, toml::to_string(&config).expect("toml")).expect("write config");
    let log = t.db.dir.path().join("worker.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_moocard"));
    child
        .args([
            "--config",
            file.to_str().expect("path"),
            "worker",
            "--concurrency",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("worker log"));
    // The file is the whole config. The child would overlay our environment on it, and
    // the harness's own MOOCARD_TEST_MYSQL_URL reads as an unknown top-level key, so
    // the worker would exit at start-up.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MOOCARD_") || name == "DATABASE_URL" {
            child.env_remove(name);
        }
    }
    let mut worker = WorkerProcess(child.spawn().expect("worker process"));
    let app = Arc::new(
        App::build(config.clone(), Migrations::Require)
            .await
            .expect("app"),
    );
    let run = {
        let app = app.clone();
        tokio::spawn(async move { reprocess::run(&app, false).await })
    };
    // Kill the only worker once it has re-derived some avatars but not all.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut n = 0;
        for e in &emails {
            n += usize::from(shape(&status(&t, e).await) == (6, 6));
        }
        if n >= 1 {
            assert!(
                n < emails.len(),
                "the worker finished before it could be killed"
            );
            break;
        }
        let exited = worker.0.try_wait().expect("worker status");
        let logged = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            exited.is_none(),
            "the worker exited ({exited:?}): {}",
            logged()
        );
        assert!(
            Instant::now() < deadline,
            "no progress; worker log: {}",
            logged()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.0.kill().expect("SIGKILL");
    let _ = worker.0.wait();
    // Another worker takes over the killed one's jobs; the command finishes the run.
    let pool = Pool::start(&config, 2).await;
    let summary = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("finishes")
        .expect("join")
        .expect("reprocess");
    assert_eq!(summary.failed, 0);
    for e in &emails {
        assert_eq!(shape(&status(&t, e).await), (6, 6), "{e}");
    }
    let again = reprocess::run(&app, true).await.expect("rescan");
    assert_eq!((again.plan.to_do.len(), again.plan.up_to_date), (0, 6));
    pool.stop().await;
}
