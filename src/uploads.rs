//! Accepting an avatar upload (API.md `PUT /v1/profiles/{email}/avatar`): cheap checks,
//! the original staged encrypted, the avatar record moved to `queued` under a new
//! generation, then the job enqueued. The job carries ids only.

use std::sync::Arc;

use crate::{
    admin::{rfc3339_ms, Operators},
    config::Config,
    crop::Crop,
    domain::{
        avatar::{AvatarError, AvatarRecord, AvatarState},
        email::Email,
        ids::{random_id, OwnerKey},
        record::RecordKey,
    },
    jobs::{JobQueue, ProcessAvatar},
    probe::{probe, ProbeError},
    profiles::{now_ms, now_rfc3339, upload_aad, ProfileError, Profiles},
    store::Staged,
    ErrorCode,
};

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Too many uploads from this owner; seconds to wait.
    #[error("too many uploads: at most {limit} per {window} seconds; try again in {retry_after} seconds")]
    RateLimited {
        /// Seconds until the next upload is allowed.
        retry_after: u64,
        /// The configured count.
        limit: u32,
        /// The configured window.
        window: u64,
    },
    /// An operator blocked this owner's uploads.
    #[error("uploads for this address are blocked by an operator until {}", rfc3339_ms(*until_ms))]
    Blocked {
        /// Milliseconds since the epoch.
        until_ms: i64,
    },
    /// The cheap checks failed (size, type, dimensions).
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The crop does not fit the oriented image (`invalid_crop`); the message names its size.
    #[error("{0}")]
    Crop(String),
    /// Too many jobs are waiting.
    #[error("the processing queue is full ({depth} jobs waiting, limit {limit}); try again later")]
    QueueFull {
        /// Jobs waiting.
        depth: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The queue could not be reached.
    #[error("the processing queue is unavailable; try again shortly")]
    QueueUnavailable,
    /// Storage failed.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// An accepted upload.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The job id shown to the client (our upload id; the queue row carries it).
    pub job: String,
    /// The generation this upload will produce.
    pub generation: i64,
}

/// The upload service.
#[derive(Clone)]
pub struct Uploads {
    profiles: Profiles,
    queue: JobQueue,
    config: Arc<Config>,
    operators: Operators,
}

impl Uploads {
    /// Builds the service.
    pub fn new(
        profiles: Profiles,
        queue: JobQueue,
        config: Arc<Config>,
        operators: Operators,
    ) -> Self {
        Self {
            profiles,
            queue,
            config,
            operators,
        }
    }

    /// The queue.
    pub fn queue(&self) -> &JobQueue {
        &self.queue
    }

    /// Checks, stages and enqueues an upload.
    pub async fn accept(
        &self,
        email: &Email,
        bytes: &[u8],
        crop: Option<Crop>,
    ) -> Result<Accepted, UploadError> {
        let owner = self.profiles.owner(email);
        let q = &self.config.queue;
        if let Some(until_ms) = self
            .operators
            .upload_block(email)
            .await
            .map_err(ProfileError::from)?
        {
            return Err(UploadError::Blocked { until_ms });
        }
        let probed = probe(bytes, &self.config.limits)?;
        if let Some(c) = &crop {
            let (w, h) = probed.oriented_size();
            c.check(w, h).map_err(UploadError::Crop)?;
        }
        // Counted in the database, so the limits hold over every API node (issue 16).
        let windows = [
            (q.uploads_per_window, q.window_secs as i64 * 1000),
            (self.config.quotas.uploads_per_day, 86_400_000),
        ];
        if let Err((i, wait_ms)) = self
            .operators
            .count_upload(&owner, &windows)
            .await
            .map_err(ProfileError::from)?
        {
            return Err(UploadError::RateLimited {
                retry_after: (wait_ms.max(1) as u64).div_ceil(1000),
                limit: windows[i].0,
                window: windows[i].1 as u64 / 1000,
            });
        }
        let depth = self.queue.depth().await.map_err(|e| {
            tracing::warn!(error = %e, "queue depth check failed");
            UploadError::QueueUnavailable
        })?;
        if depth >= q.max_depth {
            return Err(UploadError::QueueFull {
                depth,
                limit: q.max_depth,
            });
        }

        let upload_id = random_id();
        let sealed = self
            .profiles
            .ring()
            .seal(bytes, &upload_aad(&owner, &upload_id));
        self.profiles
            .store()
            .put_upload(&upload_id, &owner, &sealed, now_ms())
            .await
            .map_err(ProfileError::from)?;

        let mut superseded = None;
        let record = self
            .profiles
            .update::<AvatarRecord, _>(Some(email), &owner, RecordKey::Avatar, |mut rec| {
                superseded = rec.upload_id.take();
                rec.generation += 1;
                rec.state = AvatarState::Queued;
                rec.job_id = Some(upload_id.clone());
                rec.upload_id = Some(upload_id.clone());
                rec.error = None;
                rec.updated_at = Some(now_rfc3339());
                Ok(Some(rec))
            })
            .await?;
        // A later upload wins: the earlier one's job will find a newer generation and
        // do nothing, so its staged original can go now.
        if let Some(old) = superseded {
            let _ = self.profiles.store().delete_upload(&old).await;
        }

        let job = ProcessAvatar {
            upload_id: upload_id.clone(),
            owner: owner.to_hex(),
            generation: record.generation,
            crop,
            rederive: false,
        };
        match self.queue.enqueue(job).await {
            Ok(queue_id) => {
                tracing::info!(job.id = %upload_id, queue.id = %queue_id, size_bytes = bytes.len(), "avatar upload queued");
                Ok(Accepted {
                    job: upload_id,
                    generation: record.generation,
                })
            }
            Err(e) => {
                tracing::error!(error = %e, job.id = %upload_id, "enqueue failed");
                self.fail(
                    &owner,
                    record.generation,
                    ErrorCode::Unavailable,
                    "the upload could not be queued; try again",
                )
                .await?;
                let _ = self.profiles.store().delete_upload(&upload_id).await;
                Err(UploadError::QueueUnavailable)
            }
        }
    }

    /// Marks `generation` failed if it is still the owner's latest and not finished.
    pub async fn fail(
        &self,
        owner: &OwnerKey,
        generation: i64,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), ProfileError> {
        self.profiles
            .update::<AvatarRecord, _>(None, owner, RecordKey::Avatar, |mut rec| {
                let open = matches!(rec.state, AvatarState::Queued | AvatarState::Processing);
                if rec.generation != generation || !open {
                    return Ok(None);
                }
                rec.state = AvatarState::Failed;
                rec.error = Some(AvatarError {
                    code,
                    message: message.to_owned(),
                });
                rec.upload_id = None;
                rec.updated_at = Some(now_rfc3339());
                Ok(Some(rec))
            })
            .await?;
        Ok(())
    }

    /// The avatar record of an email (default when none).
    pub async fn status(&self, email: &Email) -> Result<AvatarRecord, ProfileError> {
        let owner = self.profiles.owner(email);
        Ok(self
            .profiles
            .read::<AvatarRecord>(&owner, RecordKey::Avatar)
            .await?
            .map(|(r, _)| r)
            .unwrap_or_default())
    }

    /// Removes the avatar: the public avatar falls back to the default; queued jobs
    /// become no-ops; images and originals are cleaned up.
    pub async fn delete(&self, email: &Email) -> Result<(), ProfileError> {
        let owner = self.profiles.owner(email);
        let mut pending_upload = None;
        self.profiles
            .commit_avatar(&owner, &Staged::default(), |mut rec| {
                pending_upload = rec.upload_id.take();
                rec.generation += 1;
                rec.state = AvatarState::None;
                rec.job_id = None;
                rec.error = None;
                rec.current = None;
                rec.updated_at = Some(now_rfc3339());
                Some((rec, None))
            })
            .await?;
        if let Some(id) = pending_upload {
            let _ = self.profiles.store().delete_upload(&id).await;
        }
        Ok(())
    }
}
