//! WebP through libwebp (the `webp` crate's safe wrapper; issue 15): lossy variants for
//! opaque squares, lossless ones when there is transparency (lossy alpha rings at hard
//! edges), and the codec of the kept master. libwebp writes no metadata chunks unless
//! given some, so outputs carry no EXIF, ICC or XMP (API.md §Upload rules).

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Layout, PipelineError, Pixels};

/// RGB or RGBA bytes for libwebp, which takes no grey layouts.
fn rgb_or_rgba(p: &Pixels) -> Result<std::borrow::Cow<'_, [u8]>, PipelineError> {
    Ok(match p.layout {
        Layout::Rgb | Layout::Rgba => std::borrow::Cow::Borrowed(&p.data[..]),
        Layout::Gray => p.data.iter().flat_map(|&g| [g, g, g]).collect(),
        Layout::GrayAlpha => p
            .data
            .chunks_exact(2)
            .flat_map(|c| [c[0], c[0], c[0], c[1]])
            .collect(),
        Layout::Cmyk => return Err(PipelineError::internal("WebP encoder got CMYK pixels")),
    })
}

/// libwebp's effort settings for one kind of output: `method` (0 fastest .. 6) and, for
/// lossless, the effort `quality` (0..100) that `cwebp -z` pairs with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Effort {
    method: i32,
    lossless_effort: f32,
}

impl Effort {
    /// libwebp's defaults (method 4; lossless effort = the quality given): the variants,
    /// small squares where effort costs little and every byte is served often.
    pub(crate) const VARIANT: Self = Self {
        method: 4,
        lossless_effort: -1.0,
    };
    /// The master, 1024 px, written once per upload and read only by `reprocess`: method 2
    /// and `cwebp -z 2` for lossless. Measured with cwebp 1.2.4 on 1024 px squares of the
    /// shared corpus: lossy q90 76-126 ms instead of 164-224 (+0-3% bytes), alpha lossless
    /// 496 ms instead of 1,880 (bytes -0.2%).
    pub(crate) const MASTER: Self = Self {
        method: 2,
        lossless_effort: 25.0,
    };
}

/// Encodes a square: lossy at `quality` when opaque, lossless when it has alpha.
pub(crate) fn encode(p: &Pixels, quality: u8, effort: Effort) -> Result<Vec<u8>, PipelineError> {
    let data = rgb_or_rgba(p)?;
    let alpha = p.layout.has_alpha();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let enc = if alpha {
            webp::Encoder::from_rgba(&data, p.width, p.height)
        } else {
            webp::Encoder::from_rgb(&data, p.width, p.height)
        };
        let mut config = webp::WebPConfig::new()
            .map_err(|()| webp::WebPEncodingError::VP8_ENC_ERROR_INVALID_CONFIGURATION)?;
        let quality = f32::from(quality.clamp(1, 100));
        // As `encode_simple` sets them, plus the effort.
        config.lossless = i32::from(alpha);
        config.alpha_compression = i32::from(!alpha);
        config.method = effort.method;
        config.quality = if alpha && effort.lossless_effort >= 0.0 {
            effort.lossless_effort
        } else {
            quality
        };
        enc.encode_advanced(&config).map(|m| m.to_vec())
    }));
    match result {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(PipelineError::internal(format!(
            "WebP encoding failed: {e:?}"
        ))),
        Err(_) => Err(PipelineError::internal("WebP encoder failed")),
    }
}

/// Decodes a master written by [`encode`] back to RGB or RGBA pixels.
pub(crate) fn decode(bytes: &[u8]) -> Result<Pixels, PipelineError> {
    let image = webp::Decoder::new(bytes)
        .decode()
        .ok_or_else(|| PipelineError::internal("the kept master is not a readable WebP"))?;
    Ok(Pixels {
        width: image.width(),
        height: image.height(),
        layout: if image.is_alpha() {
            Layout::Rgba
        } else {
            Layout::Rgb
        },
        data: image.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_is_lossy_alpha_is_lossless_and_both_round_trip() {
        let rgba: Vec<u8> = (0..16 * 16)
            .flat_map(|i| [i as u8, 255 - i as u8, 7, if i % 2 == 0 { 0 } else { 255 }])
            .collect();
        let p = Pixels {
            width: 16,
            height: 16,
            layout: Layout::Rgba,
            data: rgba.clone(),
        };
        let out = decode(&encode(&p, 75, Effort::MASTER).expect("encode")).expect("decode");
        assert_eq!((out.width, out.layout), (16, Layout::Rgba));
        // Lossless for every visible pixel; colour under alpha 0 is free (as in our PNGs).
        for (got, want) in out.data.chunks_exact(4).zip(rgba.chunks_exact(4)) {
            assert_eq!(got[3], want[3]);
            if want[3] != 0 {
                assert_eq!(got, want, "lossless for alpha");
            }
        }
        let grey = Pixels {
            width: 8,
            height: 8,
            layout: Layout::Gray,
            data: vec![128; 64],
        };
        let out = decode(&encode(&grey, 75, Effort::VARIANT).expect("encode")).expect("decode");
        assert_eq!(out.layout, Layout::Rgb);
        assert!(
            out.data.iter().all(|&v| v.abs_diff(128) <= 3),
            "lossy, close"
        );
        assert!(decode(b"RIFF....WEBPnope").is_err());
    }
}
