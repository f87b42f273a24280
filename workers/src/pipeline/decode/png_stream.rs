//! PNG decoding with bounded memory: rows are streamed out of the `png` crate and only the
//! crop square is kept, shrunk on load (`window.rs`).
//!
//! - 16-bit samples are stripped to 8 bits per row (`STRIP_16`), so a 16-bit image never
//!   exists at full size in memory (issue 14: the old 16->8 step held both buffers).
//! - Metadata chunks, including `iCCP` before inflation, are bounded by `png::Limits`; an
//!   `iCCP` that inflates past it is dropped by the `png` crate (the profile is best
//!   effort), so a zlib bomb costs at most that many bytes.
//! - Interlaced images cannot be streamed row by row in display order, so they are decoded
//!   whole (8-bit), then reduced the same way; the budget estimate counts that buffer.

use std::io::Cursor;

use png::{ColorType, Transformations};

use super::super::crop::Rect;
use super::super::{Layout, PipelineError};
use super::truncated;
use super::window::{self, Keep, Window};

/// The kept square stays at least twice the largest output (`window.rs`).
const GAP: f64 = 2.0;

/// Bytes held at peak for a PNG of `width` x `height`, excluding the input itself.
pub(crate) fn memory_needed(
    width: u32,
    height: u32,
    interlaced: bool,
    square: &Rect,
    largest: u32,
    metadata: u64,
) -> u64 {
    // png's two rows (current and previous, up to 16-bit RGBA) and the kept window.
    let rows = u64::from(width) * 8 * 2;
    let kept = window::memory_needed(square, largest, GAP);
    let full = if interlaced {
        u64::from(width) * u64::from(height) * 4
    } else {
        0
    };
    rows + kept + full + metadata
}

fn png_err(e: png::DecodingError, metadata: u64) -> PipelineError {
    match e {
        png::DecodingError::IoError(_) => truncated("PNG", "the data ends early"),
        png::DecodingError::LimitsExceeded => PipelineError::new(
            moocard::ErrorCode::ImageTooLarge,
            format!(
                "PNG metadata chunks exceed the limit of {metadata} bytes \
                 (pipeline.max_metadata_bytes)"
            ),
        ),
        other => PipelineError::undecodable(format!("PNG could not be decoded: {other}")),
    }
}

/// Decodes the stored-pixel region around `square` (in stored pixels), shrunk by
/// [`factor`]. `metadata` bounds every non-pixel chunk, inflated `iCCP` included.
pub(crate) fn decode(
    bytes: &[u8],
    square: &Rect,
    largest: u32,
    metadata: u64,
) -> Result<Window, PipelineError> {
    let limits = png::Limits {
        bytes: usize::try_from(metadata).unwrap_or(usize::MAX),
    };
    let mut dec = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    dec.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    dec.set_ignore_text_chunk(true);
    let mut reader = dec.read_info().map_err(|e| png_err(e, metadata))?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    let interlaced = info.interlaced;
    let icc = info.icc_profile.as_ref().map(|c| c.to_vec());
    let (color, _) = reader.output_color_type();
    let layout = match color {
        ColorType::Grayscale => Layout::Gray,
        ColorType::GrayscaleAlpha => Layout::GrayAlpha,
        ColorType::Rgb => Layout::Rgb,
        ColorType::Rgba => Layout::Rgba,
        ColorType::Indexed => return Err(PipelineError::internal("PNG palette not expanded")),
    };
    let mut keep = Keep::new(layout, (width, height), square, largest, GAP);
    if interlaced {
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| PipelineError::internal("PNG output size overflows"))?;
        let mut buf = vec![0u8; size];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| png_err(e, metadata))?;
        for row in buf.chunks_exact(frame.line_size).take(height as usize) {
            keep.row(row);
        }
    } else {
        let mut y = 0u32;
        while keep.wants_more() {
            let row = reader
                .next_row()
                .map_err(|e| png_err(e, metadata))?
                .ok_or_else(|| truncated("PNG", "fewer rows than the header declares"))?;
            keep.row(row.data());
            y += 1;
        }
        // The rest still has to be valid: a corrupt tail is a corrupt upload.
        while y < height {
            reader
                .next_row()
                .map_err(|e| png_err(e, metadata))?
                .ok_or_else(|| truncated("PNG", "fewer rows than the header declares"))?;
            y += 1;
        }
    }
    Ok(keep.finish(icc))
}
