//! Derive stage (issue 15): from one sanitized square (the master's pixels) to every
//! wanted (size, format) and, on upload, the master itself. Shared by the upload path
//! ([`super::process`]) and re-derivation from a kept master ([`super::rederive`]), so
//! both make byte-identical variants from the same master.

use moocard::domain::derivation::ExtraFormat;

use super::{avif, encode, resize, webp, OutputFormat, PipelineConfig, PipelineError, Pixels};

/// Which encoding of a size: the JPEG/PNG every avatar has, or an extra format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// JPEG when opaque, PNG with transparency.
    Base,
    /// WebP (or a later format).
    Extra(ExtraFormat),
}

/// One encoded variant of any format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Side in pixels.
    pub size: u32,
    /// Which encoding.
    pub slot: Slot,
    /// MIME type.
    pub content_type: &'static str,
    /// The file, without metadata.
    pub bytes: Vec<u8>,
}

/// What one call made: the wanted variants in the order asked, and the master if asked.
pub(crate) struct Derived {
    pub(crate) variants: Vec<Encoded>,
    pub(crate) master: Option<Vec<u8>>,
    pub(crate) base: OutputFormat,
}

/// Encoded bytes, each with its index in `want` (`None`: the master).
type Encodes = Result<Vec<(Option<usize>, Vec<u8>)>, PipelineError>;

enum Job<'a> {
    Variant(usize, &'a Pixels),
    Master(&'a Pixels),
}

/// Encodes `want` from `top` (a square at least as large as every wanted size) and, with
/// `master`, `top` itself as the master. Sizes are derived largest first, each from the
/// next larger one (sharper at 32 px and faster, BASELINE.md).
pub(crate) fn derive(
    top: Pixels,
    want: &[(u32, Slot)],
    master: bool,
    cfg: &PipelineConfig,
) -> Result<Derived, PipelineError> {
    let base = if top.layout.has_alpha() {
        OutputFormat::Png
    } else {
        OutputFormat::Jpeg
    };
    let mut sizes: Vec<u32> = want.iter().map(|w| w.0).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes.dedup();
    let mut squares: Vec<(u32, Pixels)> = Vec::with_capacity(sizes.len());
    for &size in &sizes {
        let current = squares.last().map_or(&top, |s| &s.1);
        let next = if size == current.width {
            current.clone()
        } else {
            resize::downsize(current, size)?
        };
        squares.push((size, next));
    }
    let pixels_of = |size: u32| squares.iter().find(|s| s.0 == size).map(|s| &s.1);
    let mut jobs: Vec<Job<'_>> = Vec::with_capacity(want.len() + 1);
    for (i, (size, _)) in want.iter().enumerate() {
        let p = pixels_of(*size).ok_or_else(|| PipelineError::internal("missing square"))?;
        jobs.push(Job::Variant(i, p));
    }
    if master {
        jobs.push(Job::Master(&top));
    }
    // Two threads, work balanced by pixel count (the largest squares dominate) times the
    // codec's cost per pixel: rav1e at speed 10 takes about 4x mozjpeg's time per square.
    let cost = |j: &Job<'_>| match j {
        Job::Variant(i, p) => {
            let weight = if want[*i].1 == Slot::Extra(ExtraFormat::Avif) {
                4
            } else {
                1
            };
            weight * u64::from(p.width) * u64::from(p.height)
        }
        Job::Master(p) => u64::from(p.width) * u64::from(p.height),
    };
    jobs.sort_by_key(|j| std::cmp::Reverse(cost(j)));
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let (mut lw, mut rw) = (0u64, 0u64);
    for j in jobs {
        if lw <= rw {
            lw += cost(&j);
            left.push(j);
        } else {
            rw += cost(&j);
            right.push(j);
        }
    }
    let run = |jobs: Vec<Job<'_>>| -> Encodes {
        jobs.into_iter()
            .map(|j| match j {
                Job::Variant(i, p) => encode_one(p, want[i].1, base, cfg).map(|b| (Some(i), b)),
                Job::Master(p) => {
                    webp::encode(p, cfg.master_quality, webp::Effort::MASTER).map(|b| (None, b))
                }
            })
            .collect()
    };
    let (a, b) = std::thread::scope(|s| {
        let handle = s.spawn(|| run(left));
        let b = run(right);
        let a = handle
            .join()
            .unwrap_or_else(|_| Err(PipelineError::internal("encoder thread panicked")));
        (a, b)
    });
    let mut variants: Vec<Option<Encoded>> = vec![None; want.len()];
    let mut master_bytes = None;
    for (idx, bytes) in a?.into_iter().chain(b?) {
        match idx {
            Some(i) => {
                let (size, slot) = want[i];
                variants[i] = Some(Encoded {
                    size,
                    slot,
                    content_type: content_type(slot, base),
                    bytes,
                });
            }
            None => master_bytes = Some(bytes),
        }
    }
    Ok(Derived {
        variants: variants.into_iter().flatten().collect(),
        master: master_bytes,
        base,
    })
}

fn content_type(slot: Slot, base: OutputFormat) -> &'static str {
    match slot {
        Slot::Base => base.content_type(),
        Slot::Extra(f) => f.content_type(),
    }
}

fn encode_one(
    p: &Pixels,
    slot: Slot,
    base: OutputFormat,
    cfg: &PipelineConfig,
) -> Result<Vec<u8>, PipelineError> {
    match (slot, base) {
        (Slot::Base, OutputFormat::Jpeg) => encode::jpeg(p, cfg.jpeg_quality, cfg.trellis),
        (Slot::Base, OutputFormat::Png) => encode::png(p, cfg.png_preset),
        (Slot::Extra(ExtraFormat::Webp), _) => {
            webp::encode(p, cfg.webp_quality, webp::Effort::VARIANT)
        }
        (Slot::Extra(ExtraFormat::Avif), _) => avif::encode(p, cfg.avif_quality, cfg.avif_speed),
    }
}
