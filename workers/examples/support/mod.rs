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

/// Whether `email`'s avatar is ready from `job`; an error if its job failed.
async fn is_ready(app: &App, email: &Email, job: &str) -> anyhow::Result<bool> {
    let rec = app.uploads.status(email).await?;
    anyhow::ensure!(
        rec.state != AvatarState::Failed,
        "job failed: {:?}",
        rec.error
    );
    Ok(rec.job_id.as_deref() == Some(job) && rec.state == AvatarState::Ready)
}

/// Polls every 2 ms until `email`'s avatar is ready from `job`; fails if it failed.
pub async fn wait_ready(app: &App, email: &Email, job: &str) -> anyhow::Result<()> {
    while !is_ready(app, email, job).await? {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// When the worker logged its last "avatar ready" (right after the commit that makes the
/// avatar `ready`), and how many it has logged.
struct Readies {
    count: u64,
    last: Option<std::time::Instant>,
}

static READIES: std::sync::Mutex<Readies> = std::sync::Mutex::new(Readies {
    count: 0,
    last: None,
});
static READY: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Notes the worker's "avatar ready" events (a tracing layer, nothing else subscribed).
struct ReadyLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ReadyLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct IsReady(bool);
        impl tracing::field::Visit for IsReady {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" && format!("{v:?}") == "avatar ready" {
                    self.0 = true;
                }
            }
        }
        let mut seen = IsReady(false);
        event.record(&mut seen);
        if seen.0 {
            let mut r = READIES.lock().unwrap_or_else(|e| e.into_inner());
            r.count += 1;
            r.last = Some(std::time::Instant::now());
            READY.notify_waiters();
        }
    }
}

/// Installs the layer that [`next_ready`] waits on. Call once, before the workers start.
#[allow(dead_code)] // reprocess_bench polls instead
pub fn watch_ready_events() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry().with(ReadyLayer);
    tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
}

/// How many "avatar ready" events there have been.
#[allow(dead_code)] // reprocess_bench polls instead
pub fn ready_count() -> u64 {
    READIES.lock().unwrap_or_else(|e| e.into_inner()).count
}

/// Waits until the worker reports an avatar ready after `seen` earlier ones, and `email`'s
/// avatar is ready from `job`; returns when that event came. For one upload at a time: the
/// status is read on each event and every 50 ms (which also catches a failed job), instead
/// of polling it every 2 ms, whose reads would load the 2 cores the pipeline runs on.
#[allow(dead_code)] // reprocess_bench polls instead
pub async fn next_ready(
    app: &App,
    email: &Email,
    job: &str,
    seen: u64,
) -> anyhow::Result<std::time::Instant> {
    loop {
        let notified = READY.notified();
        let (count, last) = {
            let r = READIES.lock().unwrap_or_else(|e| e.into_inner());
            (r.count, r.last)
        };
        let ready = is_ready(app, email, job).await?;
        if let (true, true, Some(at)) = (ready, count > seen, last) {
            return Ok(at);
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
    }
}

/// Uploads `image` once for each of `prefix{0..n}@bench.test`; returns each email and job.
async fn accept_all(
    app: &App,
    prefix: &str,
    n: usize,
    image: &[u8],
) -> anyhow::Result<Vec<(Email, String)>> {
    let mut jobs = Vec::with_capacity(n);
    for i in 0..n {
        let email = Email::parse(&format!("{prefix}{i}@bench.test")).map_err(anyhow::Error::msg)?;
        let accepted = app.uploads.accept(&email, image, None).await?;
        jobs.push((email, accepted.job));
    }
    Ok(jobs)
}

/// Uploads `image` once for each of `prefix{0..n}@bench.test`, then waits until the worker
/// has reported `n` more avatars ready, and checks each is (one status read apiece). Needs
/// [`watch_ready_events`]. Polling the status of each upload every 2 ms, as [`upload_all`]
/// does, takes a share of the 2 cores the burst's pipelines run on.
#[allow(dead_code)] // reprocess_bench polls instead
pub async fn burst(app: &App, prefix: &str, n: usize, image: &[u8]) -> anyhow::Result<()> {
    let seen = ready_count();
    let jobs = accept_all(app, prefix, n, image).await?;
    let mut last = (seen, std::time::Instant::now());
    while ready_count() < seen + n as u64 {
        let notified = READY.notified();
        if ready_count() >= seen + n as u64 {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        let count = ready_count();
        if count != last.0 {
            last = (count, std::time::Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            // No progress for a minute: a failed job never reports ready; say which.
            for (email, job) in &jobs {
                is_ready(app, email, job).await?;
            }
            anyhow::bail!("the burst stalled at {} of {n} ready", count - seen);
        }
    }
    for (email, job) in &jobs {
        anyhow::ensure!(
            is_ready(app, email, job).await?,
            "job {job} not ready after its event"
        );
    }
    Ok(())
}

/// Uploads `image` once for each of `prefix{0..n}@bench.test`, then waits until all are ready.
#[allow(dead_code)] // e2e_latency waits on events (`burst`)
pub async fn upload_all(app: &App, prefix: &str, n: usize, image: &[u8]) -> anyhow::Result<()> {
    let jobs = accept_all(app, prefix, n, image).await?;
    for (email, job) in &jobs {
        wait_ready(app, email, job).await?;
    }
    Ok(())
}
