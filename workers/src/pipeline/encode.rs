//! Encode stage: opaque squares become baseline JPEG (mozjpeg: optimised Huffman tables,
//! 4:2:0, trellis quantisation unless disabled); squares with real transparency become PNG
//! optimised by oxipng. Neither writer is given any metadata, so outputs carry no EXIF,
//! ICC, XMP or text chunks (API.md §Upload rules).
//!
//! Baseline rather than progressive: at avatar sizes progressive saves little, costs
//! decode time on every view, and mozjpeg's scan search is slow.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mozjpeg::{ColorSpace, Compress};
use oxipng::{BitDepth, ColorType, Options, RawImage, StripChunks};

use super::{Layout, PipelineError, Pixels};

/// Encodes an opaque grey or RGB square as JPEG.
pub(crate) fn jpeg(p: &Pixels, quality: u8, trellis: bool) -> Result<Vec<u8>, PipelineError> {
    let color_space = match p.layout {
        Layout::Gray => ColorSpace::JCS_GRAYSCALE,
        Layout::Rgb => ColorSpace::JCS_RGB,
        other => {
            return Err(PipelineError::internal(format!(
                "JPEG encoder got {other:?} pixels"
            )))
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut c = Compress::new(color_space);
        if !trellis {
            // libjpeg-turbo defaults: no trellis, no scan search, standard tables.
            c.set_fastest_defaults();
        }
        c.set_size(p.width as usize, p.height as usize);
        c.set_quality(f32::from(quality.clamp(1, 100)));
        // A null scan script means one sequential (baseline) scan.
        c.set_optimize_scans(false);
        c.set_optimize_coding(true);
        if color_space == ColorSpace::JCS_RGB {
            c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        }
        let mut started = c.start_compress(Vec::with_capacity(p.data.len() / 8))?;
        started.write_scanlines(&p.data)?;
        started.finish()
    }));
    match result {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(PipelineError::internal(format!(
            "JPEG encoding failed: {e}"
        ))),
        Err(_) => Err(PipelineError::internal("JPEG encoder failed")),
    }
}

/// Encodes a square with real transparency as an optimised PNG.
pub(crate) fn png(p: &Pixels, preset: u8) -> Result<Vec<u8>, PipelineError> {
    let color_type = match p.layout {
        Layout::GrayAlpha => ColorType::GrayscaleAlpha,
        Layout::Rgba => ColorType::RGBA,
        Layout::Rgb => ColorType::RGB {
            transparent_color: None,
        },
        Layout::Gray => ColorType::Grayscale {
            transparent_shade: None,
        },
        Layout::Cmyk => return Err(PipelineError::internal("PNG encoder got CMYK pixels")),
    };
    let raw = RawImage::new(
        p.width,
        p.height,
        color_type,
        BitDepth::Eight,
        p.data.clone(),
    )
    .map_err(|e| PipelineError::internal(format!("PNG encoding failed: {e}")))?;
    let mut opts = Options::from_preset(preset.min(6));
    opts.strip = StripChunks::All;
    // Colour under alpha = 0 is invisible; letting oxipng normalise it compresses better.
    opts.optimize_alpha = true;
    raw.create_optimized_png(&opts)
        .map_err(|e| PipelineError::internal(format!("PNG encoding failed: {e}")))
}
