//! What made a live set of avatar variants (issue 15), so `moocard reprocess` can tell
//! which avatars differ from the running configuration and derive only what is missing.

use serde::{Deserialize, Serialize};

/// Bumped whenever the pipeline's output for the same master changes (an encoder, its
/// settings' meaning, resampling): every avatar made by an older version is re-derived.
pub const PIPELINE_VERSION: u32 = 2;

/// An encoding of a variant besides the JPEG/PNG one every avatar has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtraFormat {
    /// WebP: lossy for opaque squares, lossless when there is transparency.
    Webp,
    /// AVIF (AV1 stills, encoded by rav1e).
    Avif,
}

impl ExtraFormat {
    /// Every extra format, in the order `Accept` negotiation prefers them (smallest first).
    pub const ALL: [ExtraFormat; 2] = [ExtraFormat::Avif, ExtraFormat::Webp];

    /// File extension and `formats` key, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Webp => "webp",
            Self::Avif => "avif",
        }
    }

    /// MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
        }
    }

    /// Parses an extension (`webp`, `avif`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.extension() == s)
    }
}

/// The pipeline version, sizes and formats that made a live set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derivation {
    /// [`PIPELINE_VERSION`] of the worker that made the set.
    pub pipeline: u32,
    /// Sizes in the set, largest first.
    pub sizes: Vec<u32>,
    /// Extra formats in the set, sorted.
    pub formats: Vec<ExtraFormat>,
    /// Whether a master of this generation was kept (false: cannot be re-derived).
    pub master: bool,
}

impl Derivation {
    /// What the running configuration would make.
    pub fn wanted(sizes: &[u32], formats: &[ExtraFormat]) -> Self {
        let mut sizes = sizes.to_vec();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.dedup();
        let mut formats = formats.to_vec();
        formats.sort_unstable();
        formats.dedup();
        Self {
            pipeline: PIPELINE_VERSION,
            sizes,
            formats,
            master: true,
        }
    }

    /// Whether a set made by `self` already is what `wanted` would make.
    pub fn satisfies(&self, wanted: &Derivation) -> bool {
        self.pipeline == wanted.pipeline
            && self.sizes == wanted.sizes
            && self.formats == wanted.formats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_is_canonical_and_compared_without_master() {
        let a = Derivation::wanted(&[32, 512, 64, 512], &[ExtraFormat::Webp]);
        assert_eq!(a.sizes, vec![512, 64, 32]);
        let mut old = a.clone();
        old.master = false;
        assert!(old.satisfies(&a));
        old.pipeline = 1;
        assert!(!old.satisfies(&a));
        assert!(!Derivation::wanted(&[512], &[]).satisfies(&a));
        assert_eq!(ExtraFormat::parse("webp"), Some(ExtraFormat::Webp));
        assert_eq!(ExtraFormat::parse("gif"), None);
    }
}
