//! Settings of derived images (issue 15): masters, extra formats and `moocard reprocess`.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// Largest master side a configuration may ask for, in pixels.
pub const MAX_MASTER_SIZE: u32 = 2048;

/// `moocard reprocess` pacing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReprocessSettings {
    /// Re-derivation jobs enqueued per second at most.
    pub rate_per_sec: f64,
    /// Re-derivation jobs waiting or running at once at most; the command waits beyond it,
    /// so the queue (and `queue.max_depth`, which uploads see) never fills with them.
    pub max_in_flight: u64,
}

impl Default for ReprocessSettings {
    fn default() -> Self {
        Self {
            rate_per_sec: 20.0,
            max_in_flight: 8,
        }
    }
}

/// Checks the derived-image keys (called from `Config::validate`).
pub(super) fn validate(c: &Config) -> Result<(), ConfigError> {
    let master = c.avatars.master_size;
    if !(1..=MAX_MASTER_SIZE).contains(&master) {
        return Err(ConfigError(format!(
            "avatars.master_size must be 1..={MAX_MASTER_SIZE}; got {master}"
        )));
    }
    if let Some(big) = c.limits.sizes.iter().find(|&&s| s > master) {
        return Err(ConfigError(format!(
            "limits.sizes may not exceed avatars.master_size ({master}); got {big}"
        )));
    }
    let p = &c.pipeline;
    if ![p.webp_quality, p.master_quality, p.avif_quality]
        .iter()
        .all(|q| (1..=100).contains(q))
    {
        return Err(ConfigError(
            "pipeline.webp_quality, pipeline.master_quality and pipeline.avif_quality must be 1..=100"
                .into(),
        ));
    }
    if !(1..=10).contains(&p.avif_speed) {
        return Err(ConfigError(format!(
            "pipeline.avif_speed must be 1..=10 (10 fastest); got {}",
            p.avif_speed
        )));
    }
    let r = &c.reprocess;
    if !(r.rate_per_sec > 0.0 && r.rate_per_sec.is_finite()) || r.max_in_flight == 0 {
        return Err(ConfigError(
            "reprocess.rate_per_sec and reprocess.max_in_flight must be positive".into(),
        ));
    }
    Ok(())
}
