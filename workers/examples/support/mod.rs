//! Shared by the latency examples (e2e_latency, reprocess_bench): percentiles and waiting
//! for an upload to be ready.

use std::time::Duration;

// The `moocard` binary's allocator (workers/src/main.rs): these examples measure memory and
// latency of what `moocard serve` runs, not of the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use moocard::{
    domain::{avatar::AvatarState, email::Email},
    App,
};

/// The `p` quantile (0..=1) of `v`, nearest rank.
pub fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Polls every 2 ms until `email`'s avatar is ready from `job`; fails if it failed.
pub async fn wait_ready(app: &App, email: &Email, job: &str) -> anyhow::Result<()> {
    loop {
        let rec = app.uploads.status(email).await?;
        if rec.job_id.as_deref() == Some(job) && rec.state == AvatarState::Ready {
            return Ok(());
        }
        anyhow::ensure!(
            rec.state != AvatarState::Failed,
            "job failed: {:?}",
            rec.error
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Uploads `image` once for each of `prefix{0..n}@bench.test`, then waits until all are ready.
pub async fn upload_all(app: &App, prefix: &str, n: usize, image: &[u8]) -> anyhow::Result<()> {
    let mut jobs = Vec::with_capacity(n);
    for i in 0..n {
        let email = Email::parse(&format!("{prefix}{i}@bench.test")).map_err(anyhow::Error::msg)?;
        let accepted = app.uploads.accept(&email, image, None).await?;
        jobs.push((email, accepted.job));
    }
    for (email, job) in &jobs {
        wait_ready(app, email, job).await?;
    }
    Ok(())
}
