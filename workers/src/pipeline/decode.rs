//! Decode stage: turns upload bytes into 8-bit pixels plus the metadata later stages need
//! (EXIF orientation, ICC profile), under the configured limits.
//!
//! - JPEG goes through mozjpeg with DCT-domain shrink-on-load: the smallest of 1/8, 1/4,
//!   1/2, 1/1 that still leaves the crop square at least as large as the biggest output.
//!   mozjpeg reports errors by unwinding (DEPENDENCIES.md Q2), so every call is inside
//!   `catch_unwind`.
//! - PNG, GIF (first frame) and WebP go through the `image` crate, with limits set on the
//!   decoder itself: `DynamicImage::from_decoder` does not check `max_alloc` against the
//!   output buffer, so we compare `total_bytes()` ourselves first.
//! - Truncation is checked on the container before decoding, because both decoders happily
//!   return half an image (mozjpeg fills the rest with grey, `image` may too).

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::{DynamicImage, ImageDecoder, ImageError};
use moocard::limits::ImageLimits;
use moocard::probe::{ImageKind, Probe};
use moocard::ErrorCode;
use mozjpeg::ColorSpace;

use super::crop::Rect;
use super::orient::Orientation;
use super::{Layout, PipelineError, Pixels};

/// Pixels as stored (not yet oriented), possibly shrunk on load, and their ICC profile.
pub(crate) struct Decoded {
    pub(crate) pixels: Pixels,
    pub(crate) icc: Option<Vec<u8>>,
}

/// An upload whose header and metadata have been read, ready to decode.
pub(crate) struct Source<'a> {
    probe: Probe,
    bytes: &'a [u8],
    limits: &'a ImageLimits,
    orientation: Orientation,
    icc: Option<Vec<u8>>,
    inner: Inner<'a>,
}

enum Inner<'a> {
    Jpeg(JpegInfo),
    Other(Box<dyn ImageDecoder + 'a>),
}

/// What the marker walk learned about a JPEG.
#[derive(Debug, Default)]
struct JpegInfo {
    progressive: bool,
    components: u8,
    /// Adobe APP14 present: CMYK samples are stored inverted (Photoshop convention).
    adobe: bool,
    exif: Option<Vec<u8>>,
    icc: Option<Vec<u8>>,
    scans: u32,
}

/// Upper bound on JPEG scans (SOS markers); see [`scan_jpeg`].
const MAX_SCANS: u32 = 100;

impl<'a> Source<'a> {
    /// Checks the container and reads metadata; no pixel is decoded yet.
    pub(crate) fn open(
        probe: Probe,
        bytes: &'a [u8],
        limits: &'a ImageLimits,
    ) -> Result<Self, PipelineError> {
        let (orientation, icc, inner) = match probe.kind {
            ImageKind::Jpeg => {
                let mut info = scan_jpeg(bytes)?;
                let orientation = info
                    .exif
                    .as_deref()
                    .map(Orientation::from_exif)
                    .unwrap_or_default();
                (orientation, info.icc.take(), Inner::Jpeg(info))
            }
            kind => {
                check_container(kind, bytes)?;
                let mut dec = image_decoder(kind, bytes, limits)?;
                // Metadata is best effort: a broken eXIf/ICCP chunk must not fail the upload.
                let icc = dec.icc_profile().ok().flatten();
                let orientation = dec
                    .exif_metadata()
                    .ok()
                    .flatten()
                    .map(|e| Orientation::from_exif(&e))
                    .unwrap_or_default();
                (orientation, icc, Inner::Other(dec))
            }
        };
        Ok(Self {
            probe,
            bytes,
            limits,
            orientation,
            icc,
            inner,
        })
    }

    /// The EXIF orientation (1 when absent or malformed).
    pub(crate) fn orientation(&self) -> Orientation {
        self.orientation
    }

    /// Decodes. `square` (stored full-size pixels) and `largest` pick the JPEG scale.
    pub(crate) fn decode(self, square: &Rect, largest: u32) -> Result<Decoded, PipelineError> {
        let pixels = match self.inner {
            Inner::Jpeg(info) => {
                let scale = jpeg_scale(square.short_side(), largest);
                decode_jpeg(self.bytes, &info, self.probe, scale, self.limits)?
            }
            Inner::Other(dec) => decode_image(dec, self.limits)?,
        };
        Ok(Decoded {
            pixels,
            icc: self.icc,
        })
    }
}

/// Smallest numerator n (of n/8) in {1, 2, 4, 8} keeping `short_side * n / 8 >= largest`.
/// Powers of two only: libjpeg-turbo has SIMD IDCTs for exactly these.
pub(crate) fn jpeg_scale(short_side: f64, largest: u32) -> u8 {
    [1u8, 2, 4]
        .into_iter()
        .find(|&n| short_side * f64::from(n) / 8.0 >= f64::from(largest))
        .unwrap_or(8)
}

fn too_large_alloc(needed: u64, limits: &ImageLimits) -> PipelineError {
    PipelineError::new(
        ErrorCode::ImageTooLarge,
        format!(
            "decoding needs about {needed} bytes of memory; the limit is {} bytes",
            limits.max_decode_alloc_bytes
        ),
    )
}

fn decode_jpeg(
    bytes: &[u8],
    info: &JpegInfo,
    probe: Probe,
    scale: u8,
    limits: &ImageLimits,
) -> Result<Pixels, PipelineError> {
    let n = u64::from(scale);
    let (w, h) = (u64::from(probe.width), u64::from(probe.height));
    // Output buffer, plus the whole-image coefficient buffer progressive files need
    // (2 bytes per coefficient per component, before any scaling).
    let mut needed = w.div_ceil(8) * n * h.div_ceil(8) * n * 4;
    if info.progressive {
        needed += w * h * u64::from(info.components.max(1)) * 2;
    }
    if needed > limits.max_decode_alloc_bytes {
        return Err(too_large_alloc(needed, limits));
    }
    let adobe = info.adobe;
    let result = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Pixels> {
        let mut d = mozjpeg::Decompress::new_mem(bytes)?;
        d.scale(scale);
        let (layout, mut started) = match d.color_space() {
            ColorSpace::JCS_GRAYSCALE => (Layout::Gray, d.grayscale()?),
            ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
                (Layout::Cmyk, d.to_colorspace(ColorSpace::JCS_CMYK)?)
            }
            _ => (Layout::Rgb, d.rgb()?),
        };
        let (width, height) = (started.width(), started.height());
        let mut data: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        if data.len() != width * height * layout.channels() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if layout == Layout::Cmyk && adobe {
            // Adobe writes 0 = full ink; the rest of the pipeline uses 0 = no ink.
            data.iter_mut().for_each(|v| *v = 255 - *v);
        }
        Ok(Pixels {
            width: u32::try_from(width).map_err(|_| std::io::ErrorKind::InvalidData)?,
            height: u32::try_from(height).map_err(|_| std::io::ErrorKind::InvalidData)?,
            layout,
            data,
        })
    }));
    match result {
        Ok(Ok(p)) if p.width > 0 && p.height > 0 => Ok(p),
        Ok(Ok(_)) => Err(PipelineError::undecodable("JPEG decoded to an empty image")),
        Ok(Err(e)) => Err(PipelineError::undecodable(format!(
            "JPEG could not be decoded: {e}"
        ))),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("decoder error");
            Err(PipelineError::undecodable(format!(
                "JPEG could not be decoded: {msg}"
            )))
        }
    }
}

fn image_decoder<'a>(
    kind: ImageKind,
    bytes: &'a [u8],
    limits: &ImageLimits,
) -> Result<Box<dyn ImageDecoder + 'a>, PipelineError> {
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(limits.max_dimension);
    lim.max_image_height = Some(limits.max_dimension);
    lim.max_alloc = Some(limits.max_decode_alloc_bytes);
    let cursor = Cursor::new(bytes);
    let mut dec: Box<dyn ImageDecoder + 'a> = match kind {
        ImageKind::Png => Box::new(
            PngDecoder::with_limits(cursor, lim.clone()).map_err(|e| image_err(e, limits))?,
        ),
        ImageKind::Gif => Box::new(GifDecoder::new(cursor).map_err(|e| image_err(e, limits))?),
        ImageKind::WebP => Box::new(WebPDecoder::new(cursor).map_err(|e| image_err(e, limits))?),
        ImageKind::Jpeg => {
            return Err(PipelineError::internal("JPEG is decoded by mozjpeg"));
        }
    };
    dec.set_limits(lim).map_err(|e| image_err(e, limits))?;
    Ok(dec)
}

fn image_err(e: ImageError, limits: &ImageLimits) -> PipelineError {
    match e {
        ImageError::Limits(l) => PipelineError::new(
            ErrorCode::ImageTooLarge,
            format!(
                "image exceeds a decoder limit ({l}); the limits are {} pixels per side and {} \
                 bytes of decoder memory",
                limits.max_dimension, limits.max_decode_alloc_bytes
            ),
        ),
        other => PipelineError::undecodable(format!("image could not be decoded: {other}")),
    }
}

fn decode_image(
    dec: Box<dyn ImageDecoder + '_>,
    limits: &ImageLimits,
) -> Result<Pixels, PipelineError> {
    // The output buffer is not counted by the decoders themselves (see module docs).
    let needed = dec.total_bytes();
    if needed > limits.max_decode_alloc_bytes {
        return Err(too_large_alloc(needed, limits));
    }
    let img = DynamicImage::from_decoder(dec).map_err(|e| image_err(e, limits))?;
    let (width, height) = (img.width(), img.height());
    if width == 0 || height == 0 {
        return Err(PipelineError::undecodable(
            "image decoded to an empty image",
        ));
    }
    // 16-bit and float inputs are reduced to 8 bits here; later stages are 8-bit only.
    let (layout, data) = match img {
        DynamicImage::ImageLuma8(b) => (Layout::Gray, b.into_raw()),
        DynamicImage::ImageLumaA8(b) => (Layout::GrayAlpha, b.into_raw()),
        DynamicImage::ImageRgb8(b) => (Layout::Rgb, b.into_raw()),
        DynamicImage::ImageRgba8(b) => (Layout::Rgba, b.into_raw()),
        DynamicImage::ImageLuma16(_) => (Layout::Gray, img.to_luma8().into_raw()),
        DynamicImage::ImageLumaA16(_) => (Layout::GrayAlpha, img.to_luma_alpha8().into_raw()),
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgb32F(_) => {
            (Layout::Rgb, img.to_rgb8().into_raw())
        }
        _ => (Layout::Rgba, img.to_rgba8().into_raw()),
    };
    Ok(Pixels {
        width,
        height,
        layout,
        data,
    })
}

/// Refuses PNG without IEND and WebP whose RIFF size overruns the data. GIF decoding
/// reports truncated frames itself, and only the first frame matters.
fn check_container(kind: ImageKind, b: &[u8]) -> Result<(), PipelineError> {
    match kind {
        ImageKind::Png => {
            let mut i = 8usize;
            loop {
                let Some(len) = b.get(i..i + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
                    return Err(truncated("PNG", "no IEND chunk"));
                };
                let len = u32::from_be_bytes(len) as usize;
                let end = i.saturating_add(12).saturating_add(len);
                if end > b.len() {
                    return Err(truncated("PNG", "a chunk runs past the end of the data"));
                }
                if b.get(i + 4..i + 8) == Some(b"IEND") {
                    return Ok(());
                }
                i = end;
            }
        }
        ImageKind::WebP => {
            let size = b
                .get(4..8)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0) as usize;
            if size.saturating_add(8) > b.len() {
                return Err(truncated(
                    "WebP",
                    "the RIFF size runs past the end of the data",
                ));
            }
            Ok(())
        }
        ImageKind::Gif | ImageKind::Jpeg => Ok(()),
    }
}

fn truncated(format: &str, why: &str) -> PipelineError {
    PipelineError::undecodable(format!("{format} data is truncated or corrupt: {why}"))
}

/// Walks a JPEG's marker segments and entropy-coded data up to EOI, collecting EXIF, ICC
/// and Adobe markers. A missing EOI means the upload was cut short.
fn scan_jpeg(b: &[u8]) -> Result<JpegInfo, PipelineError> {
    let mut info = JpegInfo::default();
    let mut icc_chunks: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut i = 2usize;
    loop {
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        match (b.get(i), b.get(i + 1)) {
            (Some(0xFF), Some(&m)) => {
                i += 2;
                match m {
                    0xD9 => break,
                    0x01 | 0xD0..=0xD7 => continue,
                    0xD8 => return Err(truncated("JPEG", "unexpected start-of-image marker")),
                    _ => {}
                }
                let len = b
                    .get(i..i + 2)
                    .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
                    .ok_or_else(|| truncated("JPEG", "no end-of-image marker"))?;
                if len < 2 || i + len > b.len() {
                    return Err(truncated("JPEG", "a marker segment runs past the end"));
                }
                let data = &b[i + 2..i + len];
                match m {
                    0xE1 if info.exif.is_none() && data.starts_with(b"Exif\0\0") => {
                        info.exif = Some(data.to_vec());
                    }
                    0xE2 if data.len() > 14 && data.starts_with(b"ICC_PROFILE\0") => {
                        icc_chunks.push((data[12], data[13], &data[14..]));
                    }
                    0xEE if data.starts_with(b"Adobe") => info.adobe = true,
                    0xC0..=0xCF if !matches!(m, 0xC4 | 0xC8 | 0xCC) => {
                        info.progressive = matches!(m, 0xC2 | 0xC6 | 0xCA | 0xCE);
                        info.components = data.get(5).copied().unwrap_or(0);
                    }
                    _ => {}
                }
                i += len;
                if m == 0xDA {
                    // Each progressive scan makes libjpeg revisit the whole coefficient
                    // buffer, so thousands of tiny scans turn a small file into minutes of
                    // CPU. Real encoders write about 10; libjpeg-turbo suggests capping.
                    info.scans += 1;
                    if info.scans > MAX_SCANS {
                        return Err(PipelineError::undecodable(format!(
                            "JPEG has more than {MAX_SCANS} scans; the limit is {MAX_SCANS}"
                        )));
                    }
                    // Entropy-coded data: skip to the next marker that is not a stuffed
                    // zero (FF 00), a restart (FF D0..D7) or fill.
                    loop {
                        let Some(off) = find_ff(&b[i..]) else {
                            return Err(truncated("JPEG", "no end-of-image marker"));
                        };
                        i += off;
                        match b.get(i + 1) {
                            Some(0x00 | 0xD0..=0xD7) => i += 2,
                            Some(0xFF) => i += 1,
                            Some(_) => break,
                            None => return Err(truncated("JPEG", "no end-of-image marker")),
                        }
                    }
                }
            }
            (None, _) | (Some(0xFF), None) => {
                return Err(truncated("JPEG", "no end-of-image marker"))
            }
            _ => return Err(truncated("JPEG", "garbage between marker segments")),
        }
    }
    info.icc = assemble_icc(icc_chunks);
    Ok(info)
}

/// Index of the first 0xFF byte. Checks 8 bytes per step (SWAR), because the walk covers
/// every byte of the entropy-coded data, megabytes for a camera photo.
fn find_ff(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut start = 0;
    for chunk in b.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A byte of !x is zero exactly where x has 0xFF.
        let v = !u64::from_le_bytes(word);
        if v.wrapping_sub(ONES) & !v & HIGHS != 0 {
            break;
        }
        start += 8;
    }
    b[start..]
        .iter()
        .position(|&x| x == 0xFF)
        .map(|p| p + start)
}

/// Joins APP2 ICC chunks by sequence number; an inconsistent set is dropped (and the image
/// then treated as sRGB, as browsers do).
fn assemble_icc(mut chunks: Vec<(u8, u8, &[u8])>) -> Option<Vec<u8>> {
    let count = chunks.first()?.1;
    chunks.sort_by_key(|c| c.0);
    let consistent = usize::from(count) == chunks.len()
        && chunks
            .iter()
            .enumerate()
            .all(|(k, c)| c.1 == count && usize::from(c.0) == k + 1);
    if !consistent {
        tracing::warn!(
            chunks = chunks.len(),
            "ignoring inconsistent ICC profile chunks"
        );
        return None;
    }
    Some(chunks.iter().flat_map(|c| c.2.iter().copied()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_keeps_the_square_above_the_largest_size() {
        assert_eq!(jpeg_scale(3888.0, 512), 2);
        assert_eq!(jpeg_scale(4096.0, 512), 1);
        assert_eq!(jpeg_scale(2000.0, 512), 4);
        assert_eq!(jpeg_scale(1023.0, 512), 8);
        assert_eq!(jpeg_scale(300.0, 512), 8);
    }

    #[test]
    fn icc_chunks_are_joined_in_order() {
        let a: &[u8] = b"ab";
        let b: &[u8] = b"cd";
        assert_eq!(
            assemble_icc(vec![(2, 2, b), (1, 2, a)]),
            Some(b"abcd".to_vec())
        );
        assert_eq!(assemble_icc(vec![(1, 3, a), (2, 3, b)]), None);
        assert_eq!(assemble_icc(vec![]), None);
    }

    #[test]
    fn jpeg_walk_requires_eoi() {
        let mut j = vec![
            0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 1, 2, 0xFF, 0, 3, 0xFF, 0xD0, 4,
        ];
        assert!(scan_jpeg(&j).is_err());
        j.extend_from_slice(&[0xFF, 0xD9]);
        assert!(scan_jpeg(&j).is_ok());
        for n in 0..j.len() - 1 {
            assert!(scan_jpeg(&j[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn find_ff_matches_a_plain_search() {
        let mut v = vec![0u8; 40];
        assert_eq!(find_ff(&v), None);
        for i in [0, 7, 8, 9, 23, 39] {
            v.fill(0x7F);
            v[i] = 0xFF;
            assert_eq!(find_ff(&v), Some(i));
            assert_eq!(find_ff(&v[..i]), None);
        }
    }

    #[test]
    fn scan_bombs_are_refused() {
        let mut j = vec![0xFF, 0xD8];
        for _ in 0..=MAX_SCANS {
            j.extend_from_slice(&[0xFF, 0xDA, 0, 2, 7]);
        }
        j.extend_from_slice(&[0xFF, 0xD9]);
        let e = scan_jpeg(&j).expect_err("too many scans");
        assert!(e.message.contains("the limit is 100"), "{}", e.message);
    }
}
