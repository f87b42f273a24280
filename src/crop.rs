//! The square-crop rectangle a user may send with an upload (`?crop=x,y,w,h`, API.md).
//!
//! Coordinates are in source pixels *after* EXIF orientation. The API checks the syntax,
//! then [`Crop::check`]s it against the probed oriented size (422 `invalid_crop`); the worker
//! checks it again against what it decodes.

use serde::{Deserialize, Serialize};

/// A crop rectangle in oriented source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crop {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width, at least 1.
    pub w: u32,
    /// Height, at least 1.
    pub h: u32,
}

impl std::str::FromStr for Crop {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [x, y, w, h] = parts.as_slice() else {
            return Err("crop must be four comma-separated integers: x,y,w,h".into());
        };
        let num = |v: &str, name: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("crop {name} must be a non-negative integer, got {v:?}"))
        };
        let crop = Crop {
            x: num(x, "x")?,
            y: num(y, "y")?,
            w: num(w, "w")?,
            h: num(h, "h")?,
        };
        if crop.w == 0 || crop.h == 0 {
            return Err("crop width and height must be at least 1".into());
        }
        if crop.x.checked_add(crop.w).is_none() || crop.y.checked_add(crop.h).is_none() {
            return Err("crop rectangle overflows".into());
        }
        Ok(crop)
    }
}

impl Crop {
    /// Checks the rectangle against an image of `width` x `height` oriented pixels; the
    /// message names the oriented size so the client can fix its coordinates.
    pub fn check(&self, width: u32, height: u32) -> Result<(), String> {
        if self.w == 0 || self.h == 0 || !self.fits(width, height) {
            return Err(format!(
                "crop {},{},{},{} (x,y,w,h) does not fit the image, which is {width}x{height} \
                 pixels after EXIF orientation",
                self.x, self.y, self.w, self.h
            ));
        }
        Ok(())
    }

    /// Whether the rectangle lies inside an image of `width` x `height`.
    pub fn fits(&self, width: u32, height: u32) -> bool {
        u64::from(self.x) + u64::from(self.w) <= u64::from(width)
            && u64::from(self.y) + u64::from(self.h) <= u64::from(height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let c: Crop = "1, 2,30,40".parse().expect("valid crop");
        assert_eq!(
            c,
            Crop {
                x: 1,
                y: 2,
                w: 30,
                h: 40
            }
        );
        assert!(c.fits(31, 42));
        assert!(!c.fits(30, 42));
        assert!("1,2,3".parse::<Crop>().is_err());
        assert!("1,2,0,4".parse::<Crop>().is_err());
        assert!("-1,2,3,4".parse::<Crop>().is_err());
        assert!("4294967295,0,2,2".parse::<Crop>().is_err());
    }
}
