//! Decode stage: turns upload bytes into 8-bit pixels plus the metadata later stages need
//! (EXIF orientation, ICC profile), under the configured limits.
//!
//! - JPEG goes through mozjpeg with DCT-domain shrink-on-load: the smallest of 1/8, 1/4,
//!   1/2, 1/1 that still leaves the crop square at least as large as the biggest output.
//!   mozjpeg reports errors by unwinding (DEPENDENCIES.md Q2), so every call is inside
//!   `catch_unwind`.
//!   libjpeg's corrupt-data warnings stop the decode (`strict.rs`).
//! - PNG is streamed row by row with box shrink-on-load of the crop square only (`png_stream.rs`).
//! - Still WebP is decoded by libwebp straight to the crop square at the shrink-on-load
//!   size (`webp_still.rs`).
//! - GIF (first frame) and animated WebP go through the `image` crate, with limits set on
//!   the decoder itself: `DynamicImage::from_decoder` does not check `max_alloc` against the
//!   output buffer, so we compare `total_bytes()` ourselves first.
//! - Truncation is checked on the container before decoding, because decoders happily
//!   return half an image (mozjpeg fills the rest with grey, `image` may too).
//! - [`Source::memory_needed`] estimates the peak for the memory budget (`budget.rs`).
//! - Orientation comes from the probe (`moocard::exif`), so upload and worker agree on it.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::codecs::gif::GifDecoder;
use image::codecs::webp::WebPDecoder;
use image::{DynamicImage, ImageDecoder, ImageError};
use moocard::limits::ImageLimits;
use moocard::probe::{ImageKind, Probe};
use moocard::ErrorCode;
use mozjpeg::ColorSpace;

mod markers;
mod png_stream;
mod strict;
mod webp_still;
mod window;

use self::markers::{scan_jpeg, truncated, JpegInfo};
use super::crop::Rect;
use super::orient::Orientation;
use super::{Layout, PipelineError, Pixels};

/// Pixels as stored (not yet oriented), possibly shrunk on load and windowed to the
/// square, their ICC profile, and where the square lies in them.
pub(crate) struct Decoded {
    pub(crate) pixels: Pixels,
    pub(crate) icc: Option<Vec<u8>>,
    pub(crate) rect: Rect,
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
    Png,
    /// A still WebP (libwebp); the ICC profile was read by the `image` crate's chunk reader.
    WebP(webp_scaled::Features),
    Other(Box<dyn ImageDecoder + 'a>),
}

impl<'a> Source<'a> {
    /// Checks the container and reads metadata; no pixel is decoded yet.
    pub(crate) fn open(
        probe: Probe,
        bytes: &'a [u8],
        limits: &'a ImageLimits,
    ) -> Result<Self, PipelineError> {
        let orientation = Orientation::new(u16::from(probe.orientation));
        let (icc, inner) = match probe.kind {
            ImageKind::Jpeg => {
                let mut info = scan_jpeg(bytes)?;
                (info.icc.take(), Inner::Jpeg(info))
            }
            ImageKind::Png => {
                check_container(ImageKind::Png, bytes)?;
                // The profile comes out of the streaming decode, bounded (png_stream.rs).
                (None, Inner::Png)
            }
            kind => {
                check_container(kind, bytes)?;
                let mut dec = image_decoder(kind, bytes, limits)?;
                // Metadata is best effort: a broken ICC chunk must not fail the upload.
                let icc = dec.icc_profile().ok().flatten();
                let still = match kind {
                    ImageKind::WebP => webp_still::still(bytes),
                    _ => None,
                };
                match still {
                    Some(f) => (icc, Inner::WebP(f)),
                    None => (icc, Inner::Other(dec)),
                }
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

    /// Peak bytes the decode of `square` (stored pixels) and the stages after it hold,
    /// input excluded; what a job reserves from the memory budget.
    pub(crate) fn memory_needed(&self, square: &Rect, largest: u32, metadata: u64) -> u64 {
        let (w, h) = (u64::from(self.probe.width), u64::from(self.probe.height));
        // Resize intermediates (one pass over the square's rows at the output width) and
        // encoders (a few copies of the largest square) are small and bounded.
        let after = square.short_side().ceil() as u64 * u64::from(largest) * 4
            + u64::from(largest) * u64::from(largest) * 4 * 8;
        let decode = match &self.inner {
            Inner::Jpeg(info) => jpeg_memory(w, h, info, jpeg_scale(square.short_side(), largest)),
            Inner::Png => png_stream::memory_needed(
                self.probe.width,
                self.probe.height,
                png_interlaced(self.bytes),
                square,
                largest,
                metadata,
            ),
            Inner::WebP(f) => webp_still::memory_needed(f, square, largest),
            // The `image` decoders fill a full-size RGBA canvas; GIF also keeps the indexed
            // frame and lossless WebP an ARGB working copy: count two canvases.
            Inner::Other(dec) => dec.total_bytes().max(w * h * 4) * 2,
        };
        decode + after
    }

    /// Decodes. `square` (stored full-size pixels) and `largest` pick the shrink-on-load
    /// scale; `metadata` bounds PNG metadata chunks.
    pub(crate) fn decode(
        self,
        square: &Rect,
        largest: u32,
        metadata: u64,
    ) -> Result<Decoded, PipelineError> {
        let pixels = match self.inner {
            Inner::Jpeg(info) => {
                let scale = jpeg_scale(square.short_side(), largest);
                decode_jpeg(self.bytes, &info, self.probe, scale, self.limits)?
            }
            Inner::Png => {
                let w = png_stream::decode(self.bytes, square, largest, metadata)?;
                return Ok(w.into());
            }
            Inner::WebP(f) => {
                if (f.width, f.height) != (self.probe.width, self.probe.height) {
                    return Err(PipelineError::undecodable(format!(
                        "WebP frame is {}x{} but its header says {}x{}",
                        f.width, f.height, self.probe.width, self.probe.height
                    )));
                }
                let w = webp_still::decode(self.bytes, &f, square, largest, self.icc)?;
                return Ok(w.into());
            }
            Inner::Other(dec) => decode_image(dec, self.limits)?,
        };
        let rect = square.scaled(
            f64::from(pixels.width) / f64::from(self.probe.width),
            f64::from(pixels.height) / f64::from(self.probe.height),
        );
        Ok(Decoded {
            pixels,
            icc: self.icc,
            rect,
        })
    }
}

impl From<window::Window> for Decoded {
    fn from(w: window::Window) -> Self {
        Self {
            pixels: w.pixels,
            icc: w.icc,
            rect: w.rect,
        }
    }
}

/// Whether a PNG's IHDR declares Adam7 interlacing (byte 28).
fn png_interlaced(b: &[u8]) -> bool {
    b.get(28).is_some_and(|&i| i != 0)
}

/// Output buffer at `scale`/8, plus the whole-image coefficient buffer progressive files
/// need (2 bytes per coefficient per component, before any scaling).
fn jpeg_memory(w: u64, h: u64, info: &JpegInfo, scale: u8) -> u64 {
    let n = u64::from(scale);
    let mut needed = w.div_ceil(8) * n * h.div_ceil(8) * n * 4;
    if info.progressive {
        needed += w * h * u64::from(info.components.max(1)) * 2;
    }
    needed
}

/// Smallest numerator n (of n/8) in {1, 2, 4, 8} keeping `short_side * n / 8 >= largest`.
/// Powers of two only: libjpeg-turbo has SIMD IDCTs for exactly these.
pub(crate) fn jpeg_scale(short_side: f64, largest: u32) -> u8 {
    [1u8, 2, 4]
        .into_iter()
        .find(|&n| short_side * f64::from(n) / 8.0 >= f64::from(largest))
        .unwrap_or(8)
}

pub(crate) fn too_large_alloc(needed: u64, limits: &ImageLimits) -> PipelineError {
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
    let needed = jpeg_memory(u64::from(probe.width), u64::from(probe.height), info, scale);
    if needed > limits.max_decode_alloc_bytes {
        return Err(too_large_alloc(needed, limits));
    }
    let adobe = info.adobe;
    let result = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Pixels> {
        let mut d = mozjpeg::Decompress::with_err(strict::error_mgr()).from_mem(bytes)?;
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
        ImageKind::Gif => Box::new(GifDecoder::new(cursor).map_err(|e| image_err(e, limits))?),
        ImageKind::WebP => Box::new(WebPDecoder::new(cursor).map_err(|e| image_err(e, limits))?),
        ImageKind::Jpeg | ImageKind::Png => {
            return Err(PipelineError::internal(
                "JPEG and PNG have their own decoders",
            ));
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
}
