//! The avatar job: staged original -> pipeline -> variants live, idempotently.
//!
//! Delivery is at least once (retries, reclaimed orphans), so every step tolerates being
//! run again: a job for an older generation than the record's is a no-op, images are
//! keyed by content so rewriting them changes nothing, and the new variants, their master
//! and the switch to the new set are one compare-and-set transaction on the avatar record.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use moocard::{
    domain::{
        avatar::{AvatarRecord, AvatarState, LiveAvatar},
        derivation::Derivation,
        ids::OwnerKey,
        record::RecordKey,
    },
    http::avatar_cache::AvatarCache,
    jobs::ProcessAvatar,
    masters::seal_master,
    profiles::{now_rfc3339, upload_aad, ProfileError, Profiles},
    store::{NewImage, Staged},
    uploads::Uploads,
    ErrorCode,
};
use sha2::{Digest as _, Sha256};

use crate::{
    pipeline::{process_in, Budget, Encoded, PipelineConfig, PipelineError, Slot},
    runner::{JobContext, JobError},
};

/// Processes avatar jobs.
#[derive(Clone)]
pub struct AvatarHandler {
    profiles: Profiles,
    /// Records failures the same way the API and the cleanup loop do.
    uploads: Uploads,
    pipeline: Arc<PipelineConfig>,
    /// The memory budget shared by this process's jobs (one per handler, cloned per slot).
    budget: Arc<Budget>,
    /// This process's public-read cache: a pool embedded in `serve` makes a new avatar
    /// visible at once on its own node (other nodes within the cache TTL).
    cache: Arc<AvatarCache>,
}

fn transient(e: ProfileError) -> JobError {
    JobError::Transient(e.to_string())
}

/// What the record says about a job.
enum Standing {
    /// The job's generation is current: work on it (the record and its version).
    Current(Box<AvatarRecord>, i64),
    /// A newer upload or a delete superseded it.
    Stale,
    /// The record does not show this generation yet (enqueued before the record write
    /// became visible): retry shortly.
    Ahead,
}

impl AvatarHandler {
    /// Builds a handler.
    pub fn new(
        profiles: Profiles,
        uploads: Uploads,
        pipeline: PipelineConfig,
        cache: Arc<AvatarCache>,
    ) -> Self {
        Self {
            profiles,
            uploads,
            budget: Arc::new(Budget::new(pipeline.memory_budget_bytes)),
            pipeline: Arc::new(pipeline),
            cache,
        }
    }

    /// The services below (for the re-derivation job).
    pub(crate) fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    pub(crate) fn pipeline(&self) -> &Arc<PipelineConfig> {
        &self.pipeline
    }

    pub(crate) fn cache(&self) -> &AvatarCache {
        &self.cache
    }

    /// Runs one job.
    pub async fn handle(&self, job: ProcessAvatar, ctx: JobContext) -> Result<(), JobError> {
        if job.rederive {
            return self.rederive(job, ctx).await;
        }
        let began = std::time::Instant::now();
        let owner = OwnerKey::from_hex(&job.owner)
            .ok_or_else(|| JobError::Permanent("job payload has a malformed owner key".into()))?;
        // Independent reads, overlapped: the record says whether to work, the staged upload
        // is the work.
        let (standing, upload) = tokio::join!(
            self.standing(&owner, job.generation),
            self.profiles.store().get_upload(&job.upload_id)
        );
        let (record, version) = match standing? {
            Standing::Current(r, v) => (*r, v),
            Standing::Stale => {
                tracing::info!(job.id = %ctx.job_id, "superseded upload: nothing to do");
                let _ = self.profiles.store().delete_upload(&job.upload_id).await;
                return Ok(());
            }
            Standing::Ahead => {
                return Err(JobError::Transient("avatar record not yet visible".into()))
            }
        };
        if record.state == AvatarState::Ready || record.state == AvatarState::Failed {
            // A redelivery of a job that already finished.
            let _ = self.profiles.store().delete_upload(&job.upload_id).await;
            return Ok(());
        }
        let Some((upload_owner, sealed)) = upload.map_err(|e| transient(e.into()))? else {
            // A newer upload (or a delete) removes the staged original it supersedes, so
            // a missing file usually means this job is stale: end quietly, as done.
            if !matches!(
                self.standing(&owner, job.generation).await?,
                Standing::Current(..)
            ) {
                tracing::info!(job.id = %ctx.job_id, "superseded upload: nothing to do");
                return Ok(());
            }
            return self
                .fail(
                    &owner,
                    job.generation,
                    ErrorCode::Internal,
                    "the uploaded file is gone; upload it again",
                )
                .await;
        };
        if upload_owner != owner {
            return Err(JobError::Permanent(
                "upload belongs to another owner".into(),
            ));
        }
        let bytes = match self
            .profiles
            .ring()
            .open(&sealed, &upload_aad(&owner, &job.upload_id))
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, job.id = %ctx.job_id, "staged upload failed to open");
                return self
                    .fail(
                        &owner,
                        job.generation,
                        ErrorCode::Internal,
                        "the stored upload failed its integrity check",
                    )
                    .await;
            }
        };

        // Where a job's time goes besides the pipeline (issue 14: upload->ready overhead):
        // reading the record and the staged upload before, the one commit after.
        stage("prepare", began);
        let started = std::time::Instant::now();
        let cfg = self.pipeline.clone();
        let crop = job.crop;
        let budget = self.budget.clone();
        // If this future is dropped (job timeout, shutdown), the blocking work stops at its
        // next stage and its memory reservation is held until it really ends.
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = cancel.0.clone();
        let work = async {
            let result = tokio::task::spawn_blocking(move || {
                // The pipeline contains codec panics itself; this is the outer boundary.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    process_in(&bytes, crop, &cfg, &budget, &flag)
                }))
            })
            .await;
            metrics::histogram!("moocard_pipeline_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            result
        };
        // The `processing` mark is written while the pipeline runs: off the critical path.
        let (marked, result) = tokio::join!(self.mark_processing(&owner, record, version), work);
        drop(cancel);
        marked?;
        let output = match result {
            Ok(Ok(Ok(output))) => output,
            Ok(Ok(Err(PipelineError { code, message }))) => {
                tracing::info!(job.id = %ctx.job_id, error.code = %code, "image rejected");
                return self.fail(&owner, job.generation, code, &message).await;
            }
            Ok(Err(_)) | Err(_) => {
                tracing::error!(job.id = %ctx.job_id, "image pipeline panicked");
                return self
                    .fail(
                        &owner,
                        job.generation,
                        ErrorCode::UndecodableImage,
                        "the image could not be processed",
                    )
                    .await;
            }
        };

        let stored = std::time::Instant::now();
        let master_side = output.master_side;
        let images = new_images(
            &owner,
            job.generation,
            output
                .variants
                .into_iter()
                .map(|v| Encoded {
                    size: v.size,
                    slot: Slot::Base,
                    content_type: v.format.content_type(),
                    bytes: v.bytes,
                })
                .chain(output.extra),
        );
        let mut live = live_set(job.generation, &images);
        live.made_by = Some(Derivation {
            master: true,
            ..Derivation::wanted(&self.pipeline.limits.sizes, &self.pipeline.formats)
        });
        let rows: Vec<NewImage> = images.into_iter().map(|(_, image)| image).collect();
        let master = seal_master(&self.profiles, &owner, job.generation, &output.master);
        metrics::histogram!("moocard_master_bytes").record(output.master.len() as f64);
        tracing::debug!(master_side, "master kept");
        // One transaction stores the variants and the master and makes them live; a job
        // that lost to a newer upload writes nothing.
        let staged = Staged {
            images: &rows,
            master: Some(&master),
        };
        let committed = self
            .profiles
            .commit_avatar(&owner, &staged, |mut rec| {
                if rec.generation != job.generation {
                    return None;
                }
                rec.state = AvatarState::Ready;
                rec.error = None;
                rec.upload_id = None;
                rec.current = Some(live.clone());
                rec.updated_at = Some(live.updated_at.clone());
                Some((rec, Some(job.generation)))
            })
            .await
            .map_err(transient)?;
        self.cache.invalidate_owner(&owner);
        // Logged at the commit, when the status turns `ready` (e2e_latency waits on it).
        match committed {
            Some(_) => tracing::info!(job.id = %ctx.job_id, attempt = ctx.attempt, "avatar ready"),
            None => {
                tracing::info!(job.id = %ctx.job_id, "superseded while processing; result discarded")
            }
        }
        let _ = self.profiles.store().delete_upload(&job.upload_id).await;
        stage("store", stored);
        Ok(())
    }

    async fn standing(&self, owner: &OwnerKey, generation: i64) -> Result<Standing, JobError> {
        let rec = self
            .profiles
            .read::<AvatarRecord>(owner, RecordKey::Avatar)
            .await
            .map_err(transient)?;
        Ok(match rec {
            None => Standing::Stale,
            Some((r, _)) if r.generation > generation => Standing::Stale,
            Some((r, _)) if r.generation < generation => Standing::Ahead,
            Some((r, v)) => Standing::Current(Box::new(r), v),
        })
    }

    /// Marks the record `processing`, writing over the `version` just read (one read fewer
    /// per job).
    async fn mark_processing(
        &self,
        owner: &OwnerKey,
        record: AvatarRecord,
        version: i64,
    ) -> Result<(), JobError> {
        let generation = record.generation;
        self.profiles
            .update_from(
                None,
                owner,
                RecordKey::Avatar,
                Some((record, version)),
                |mut rec: AvatarRecord| {
                    if rec.generation != generation || rec.state == AvatarState::Processing {
                        return Ok(None);
                    }
                    rec.state = AvatarState::Processing;
                    rec.updated_at = Some(now_rfc3339());
                    Ok(Some(rec))
                },
            )
            .await
            .map_err(transient)?;
        Ok(())
    }

    /// Records a permanent failure on the avatar (the previous avatar stays live) and
    /// ends the job without retry.
    async fn fail(
        &self,
        owner: &OwnerKey,
        generation: i64,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), JobError> {
        self.uploads
            .fail(owner, generation, code, message)
            .await
            .map_err(transient)?;
        Err(JobError::Permanent(format!("{code}: {message}")))
    }

    /// Called on the last attempt of a transiently failing job, so the user sees `failed`
    /// instead of `processing` forever.
    pub async fn give_up(&self, job: &ProcessAvatar, reason: &str) {
        if let Some(owner) = OwnerKey::from_hex(&job.owner) {
            let message = format!("processing failed repeatedly ({reason}); upload again");
            let _ = self
                .fail(&owner, job.generation, ErrorCode::Unavailable, &message)
                .await;
            let _ = self.profiles.store().delete_upload(&job.upload_id).await;
        }
    }
}

/// Sets the flag when dropped: tells the blocking pipeline its caller is gone.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The rows of encoded variants of one generation, with the slot each fills.
pub(crate) fn new_images(
    owner: &OwnerKey,
    generation: i64,
    encoded: impl IntoIterator<Item = Encoded>,
) -> Vec<(Slot, NewImage)> {
    encoded
        .into_iter()
        .map(|v| {
            let image = NewImage {
                id: content_id(owner, generation, v.size, &v.bytes),
                owner: *owner,
                generation,
                size: v.size,
                content_type: v.content_type.to_owned(),
                bytes: v.bytes,
            };
            (v.slot, image)
        })
        .collect()
}

/// The live set made of `images` (without `made_by`).
pub(crate) fn live_set(generation: i64, images: &[(Slot, NewImage)]) -> LiveAvatar {
    let mut live = LiveAvatar {
        generation,
        variants: Default::default(),
        updated_at: now_rfc3339(),
        formats: Default::default(),
        made_by: None,
    };
    add_to_set(&mut live, images);
    live
}

/// Puts `images` into their slots of `live`, replacing what was there.
pub(crate) fn add_to_set(live: &mut LiveAvatar, images: &[(Slot, NewImage)]) {
    for (slot, image) in images {
        match slot {
            Slot::Base => {
                live.variants.insert(image.size, image.variant_ref());
            }
            Slot::Extra(f) => {
                live.formats
                    .entry(f.extension().to_owned())
                    .or_default()
                    .insert(image.size, image.variant_ref());
            }
        }
    }
}

/// A content id: the same variant of the same upload always gets the same id, so a
/// retried job rewrites nothing and URLs are immutable.
fn content_id(owner: &OwnerKey, generation: i64, size: u32, bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(owner.0);
    h.update(generation.to_be_bytes());
    h.update(size.to_be_bytes());
    h.update(bytes);
    hex::encode(&h.finalize()[..16])
}

impl AvatarHandler {
    /// [`Self::handle`], recording the failure on the avatar when a transient error uses
    /// up the job's last attempt.
    pub async fn run(&self, job: ProcessAvatar, ctx: JobContext) -> Result<(), JobError> {
        let last = ctx.is_final_attempt();
        match self.handle(job.clone(), ctx).await {
            // A re-derivation never touches the avatar's state: the set stays served.
            Err(JobError::Transient(reason)) if last && !job.rederive => {
                self.give_up(&job, &reason).await;
                Err(JobError::Transient(reason))
            }
            other => other,
        }
    }
}

/// Records one stage of an upload job in `moocard_job_stage_seconds{stage}`.
fn stage(name: &'static str, since: std::time::Instant) {
    metrics::histogram!("moocard_job_stage_seconds", "stage" => name)
        .record(since.elapsed().as_secs_f64());
}
