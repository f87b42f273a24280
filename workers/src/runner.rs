//! The worker runner: drains [`AVATAR_QUEUE`] with apalis workers, on SQLite or MySQL.
//!
//! apalis provides fetch, lock, ack and heartbeat. The runner adds what apalis rc.8/rc.9
//! leaves out or gets wrong for us (DEPENDENCIES.md):
//! - a panic boundary and a per-job timeout around the handler, both retried as transient;
//! - permanent errors acked `Killed` (no retry); transient ones retried with a durable
//!   exponential backoff written to `jobs.run_at`, up to `max_attempts`;
//! - a reaper on a timer ([`JobQueue::reap_orphans`]), since MySQL reclaim never fires;
//! - supervision: a heartbeat or fetch error ends an apalis worker, so we start a new
//!   incarnation (new name: apalis refuses a name seen within `keep_alive`) after handing
//!   the dead one's jobs back;
//! - graceful shutdown that leaves nothing `Queued` (apalis keeps a stopped worker's
//!   prefetched jobs locked until the reclaim timeout).

mod service;

use std::{
    collections::HashSet,
    future::Future,
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use apalis::layers::limit::ConcurrencyLimitLayer;
use apalis_core::worker::{builder::WorkerBuilder, context::WorkerContext};
use apalis_mysql::MySqlStorage;
use apalis_sqlite::SqliteStorage;
use moocard::{
    db::DbPool,
    jobs::{JobQueue, ProcessAvatar, AVATAR_QUEUE},
};
use tokio::sync::watch;

use service::{lock, HandlerService, Stoppable};

/// How the runner works the queue.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Jobs handled at once by this process.
    pub concurrency: usize,
    /// Longest a job may run; overrun counts as a transient failure. Also bounds how long a
    /// graceful shutdown waits for in-flight jobs.
    pub job_timeout: Duration,
    /// Unique per process (`workers.id`, at most 32 characters: MySQL's column is 36 and
    /// restarts add a suffix). [`default_worker_name`] gives host + pid + random.
    pub worker_name: String,
    /// How often this process runs the orphan reaper and refreshes the depth gauge.
    pub reap_interval: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            job_timeout: Duration::from_secs(120),
            worker_name: default_worker_name(),
            reap_interval: Duration::from_secs(5),
        }
    }
}

/// `host-pid-random`, at most 28 characters.
pub fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(12)
        .collect();
    // RandomState is seeded from the OS: enough to tell apart two processes with one pid.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{host}-{}-{:06x}", std::process::id(), random & 0xff_ffff)
}

/// What a handler learns about the job besides its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    /// The apalis job id (as returned by `JobQueue::enqueue`).
    pub job_id: String,
    /// 1 on the first run; grows with retries and with reclaims after a worker died.
    pub attempt: u32,
    /// The job's attempt budget.
    pub max_attempts: u32,
}

impl JobContext {
    /// Whether a transient error now ends the job: the handler should then record the
    /// failure in the domain itself, as for a permanent error.
    pub fn is_final_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// How a job failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Retrying cannot help (bad image, stale generation...). The handler has already
    /// recorded the failure in the domain; the job is acked `Killed` and never retried.
    #[error("permanent: {0}")]
    Permanent(String),
    /// May succeed later (database busy, ...): retried with backoff up to `max_attempts`.
    #[error("transient: {0}")]
    Transient(String),
}

/// Runs workers for [`ProcessAvatar`] jobs until `shutdown` resolves, then stops fetching,
/// lets in-flight jobs finish (each bounded by `job_timeout`), hands every fetched but
/// unstarted job back, and returns. Errors only for invalid options: database trouble is
/// logged and the worker restarted.
pub async fn run<H, Fut>(
    queue: &JobQueue,
    opts: RunnerOptions,
    handler: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()>
where
    H: Fn(ProcessAvatar, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    anyhow::ensure!(opts.concurrency >= 1, "concurrency must be at least 1");
    anyhow::ensure!(
        !opts.worker_name.is_empty() && opts.worker_name.len() <= 32,
        "worker name must be 1..=32 bytes (MySQL workers.id is varchar(36)), got {:?}",
        opts.worker_name
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    // One pass before apalis starts: its own start-up reclaim (SQLite) would otherwise take
    // the orphans first, with its coarser rules (a never-started job costs an attempt).
    if let Err(e) = queue.reap_orphans().await {
        tracing::warn!(error = %e, "orphan reaper failed");
    }
    let reaper = tokio::spawn(reap_loop(
        queue.clone(),
        opts.reap_interval,
        stop_rx.clone(),
    ));
    tracing::info!(worker = %opts.worker_name, queue = AVATAR_QUEUE,
        concurrency = opts.concurrency, "job runner started");

    let mut incarnation = 0u32;
    loop {
        let name = if incarnation == 0 {
            opts.worker_name.clone()
        } else {
            format!("{}-{incarnation}", opts.worker_name)
        };
        match run_incarnation(queue, &opts, &name, handler.clone(), stop_rx.clone()).await {
            Ok(()) => break,
            Err(e) => {
                // The worker and its in-flight jobs are gone (dropped and aborted): hand
                // them back now instead of waiting for the reaper.
                tracing::error!(worker = %name, error = %format!("{e:#}"), "worker failed; restarting");
                if let Err(e) = queue.requeue_worker_jobs(&name).await {
                    tracing::warn!(worker = %name, error = %e, "could not requeue jobs");
                }
                let _ = queue.retire_worker(&name).await;
            }
        }
        incarnation += 1;
        let pause = Duration::from_millis(250 << incarnation.min(7));
        let mut rx = stop_rx.clone();
        if tokio::time::timeout(pause, rx.wait_for(|s| *s))
            .await
            .is_ok()
        {
            break;
        }
    }
    signal.abort();
    reaper.abort();
    tracing::info!(worker = %opts.worker_name, "job runner stopped");
    Ok(())
}

async fn reap_loop(queue: JobQueue, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match queue.reap_orphans().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "re-enqueued jobs of dead workers"),
            Err(e) => tracing::warn!(error = %e, "orphan reaper failed"),
        }
        if let Ok(depth) = queue.depth().await {
            metrics::gauge!("moocard_queue_depth").set(depth as f64);
        }
        if tokio::time::timeout(every, stop.wait_for(|s| *s))
            .await
            .is_ok()
        {
            return;
        }
    }
}

/// One apalis worker named `name`. `Ok` after a graceful stop, `Err` if it died.
async fn run_incarnation<H, Fut>(
    queue: &JobQueue,
    opts: &RunnerOptions,
    name: &str,
    handler: H,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()>
where
    H: Fn(ProcessAvatar, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    let handed_out = Arc::new(Mutex::new(HashSet::new()));
    let service = HandlerService {
        handler,
        queue: queue.clone(),
        job_timeout: opts.job_timeout,
        handed_out: handed_out.clone(),
    };
    // The same code for both storages; a macro because apalis' worker bounds are too
    // long to spell out for a generic function.
    macro_rules! drive {
        ($storage:expr) => {{
            let slot = Arc::new(Mutex::new(None));
            let backend = Stoppable {
                inner: $storage,
                slot: slot.clone(),
                handed_out: handed_out.clone(),
            };
            // The limit is outside apalis' lock/ack layer, so a permit is held until the
            // ack, and the fetch stream is only polled when a slot is free: nothing is
            // fetched that could not start at once.
            let worker = WorkerBuilder::new(name)
                .backend(backend)
                .layer(ConcurrencyLimitLayer::new(opts.concurrency))
                .build(service);
            let mut ctx = WorkerContext::new::<()>(name);
            let control = ctx.clone();
            let run = worker.run_with_ctx(&mut ctx);
            finish(queue, opts, name, run, control, &slot, &handed_out, stop).await
        }};
    }
    match queue.pool() {
        DbPool::Sqlite(pool) => {
            drive!(SqliteStorage::new_with_config(pool, &queue.apalis_config()))
        }
        DbPool::MySql(pool) => {
            drive!(MySqlStorage::new_with_config(pool, &queue.apalis_config()))
        }
    }
}

/// Drives a started worker until it fails or `stop` fires, then shuts it down cleanly.
#[allow(clippy::too_many_arguments)]
async fn finish<S>(
    queue: &JobQueue,
    opts: &RunnerOptions,
    name: &str,
    run: impl Future<Output = Result<(), apalis_core::error::WorkerError>>,
    control: WorkerContext,
    slot: &Mutex<Option<S>>,
    handed_out: &Mutex<HashSet<String>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Boxed, not stack-pinned: dropping it must really drop the in-flight jobs (below).
    let mut run = Box::pin(run);
    tokio::select! {
        res = &mut run => {
            res.context("apalis worker stopped")?;
            anyhow::bail!("apalis worker ended without being stopped");
        }
        _ = stop.wait_for(|s| *s) => {}
    }
    tracing::info!(worker = %name, "stopping: finishing in-flight jobs");
    // `stop` fails only before apalis has started the worker: wait for that first.
    while control.stop().is_err() {
        tokio::select! {
            res = &mut run => return res.context("apalis worker stopped"),
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    // No more fetching: drop the stream (and any fetch transaction) now, then release what
    // was fetched but not handed to a job, while in-flight jobs finish.
    drop(lock(slot).take());
    let skip: Vec<String> = lock(handed_out).iter().cloned().collect();
    if let Err(e) = queue.release_queued(name, &skip).await {
        tracing::warn!(worker = %name, error = %e, "could not release prefetched jobs");
    }
    let grace = opts.job_timeout + Duration::from_secs(5);
    let finished = tokio::time::timeout(grace, &mut run).await;
    // A job that never got to start is `Queued` still: release it too.
    let _ = queue.release_queued(name, &[]).await;
    let clean = match finished {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(worker = %name, error = %e, "worker ended with an error");
            false
        }
        Err(_) => {
            tracing::warn!(worker = %name, "in-flight jobs outlived the shutdown grace");
            false
        }
    };
    if !clean {
        // Dropping `run` below aborts what is left; hand those jobs back right away.
        drop(run);
        if let Err(e) = queue.requeue_worker_jobs(name).await {
            tracing::warn!(worker = %name, error = %e, "could not requeue jobs");
        }
    }
    // Nothing should be left; if something is, the next reaper pass takes it.
    let _ = queue.retire_worker(name).await;
    Ok(())
}
