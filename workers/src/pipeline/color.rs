//! Colour stage: everything leaves as sRGB (API.md §Upload rules), and alpha survives only
//! when it is real.
//!
//! - An embedded ICC profile (RGB, grey or CMYK) is converted to sRGB with moxcms. We write
//!   no profile, so skipping this would silently shift Display P3 / Adobe RGB colours.
//! - CMYK without a profile uses the plain formula `R = 255 (1-C)(1-K)`: the policy Pillow
//!   uses, and the one the benchmark reference scores against (BASELINE.md §1d).
//! - A profile that cannot be parsed, or does not match the pixel layout, is ignored with a
//!   warning and the pixels are taken as sRGB, which is what browsers do with such files.

use moxcms::{ColorProfile, DataColorSpace, Layout as CmsLayout, TransformOptions};

use super::crop::Rect;
use super::{Layout, Pixels};

/// Converts to sRGB. Grey stays grey when there is no profile to apply.
pub(crate) fn to_srgb(p: Pixels, icc: Option<&[u8]>) -> Pixels {
    if let Some(icc) = icc {
        match convert_icc(&p, icc) {
            Ok(converted) => return converted,
            Err(why) => tracing::warn!(reason = %why, "ignoring embedded ICC profile"),
        }
    }
    if p.layout == Layout::Cmyk {
        return cmyk_formula(p);
    }
    p
}

/// Always converts, even from an sRGB profile: that costs about a millisecond on the final
/// square, and a shortcut that compared primaries would miss odd tone curves.
fn convert_icc(p: &Pixels, icc: &[u8]) -> Result<Pixels, String> {
    let src = ColorProfile::new_from_slice(icc).map_err(|e| format!("unreadable profile: {e}"))?;
    let (src_layout, dst_layout, out_layout) = match (src.color_space, p.layout) {
        (DataColorSpace::Rgb, Layout::Rgb) => (CmsLayout::Rgb, CmsLayout::Rgb, Layout::Rgb),
        (DataColorSpace::Rgb, Layout::Rgba) => (CmsLayout::Rgba, CmsLayout::Rgba, Layout::Rgba),
        (DataColorSpace::Gray, Layout::Gray) => (CmsLayout::Gray, CmsLayout::Rgb, Layout::Rgb),
        (DataColorSpace::Gray, Layout::GrayAlpha) => {
            (CmsLayout::GrayAlpha, CmsLayout::Rgba, Layout::Rgba)
        }
        // moxcms reads 8-bit CMYK through the RGBA layout.
        (DataColorSpace::Cmyk, Layout::Cmyk) => (CmsLayout::Rgba, CmsLayout::Rgb, Layout::Rgb),
        (space, layout) => {
            return Err(format!(
                "a {space:?} profile does not fit {layout:?} pixels"
            ));
        }
    };
    let dst = ColorProfile::new_srgb();
    let transform = src
        .create_transform_8bit(src_layout, &dst, dst_layout, TransformOptions::default())
        .map_err(|e| format!("cannot build a transform: {e}"))?;
    let mut out = vec![0u8; p.width as usize * p.height as usize * out_layout.channels()];
    transform
        .transform(&p.data, &mut out)
        .map_err(|e| format!("transform failed: {e}"))?;
    Ok(Pixels {
        width: p.width,
        height: p.height,
        layout: out_layout,
        data: out,
    })
}

fn cmyk_formula(p: Pixels) -> Pixels {
    let data = p
        .data
        .chunks_exact(4)
        .flat_map(|c| {
            let k = 255 - u32::from(c[3]);
            let ch = |v: u8| ((255 - u32::from(v)) * k + 127) / 255;
            [ch(c[0]) as u8, ch(c[1]) as u8, ch(c[2]) as u8]
        })
        .collect();
    Pixels {
        width: p.width,
        height: p.height,
        layout: Layout::Rgb,
        data,
    }
}

/// True when every alpha sample is 255.
pub(crate) fn is_opaque(p: &Pixels) -> bool {
    let rect = Rect {
        x: 0.0,
        y: 0.0,
        w: f64::from(p.width),
        h: f64::from(p.height),
    };
    is_opaque_in(p, &rect)
}

/// True when every alpha sample inside `rect` (grown to whole pixels, plus the resampling
/// kernel's reach) is 255. Images without alpha are opaque.
pub(crate) fn is_opaque_in(p: &Pixels, rect: &Rect) -> bool {
    if !p.layout.has_alpha() {
        return true;
    }
    let cn = p.layout.channels();
    let (w, h) = (p.width as usize, p.height as usize);
    // Lanczos3 reaches 3 source pixels beyond the edge when downscaling by up to 1x;
    // a margin of 4 keeps edge transparency that would leak into the result.
    let margin = 4.0;
    let x0 = (rect.x - margin).floor().max(0.0) as usize;
    let y0 = (rect.y - margin).floor().max(0.0) as usize;
    let x1 = ((rect.x + rect.w + margin).ceil() as usize).min(w);
    let y1 = ((rect.y + rect.h + margin).ceil() as usize).min(h);
    (y0..y1).all(|y| {
        let row = &p.data[(y * w + x0) * cn..(y * w + x1) * cn];
        row.chunks_exact(cn).all(|px| px[cn - 1] == 255)
    })
}

/// Removes the alpha channel (callers check it is all 255 first).
pub(crate) fn drop_alpha(mut p: Pixels) -> Pixels {
    let (layout, keep) = match p.layout {
        Layout::GrayAlpha => (Layout::Gray, 1),
        Layout::Rgba => (Layout::Rgb, 3),
        _ => return p,
    };
    let cn = p.layout.channels();
    // In place (the write index never passes the read index), so a full-size buffer is
    // never held twice.
    let pixels = p.data.len() / cn;
    for i in 0..pixels {
        p.data.copy_within(i * cn..i * cn + keep, i * keep);
    }
    p.data.truncate(pixels * keep);
    p.data.shrink_to_fit();
    Pixels {
        width: p.width,
        height: p.height,
        layout,
        data: p.data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(layout: Layout, data: Vec<u8>) -> Pixels {
        let n = (data.len() / layout.channels()) as u32;
        Pixels {
            width: n,
            height: 1,
            layout,
            data,
        }
    }

    #[test]
    fn cmyk_formula_matches_pillow() {
        let p = px(
            Layout::Cmyk,
            vec![0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 0, 128, 255, 0],
        );
        assert_eq!(
            to_srgb(p, None).data,
            vec![255, 255, 255, 0, 255, 255, 0, 0, 0, 255, 127, 0]
        );
    }

    #[test]
    fn display_p3_red_maps_outside_srgb_red() {
        let p3 = ColorProfile::new_display_p3().encode().expect("encode p3");
        let out = to_srgb(px(Layout::Rgb, vec![255, 0, 0, 0, 255, 0]), Some(&p3));
        // P3 pure red and green are outside sRGB: clipped to the sRGB primary, with the
        // other channels at zero; a dropped profile would leave them untouched too, so also
        // check a mid tone, which must move.
        assert_eq!(out.layout, Layout::Rgb);
        let mid = to_srgb(px(Layout::Rgb, vec![200, 100, 50]), Some(&p3));
        assert!(mid.data[0] > 205 && mid.data[2] < 45, "{:?}", mid.data);
    }

    #[test]
    fn srgb_profile_is_near_identity_and_garbage_is_ignored() {
        let srgb = ColorProfile::new_srgb().encode().expect("encode srgb");
        let p = px(Layout::Rgb, vec![10, 20, 30, 128, 200, 250]);
        let out = to_srgb(p.clone(), Some(&srgb));
        for (a, b) in out.data.iter().zip(&p.data) {
            assert!(a.abs_diff(*b) <= 1, "{:?}", out.data);
        }
        assert_eq!(to_srgb(p.clone(), Some(b"not a profile")), p);
    }

    #[test]
    fn opacity_and_alpha_dropping() {
        let p = px(Layout::Rgba, vec![1, 2, 3, 255, 4, 5, 6, 254]);
        assert!(!is_opaque(&p));
        let q = px(Layout::GrayAlpha, vec![7, 255, 8, 255]);
        assert!(is_opaque(&q));
        assert_eq!(drop_alpha(q).data, vec![7, 8]);
        let r = Rect {
            x: 0.0,
            y: 0.0,
            w: 1.0,
            h: 1.0,
        };
        // The transparent pixel is within the kernel margin of the rect.
        assert!(!is_opaque_in(&p, &r));
    }
}
