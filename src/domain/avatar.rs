//! The avatar state machine, stored encrypted as the `avatar` record.
//!
//! `generation` counts uploads and deletions; a job carries the generation it was queued
//! for, so a worker finishing an older upload after a newer one was queued is a no-op and
//! the last upload wins. `current` is the live set of variants: it only changes in the
//! same transaction that marks the new images live, so a half-written set is never served.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{domain::derivation::Derivation, ErrorCode};

/// Processing state of the latest upload (API.md avatar status `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AvatarState {
    /// No avatar: the default moocard is served.
    #[default]
    None,
    /// Uploaded, waiting for a worker.
    Queued,
    /// A worker is processing it.
    Processing,
    /// All sizes are live.
    Ready,
    /// Processing failed; `error` says why. The previous avatar (if any) is still served.
    Failed,
}

/// A failure recorded on the avatar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AvatarError {
    /// Stable code, e.g. `undecodable_image`.
    pub code: ErrorCode,
    /// Human sentence.
    pub message: String,
}

/// One live variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantRef {
    /// Image content id, served at `/images/{id}`.
    pub id: String,
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
}

/// The live set of variants of one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveAvatar {
    /// The generation these variants came from.
    pub generation: i64,
    /// Size in pixels -> variant.
    pub variants: BTreeMap<u32, VariantRef>,
    /// When it went live (RFC 3339).
    pub updated_at: String,
    /// Variants in other formats: extension (`webp`, `avif`) -> size -> variant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub formats: BTreeMap<String, BTreeMap<u32, VariantRef>>,
    /// What made this set; `None` for sets made before masters existed (not re-derivable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_by: Option<Derivation>,
}

impl LiveAvatar {
    /// Every image id of the set, in all formats.
    pub fn image_ids(&self) -> Vec<String> {
        let extra = self.formats.values().flat_map(|m| m.values());
        self.variants
            .values()
            .chain(extra)
            .map(|v| v.id.clone())
            .collect()
    }
}

/// The decrypted `avatar` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AvatarRecord {
    /// State of the latest upload.
    pub state: AvatarState,
    /// Bumped by every upload and delete.
    pub generation: i64,
    /// The job of the latest upload.
    #[serde(default)]
    pub job_id: Option<String>,
    /// The staged upload of the latest generation, until processed.
    #[serde(default)]
    pub upload_id: Option<String>,
    /// Failure of the latest upload.
    #[serde(default)]
    pub error: Option<AvatarError>,
    /// The live variants, if any.
    #[serde(default)]
    pub current: Option<LiveAvatar>,
    /// Last state change (RFC 3339).
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// The avatar status as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AvatarStatus {
    /// `none`, `queued`, `processing`, `ready` or `failed`.
    pub state: AvatarState,
    /// Why the latest upload failed.
    pub error: Option<AvatarError>,
    /// Size -> `/images/{id}` of the live avatar.
    pub urls: Option<BTreeMap<String, String>>,
    /// Last change (RFC 3339).
    pub updated_at: Option<String>,
    /// **[v1.1]** Variants in other formats (`webp`, `avif`): extension -> size ->
    /// `/images/{id}`; absent when there are none, so `urls` keeps its v1 shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formats: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// The job id of the latest upload (extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

impl AvatarRecord {
    /// The public view.
    pub fn status(&self) -> AvatarStatus {
        AvatarStatus {
            state: self.state,
            error: self.error.clone(),
            urls: self.current.as_ref().map(|live| {
                live.variants
                    .iter()
                    .map(|(size, v)| (size.to_string(), format!("/images/{}", v.id)))
                    .collect()
            }),
            updated_at: self.updated_at.clone(),
            formats: self
                .current
                .as_ref()
                .filter(|live| !live.formats.is_empty())
                .map(|live| {
                    live.formats
                        .iter()
                        .map(|(ext, sizes)| {
                            let urls = sizes
                                .iter()
                                .map(|(size, v)| (size.to_string(), format!("/images/{}", v.id)))
                                .collect();
                            (ext.clone(), urls)
                        })
                        .collect()
                }),
            job: self.job_id.clone(),
        }
    }
}
