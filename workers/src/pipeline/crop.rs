//! Crop stage: validates a user crop against the *oriented* image (API.md: coordinates are
//! after EXIF orientation) and picks the square that will be resampled.
//!
//! A missing crop means the centred square; a non-square crop is centre-squared within
//! itself, so avatars are always square without distortion.

use moocard::crop::Crop;
use moocard::ErrorCode;

use super::PipelineError;

/// An axis-aligned rectangle in (possibly fractional) pixel units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Rect {
    /// Scales every coordinate, e.g. from full-size to shrink-on-load pixels.
    pub fn scaled(self, sx: f64, sy: f64) -> Rect {
        Rect {
            x: self.x * sx,
            y: self.y * sy,
            w: self.w * sx,
            h: self.h * sy,
        }
    }

    /// The shorter side.
    pub fn short_side(&self) -> f64 {
        self.w.min(self.h)
    }

    /// Clamps the rectangle into a `width` x `height` image, keeping at least a pixel's
    /// worth of area so the resampler always has input.
    pub fn clamped(self, width: u32, height: u32) -> Rect {
        let (fw, fh) = (f64::from(width), f64::from(height));
        let x = self.x.clamp(0.0, (fw - 1.0).max(0.0));
        let y = self.y.clamp(0.0, (fh - 1.0).max(0.0));
        Rect {
            x,
            y,
            w: self.w.min(fw - x).max(1.0_f64.min(fw - x)),
            h: self.h.min(fh - y).max(1.0_f64.min(fh - y)),
        }
    }
}

/// The square to keep, in oriented source pixels.
///
/// Errors with `invalid_crop` when the crop is empty or does not fit; the message names the
/// oriented image size so the client can fix its coordinates.
pub fn square(width: u32, height: u32, crop: Option<Crop>) -> Result<Rect, PipelineError> {
    let (x, y, w, h) = match crop {
        None => (0, 0, width, height),
        Some(c) => {
            c.check(width, height)
                .map_err(|m| PipelineError::new(ErrorCode::InvalidCrop, m))?;
            (c.x, c.y, c.w, c.h)
        }
    };
    let side = w.min(h);
    // Integer centring keeps whole source pixels, like every anchor tool's centre crop.
    let x = x + (w - side) / 2;
    let y = y + (h - side) / 2;
    Ok(Rect {
        x: f64::from(x),
        y: f64::from(y),
        w: f64::from(side),
        h: f64::from(side),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_square_without_crop() {
        let r = square(400, 300, None).expect("square");
        assert_eq!(
            r,
            Rect {
                x: 50.0,
                y: 0.0,
                w: 300.0,
                h: 300.0
            }
        );
        let r = square(300, 401, None).expect("square");
        assert_eq!(
            r,
            Rect {
                x: 0.0,
                y: 50.0,
                w: 300.0,
                h: 300.0
            }
        );
    }

    #[test]
    fn non_square_crop_is_centre_squared_within_itself() {
        let c = Crop {
            x: 10,
            y: 20,
            w: 100,
            h: 40,
        };
        let r = square(400, 300, Some(c)).expect("square");
        assert_eq!(
            r,
            Rect {
                x: 40.0,
                y: 20.0,
                w: 40.0,
                h: 40.0
            }
        );
    }

    #[test]
    fn crop_outside_is_refused_with_the_image_size() {
        let c = Crop {
            x: 350,
            y: 0,
            w: 100,
            h: 100,
        };
        let e = square(400, 300, Some(c)).expect_err("does not fit");
        assert_eq!(e.code, ErrorCode::InvalidCrop);
        assert!(e.message.contains("400x300"), "{}", e.message);
        let c = Crop {
            x: 0,
            y: 0,
            w: 0,
            h: 10,
        };
        assert!(square(400, 300, Some(c)).is_err());
    }

    #[test]
    fn clamping_keeps_rect_inside() {
        let r = Rect {
            x: -1.0,
            y: 5.0,
            w: 20.0,
            h: 20.0,
        }
        .clamped(10, 10);
        assert!(r.x >= 0.0 && r.x + r.w <= 10.0 && r.y + r.h <= 10.0 && r.w >= 1.0);
    }
}
