//! Shrink-on-load for decoders that hand over whole rows (PNG streamed, WebP decoded whole):
//! only the crop square's window is kept, box-averaged by an integer factor on the way in,
//! as libvips does before its final resample.
//!
//! `gap` is how many times the largest output the kept square stays at least: 2 keeps a
//! real Lanczos reduction after the box (libvips' `vips_resize` gap); 1 shrinks as far as
//! libvips' WebP loader does with libwebp's area-averaging rescaler.

use super::super::crop::Rect;
use super::super::{Layout, Pixels};

/// A decoded window: pixels of the stored-image region around the square, shrunk.
pub(crate) struct Window {
    pub(crate) pixels: Pixels,
    pub(crate) icc: Option<Vec<u8>>,
    /// Where the requested square lies inside `pixels`.
    pub(crate) rect: Rect,
}

/// The integer box factor for a square of `short_side` stored pixels.
pub(crate) fn factor(short_side: f64, largest: u32, gap: f64) -> u32 {
    ((short_side / (gap * f64::from(largest))).floor() as u32).max(1)
}

/// Bytes the kept window holds at peak: the shrunk square plus one accumulator row.
pub(crate) fn memory_needed(square: &Rect, largest: u32, gap: f64) -> u64 {
    let k = u64::from(factor(square.short_side(), largest, gap));
    let side = (square.short_side().ceil() as u64).div_ceil(k) + 2;
    side * side * 4 + side * 4 * 8
}

/// The window of whole stored pixels that covers `square`: `(x0, y0, x1, y1)`, never empty.
pub(crate) fn bounds((width, height): (u32, u32), square: &Rect) -> (u32, u32, u32, u32) {
    let x0 = (square.x.floor().max(0.0) as u32).min(width - 1);
    let y0 = (square.y.floor().max(0.0) as u32).min(height - 1);
    let x1 = ((square.x + square.w).ceil() as u32).clamp(x0 + 1, width);
    let y1 = ((square.y + square.h).ceil() as u32).clamp(y0 + 1, height);
    (x0, y0, x1, y1)
}

/// Where `square` (stored pixels) lies in `pixels`: a window whose top-left stored pixel is
/// `(x0, y0)`, scaled by `(sx, sy)`.
pub(crate) fn locate(
    square: &Rect,
    (x0, y0): (u32, u32),
    (sx, sy): (f64, f64),
    pixels: &Pixels,
) -> Rect {
    Rect {
        x: (square.x - f64::from(x0)) * sx,
        y: (square.y - f64::from(y0)) * sy,
        w: square.w * sx,
        h: square.h * sy,
    }
    .clamped(pixels.width, pixels.height)
}

/// Collects the rows of a `width` x `height` image that cover `square`, shrunk by
/// [`factor`]: feed it every row in order with [`Keep::row`], then [`Keep::finish`].
pub(crate) struct Keep {
    square: Rect,
    x0: u32,
    y0: u32,
    y1: u32,
    k: u32,
    y: u32,
    shrink: Shrink,
}

impl Keep {
    pub(crate) fn new(
        layout: Layout,
        (width, height): (u32, u32),
        square: &Rect,
        largest: u32,
        gap: f64,
    ) -> Self {
        let k = factor(square.short_side(), largest, gap);
        let (x0, y0, x1, y1) = bounds((width, height), square);
        Self {
            square: *square,
            x0,
            y0,
            y1,
            k,
            y: 0,
            shrink: Shrink::new(layout, x0, x1, k, y1 - y0),
        }
    }

    /// Whether rows after this one are still needed (decoders may stop reading pixels, but
    /// must still check the rest of the data).
    pub(crate) fn wants_more(&self) -> bool {
        self.y < self.y1
    }

    /// The next stored row, top to bottom.
    pub(crate) fn row(&mut self, row: &[u8]) {
        if (self.y0..self.y1).contains(&self.y) {
            self.shrink.push(row);
        }
        self.y += 1;
    }

    pub(crate) fn finish(self, icc: Option<Vec<u8>>) -> Window {
        let pixels = self.shrink.finish();
        let scale = 1.0 / f64::from(self.k);
        let rect = locate(&self.square, (self.x0, self.y0), (scale, scale), &pixels);
        Window { pixels, icc, rect }
    }
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
        if self.k == 1 && !alpha {
            // Nothing to average: keep the window's part of the row as it is.
            self.data.extend_from_slice(span);
            self.rows_seen += 1;
            return;
        }
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
        assert_eq!(factor(7000.0, 512, 2.0), 6);
        assert_eq!(factor(1500.0, 512, 2.0), 1);
        assert_eq!(factor(2048.0, 512, 2.0), 2);
        assert_eq!(factor(3168.0, 1024, 1.0), 3);
    }
}
