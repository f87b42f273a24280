//! Still WebP through libwebp (the `webp` crate's safe decoder), issue 14: libwebp's SIMD
//! decode of the corpus' 13 MP photo takes about 130 ms where image-webp takes 260-350 ms.
//!
//! libwebp's scaled decoding (what libvips' shrink-on-load uses) is only in its advanced
//! API, which no safe binding exposes, and `unsafe` is forbidden here. So the frame is
//! decoded whole (in libwebp's own buffer) and only the crop square's window is kept,
//! box-shrunk down to the largest output, as libvips' WebP loader has libwebp's
//! area-averaging rescaler do (`window.rs`): no second full-size copy.
//! Animated WebP is not handled here (libwebp's simple API refuses it): the `image` crate's
//! decoder takes its first frame.

use super::super::crop::Rect;
use super::super::{Layout, PipelineError};
use super::window::{self, Keep, Window};

/// Box-shrink down to the largest output (`window.rs`).
const GAP: f64 = 1.0;

/// Whether libwebp's simple API decodes these bytes: a still image (lossy or lossless).
pub(crate) fn is_still(bytes: &[u8]) -> bool {
    webp::BitstreamFeatures::new(bytes).is_some_and(|f| !f.has_animation())
}

/// Bytes held at peak, input excluded: libwebp's RGBA frame, plus for lossless its ARGB
/// working canvas (VP8L decodes the whole image before converting).
pub(crate) fn memory_needed(width: u32, height: u32, square: &Rect, largest: u32) -> u64 {
    u64::from(width) * u64::from(height) * 4 * 2 + window::memory_needed(square, largest, GAP)
}

/// Decodes a still WebP of `width` x `height` (as probed) and keeps the window of `square`.
pub(crate) fn decode(
    bytes: &[u8],
    width: u32,
    height: u32,
    square: &Rect,
    largest: u32,
    icc: Option<Vec<u8>>,
) -> Result<Window, PipelineError> {
    let image = webp::Decoder::new(bytes)
        .decode()
        .ok_or_else(|| PipelineError::undecodable("WebP could not be decoded"))?;
    if (image.width(), image.height()) != (width, height) {
        return Err(PipelineError::undecodable(format!(
            "WebP frame is {}x{} but its header says {width}x{height}",
            image.width(),
            image.height()
        )));
    }
    let layout = if image.is_alpha() {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let stride = width as usize * layout.channels();
    let mut keep = Keep::new(layout, (width, height), square, largest, GAP);
    for row in image.chunks_exact(stride) {
        if !keep.wants_more() {
            break;
        }
        keep.row(row);
    }
    Ok(keep.finish(icc))
}
