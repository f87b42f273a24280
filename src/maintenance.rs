//! Background cleanup: replaced or deleted variants and abandoned originals.
//!
//! Replaced images stay for `queue.cleanup_after_secs` so that pages rendered just before
//! a switch can still load them; staged originals are normally deleted by their job, so
//! only abandoned ones (their job killed or lost) reach this.

use std::time::Duration;

use crate::profiles::{now_ms, Profiles};

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

/// Runs [`cleanup_once`] every `every` until the process ends.
pub async fn cleanup_loop(profiles: Profiles, keep_for: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        cleanup_once(&profiles, keep_for).await;
    }
}
