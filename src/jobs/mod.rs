//! The durable avatar job queue: the payload contract shared with the worker and a
//! [`JobQueue`] that hides apalis and the SQLite-or-MySQL choice from the server.
//!
//! Jobs live in apalis' own `jobs`/`workers` tables (apalis-sqlite / apalis-mysql rc.8) so
//! apalis workers can fetch them. Everything apalis gets wrong for us is fixed here with
//! SQL of our own against those tables (DEPENDENCIES.md Q1, pitfalls 2-8):
//! - orphan reclaim never fires on MySQL, so [`JobQueue::reap_orphans`] is ours, for both;
//! - the MySQL migrations need MySQL 8's collation, so [`JobQueue::migrate`] patches them;
//! - durable retry backoff, releasing a stopped worker's prefetched jobs, depth and counts;
//! - retention: apalis never deletes finished jobs or dead workers (`retention.rs`).
//!
//! Delivery is at least once: a handler may see the same job again after a crash or a
//! reclaim, so handlers must be idempotent (a stale `generation` is a no-op).

mod migrate;
mod retention;
mod sql;

use std::time::Duration;

use apalis_core::{
    backend::poll_strategy::{StrategyBuilder, StreamStrategy},
    task::{builder::TaskBuilder, task_id::TaskId},
};
use apalis_sql::{config::Config, context::SqlContext};
use serde::{Deserialize, Serialize};

use crate::{crop::Crop, db::DbPool};
use sql::OrphanScope;

/// The apalis queue (`jobs.job_type`) avatar jobs are pushed to. Versioned so that a future
/// incompatible payload can get its own queue while old jobs drain.
pub const AVATAR_QUEUE: &str = "moocard.avatar.v1";

/// Process one uploaded avatar. Job rows are plaintext JSON, so this never carries an email or
/// image bytes: only opaque ids; the worker reads the staged upload by `upload_id`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ProcessAvatar {
    /// Opaque hex id of the staged upload.
    pub upload_id: String,
    /// Opaque hex owner key (never an email or an email hash).
    pub owner: String,
    /// Avatar generation this upload produces; an older generation than the owner's current
    /// one makes the job a no-op (idempotency under at-least-once delivery).
    pub generation: i64,
    /// Optional crop rectangle in oriented source pixels.
    #[serde(default)]
    pub crop: Option<Crop>,
    /// **Issue 15**: derive the missing variants of `generation` again from its kept
    /// master (`moocard reprocess`) instead of processing an upload (`upload_id` empty).
    /// (Left out of upload jobs' JSON, so their rows are as before.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rederive: bool,
}

/// Queue priority of upload jobs; re-derivations get [`REDERIVE_PRIORITY`], lower, so
/// workers always take waiting uploads first (apalis fetches by `priority DESC`).
pub const UPLOAD_PRIORITY: i32 = 0;
/// Queue priority of `moocard reprocess` jobs (below uploads).
pub const REDERIVE_PRIORITY: i32 = -10;

/// The id of an enqueued job (a ULID string, `jobs.id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobId(pub String);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Queue tuning shared by the server (enqueue side) and the workers.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// How often a worker refreshes `workers.last_seen`.
    pub keep_alive: Duration,
    /// A job whose worker has not been seen for this long is re-enqueued by the reaper.
    /// Must be comfortably larger than `keep_alive` (a few missed beats): heartbeats are
    /// stored in whole seconds, so a worker can look up to 1 s older than it is.
    pub orphan_after: Duration,
    /// Jobs fetched per poll. Small, because fetched jobs are locked (`Queued`) to this
    /// worker and another worker cannot take them.
    pub buffer_size: usize,
    /// How often an idle worker polls; bounds upload-to-start latency.
    pub poll_interval: Duration,
    /// How often a worker polls while busy: within `busy_window` of starting a job. Jobs
    /// come in bursts, so this is when another is likely; idle workers cost one query per
    /// `poll_interval`, busy ones a few more (issue 14: adaptive polling).
    pub busy_poll_interval: Duration,
    /// How long after starting a job a worker keeps polling at `busy_poll_interval`.
    pub busy_window: Duration,
    /// Attempts before a job that keeps failing transiently is killed.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt (durable: stored in `jobs.run_at`).
    pub retry_base: Duration,
    /// Upper bound of the retry delay.
    pub retry_max: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(5),
            orphan_after: Duration::from_secs(30),
            buffer_size: 1,
            poll_interval: Duration::from_millis(100),
            busy_poll_interval: Duration::from_millis(10),
            busy_window: Duration::from_secs(10),
            max_attempts: 5,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
        }
    }
}

/// Errors of the queue layer.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database did not answer or rejected a statement.
    #[error("queue database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying apalis' schema failed.
    #[error("queue migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The payload could not be serialized.
    #[error("job payload could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Number of jobs of the queue per apalis status, for metrics and the heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Waiting to be fetched.
    pub pending: u64,
    /// Fetched into a worker's buffer, not started yet.
    pub queued: u64,
    /// Being processed.
    pub running: u64,
    /// Finished successfully.
    pub done: u64,
    /// Failed transiently, waiting for a retry (`run_at`).
    pub failed: u64,
    /// Failed permanently or out of attempts: never retried.
    pub killed: u64,
}

/// Where a job is in its life (apalis' status column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to be fetched.
    Pending,
    /// Fetched by a worker, not started.
    Queued,
    /// Being processed.
    Running,
    /// Finished successfully.
    Done,
    /// Failed transiently; will be retried.
    Failed,
    /// Failed for good (permanent error or out of attempts).
    Killed,
}

/// How a job ended, in apalis' terms (see [`JobQueue::finish_job`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    /// Succeeded.
    Done,
    /// Failed transiently; fetched again once `run_at` passes.
    Failed,
    /// Failed permanently or out of attempts.
    Killed,
}

/// The avatar job queue over the shared database pool.
#[derive(Debug, Clone)]
pub struct JobQueue {
    pool: DbPool,
    cfg: QueueConfig,
    /// Bumped after every enqueue: a worker pool in the same process (`serve`'s embedded
    /// workers share this queue) fetches at once instead of waiting for its next poll.
    wake: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// When this process last started a job (ms since `epoch`; 0 = never): the poll
    /// stream polls at `busy_poll_interval` for `busy_window` after it.
    last_start: std::sync::Arc<std::sync::atomic::AtomicU64>,
    epoch: std::time::Instant,
}

impl JobQueue {
    /// Wraps `pool`; no I/O happens until a method is called.
    pub fn new(pool: DbPool, cfg: QueueConfig) -> Self {
        let (wake, _) = tokio::sync::watch::channel(0);
        Self {
            pool,
            cfg,
            wake: std::sync::Arc::new(wake),
            last_start: std::sync::Arc::default(),
            epoch: std::time::Instant::now(),
        }
    }

    /// Records that a worker of this process started a job (the runner calls it).
    pub fn note_job_started(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_start
            .store(ms.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The wait before the next poll: short while busy, `poll_interval` when idle.
    fn next_poll(&self) -> Duration {
        let last = self.last_start.load(std::sync::atomic::Ordering::Relaxed);
        let busy =
            last != 0 && self.epoch.elapsed() < Duration::from_millis(last) + self.cfg.busy_window;
        if busy {
            self.cfg.busy_poll_interval.min(self.cfg.poll_interval)
        } else {
            self.cfg.poll_interval
        }
    }

    /// The pool the queue lives in.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The queue tuning.
    pub fn config(&self) -> &QueueConfig {
        &self.cfg
    }

    /// Creates or upgrades apalis' tables. Idempotent, safe to run concurrently (sqlx takes
    /// a migration lock), and tolerant of the app's own rows in the shared `_sqlx_migrations`.
    pub async fn migrate(&self) -> Result<(), QueueError> {
        migrate::run(&self.pool).await
    }

    /// Pushes one avatar job and returns its id.
    pub async fn enqueue(&self, job: ProcessAvatar) -> Result<JobId, QueueError> {
        let priority = if job.rederive {
            REDERIVE_PRIORITY
        } else {
            UPLOAD_PRIORITY
        };
        self.enqueue_at(job, priority).await
    }

    /// [`Self::enqueue`] at an explicit queue priority (larger runs sooner).
    pub async fn enqueue_at(&self, job: ProcessAvatar, priority: i32) -> Result<JobId, QueueError> {
        let bytes = serde_json::to_vec(&job)?;
        let id = ulid::Ulid::new();
        let max_attempts = i32::try_from(self.cfg.max_attempts).unwrap_or(i32::MAX);
        // Same row format apalis' own sink writes (JSON bytes, its metadata column).
        match &self.pool {
            DbPool::Sqlite(pool) => {
                let task = TaskBuilder::new(bytes)
                    .with_task_id(TaskId::new(id))
                    .with_ctx(
                        SqlContext::new()
                            .with_max_attempts(max_attempts)
                            .with_priority(priority),
                    )
                    .build();
                apalis_sqlite::sink::push_tasks(pool.clone(), self.apalis_config(), vec![task])
                    .await
                    .map_err(unshare)?;
            }
            DbPool::MySql(pool) => {
                let task = TaskBuilder::new(bytes)
                    .with_task_id(TaskId::new(id))
                    .with_ctx(
                        SqlContext::new()
                            .with_max_attempts(max_attempts)
                            .with_priority(priority),
                    )
                    .build();
                apalis_mysql::sink::push_tasks(pool.clone(), self.apalis_config(), vec![task])
                    .await
                    .map_err(unshare)?;
            }
        }
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        Ok(JobId(id.to_string()))
    }

    /// Jobs not finished yet: pending, queued, running, and failed ones awaiting a retry.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        Ok(sql::depth(&self.pool, AVATAR_QUEUE).await?)
    }

    /// Checks that the database answers and the queue table exists (`__heartbeat__`).
    pub async fn ping(&self) -> Result<(), QueueError> {
        Ok(sql::ping(&self.pool).await?)
    }

    /// The state of one job, `None` if there is no such job. Lets the domain reconcile an
    /// upload whose job was killed without its handler recording it (a worker that died on
    /// the job's last attempt).
    pub async fn state(&self, id: &JobId) -> Result<Option<JobState>, QueueError> {
        Ok(sql::status_of(&self.pool, &id.0)
            .await?
            .map(|s| match s.as_str() {
                "Pending" => JobState::Pending,
                "Queued" => JobState::Queued,
                "Running" => JobState::Running,
                "Done" => JobState::Done,
                "Failed" => JobState::Failed,
                _ => JobState::Killed,
            }))
    }

    /// Jobs per status, for metrics.
    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        Ok(sql::counts(&self.pool, AVATAR_QUEUE, false).await?)
    }

    /// [`Self::counts`] without the finished statuses (`done` and `killed` are 0): cheap
    /// enough for every `/metrics` scrape.
    pub async fn live_counts(&self) -> Result<QueueCounts, QueueError> {
        Ok(sql::counts(&self.pool, AVATAR_QUEUE, true).await?)
    }

    /// Avatar jobs that ended `Killed` (attempts used up, possibly by the reaper after the
    /// worker kept dying) within `within`, so the domain can mark them failed.
    pub async fn killed_since(&self, within: Duration) -> Result<Vec<ProcessAvatar>, QueueError> {
        let rows = sql::killed_since(&self.pool, AVATAR_QUEUE, within).await?;
        Ok(rows
            .iter()
            .filter_map(|job| serde_json::from_slice(job).ok())
            .collect())
    }

    /// Our orphan reaper: jobs `Running`/`Queued` under a worker whose heartbeat is older
    /// than `orphan_after` go back to `Pending` (a `Running` one with `attempts + 1`, or
    /// `Killed` when that exhausts its attempts, so a job that crashes its worker cannot
    /// loop forever). Returns the number of jobs moved. Needed because apalis-mysql rc.8's
    /// reclaim compares a TIMESTAMP numerically and never fires (DEPENDENCIES.md pitfall 2).
    pub async fn reap_orphans(&self) -> Result<u64, QueueError> {
        let scope = OrphanScope::StaleFor(self.cfg.orphan_after);
        Ok(sql::requeue_orphans(&self.pool, AVATAR_QUEUE, &scope).await?)
    }

    /// Re-enqueues what one named worker left behind, as the reaper would; for the runner when a
    /// worker incarnation died with its in-flight jobs aborted.
    pub async fn requeue_worker_jobs(&self, worker: &str) -> Result<u64, QueueError> {
        let scope = OrphanScope::Worker(worker.to_owned());
        Ok(sql::requeue_orphans(&self.pool, AVATAR_QUEUE, &scope).await?)
    }

    /// Puts jobs that `worker` fetched but never started back to `Pending` right away
    /// (apalis leaves them `Queued` until the reclaim timeout). `skip` lists job ids that
    /// were handed to the worker and may still be starting: those are left alone.
    pub async fn release_queued(&self, worker: &str, skip: &[String]) -> Result<u64, QueueError> {
        Ok(sql::release_queued(&self.pool, worker, skip, None).await?)
    }

    /// Puts one job `worker` fetched but could not start back to `Pending`.
    pub async fn release_job(&self, job_id: &str, worker: &str) -> Result<bool, QueueError> {
        Ok(sql::release_queued(&self.pool, worker, &[], Some(job_id)).await? > 0)
    }

    /// Records a job's end when apalis' own ack failed (e.g. a MySQL lock wait timeout),
    /// so the job does not stay `Running` under a live worker, where no reaper looks.
    /// Only applies while `worker` still holds the job `Running`; returns whether it did.
    pub async fn finish_job(
        &self,
        job_id: &str,
        worker: &str,
        status: FinalStatus,
        attempts: u32,
    ) -> Result<bool, QueueError> {
        let status = match status {
            FinalStatus::Done => "Done",
            FinalStatus::Failed => "Failed",
            FinalStatus::Killed => "Killed",
        };
        Ok(sql::finish_running(&self.pool, job_id, worker, status, attempts).await? > 0)
    }

    /// Marks a worker as long gone so anything it still holds is reapable at once.
    pub async fn retire_worker(&self, worker: &str) -> Result<(), QueueError> {
        Ok(sql::retire_worker(&self.pool, worker).await?)
    }

    /// Delays the next attempt of a job that failed transiently: exponential backoff from
    /// `retry_base`, capped at `retry_max`. Written to `jobs.run_at`, which apalis' fetch
    /// honours, so the backoff survives restarts and does not hold a worker slot.
    pub async fn schedule_retry(&self, job_id: &str, attempt: u32) -> Result<(), QueueError> {
        let delay = retry_delay(&self.cfg, attempt);
        Ok(sql::set_run_at_in(&self.pool, job_id, delay).await?)
    }

    /// apalis storage configuration for a worker of this queue. Built fresh on every call:
    /// apalis' `MultiStrategy` drains its strategies when a fetcher starts, so a config must
    /// not be shared between two workers.
    pub fn apalis_config(&self) -> Config {
        // A plain interval: apalis' default interval-with-backoff never sees its fetch
        // count updated (rc.8 fetchers don't set `prev_count`) and so backs off to 60 s
        // even under load, which would make upload-to-ready latency a minute.
        // Plus an in-process wake-up, so a job enqueued by this process is fetched at once
        // (a separate worker process still polls). One stream that yields on a wake-up or
        // after `poll_interval`, not two strategies: apalis' race makes every losing
        // strategy skip its next item, so each interval tick swallowed the next wake-up
        // and uploads waited for a tick (measured: upload->ready 100 ms at a 50 ms poll for
        // a 65 ms pipeline; 72 ms once the interval could not tick between uploads).
        let mut woken = self.wake.subscribe();
        woken.mark_unchanged();
        let queue = self.clone();
        let ticks = Box::pin(futures::stream::unfold(woken, move |mut rx| {
            let every = queue.next_poll();
            async move {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // The queue is gone: poll on the interval alone.
                            tokio::time::sleep(every).await;
                        }
                    }
                    () = tokio::time::sleep(every) => {}
                }
                Some(((), rx))
            }
        }));
        let strategy = StrategyBuilder::new()
            .apply(StreamStrategy::new(ticks))
            .build();
        // apalis' own reclaim (SQLite only; broken on MySQL) stays as a backstop behind ours.
        Config::new(AVATAR_QUEUE)
            .with_poll_interval(strategy)
            .set_buffer_size(self.cfg.buffer_size.max(1))
            .set_keep_alive(self.cfg.keep_alive)
            .set_reenqueue_orphaned_after(self.cfg.orphan_after * 2)
    }
}

/// Backoff before attempt `attempt + 1`, after `attempt` (1-based) failed.
pub fn retry_delay(cfg: &QueueConfig, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    cfg.retry_base
        .saturating_mul(1u32 << exp)
        .min(cfg.retry_max)
}

fn unshare(e: std::sync::Arc<sqlx::Error>) -> QueueError {
    // apalis shares the flush error behind an Arc; keep the message when it is still shared.
    match std::sync::Arc::try_unwrap(e) {
        Ok(e) => QueueError::Database(e),
        Err(e) => QueueError::Database(sqlx::Error::Protocol(e.to_string())),
    }
}

#[cfg(test)]
mod tests;
