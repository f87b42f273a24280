//! A tiny anti-aliased rasterizer for the default graphics: shapes are signed distance
//! functions in unit coordinates (0..1 on both axes, y down), so one drawing renders
//! crisply at every configured size without shipping bitmaps.

/// A signed distance in unit coordinates: negative inside, positive outside.
pub type Sdf<'a> = &'a dyn Fn(f32, f32) -> f32;

/// An opaque RGB canvas.
pub struct Canvas {
    size: u32,
    px: Vec<[f32; 3]>,
}

impl Canvas {
    /// A square canvas filled with `bg`.
    pub fn new(size: u32, bg: [u8; 3]) -> Self {
        let n = (size as usize) * (size as usize);
        Self {
            size,
            px: vec![rgb(bg); n],
        }
    }

    /// Fills the inside of `sdf` with `color` at `opacity`. Edge pixels get partial
    /// coverage from the distance (one pixel wide), which is the anti-aliasing.
    pub fn fill(&mut self, color: [u8; 3], opacity: f32, sdf: Sdf<'_>) {
        let c = rgb(color);
        let s = self.size as f32;
        let inv = 1.0 / s;
        for y in 0..self.size {
            let v = (y as f32 + 0.5) * inv;
            let row = (y as usize) * (self.size as usize);
            for x in 0..self.size {
                let u = (x as f32 + 0.5) * inv;
                let cover = (0.5 - sdf(u, v) * s).clamp(0.0, 1.0) * opacity;
                if cover > 0.0 {
                    let p = &mut self.px[row + x as usize];
                    for i in 0..3 {
                        p[i] += (c[i] - p[i]) * cover;
                    }
                }
            }
        }
    }

    /// Blends `color` over one pixel with coverage `cover` (0..1); outside is ignored.
    pub fn blend(&mut self, x: u32, y: u32, color: [u8; 3], cover: f32) {
        if x >= self.size || y >= self.size {
            return;
        }
        let c = rgb(color);
        let cover = cover.clamp(0.0, 1.0);
        let p = &mut self.px[(y as usize) * (self.size as usize) + x as usize];
        for i in 0..3 {
            p[i] += (c[i] - p[i]) * cover;
        }
    }

    /// Side length in pixels.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// 8-bit RGB rows.
    pub fn into_rgb(self) -> Vec<u8> {
        self.px
            .into_iter()
            .flat_map(|p| p.map(|c| (c * 255.0 + 0.5).clamp(0.0, 255.0) as u8))
            .collect()
    }
}

fn rgb(c: [u8; 3]) -> [f32; 3] {
    c.map(|v| f32::from(v) / 255.0)
}

/// Distance to a circle.
pub fn circle(x: f32, y: f32, cx: f32, cy: f32, r: f32) -> f32 {
    (x - cx).hypot(y - cy) - r
}

/// Approximate distance to an axis-aligned ellipse (Quilez's first-order estimate, good
/// enough for a one-pixel anti-aliasing band on mildly eccentric ellipses).
pub fn ellipse(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32) -> f32 {
    let (px, py) = (x - cx, y - cy);
    let k0 = (px / rx).hypot(py / ry);
    let k1 = (px / (rx * rx)).hypot(py / (ry * ry));
    if k1 == 0.0 {
        return -rx.min(ry);
    }
    k0 * (k0 - 1.0) / k1
}

/// An ellipse rotated by `angle` radians about its centre.
pub fn rotated_ellipse(x: f32, y: f32, c: (f32, f32), r: (f32, f32), angle: f32) -> f32 {
    let (s, co) = angle.sin_cos();
    let (dx, dy) = (x - c.0, y - c.1);
    ellipse(co * dx + s * dy, -s * dx + co * dy, 0.0, 0.0, r.0, r.1)
}

/// Distance to a rectangle with rounded corners, centred at `c` with half extents `h`.
pub fn round_rect(x: f32, y: f32, c: (f32, f32), h: (f32, f32), r: f32) -> f32 {
    let qx = (x - c.0).abs() - h.0 + r;
    let qy = (y - c.1).abs() - h.1 + r;
    qx.max(0.0).hypot(qy.max(0.0)) + qx.max(qy).min(0.0) - r
}

/// Distance to a capsule: the segment from `a` to `b` thickened by `r`.
pub fn capsule(x: f32, y: f32, a: (f32, f32), b: (f32, f32), r: f32) -> f32 {
    let (px, py) = (x - a.0, y - a.1);
    let (bx, by) = (b.0 - a.0, b.1 - a.1);
    let h = ((px * bx + py * by) / (bx * bx + by * by).max(1e-9)).clamp(0.0, 1.0);
    (px - bx * h).hypot(py - by * h) - r
}
