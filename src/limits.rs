//! Upload and image limits (API.md §Upload rules), published at `GET /v1/limits`.
//!
//! The API checks the cheap ones before enqueueing; the worker applies them again before
//! decoding, because a job row could have been written by an older, laxer node.

use serde::{Deserialize, Serialize};

/// Every configurable image limit. Each error message that enforces one states its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ImageLimits {
    /// Largest accepted upload body, in bytes.
    pub max_upload_bytes: u64,
    /// Largest accepted width or height, in pixels, read from the header.
    pub max_dimension: u32,
    /// Largest accepted width x height, in megapixels.
    pub max_megapixels: f64,
    /// Upper bound on what the decoder may allocate, in bytes.
    pub max_decode_alloc_bytes: u64,
    /// The fixed square sizes produced and served, in pixels.
    pub sizes: Vec<u32>,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_upload_bytes: 10 * 1024 * 1024,
            max_dimension: 16_384,
            max_megapixels: 50.0,
            max_decode_alloc_bytes: 512 * 1024 * 1024,
            sizes: vec![512, 256, 128, 64, 32],
        }
    }
}
