//! The avatar image pipeline (issue 3, API.md §Upload rules): upload bytes in, fixed-size
//! square variants out. Pure functions, no I/O, one file per stage:
//!
//! | stage | file | owns |
//! |---|---|---|
//! | budget | `budget.rs` | the process-wide memory budget jobs reserve before decoding |
//! | decode | `decode.rs` | format dispatch, truncation checks, decoder limits, shrink-on-load |
//! | orient | `orient.rs` | EXIF orientation parsing and the 8 transforms |
//! | crop | `crop.rs` | crop validation and the square source rectangle |
//! | resize | `resize.rs` | Lanczos3 resampling (premultiplied alpha) |
//! | color | `color.rs` | ICC / CMYK to sRGB, alpha detection |
//! | encode | `encode.rs` | mozjpeg (opaque) and oxipng (transparent) output |
//! | webp | `webp.rs` | libwebp: WebP variants and the master's codec |
//! | avif | `avif.rs` | ravif (rav1e): AVIF variants |
//! | derive | `derive.rs` | master square -> every wanted (size, format), on two threads |
//!
//! Order matters for cost: the square is resampled straight out of the (shrink-on-load)
//! decoded buffer, and orientation and colour conversion then run on the 512 px result
//! only. Both commute with a square-to-square resample (orientation exactly; ICC conversion
//! up to the usual gamma-space resampling error that every anchor tool also makes).

pub mod avif;
mod budget;
pub mod cli;
mod color;
mod crop;
mod decode;
mod derive;
mod encode;
mod orient;
mod resize;
mod webp;

pub use derive::{Encoded, Slot};

use std::sync::atomic::AtomicBool;

pub use budget::{Budget, Reservation};
use moocard::config::Config;
use moocard::crop::Crop;
use moocard::domain::derivation::ExtraFormat;
use moocard::limits::ImageLimits;
use moocard::ErrorCode;

/// Knobs for [`process`]; the defaults are the production settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Decoder and size limits, and the output sizes (largest first is not required).
    pub limits: ImageLimits,
    /// mozjpeg quality, 1..=100.
    pub jpeg_quality: u8,
    /// mozjpeg trellis quantisation: smaller files at equal quality, slower.
    pub trellis: bool,
    /// oxipng preset, 0..=6.
    pub png_preset: u8,
    /// Bytes the concurrent jobs of one process may reserve together (see [`Budget`]).
    pub memory_budget_bytes: u64,
    /// Upper bound on an image's metadata chunks (PNG `iCCP` after inflation included).
    pub max_metadata_bytes: u64,
    /// Side of the kept master (at least the largest size; smaller sources are not
    /// upscaled beyond the largest size).
    pub master_size: u32,
    /// Formats made besides JPEG/PNG, at every size.
    pub formats: Vec<ExtraFormat>,
    /// libwebp quality of lossy WebP variants.
    pub webp_quality: u8,
    /// libwebp quality of an opaque master (visually lossless; alpha masters are lossless).
    pub master_quality: u8,
    /// ravif quality of AVIF variants.
    pub avif_quality: u8,
    /// rav1e speed of AVIF variants (1..=10, 10 fastest).
    pub avif_speed: u8,
    /// Encode the master (always in production; off only to measure the pipeline as it
    /// was before masters, with `master_size` at the largest size).
    pub keep_master: bool,
}

impl PipelineConfig {
    /// The sizes alone, no master: the work shared/bench's anchors do for one image.
    pub fn sizes_only(mut self) -> Self {
        self.keep_master = false;
        self.master_size = self.limits.sizes.iter().copied().max().unwrap_or(512);
        self
    }

    /// The pipeline settings of a configuration (`limits`, `pipeline`, `avatars`).
    pub fn from_config(config: &Config) -> Self {
        let p = &config.pipeline;
        Self {
            limits: config.limits.clone(),
            jpeg_quality: p.jpeg_quality,
            trellis: p.trellis,
            png_preset: p.png_preset,
            memory_budget_bytes: p.memory_budget_bytes,
            max_metadata_bytes: p.max_metadata_bytes,
            master_size: config.avatars.master_size,
            formats: config.avatars.formats.clone(),
            webp_quality: p.webp_quality,
            master_quality: p.master_quality,
            avif_quality: p.avif_quality,
            avif_speed: p.avif_speed,
            keep_master: true,
        }
    }
}

impl Default for PipelineConfig {
    /// The configuration's defaults: one place (src/config.rs) holds every default value.
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

/// The encoding of one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// Opaque result, encoded with mozjpeg.
    Jpeg,
    /// Result with real transparency, encoded with oxipng.
    Png,
}

impl OutputFormat {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    /// MIME type for serving.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

/// One encoded square.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Side in pixels.
    pub size: u32,
    /// JPEG or PNG.
    pub format: OutputFormat,
    /// The encoded file, without any metadata block.
    pub bytes: Vec<u8>,
}

/// Everything [`process`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// One variant per configured size, in the order of `limits.sizes`.
    pub variants: Vec<Variant>,
    /// One variant per configured size and extra format (`formats`), largest first.
    pub extra: Vec<Encoded>,
    /// The sanitized master (WebP: lossy at `master_quality` when opaque, else lossless);
    /// empty without `keep_master`.
    pub master: Vec<u8>,
    /// The master's side in pixels.
    pub master_side: u32,
    /// Source width after EXIF orientation.
    pub source_width: u32,
    /// Source height after EXIF orientation.
    pub source_height: u32,
}

/// A permanent processing failure: retrying the same bytes gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct PipelineError {
    /// The stable code written to the avatar's `error.code`.
    pub code: ErrorCode,
    /// A human-readable explanation that states the limit involved, if any.
    pub message: String,
}

impl PipelineError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn undecodable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UndecodableImage, message)
    }

    /// Internal faults (a codec refusing our own well-formed buffers) are not the
    /// uploader's fault, but they are still deterministic, hence permanent.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// How the channels of a [`Pixels`] buffer are laid out (8 bits each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
    /// C, M, Y, K with 0 = no ink (already un-inverted if the file used Adobe's convention).
    Cmyk,
}

impl Layout {
    pub(crate) fn channels(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::GrayAlpha => 2,
            Self::Rgb => 3,
            Self::Rgba | Self::Cmyk => 4,
        }
    }

    pub(crate) fn has_alpha(self) -> bool {
        matches!(self, Self::GrayAlpha | Self::Rgba)
    }
}

/// A tightly packed 8-bit image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pixels {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) layout: Layout,
    pub(crate) data: Vec<u8>,
}

/// Turns an upload into the configured square variants.
///
/// Steps: probe limits again; read orientation and colour metadata; validate the crop
/// against the oriented size; decode (JPEG at the smallest DCT scale that keeps the
/// square at least as large as the biggest size); resample the square to the biggest
/// size; orient; convert to sRGB; choose JPEG or PNG by real transparency; derive each
/// smaller size from the previous one (BASELINE.md: faster, and sharper at 32 px).
///
/// CPU-bound (tens to hundreds of milliseconds): call it from `spawn_blocking` or a pool.
/// It uses up to two threads, encoding the largest size on a scoped thread. It reserves
/// its memory from a budget of its own; workers share one with [`process_in`].
pub fn process(
    bytes: &[u8],
    crop: Option<Crop>,
    cfg: &PipelineConfig,
) -> Result<Output, PipelineError> {
    let budget = Budget::new(cfg.memory_budget_bytes);
    process_in(bytes, crop, cfg, &budget, &AtomicBool::new(false))
}

/// [`process`], reserving its peak memory from the shared `budget` before decoding (and
/// waiting for room), and giving up between stages once `cancel` is set.
pub fn process_in(
    bytes: &[u8],
    crop: Option<Crop>,
    cfg: &PipelineConfig,
    budget: &Budget,
    cancel: &AtomicBool,
) -> Result<Output, PipelineError> {
    let limits = &cfg.limits;
    let probe = moocard::probe::probe(bytes, limits)
        .map_err(|e| PipelineError::new(e.code(), e.to_string()))?;
    let sizes = &limits.sizes;
    if sizes.is_empty() || sizes.contains(&0) {
        return Err(PipelineError::internal(
            "no output sizes configured (limits.sizes must be non-empty and positive)",
        ));
    }
    let largest = sizes.iter().copied().max().unwrap_or(1);

    let source = decode::Source::open(probe, bytes, limits)?;
    let orientation = source.orientation();
    let (ow, oh) = orientation.oriented_size(probe.width, probe.height);
    let square = crop::square(ow, oh, crop)?;
    // The master keeps up to `master_size` of the source's detail, and never less than
    // the largest size (small sources are upscaled to it, as before masters existed).
    let master_side = (square.w.round() as u32).clamp(largest, cfg.master_size.max(largest));
    let stored = orientation.rect_to_stored(square, probe.width, probe.height);
    let metadata = cfg.max_metadata_bytes;
    let needed = source.memory_needed(&stored, master_side, metadata);
    if needed > limits.max_decode_alloc_bytes {
        return Err(decode::too_large_alloc(needed, limits));
    }
    // The input is held for the whole job too.
    let needed = needed + bytes.len() as u64;
    let _reservation = budget.reserve(needed, cancel)?;
    budget::check(cancel)?;
    let decoded = source.decode(&stored, master_side, metadata)?;
    budget::check(cancel)?;

    let rect = decoded.rect;
    let mut image = decoded.pixels;
    if image.layout.has_alpha() && color::is_opaque_in(&image, &rect) {
        // A stored-but-unused alpha channel (e.g. an RGBA PNG that is fully opaque) would
        // only cost resize time and force PNG output; drop it before resampling.
        image = color::drop_alpha(image);
    }
    let top = resize::square(&image, &rect, master_side)?;
    drop(image);
    budget::check(cancel)?;
    let top = orientation.apply(top);
    let mut top = color::to_srgb(top, decoded.icc.as_deref());
    if top.layout.has_alpha() && color::is_opaque(&top) {
        top = color::drop_alpha(top);
    }
    let mut want: Vec<(u32, Slot)> = sizes.iter().map(|&s| (s, Slot::Base)).collect();
    for &f in &cfg.formats {
        want.extend(sizes.iter().map(|&s| (s, Slot::Extra(f))));
    }
    let derived = derive::derive(top, &want, cfg.keep_master, cfg)?;
    let format = derived.base;
    let (variants, extra): (Vec<Encoded>, Vec<Encoded>) = derived
        .variants
        .into_iter()
        .partition(|v| v.slot == Slot::Base);
    Ok(Output {
        variants: variants
            .into_iter()
            .map(|v| Variant {
                size: v.size,
                format,
                bytes: v.bytes,
            })
            .collect(),
        extra,
        master: derived.master.unwrap_or_default(),
        master_side,
        source_width: ow,
        source_height: oh,
    })
}

/// Derives the `want`ed variants again from a kept master (`moocard reprocess`): the
/// same stages after the master as [`process`], so the bytes equal an upload's.
pub fn rederive(
    master: &[u8],
    want: &[(u32, Slot)],
    cfg: &PipelineConfig,
) -> Result<Vec<Encoded>, PipelineError> {
    let mut top = webp::decode(master)?;
    // A master from a small source is smaller than a newly added size: upscale it, as
    // `process` upscales a small upload to the largest size.
    let largest = want.iter().map(|w| w.0).max().unwrap_or(0);
    if largest > top.width {
        top = resize::downsize(&top, largest)?;
    }
    Ok(derive::derive(top, want, false, cfg)?.variants)
}
