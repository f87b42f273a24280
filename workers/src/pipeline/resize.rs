//! Resize stage: Lanczos3 resampling with fast_image_resize (SIMD; ~15x faster than
//! `image::imageops`, DEPENDENCIES.md Q3).
//!
//! Alpha is premultiplied during resampling (the crate's default), so transparent pixels'
//! colours do not bleed into visible edges. CMYK shares the 4-channel pixel type with RGBA,
//! so premultiplication is switched off for it: K is not an alpha channel.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::crop::Rect;
use super::{Layout, PipelineError, Pixels};

fn pixel_type(layout: Layout) -> PixelType {
    match layout {
        Layout::Gray => PixelType::U8,
        Layout::GrayAlpha => PixelType::U8x2,
        Layout::Rgb => PixelType::U8x3,
        Layout::Rgba | Layout::Cmyk => PixelType::U8x4,
    }
}

fn options(layout: Layout) -> ResizeOptions {
    ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(layout.has_alpha())
}

/// Resamples `rect` (in `src` pixels, fractional allowed) to a `size` x `size` square.
/// Upscales when the region is smaller than `size`: avatars have fixed sizes.
pub(crate) fn square(src: &Pixels, rect: &Rect, size: u32) -> Result<Pixels, PipelineError> {
    let r = rect.clamped(src.width, src.height);
    let view = ImageRef::new(src.width, src.height, &src.data, pixel_type(src.layout))
        .map_err(|e| PipelineError::internal(format!("resize source: {e}")))?;
    let mut dst = Image::new(size, size, pixel_type(src.layout));
    Resizer::new()
        .resize(
            &view,
            &mut dst,
            &options(src.layout).crop(r.x, r.y, r.w, r.h),
        )
        .map_err(|e| PipelineError::internal(format!("resize: {e}")))?;
    Ok(Pixels {
        width: size,
        height: size,
        layout: src.layout,
        data: dst.into_vec(),
    })
}

/// Resamples a whole square to another `size` x `size` square (smaller, or larger for
/// a small master).
pub(crate) fn downsize(src: &Pixels, size: u32) -> Result<Pixels, PipelineError> {
    let full = Rect {
        x: 0.0,
        y: 0.0,
        w: f64::from(src.width),
        h: f64::from(src.height),
    };
    square(src, &full, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplied_alpha_keeps_transparent_colour_out() {
        // Left half transparent red, right half opaque blue: a 1 px result must not be purple.
        let mut data = Vec::new();
        for _y in 0..8 {
            for x in 0..8 {
                data.extend_from_slice(if x < 4 {
                    &[255, 0, 0, 0]
                } else {
                    &[0, 0, 255, 255]
                });
            }
        }
        let p = Pixels {
            width: 8,
            height: 8,
            layout: Layout::Rgba,
            data,
        };
        let out = downsize(&p, 1).expect("resize");
        assert_eq!(out.data[0], 0, "red leaked: {:?}", out.data);
        assert!(
            out.data[2] > 250 && (120..=135).contains(&out.data[3]),
            "{:?}",
            out.data
        );
    }

    #[test]
    fn cmyk_k_is_not_treated_as_alpha() {
        let p = Pixels {
            width: 4,
            height: 4,
            layout: Layout::Cmyk,
            data: [200, 10, 10, 0].repeat(16),
        };
        let out = downsize(&p, 2).expect("resize");
        assert_eq!(&out.data[..4], &[200, 10, 10, 0]);
    }

    #[test]
    fn crops_and_upscales() {
        let p = Pixels {
            width: 3,
            height: 1,
            layout: Layout::Gray,
            data: vec![100, 100, 100],
        };
        let r = Rect {
            x: 1.0,
            y: 0.0,
            w: 1.0,
            h: 1.0,
        };
        let out = square(&p, &r, 4).expect("resize");
        assert_eq!((out.width, out.height), (4, 4));
        assert!(out.data.iter().all(|&v| v == 100), "{:?}", out.data);
    }
}
