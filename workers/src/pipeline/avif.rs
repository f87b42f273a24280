//! AVIF through ravif (rav1e, pure Rust; issue 15): lossy variants, with an alpha plane when
//! the square has transparency. Chosen over libavif bindings because it builds with cargo
//! alone (libavif-sys needs cmake and a C++ build of libaom); SIMD needs NASM, so it is the
//! opt-in `avif-asm` feature (deploy/ and bench/ build with it; about 3x faster).
//! ravif writes no EXIF, XMP or ICC: only the sRGB `colr` box (API.md §Upload rules).

use std::panic::{catch_unwind, AssertUnwindSafe};

use ravif::{AlphaColorMode, BitDepth, Encoder, Img, RGB8, RGBA8};

use super::{Layout, PipelineError, Pixels};

/// Whether this build has rav1e's assembly (the `avif-asm` feature): logged when AVIF is on.
pub const SIMD: bool = cfg!(feature = "avif-asm");

/// Encodes a square at `quality` (1..=100) and rav1e `speed` (1..=10, 10 fastest).
pub(crate) fn encode(p: &Pixels, quality: u8, speed: u8) -> Result<Vec<u8>, PipelineError> {
    let quality = f32::from(quality.clamp(1, 100));
    let encoder = Encoder::new()
        .with_quality(quality)
        .with_alpha_quality(quality)
        .with_speed(speed.clamp(1, 10))
        // 8-bit: our sources are 8-bit sRGB; rav1e's 8-bit path is the faster one.
        .with_bit_depth(BitDepth::Eight)
        .with_alpha_color_mode(AlphaColorMode::UnassociatedClean)
        // One thread: `derive` already runs two encoders at once, one per core.
        .with_num_threads(Some(1));
    let (w, h) = (p.width as usize, p.height as usize);
    // Grey repeats its one channel as R, G and B; alpha is always the last channel.
    let n = p.layout.channels();
    let (g, b) = if n >= 3 { (1, 2) } else { (0, 0) };
    let texels = p.data.chunks_exact(n);
    let result = catch_unwind(AssertUnwindSafe(|| match p.layout {
        Layout::Rgb | Layout::Gray => {
            let px: Vec<RGB8> = texels.map(|c| RGB8::new(c[0], c[g], c[b])).collect();
            encoder.encode_rgb(Img::new(&px[..], w, h))
        }
        Layout::Rgba | Layout::GrayAlpha => {
            let px: Vec<RGBA8> = texels
                .map(|c| RGBA8::new(c[0], c[g], c[b], c[n - 1]))
                .collect();
            encoder.encode_rgba(Img::new(&px[..], w, h))
        }
        Layout::Cmyk => Err(ravif::Error::Unsupported("CMYK")),
    }));
    match result {
        Ok(Ok(img)) => Ok(img.avif_file),
        Ok(Err(e)) => Err(PipelineError::internal(format!(
            "AVIF encoding failed: {e}"
        ))),
        Err(_) => Err(PipelineError::internal("AVIF encoder failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(layout: Layout, side: u32) -> Pixels {
        let n = layout.channels();
        let mut data = Vec::with_capacity(side as usize * side as usize * n);
        for y in 0..side {
            for x in 0..side {
                let v = ((x * 255) / side) as u8;
                let px = [
                    v,
                    ((y * 255) / side) as u8,
                    128,
                    if x < side / 2 { 0 } else { 255 },
                ];
                match layout {
                    Layout::Gray => data.push(v),
                    Layout::GrayAlpha => data.extend([v, px[3]]),
                    Layout::Rgb => data.extend(&px[..3]),
                    Layout::Rgba | Layout::Cmyk => data.extend(px),
                }
            }
        }
        Pixels {
            width: side,
            height: side,
            layout,
            data,
        }
    }

    fn has(bytes: &[u8], needle: &[u8]) -> bool {
        bytes.windows(needle.len()).any(|w| w == needle)
    }

    const ALPHA_URN: &[u8] = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";

    #[test]
    fn opaque_squares_are_avif_without_metadata_or_alpha() {
        for layout in [Layout::Rgb, Layout::Gray] {
            let bytes = encode(&square(layout, 64), 60, 10).expect("encodes");
            assert_eq!(&bytes[4..12], b"ftypavif", "{layout:?}");
            assert!(!has(&bytes, ALPHA_URN), "{layout:?}: no alpha plane");
            assert!(
                !has(&bytes, b"Exif") && !has(&bytes, b"mime"),
                "{layout:?}: no metadata"
            );
        }
    }

    #[test]
    fn transparency_gets_an_alpha_plane() {
        for layout in [Layout::Rgba, Layout::GrayAlpha] {
            let bytes = encode(&square(layout, 32), 60, 10).expect("encodes");
            assert_eq!(&bytes[4..12], b"ftypavif");
            assert!(has(&bytes, ALPHA_URN), "{layout:?}: alpha plane");
        }
    }

    #[test]
    fn cmyk_is_refused_not_encoded() {
        let e = encode(&square(Layout::Cmyk, 16), 60, 10).expect_err("CMYK");
        assert_eq!(e.code, moocard::ErrorCode::Internal);
    }
}
