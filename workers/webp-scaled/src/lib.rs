//! libwebp's advanced decoding API behind one safe function: crop, scale and decode a
//! still WebP in one pass, on two threads, into a buffer we own.
//!
//! Why this crate: libvips' shrink-on-load for WebP is this API (`WebPDecode` with
//! `use_cropping`, `use_scaling` and `use_threads`), and no published safe binding exposes
//! it; the `webp` crate only wraps the simple `WebPDecodeRGB(A)`, which converts the whole
//! frame to RGB at full size. moocard and moocard-worker forbid `unsafe`; the FFI lives
//! here, small enough to read in one sitting:
//! - the only calls are `WebPInitDecoderConfig` (through libwebp-sys' safe `new`),
//!   `WebPGetFeatures`, `WebPDecode` and `WebPFreeDecBuffer`;
//! - the output buffer is a `Vec` we allocate at exactly the size libwebp checks against
//!   (`is_external_memory`), so libwebp never hands us memory to free or trust;
//! - every request is checked here before libwebp sees it, and libwebp checks it again.
//!
//! Threads: libwebp only runs its filter thread when built with `WEBP_USE_THREAD`
//! (the workspace's `.cargo/config.toml` sets it for libwebp-sys' cc build); without it
//! `threads` is ignored and decoding is single-threaded, never wrong.

use std::fmt;

use libwebp_sys as sys;

/// Width, height and whether the bitstream has alpha, from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub has_animation: bool,
    /// Lossless (VP8L); otherwise lossy (VP8), or mixed for animations.
    pub lossless: bool,
}

/// A region of the stored frame, in stored pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// What to decode: `crop` of the frame, resampled (libwebp's area-averaging rescaler)
/// to `width` x `height`, as RGB or RGBA (unassociated alpha).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub crop: Crop,
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub threads: bool,
}

/// Decoded pixels: `height` rows of `width * channels` bytes, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request does not fit the image (checked before libwebp runs).
    Request(String),
    /// The headers could not be read.
    NotWebp,
    /// libwebp's status: the bitstream is corrupt, truncated or unsupported.
    Decode(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Request(m) => write!(f, "invalid decode request: {m}"),
            Error::NotWebp => f.write_str("not a WebP bitstream libwebp can read"),
            Error::Decode(m) => write!(f, "libwebp: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Reads the headers (no pixels).
pub fn features(bytes: &[u8]) -> Result<Features, Error> {
    let mut f = std::mem::MaybeUninit::<sys::WebPBitstreamFeatures>::zeroed();
    // SAFETY: `bytes` is a live slice and its length is passed with it; libwebp reads at
    // most that many bytes. `f` is a valid, writable WebPBitstreamFeatures (zeroed is a
    // valid value: plain integers), which libwebp fills on success.
    let status = unsafe { sys::WebPGetFeatures(bytes.as_ptr(), bytes.len(), f.as_mut_ptr()) };
    if status != sys::VP8StatusCode::VP8_STATUS_OK {
        return Err(Error::NotWebp);
    }
    // SAFETY: zero-initialised above and written by libwebp: every field is an integer.
    let f = unsafe { f.assume_init() };
    let (Ok(width), Ok(height)) = (u32::try_from(f.width), u32::try_from(f.height)) else {
        return Err(Error::NotWebp);
    };
    Ok(Features {
        width,
        height,
        has_alpha: f.has_alpha != 0,
        has_animation: f.has_animation != 0,
        lossless: f.format == 2,
    })
}

/// Decodes `request` from a still WebP. Animated files are refused (`Error::Request`):
/// this API decodes only their first fragment's bitstream.
pub fn decode(bytes: &[u8], request: &Request) -> Result<Image, Error> {
    let feats = features(bytes)?;
    if feats.has_animation {
        return Err(Error::Request("animated WebP".into()));
    }
    let Request {
        crop,
        width,
        height,
        alpha,
        threads,
    } = *request;
    let fits = |v: u32| i32::try_from(v).is_ok() && v > 0;
    if !(fits(crop.width) && fits(crop.height) && fits(width) && fits(height)) {
        return Err(Error::Request(format!(
            "empty or oversized region ({}x{} to {width}x{height})",
            crop.width, crop.height
        )));
    }
    let inside = u64::from(crop.left) + u64::from(crop.width) <= u64::from(feats.width)
        && u64::from(crop.top) + u64::from(crop.height) <= u64::from(feats.height);
    if !inside {
        return Err(Error::Request(format!(
            "crop {}x{}+{}+{} outside the {}x{} frame",
            crop.width, crop.height, crop.left, crop.top, feats.width, feats.height
        )));
    }
    let channels: usize = if alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    let Some(size) = stride.checked_mul(height as usize) else {
        return Err(Error::Request("output too large".into()));
    };
    let (Ok(stride_c), Ok(left), Ok(top)) = (
        i32::try_from(stride),
        i32::try_from(crop.left),
        i32::try_from(crop.top),
    ) else {
        return Err(Error::Request("output too large".into()));
    };
    let mut data = vec![0u8; size];

    let mut config =
        sys::WebPDecoderConfig::new().map_err(|()| Error::Decode("incompatible library ABI"))?;
    let o = &mut config.options;
    o.use_cropping = 1;
    (o.crop_left, o.crop_top) = (left, top);
    (o.crop_width, o.crop_height) = (crop.width as i32, crop.height as i32);
    // libwebp only scales when the size differs; asking for the crop's own size is a copy.
    o.use_scaling = i32::from((width, height) != (crop.width, crop.height));
    (o.scaled_width, o.scaled_height) = (width as i32, height as i32);
    o.use_threads = i32::from(threads);
    config.output.colorspace = if alpha {
        sys::WEBP_CSP_MODE::MODE_RGBA
    } else {
        sys::WEBP_CSP_MODE::MODE_RGB
    };
    config.output.is_external_memory = 1;
    config.output.u.RGBA = sys::WebPRGBABuffer {
        rgba: data.as_mut_ptr(),
        stride: stride_c,
        size,
    };
    // SAFETY: `bytes` is a live slice passed with its length. `config` was initialised by
    // WebPInitDecoderConfig and holds an external RGB(A) buffer: `data`, which outlives the
    // call, is not otherwise borrowed during it, and is exactly `stride * height` bytes, the
    // size libwebp checks (CheckDecBuffer) before writing `height` rows of `stride` bytes.
    // The crop lies inside the frame and the scaled size is positive (checked above;
    // libwebp checks both again and returns INVALID_PARAM otherwise).
    let status = unsafe { sys::WebPDecode(bytes.as_ptr(), bytes.len(), &mut config) };
    // SAFETY: `config.output` was initialised by WebPInitDecoderConfig and used by
    // WebPDecode; with external memory libwebp frees only what it allocated itself (none
    // for RGB(A) output), never `data`.
    unsafe { sys::WebPFreeDecBuffer(&mut config.output) };
    match status {
        sys::VP8StatusCode::VP8_STATUS_OK => Ok(Image {
            width,
            height,
            channels,
            data,
        }),
        s => Err(Error::Decode(status_text(s))),
    }
}

fn status_text(s: sys::VP8StatusCode) -> &'static str {
    use sys::VP8StatusCode as S;
    match s {
        S::VP8_STATUS_OK => "ok",
        S::VP8_STATUS_OUT_OF_MEMORY => "out of memory",
        S::VP8_STATUS_INVALID_PARAM => "invalid parameter",
        S::VP8_STATUS_BITSTREAM_ERROR => "corrupt bitstream",
        S::VP8_STATUS_UNSUPPORTED_FEATURE => "unsupported feature",
        S::VP8_STATUS_SUSPENDED => "suspended",
        S::VP8_STATUS_USER_ABORT => "aborted",
        S::VP8_STATUS_NOT_ENOUGH_DATA => "truncated data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOSSY: &[u8] = include_bytes!("../../../fixtures/images/lossy.webp");
    const LOSSLESS: &[u8] = include_bytes!("../../../fixtures/images/lossless.webp");
    const ANIMATED: &[u8] = include_bytes!("../../../fixtures/images/animated.webp");

    fn whole(f: &Features, alpha: bool) -> Request {
        Request {
            crop: Crop {
                left: 0,
                top: 0,
                width: f.width,
                height: f.height,
            },
            width: f.width,
            height: f.height,
            alpha,
            threads: true,
        }
    }

    #[test]
    fn whole_frame_matches_the_simple_api() {
        for (bytes, alpha) in [(LOSSY, false), (LOSSLESS, true)] {
            let f = features(bytes).unwrap();
            let ours = decode(bytes, &whole(&f, alpha)).unwrap();
            let simple = webp::Decoder::new(bytes).decode().unwrap();
            assert_eq!((ours.width, ours.height), (simple.width(), simple.height()));
            let reference: Vec<u8> = if alpha == simple.is_alpha() {
                simple.to_vec()
            } else {
                simple
                    .chunks_exact(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect()
            };
            assert_eq!(ours.data, reference);
        }
    }

    #[test]
    fn crop_is_the_same_pixels_as_the_whole_frame() {
        let f = features(LOSSLESS).unwrap();
        let all = decode(LOSSLESS, &whole(&f, true)).unwrap();
        let crop = Crop {
            left: 3,
            top: 5,
            width: f.width / 2,
            height: f.height / 3,
        };
        let part = decode(
            LOSSLESS,
            &Request {
                crop,
                width: crop.width,
                height: crop.height,
                ..whole(&f, true)
            },
        )
        .unwrap();
        let row = |img: &Image, x: u32, y: u32| {
            let at = (y as usize * img.width as usize + x as usize) * 4;
            img.data[at..at + crop.width as usize * 4].to_vec()
        };
        for y in 0..crop.height {
            assert_eq!(row(&part, 0, y), row(&all, crop.left, crop.top + y));
        }
    }

    #[test]
    fn scaling_averages_to_the_asked_size() {
        let f = features(LOSSY).unwrap();
        let (w, h) = (f.width / 4, f.height / 4);
        let small = decode(
            LOSSY,
            &Request {
                width: w,
                height: h,
                ..whole(&f, false)
            },
        )
        .unwrap();
        assert_eq!(
            (small.width, small.height, small.data.len()),
            (w, h, (w * h * 3) as usize)
        );
        // The mean colour survives area averaging.
        let all = decode(LOSSY, &whole(&f, false)).unwrap();
        let mean = |d: &[u8]| d.iter().map(|&v| f64::from(v)).sum::<f64>() / d.len() as f64;
        assert!((mean(&small.data) - mean(&all.data)).abs() < 2.0);
    }

    #[test]
    fn bad_requests_and_bad_bytes_are_errors() {
        let f = features(LOSSY).unwrap();
        let outside = Request {
            crop: Crop {
                left: 1,
                ..whole(&f, false).crop
            },
            ..whole(&f, false)
        };
        assert!(matches!(decode(LOSSY, &outside), Err(Error::Request(_))));
        let empty = Request {
            width: 0,
            ..whole(&f, false)
        };
        assert!(matches!(decode(LOSSY, &empty), Err(Error::Request(_))));
        assert!(matches!(
            decode(ANIMATED, &whole(&features(ANIMATED).unwrap(), true)),
            Err(Error::Request(_))
        ));
        assert_eq!(features(b"RIFF\0\0\0\0WEBPVP8 "), Err(Error::NotWebp));
        let cut = &LOSSY[..LOSSY.len() * 2 / 3];
        assert!(matches!(
            decode(cut, &whole(&f, false)),
            Err(Error::Decode(_))
        ));
    }
}
