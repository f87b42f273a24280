//! Background cleanup: replaced or deleted variants, abandoned originals, and the queue's
//! finished jobs and dead workers.
//!
//! Replaced images stay for `queue.cleanup_after_secs` so that pages rendered just before
//! a switch can still load them; staged originals are normally deleted by their job, so
//! only abandoned ones (their job killed or lost) reach this, after the same delay.

use std::time::Duration;

use crate::{
    config::QueueSettings,
    domain::ids::OwnerKey,
    jobs::JobQueue,
    profiles::{now_ms, Profiles},
    uploads::Uploads,
    ErrorCode,
};

/// How long killed jobs are looked at by [`reconcile_killed`]; finished jobs are kept at
/// least this long so none is purged before it was reconciled.
const RECONCILE_WINDOW: Duration = Duration::from_secs(3600);

/// How often [`cleanup_loop`] runs [`retention_once`].
const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// Retention of the queue's own rows (`queue.retain_*`, `queue.retention_batch`).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Finished (done or killed) jobs older than this are deleted.
    pub finished_jobs: Duration,
    /// Workers silent for this long, that no job refers to, are deleted.
    pub dead_workers: Duration,
    /// Rows per statement.
    pub batch: u32,
}

impl From<&QueueSettings> for Retention {
    fn from(q: &QueueSettings) -> Self {
        Self {
            finished_jobs: Duration::from_secs(q.retain_finished_jobs_secs),
            dead_workers: Duration::from_secs(q.retain_dead_workers_secs),
            batch: q.retention_batch.max(1),
        }
    }
}

/// Deletes finished jobs, then dead workers, in batches until a batch comes back short;
/// returns (jobs, workers) deleted.
pub async fn retention_once(queue: &JobQueue, r: Retention) -> (u64, u64) {
    let finished = r.finished_jobs.max(RECONCILE_WINDOW);
    let jobs = in_batches("job", r.batch, || queue.purge_finished(finished, r.batch)).await;
    let workers = in_batches("worker", r.batch, || {
        queue.purge_dead_workers(r.dead_workers, r.batch)
    })
    .await;
    if jobs + workers > 0 {
        tracing::info!(
            jobs,
            workers,
            "retention removed finished jobs and dead workers"
        );
    }
    (jobs, workers)
}

/// Repeats `step` until it deletes fewer than `batch` rows or fails; returns the total.
async fn in_batches<F, Fut>(kind: &'static str, batch: u32, mut step: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, crate::jobs::QueueError>>,
{
    let mut total = 0;
    loop {
        match step().await {
            Ok(n) => {
                total += n;
                if n < u64::from(batch) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, kind, "retention failed");
                break;
            }
        }
    }
    metrics::counter!("moocard_cleanup_deleted_total", "kind" => kind).increment(total);
    total
}

/// One cleanup pass; returns (images, uploads) deleted.
pub async fn cleanup_once(profiles: &Profiles, keep_for: Duration) -> (u64, u64) {
    let now = now_ms();
    let keep_ms = i64::try_from(keep_for.as_millis()).unwrap_or(i64::MAX);
    let images = profiles
        .store()
        .purge_dead_images(now.saturating_sub(keep_ms))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "image cleanup failed");
            0
        });
    let uploads = profiles
        .store()
        .purge_stale_uploads(now.saturating_sub(keep_ms))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "upload cleanup failed");
            0
        });
    // A master whose job crashed before committing (issue 15); at least an hour old, far
    // beyond any job's timeout, so a job still running is never robbed of its master.
    let masters = profiles
        .store()
        .purge_dead_masters(now.saturating_sub(keep_ms.max(3_600_000)))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "master cleanup failed");
            0
        });
    if masters > 0 {
        metrics::counter!("moocard_cleanup_deleted_total", "kind" => "master").increment(masters);
    }
    if images + uploads > 0 {
        tracing::info!(
            images,
            uploads,
            "cleanup removed replaced images and abandoned uploads"
        );
        metrics::counter!("moocard_cleanup_deleted_total", "kind" => "image").increment(images);
        metrics::counter!("moocard_cleanup_deleted_total", "kind" => "upload").increment(uploads);
    }
    (images, uploads)
}

/// Marks uploads whose job was killed without the handler recording why (its worker
/// kept dying, so the reaper used up its attempts) as failed, so the user does not see
/// `processing` forever. Idempotent: only queued/processing records change.
pub async fn reconcile_killed(uploads: &Uploads, within: Duration) -> usize {
    let jobs = match uploads.queue().killed_since(within).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(error = %e, "killed-job reconciliation failed");
            return 0;
        }
    };
    let mut marked = 0;
    for job in jobs {
        let Some(owner) = OwnerKey::from_hex(&job.owner) else {
            continue;
        };
        let message = "processing was abandoned after repeated worker failures; upload again";
        if uploads
            .fail(&owner, job.generation, ErrorCode::Unavailable, message)
            .await
            .is_ok()
        {
            marked += 1;
        }
    }
    marked
}

/// Runs [`cleanup_once`], [`reconcile_killed`] and [`retention_once`] every `every` until
/// the process ends.
pub async fn cleanup_loop(
    uploads: Uploads,
    profiles: Profiles,
    keep_for: Duration,
    every: Duration,
    retention: Retention,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Retention deletes scan the job table (InnoDB locks what a DELETE reads), so it runs
    // far less often than the cleanup, and not right at start-up.
    let mut last_retention = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        cleanup_once(&profiles, keep_for).await;
        reconcile_killed(&uploads, every.saturating_mul(4).max(RECONCILE_WINDOW)).await;
        if last_retention.elapsed() >= RETENTION_EVERY {
            retention_once(uploads.queue(), retention).await;
            last_retention = tokio::time::Instant::now();
        }
    }
}
