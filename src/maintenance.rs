//! Background cleanup: replaced or deleted variants and abandoned originals.
//!
//! Replaced images stay for `queue.cleanup_after_secs` so that pages rendered just before
//! a switch can still load them; staged originals are normally deleted by their job, so
//! only abandoned ones (their job killed or lost) reach this.

use std::time::Duration;

use crate::{
    domain::ids::OwnerKey,
    profiles::{now_ms, Profiles},
    uploads::Uploads,
    ErrorCode,
};

/// Staged uploads older than this are abandoned whatever the configuration says.
const ABANDONED_UPLOAD_MS: i64 = 24 * 3600 * 1000;

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
        .purge_stale_uploads(now.saturating_sub(ABANDONED_UPLOAD_MS.max(keep_ms)))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "upload cleanup failed");
            0
        });
    // A master whose job crashed before committing (issue 15); as old as an abandoned
    // upload, so a job still running is never robbed of its master.
    let masters = profiles
        .store()
        .purge_dead_masters(now.saturating_sub(ABANDONED_UPLOAD_MS.max(keep_ms)))
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

/// Runs [`cleanup_once`] and [`reconcile_killed`] every `every` until the process ends.
pub async fn cleanup_loop(
    uploads: Uploads,
    profiles: Profiles,
    keep_for: Duration,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        cleanup_once(&profiles, keep_for).await;
        reconcile_killed(
            &uploads,
            every.saturating_mul(4).max(Duration::from_secs(3600)),
        )
        .await;
    }
}
