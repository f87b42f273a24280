//! PNG decoding with bounded memory: rows are streamed out of the `png` crate and only the
//! crop square is kept, box-averaged by an integer factor on the way in (shrink-on-load,
//! as libvips does before its final resample).
//!
//! - 16-bit samples are stripped to 8 bits per row (`STRIP_16`), so a 16-bit image never
//!   exists at full size in memory (issue 14: the old 16->8 step held both buffers).
//! - Metadata chunks, including `iCCP` before inflation, are bounded by `png::Limits`; an
//!   `iCCP` that inflates past it is dropped by the `png` crate (the profile is best
//!   effort), so a zlib bomb costs at most that many bytes.
//! - Interlaced images cannot be streamed row by row in display order, so they are decoded
//!   whole (8-bit), then reduced the same way; the budget estimate counts that buffer.
//! - The factor keeps the kept square at least twice the largest output, so the Lanczos
//!   step still does a real reduction (what libvips' shrink-then-reduce also keeps).

use std::io::Cursor;

use png::{ColorType, Transformations};

use super::super::crop::Rect;
use super::super::{Layout, PipelineError, Pixels};
use super::truncated;

/// A decoded window: pixels of the stored-image region `window`, shrunk by `factor`.
pub(crate) struct Window {
    pub(crate) pixels: Pixels,
    pub(crate) icc: Option<Vec<u8>>,
    /// Where the requested square lies inside `pixels`.
    pub(crate) rect: Rect,
}

/// The integer box factor for a square of `short_side` stored pixels.
pub(crate) fn factor(short_side: f64, largest: u32) -> u32 {
    ((short_side / (2.0 * f64::from(largest))).floor() as u32).max(1)
}

/// Bytes held at peak for a PNG of `width` x `height`, excluding the input itself.
pub(crate) fn memory_needed(
    width: u32,
    height: u32,
    interlaced: bool,
    square: &Rect,
    largest: u32,
    metadata: u64,
) -> u64 {
    let k = u64::from(factor(square.short_side(), largest));
    let side = (square.short_side().ceil() as u64).div_ceil(k) + 2;
    // Accumulator (u32 per channel of one output row), the kept window, and png's two
    // rows (current and previous, up to 16-bit RGBA).
    let rows = u64::from(width) * 8 * 2 + side * 4 * 4;
    let kept = side * side * 4;
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
    let k = factor(square.short_side(), largest);
    // The window of whole stored pixels that covers the square.
    let x0 = (square.x.floor().max(0.0) as u32).min(width - 1);
    let y0 = (square.y.floor().max(0.0) as u32).min(height - 1);
    let x1 = ((square.x + square.w).ceil() as u32).clamp(x0 + 1, width);
    let y1 = ((square.y + square.h).ceil() as u32).clamp(y0 + 1, height);
    let mut shrink = Shrink::new(layout, x0, x1, k, y1 - y0);
    if interlaced {
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| PipelineError::internal("PNG output size overflows"))?;
        let mut buf = vec![0u8; size];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| png_err(e, metadata))?;
        for y in y0..y1 {
            let at = y as usize * frame.line_size;
            shrink.push(&buf[at..at + frame.line_size]);
        }
    } else {
        let mut y = 0u32;
        while y < y1 {
            let row = reader
                .next_row()
                .map_err(|e| png_err(e, metadata))?
                .ok_or_else(|| truncated("PNG", "fewer rows than the header declares"))?;
            if y >= y0 {
                shrink.push(row.data());
            }
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
    let pixels = shrink.finish();
    let kf = f64::from(k);
    let rect = Rect {
        x: (square.x - f64::from(x0)) / kf,
        y: (square.y - f64::from(y0)) / kf,
        w: square.w / kf,
        h: square.h / kf,
    }
    .clamped(pixels.width, pixels.height);
    Ok(Window { pixels, icc, rect })
}

/// Box-averages rows of the columns `x0..x1` by `k` in both directions. With alpha, colour
/// is averaged weighted by alpha (premultiplied), so transparent pixels do not bleed in.
struct Shrink {
    layout: Layout,
    x0: usize,
    x1: usize,
    k: usize,
    rows_total: usize,
    rows_seen: usize,
    out_width: usize,
    /// Per output pixel and channel: sum of samples (times alpha for colour channels).
    acc: Vec<u64>,
    data: Vec<u8>,
}

impl Shrink {
    fn new(layout: Layout, x0: u32, x1: u32, k: u32, rows: u32) -> Self {
        let out_width = (x1 - x0).div_ceil(k) as usize;
        let out_height = rows.div_ceil(k) as usize;
        let cn = layout.channels();
        Self {
            layout,
            x0: x0 as usize,
            x1: x1 as usize,
            k: k as usize,
            rows_total: rows as usize,
            rows_seen: 0,
            out_width,
            acc: vec![0; out_width * cn],
            data: Vec::with_capacity(out_width * out_height * cn),
        }
    }

    fn push(&mut self, row: &[u8]) {
        let cn = self.layout.channels();
        let alpha = self.layout.has_alpha();
        let span = row.get(self.x0 * cn..self.x1 * cn).unwrap_or_default();
        for (i, px) in span.chunks_exact(cn).enumerate() {
            let acc = &mut self.acc[(i / self.k) * cn..(i / self.k + 1) * cn];
            if alpha {
                let a = u64::from(px[cn - 1]);
                for c in 0..cn - 1 {
                    acc[c] += u64::from(px[c]) * a;
                }
                acc[cn - 1] += a;
            } else {
                for c in 0..cn {
                    acc[c] += u64::from(px[c]);
                }
            }
        }
        self.rows_seen += 1;
        let block_rows = (self.rows_seen - 1) % self.k + 1;
        if block_rows == self.k || self.rows_seen == self.rows_total {
            self.emit(block_rows);
        }
    }

    fn emit(&mut self, block_rows: usize) {
        let cn = self.layout.channels();
        let alpha = self.layout.has_alpha();
        let cols = self.x1 - self.x0;
        for ox in 0..self.out_width {
            let block_cols = (cols - ox * self.k).min(self.k);
            let n = (block_rows * block_cols) as u64;
            let acc = &mut self.acc[ox * cn..(ox + 1) * cn];
            if alpha {
                let a = acc[cn - 1];
                for &v in &acc[..cn - 1] {
                    let c = (v + a / 2).checked_div(a).unwrap_or(0);
                    self.data.push(c.min(255) as u8);
                }
                self.data.push(((a + n / 2) / n).min(255) as u8);
            } else {
                for &v in acc.iter() {
                    self.data.push(((v + n / 2) / n).min(255) as u8);
                }
            }
            acc.fill(0);
        }
    }

    fn finish(self) -> Pixels {
        let cn = self.layout.channels();
        Pixels {
            width: self.out_width as u32,
            height: (self.data.len() / (self.out_width * cn)) as u32,
            layout: self.layout,
            data: self.data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_average_weights_colour_by_alpha() {
        let mut s = Shrink::new(Layout::Rgba, 0, 3, 2, 3);
        // Row 0: opaque red, transparent green, opaque blue.
        s.push(&[255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 255]);
        s.push(&[255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 255]);
        s.push(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let p = s.finish();
        assert_eq!((p.width, p.height), (2, 2));
        // The transparent green does not tint the red block; alpha is the plain mean.
        assert_eq!(&p.data[..4], &[255, 0, 0, 128]);
        assert_eq!(&p.data[4..8], &[0, 0, 255, 255]);
        assert_eq!(&p.data[8..], &[0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn factor_keeps_twice_the_largest() {
        assert_eq!(factor(7000.0, 512), 6);
        assert_eq!(factor(1500.0, 512), 1);
        assert_eq!(factor(2048.0, 512), 2);
    }
}
