//! Still WebP through libwebp's advanced decoder (`webp-scaled`), issue 14: only the crop
//! square's window is decoded, resampled on the way out by libwebp's area-averaging
//! rescaler and filtered on a second thread: what libvips' shrink-on-load does for WebP.
//! The corpus' 13 MP photo: ~140 ms for the simple API's full-size RGB frame, ~60 ms
//! this way, and no full-size frame in memory.
//!
//! The window shrinks by the same integer factor as PNG's box (`window.rs`), with a gap
//! of 1 (libvips' WebP loader shrinks as far), so the Lanczos pass after it has a fixed
//! ratio to work with. Animated WebP is not handled here: the `image` crate's decoder
//! takes its first frame.

use webp_scaled::{Crop, Features, Request};

use super::super::crop::Rect;
use super::super::{Layout, PipelineError, Pixels};
use super::window::{self, Window};

/// Shrink factor gap (`window.rs`).
const GAP: f64 = 1.0;

/// The headers of a still WebP libwebp decodes (lossy or lossless), else `None`.
pub(crate) fn still(bytes: &[u8]) -> Option<Features> {
    webp_scaled::features(bytes)
        .ok()
        .filter(|f| !f.has_animation)
}

/// Bytes held at peak, input excluded: the window, plus for lossless libwebp's whole ARGB
/// frame (VP8L decodes everything before it rescales); lossy keeps a few macroblock rows
/// per thread.
pub(crate) fn memory_needed(f: &Features, square: &Rect, largest: u32) -> u64 {
    let frame = if f.lossless {
        u64::from(f.width) * u64::from(f.height) * 4
    } else {
        u64::from(f.width) * 4 * 64
    };
    frame + window::memory_needed(square, largest, GAP)
}

/// Decodes the window of `square` from a still WebP whose probed size is `f`'s.
pub(crate) fn decode(
    bytes: &[u8],
    f: &Features,
    square: &Rect,
    largest: u32,
    icc: Option<Vec<u8>>,
) -> Result<Window, PipelineError> {
    let (x0, y0, x1, y1) = window::bounds((f.width, f.height), square);
    let k = window::factor(square.short_side(), largest, GAP);
    let crop = Crop {
        left: x0,
        top: y0,
        width: x1 - x0,
        height: y1 - y0,
    };
    let (width, height) = (crop.width.div_ceil(k), crop.height.div_ceil(k));
    let request = Request {
        crop,
        width,
        height,
        alpha: f.has_alpha,
        threads: true,
    };
    let image = webp_scaled::decode(bytes, &request)
        .map_err(|e| PipelineError::undecodable(format!("WebP could not be decoded: {e}")))?;
    let layout = if f.has_alpha {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let pixels = Pixels {
        width,
        height,
        layout,
        data: image.data,
    };
    // At the window's exact scale: libwebp resamples the crop to exactly this size.
    let scale = (
        f64::from(width) / f64::from(crop.width),
        f64::from(height) / f64::from(crop.height),
    );
    let rect = window::locate(square, (x0, y0), scale, &pixels);
    Ok(Window { pixels, icc, rect })
}
