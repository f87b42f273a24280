//! Orientation stage: reads the EXIF `Orientation` tag (0x0112) and applies it.
//!
//! Parsing is `moocard::exif` (shared with the upload probe); anything malformed means "no
//! rotation", never an error, because browsers treat such files the same way. The transform itself runs on the final
//! square (see the pipeline module docs); [`Orientation::rect_to_stored`] maps the crop
//! square back to stored pixels so the right region is resampled.

use super::crop::Rect;
use super::Pixels;

/// An EXIF orientation value, always in 1..=8 (1 = as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orientation(u8);

impl Default for Orientation {
    fn default() -> Self {
        Self(1)
    }
}

impl Orientation {
    /// Wraps a raw tag value; out-of-range values mean "as stored".
    pub fn new(value: u16) -> Self {
        match value {
            1..=8 => Self(value as u8),
            _ => Self(1),
        }
    }

    /// The raw value, 1..=8.
    #[cfg(test)]
    pub fn value(self) -> u8 {
        self.0
    }

    /// Reads the orientation from an EXIF block (a TIFF header, optionally preceded by the
    /// `Exif\0\0` prefix of JPEG APP1 / WebP). Malformed data yields the default.
    #[cfg(test)]
    pub fn from_exif(exif: &[u8]) -> Self {
        Self::new(u16::from(moocard::exif::orientation(exif)))
    }

    /// Whether width and height swap on display (the transposing values 5..=8).
    fn swaps(self) -> bool {
        self.0 >= 5
    }

    /// (width, height) as displayed.
    pub fn oriented_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// Maps a rectangle in displayed coordinates to stored coordinates of an image whose
    /// stored size is `width` x `height`.
    pub fn rect_to_stored(self, r: Rect, width: u32, height: u32) -> Rect {
        let (sw, sh) = (f64::from(width), f64::from(height));
        let (x, y, w, h) = match self.0 {
            2 => (sw - r.x - r.w, r.y, r.w, r.h),
            3 => (sw - r.x - r.w, sh - r.y - r.h, r.w, r.h),
            4 => (r.x, sh - r.y - r.h, r.w, r.h),
            5 => (r.y, r.x, r.h, r.w),
            6 => (r.y, sh - r.x - r.w, r.h, r.w),
            7 => (sw - r.y - r.h, sh - r.x - r.w, r.h, r.w),
            8 => (sw - r.y - r.h, r.x, r.h, r.w),
            _ => (r.x, r.y, r.w, r.h),
        };
        Rect { x, y, w, h }
    }

    /// Returns the image as it should be displayed.
    pub(crate) fn apply(self, p: Pixels) -> Pixels {
        if self.0 == 1 {
            return p;
        }
        let (w, h) = (p.width as usize, p.height as usize);
        let cn = p.layout.channels();
        let (dw, dh) = if self.swaps() { (h, w) } else { (w, h) };
        let mut out = vec![0u8; p.data.len()];
        for dy in 0..dh {
            for dx in 0..dw {
                // Stored pixel shown at (dx, dy); the inverse of each EXIF transform.
                let (sx, sy) = match self.0 {
                    2 => (w - 1 - dx, dy),
                    3 => (w - 1 - dx, h - 1 - dy),
                    4 => (dx, h - 1 - dy),
                    5 => (dy, dx),
                    6 => (dy, h - 1 - dx),
                    7 => (w - 1 - dy, h - 1 - dx),
                    8 => (w - 1 - dy, dx),
                    _ => (dx, dy),
                };
                let s = (sy * w + sx) * cn;
                let d = (dy * dw + dx) * cn;
                out[d..d + cn].copy_from_slice(&p.data[s..s + cn]);
            }
        }
        Pixels {
            width: dw as u32,
            height: dh as u32,
            layout: p.layout,
            data: out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Layout;
    use super::*;

    fn img(w: u32, h: u32, data: Vec<u8>) -> Pixels {
        Pixels {
            width: w,
            height: h,
            layout: Layout::Gray,
            data,
        }
    }

    fn tiff(le: bool, value: u16, kind: u16) -> Vec<u8> {
        let mut v = Vec::new();
        let p16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() })
        };
        let p32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() })
        };
        v.extend_from_slice(if le { b"II" } else { b"MM" });
        p16(&mut v, 42);
        p32(&mut v, 8);
        p16(&mut v, 2);
        // An unrelated tag first (ImageWidth), then Orientation.
        p16(&mut v, 0x0100);
        p16(&mut v, 3);
        p32(&mut v, 1);
        p32(&mut v, 0);
        p16(&mut v, 0x0112);
        p16(&mut v, kind);
        p32(&mut v, 1);
        if kind == 3 {
            p16(&mut v, value);
            p16(&mut v, 0);
        } else {
            p32(&mut v, u32::from(value));
        }
        p32(&mut v, 0);
        v
    }

    #[test]
    fn parses_both_byte_orders() {
        for o in 1..=8 {
            assert_eq!(Orientation::from_exif(&tiff(true, o, 3)).value(), o as u8);
            assert_eq!(Orientation::from_exif(&tiff(false, o, 3)).value(), o as u8);
            let mut app1 = b"Exif\0\0".to_vec();
            app1.extend(tiff(false, o, 3));
            assert_eq!(Orientation::from_exif(&app1).value(), o as u8);
        }
    }

    #[test]
    fn malformed_exif_means_upright() {
        assert_eq!(Orientation::from_exif(&tiff(true, 9, 3)).value(), 1);
        assert_eq!(Orientation::from_exif(&tiff(true, 6, 2)).value(), 1);
        assert_eq!(Orientation::from_exif(b"II*\0\xff\xff\xff\xff").value(), 1);
        assert_eq!(Orientation::from_exif(b"").value(), 1);
        let full = tiff(true, 6, 3);
        for n in 0..full.len() {
            let _ = Orientation::from_exif(&full[..n]);
        }
        // A huge entry count over a short buffer ends the walk quietly.
        let mut lying = tiff(true, 6, 3);
        lying[8] = 0xFF;
        lying[9] = 0xFF;
        assert_eq!(Orientation::from_exif(&lying).value(), 6);
    }

    #[test]
    fn transforms_match_the_rect_mapping() {
        // 3x2 stored image with distinct values; for every orientation, the pixel shown at
        // the displayed top-left must be the one rect_to_stored maps (0,0,1,1) to.
        let p = img(3, 2, vec![0, 1, 2, 3, 4, 5]);
        for o in 1..=8 {
            let o = Orientation::new(o);
            let shown = o.apply(p.clone());
            let (dw, dh) = o.oriented_size(3, 2);
            assert_eq!((shown.width, shown.height), (dw, dh));
            for dy in 0..dh {
                for dx in 0..dw {
                    let r = o.rect_to_stored(
                        Rect {
                            x: f64::from(dx),
                            y: f64::from(dy),
                            w: 1.0,
                            h: 1.0,
                        },
                        3,
                        2,
                    );
                    let stored = p.data[(r.y as usize) * 3 + r.x as usize];
                    assert_eq!(shown.data[(dy * dw + dx) as usize], stored, "o={o:?}");
                }
            }
        }
        // Orientation 6 shows the stored left column as the top row, reversed.
        let shown = Orientation::new(6).apply(p);
        assert_eq!(shown.data, vec![3, 0, 4, 1, 5, 2]);
    }
}
