//! Issue 15's reprocess run on SQLite: N avatars uploaded and processed (masters kept), then
//! `moocard reprocess` adds a format to all of them through a separate `moocard worker`
//! process, both SIGKILLed part-way and restarted, while one user at a time uploads and
//! waits for ready. Compares the users' upload-to-ready latency with the same measurement
//! taken before the reprocess (idle), and checks that nothing is left to re-derive.
//!
//! ```sh
//! cargo build --release -p moocard-worker --features avif-asm --bin moocard --example reprocess_bench
//! target/release/examples/reprocess_bench N target/release/moocard [FORMAT=webp] [KILL_AFTER_S=60]
//! ```

mod support;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use moocard::{
    config::Config,
    domain::{derivation::ExtraFormat, email::Email},
    App, Migrations,
};
use support::{pct, upload_all, wait_ready};

/// One user upload, accept to ready, in ms.
async fn user_upload(app: &App, i: usize, image: &[u8]) -> anyhow::Result<f64> {
    let email = Email::parse(&format!("user{i}@bench.test")).map_err(anyhow::Error::msg)?;
    let t = Instant::now();
    let accepted = app.uploads.accept(&email, image, None).await?;
    wait_ready(app, &email, &accepted.job).await?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

fn spawn(bin: &Path, config: &Path, args: &[&str]) -> anyhow::Result<Child> {
    Ok(Command::new(bin)
        .args(["--config", &config.display().to_string()])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?)
}

fn kill(child: &mut Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let bin = Path::new(args.get(2).map_or("target/release/moocard", String::as_str)).to_owned();
    let format = ExtraFormat::parse(args.get(3).map_or("webp", String::as_str))
        .ok_or_else(|| anyhow::anyhow!("FORMAT is webp or avif"))?;
    let kill_after = Duration::from_secs(args.get(4).map_or(Ok(60), |s| s.parse())?);
    let seed_image = std::fs::read("fixtures/images/big.jpg")?;
    let user_image = std::fs::read("fixtures/images/photo-hubble.jpg")?;

    let dir = tempfile::tempdir()?;
    let mut config = Config::load(None)?;
    config.data_dir = dir.path().to_owned();
    config.database.url = format!("sqlite://{}/moocard.db", dir.path().display());
    config.queue.uploads_per_window = 1_000_000;
    config.queue.max_depth = 1_000_000;
    // The worker pool is the limit, not the enqueue rate (default 20/s).
    config.reprocess.rate_per_sec = 1000.0;
    let seed_config = config.clone().validate()?;

    // 1. Seed: N real uploads through the real pipeline, two embedded workers.
    let t = Instant::now();
    let app = std::sync::Arc::new(App::build(seed_config, Migrations::Run).await?);
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let worker = app.clone();
    let pool = tokio::spawn(async move {
        moocard_worker::pool::run_pool(&worker, 2, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await
    });
    upload_all(&app, "seed", n, &seed_image).await?;
    let _ = stop.send(true);
    pool.await??;
    app.pool.close().await;
    let seed_s = t.elapsed().as_secs_f64();
    eprintln!("seeded {n} avatars in {seed_s:.0} s");

    // From here on the configuration wants the extra format.
    config.avatars.formats = vec![format];
    let config = config.validate()?;
    let file = dir.path().join("moocard.toml");
    std::fs::write(&file, toml::to_string(&config)?)?;
    let app = App::build(config, Migrations::Require).await?;
    let mut worker = spawn(&bin, &file, &["worker", "--concurrency", "2"])?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 2. Idle: user uploads one after another, nothing else running.
    let mut idle = Vec::new();
    for i in 0..20 {
        idle.push(user_upload(&app, i, &user_image).await?);
    }

    // 3. Reprocess with users uploading meanwhile; both processes killed at kill_after.
    let t = Instant::now();
    let mut reprocess = spawn(&bin, &file, &["reprocess"])?;
    let mut during = Vec::new();
    let mut killed = false;
    let mut i = 100;
    loop {
        if !killed && t.elapsed() >= kill_after {
            kill(&mut reprocess);
            kill(&mut worker);
            killed = true;
            eprintln!(
                "SIGKILLed worker and reprocess at {:.0} s",
                t.elapsed().as_secs_f64()
            );
            worker = spawn(&bin, &file, &["worker", "--concurrency", "2"])?;
            reprocess = spawn(&bin, &file, &["reprocess"])?;
        }
        if let Some(status) = reprocess.try_wait()? {
            anyhow::ensure!(status.success(), "reprocess exited with {status}");
            break;
        }
        during.push(user_upload(&app, i, &user_image).await?);
        i += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reprocess_s = t.elapsed().as_secs_f64();
    let mut report = String::new();
    if let Some(mut out) = reprocess.stdout.take() {
        use std::io::Read;
        out.read_to_string(&mut report)?;
    }
    let left = moocard_worker::reprocess::scan(&app).await?;
    kill(&mut worker);

    let (i50, d50) = (pct(&idle, 0.5), pct(&during, 0.5));
    println!(
        "avatars={n} format={} seed_s={seed_s:.0} reprocess_s={reprocess_s:.0} per_s={:.1} \
         killed_at_s={} left_to_do={} not_rederivable={} user_ready_ms idle p50={i50:.0} p99={:.0} \
         (n={}) during p50={d50:.0} p99={:.0} (n={}) ratio_p50={:.2}\nreprocess said: {}",
        format.extension(),
        n as f64 / reprocess_s,
        kill_after.as_secs(),
        left.to_do.len(),
        left.not_rederivable,
        pct(&idle, 0.99),
        idle.len(),
        pct(&during, 0.99),
        during.len(),
        d50 / i50,
        report.trim(),
    );
    Ok(())
}
