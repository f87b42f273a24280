//! The re-derivation job (issue 15, `moocard reprocess`): the variants a live avatar is
//! missing under the running configuration, made from its kept master and switched live
//! in one transaction with the rest of the set.
//!
//! Idempotent like the upload job: a set that already is what the configuration wants,
//! a generation that is no longer live, or an avatar without a master is a no-op; images
//! are content-addressed, so a redelivery rewrites nothing.

use moocard::{
    domain::{
        avatar::{AvatarRecord, LiveAvatar},
        derivation::{Derivation, PIPELINE_VERSION},
        ids::OwnerKey,
        record::RecordKey,
    },
    jobs::ProcessAvatar,
    masters::{commit_rederived, open_master},
    profiles::{now_ms, now_rfc3339, ProfileError},
};

use crate::{
    handler::{add_to_set, new_images, AvatarHandler},
    pipeline::{rederive, PipelineError, Slot},
    runner::{JobContext, JobError},
};

fn transient(e: ProfileError) -> JobError {
    JobError::Transient(e.to_string())
}

/// The (size, slot) pairs `live` lacks under `wanted`; every pair when the pipeline
/// version changed, since then each variant would come out different.
pub fn missing(live: &LiveAvatar, wanted: &Derivation) -> Vec<(u32, Slot)> {
    let same_pipeline = live
        .made_by
        .as_ref()
        .is_some_and(|m| m.pipeline == PIPELINE_VERSION);
    let mut out = Vec::new();
    for &size in &wanted.sizes {
        if !(same_pipeline && live.variants.contains_key(&size)) {
            out.push((size, Slot::Base));
        }
    }
    for &f in &wanted.formats {
        let have = live.formats.get(f.extension());
        for &size in &wanted.sizes {
            if !(same_pipeline && have.is_some_and(|m| m.contains_key(&size))) {
                out.push((size, Slot::Extra(f)));
            }
        }
    }
    out
}

/// `live` cut down to what `wanted` lists (a size or format dropped from the
/// configuration leaves the set).
fn keep_wanted(live: &mut LiveAvatar, wanted: &Derivation) {
    live.variants.retain(|s, _| wanted.sizes.contains(s));
    live.formats
        .retain(|ext, _| wanted.formats.iter().any(|f| f.extension() == ext));
    for sizes in live.formats.values_mut() {
        sizes.retain(|s, _| wanted.sizes.contains(s));
    }
}

impl AvatarHandler {
    /// Runs one re-derivation job.
    pub async fn rederive(&self, job: ProcessAvatar, ctx: JobContext) -> Result<(), JobError> {
        let owner = OwnerKey::from_hex(&job.owner)
            .ok_or_else(|| JobError::Permanent("job payload has a malformed owner key".into()))?;
        let wanted = Derivation::wanted(&self.pipeline().limits.sizes, &self.pipeline().formats);
        let Some(live) = self.live_of(&owner, job.generation).await? else {
            tracing::info!(job.id = %ctx.job_id, "re-derivation: generation no longer live");
            return Ok(());
        };
        if live.made_by.as_ref().is_some_and(|m| m.satisfies(&wanted)) {
            return Ok(());
        }
        let master = match open_master(self.profiles(), &owner, job.generation).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                metrics::counter!("moocard_rederive_total", "outcome" => "no_master").increment(1);
                tracing::info!(job.id = %ctx.job_id, "re-derivation: no master kept; left as served");
                return Ok(());
            }
            Err(ProfileError::Crypto(e)) => {
                metrics::counter!("moocard_rederive_total", "outcome" => "master_unreadable")
                    .increment(1);
                return Err(JobError::Permanent(format!(
                    "the kept master failed its integrity check: {e}"
                )));
            }
            Err(e) => return Err(transient(e)),
        };
        let want = missing(&live, &wanted);
        let cfg = self.pipeline().clone();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rederive(&master, &want, &cfg)
            }))
        })
        .await;
        metrics::histogram!("moocard_rederive_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        let encoded = match result {
            Ok(Ok(Ok(v))) => v,
            Ok(Ok(Err(PipelineError { code, message }))) => {
                metrics::counter!("moocard_rederive_total", "outcome" => "failed").increment(1);
                return Err(JobError::Permanent(format!("{code}: {message}")));
            }
            Ok(Err(_)) | Err(_) => {
                metrics::counter!("moocard_rederive_total", "outcome" => "failed").increment(1);
                return Err(JobError::Permanent("re-derivation panicked".into()));
            }
        };
        let images = new_images(&owner, job.generation, encoded);
        let rows: Vec<_> = images.iter().map(|(_, i)| i.clone()).collect();
        self.profiles()
            .store()
            .put_images(&rows, now_ms())
            .await
            .map_err(|e| transient(e.into()))?;
        let committed = commit_rederived(self.profiles(), &owner, |mut rec| {
            let live = rec.current.as_mut()?;
            if live.generation != job.generation
                || live.made_by.as_ref().is_some_and(|m| m.satisfies(&wanted))
            {
                return None;
            }
            keep_wanted(live, &wanted);
            add_to_set(live, &images);
            live.made_by = Some(wanted.clone());
            live.updated_at = now_rfc3339();
            Some(rec)
        })
        .await
        .map_err(transient)?;
        self.cache().invalidate_owner(&owner);
        let outcome = if committed.is_some() {
            "done"
        } else {
            "superseded"
        };
        metrics::counter!("moocard_rederive_total", "outcome" => outcome).increment(1);
        tracing::info!(job.id = %ctx.job_id, made = rows.len(), outcome, "re-derivation finished");
        Ok(())
    }

    async fn live_of(
        &self,
        owner: &OwnerKey,
        generation: i64,
    ) -> Result<Option<LiveAvatar>, JobError> {
        let rec = self
            .profiles()
            .read::<AvatarRecord>(owner, RecordKey::Avatar)
            .await
            .map_err(transient)?;
        Ok(rec
            .and_then(|(r, _)| r.current)
            .filter(|live| live.generation == generation))
    }
}
