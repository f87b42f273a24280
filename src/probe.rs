//! Cheap upload checks that never decode pixels (API.md §Upload rules, STYLE.md habit 7).
//!
//! The server runs [`probe`] on every upload before enqueueing it, and the worker runs it again
//! before decoding (a job could have been written by an older, laxer node). It owns:
//! - format detection by magic bytes, never by the declared content type;
//! - reading width and height from the container header (JPEG SOF, PNG IHDR, GIF logical screen,
//!   WebP VP8/VP8L/VP8X);
//! - enforcing the byte, per-side and megapixel limits, with messages that state the limit;
//! - the EXIF orientation (`crate::exif`), so a crop can be checked against the oriented size.
//!
//! Dimensions here are the *stored* ones: EXIF orientation only swaps them, so the limits
//! (per side and area) hold either way. A header problem that is not about size is
//! `undecodable_image`, never `image_too_large` (API.md §Errors).

use crate::limits::ImageLimits;
use crate::ErrorCode;

/// An accepted image container, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 50 4E 47 0D 0A 1A 0A`).
    Png,
    /// GIF87a / GIF89a; only the first frame is used.
    Gif,
    /// WebP (`RIFF....WEBP`), lossy or lossless.
    WebP,
}

impl ImageKind {
    /// Detects the container from magic bytes; `None` for anything we do not accept.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else {
            None
        }
    }

    /// The lower-case name used in messages and logs, e.g. `"jpeg"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::WebP => "webp",
        }
    }
}

/// What the header says about an accepted upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The container, from magic bytes.
    pub kind: ImageKind,
    /// Stored width in pixels (before EXIF orientation).
    pub width: u32,
    /// Stored height in pixels (before EXIF orientation).
    pub height: u32,
    /// The EXIF orientation tag, 1..=8 (1 when absent or malformed).
    pub orientation: u8,
}

impl Probe {
    /// (width, height) as displayed, after EXIF orientation (5..=8 swap the sides).
    pub fn oriented_size(&self) -> (u32, u32) {
        if self.orientation >= 5 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Why an upload was refused before decoding. Every message states the configured limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// The body is larger than `max_upload_bytes`.
    #[error("upload is {size} bytes; the limit is {limit} bytes")]
    TooManyBytes {
        /// Size of the upload.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Not JPEG, PNG, GIF or WebP by content.
    #[error("unsupported image format: the content is not JPEG, PNG, GIF or WebP")]
    UnsupportedFormat,
    /// The header is missing, truncated or inconsistent.
    #[error("cannot read the {kind} header: {reason}")]
    BadHeader {
        /// The detected container.
        kind: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// A side exceeds `max_dimension`.
    #[error("image is {width}x{height} pixels; the limit is {limit} pixels per side")]
    TooWide {
        /// Stored width.
        width: u32,
        /// Stored height.
        height: u32,
        /// The configured limit.
        limit: u32,
    },
    /// The area exceeds `max_megapixels`.
    #[error("image is {width}x{height} pixels ({megapixels:.1} megapixels); the limit is {limit} megapixels")]
    TooManyPixels {
        /// Stored width.
        width: u32,
        /// Stored height.
        height: u32,
        /// width x height / 1e6.
        megapixels: f64,
        /// The configured limit.
        limit: f64,
    },
}

impl ProbeError {
    /// The stable error code for this refusal (API.md §Errors).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooManyBytes { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedFormat => ErrorCode::UnsupportedMediaType,
            Self::BadHeader { .. } => ErrorCode::UndecodableImage,
            Self::TooWide { .. } | Self::TooManyPixels { .. } => ErrorCode::ImageTooLarge,
        }
    }
}

/// Checks an upload against `limits` without decoding any pixel.
///
/// Order follows STYLE.md habit 7: byte size, then magic bytes, then header dimensions.
pub fn probe(bytes: &[u8], limits: &ImageLimits) -> Result<Probe, ProbeError> {
    let size = bytes.len() as u64;
    if size > limits.max_upload_bytes {
        return Err(ProbeError::TooManyBytes {
            size,
            limit: limits.max_upload_bytes,
        });
    }
    let kind = ImageKind::detect(bytes).ok_or(ProbeError::UnsupportedFormat)?;
    let (width, height) = dimensions(kind, bytes).map_err(|reason| ProbeError::BadHeader {
        kind: kind.as_str(),
        reason,
    })?;
    if width == 0 || height == 0 {
        return Err(ProbeError::BadHeader {
            kind: kind.as_str(),
            reason: "the header declares an empty image",
        });
    }
    if width > limits.max_dimension || height > limits.max_dimension {
        return Err(ProbeError::TooWide {
            width,
            height,
            limit: limits.max_dimension,
        });
    }
    let megapixels = f64::from(width) * f64::from(height) / 1e6;
    if megapixels > limits.max_megapixels {
        return Err(ProbeError::TooManyPixels {
            width,
            height,
            megapixels,
            limit: limits.max_megapixels,
        });
    }
    Ok(Probe {
        kind,
        width,
        height,
        orientation: crate::exif::orientation_of(kind, bytes),
    })
}

/// Reads stored (width, height) from the container header.
pub fn dimensions(kind: ImageKind, b: &[u8]) -> Result<(u32, u32), &'static str> {
    match kind {
        ImageKind::Jpeg => jpeg_dimensions(b),
        ImageKind::Png => {
            // Signature (8), IHDR length (4) and type (4), then width and height.
            if b.get(12..16) != Some(b"IHDR") {
                return Err("the first chunk is not IHDR");
            }
            Ok((be32(b, 16)?, be32(b, 20)?))
        }
        ImageKind::Gif => Ok((u32::from(le16(b, 6)?), u32::from(le16(b, 8)?))),
        ImageKind::WebP => webp_dimensions(b),
    }
}

/// Walks JPEG marker segments up to the first SOFn frame header.
fn jpeg_dimensions(b: &[u8]) -> Result<(u32, u32), &'static str> {
    let mut i = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if b.get(i) != Some(&0xFF) {
            return Err("no frame header before the end of the marker segments");
        }
        let marker = *b.get(i + 1).ok_or("truncated marker")?;
        i += 2;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD8..=0xDA => return Err("no frame header before the scan data"),
            _ => {}
        }
        let len = usize::from(be16(b, i)?);
        if len < 2 {
            return Err("bad marker segment length");
        }
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = be16(b, i + 3)?;
            let width = be16(b, i + 5)?;
            return Ok((u32::from(width), u32::from(height)));
        }
        i += len;
    }
}

/// Reads the canvas size of a simple (VP8 / VP8L) or extended (VP8X) WebP.
fn webp_dimensions(b: &[u8]) -> Result<(u32, u32), &'static str> {
    match b.get(12..16) {
        Some(b"VP8 ") => {
            // Frame tag (3 bytes) and start code 9D 01 2A, then 14-bit width and height.
            if b.get(23..26) != Some(&[0x9D, 0x01, 0x2A]) {
                return Err("bad VP8 start code");
            }
            Ok((
                u32::from(le16(b, 26)? & 0x3FFF),
                u32::from(le16(b, 28)? & 0x3FFF),
            ))
        }
        Some(b"VP8L") => {
            if b.get(20) != Some(&0x2F) {
                return Err("bad VP8L signature");
            }
            let bits = le32(b, 21)?;
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        Some(b"VP8X") => {
            let w = le24(b, 24)? + 1;
            let h = le24(b, 27)? + 1;
            Ok((w, h))
        }
        _ => Err("unknown first chunk"),
    }
}

fn slice<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], &'static str> {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or("header is truncated")
}
fn be16(b: &[u8], at: usize) -> Result<u16, &'static str> {
    slice(b, at).map(u16::from_be_bytes)
}
fn be32(b: &[u8], at: usize) -> Result<u32, &'static str> {
    slice(b, at).map(u32::from_be_bytes)
}
fn le16(b: &[u8], at: usize) -> Result<u16, &'static str> {
    slice(b, at).map(u16::from_le_bytes)
}
fn le24(b: &[u8], at: usize) -> Result<u32, &'static str> {
    slice::<3>(b, at).map(|s| u32::from_le_bytes([s[0], s[1], s[2], 0]))
}
fn le32(b: &[u8], at: usize) -> Result<u32, &'static str> {
    slice(b, at).map(u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        v
    }

    fn jpeg_header(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xFF, 0xC2, 0, 11, 8,
        ];
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[1, 1, 0x11, 0]);
        v
    }

    #[test]
    fn detects_kind_by_magic_bytes() {
        assert_eq!(ImageKind::detect(&jpeg_header(1, 1)), Some(ImageKind::Jpeg));
        assert_eq!(ImageKind::detect(&png_header(1, 1)), Some(ImageKind::Png));
        assert_eq!(
            ImageKind::detect(b"GIF89a\x01\0\x01\0"),
            Some(ImageKind::Gif)
        );
        assert_eq!(
            ImageKind::detect(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageKind::WebP)
        );
        assert_eq!(ImageKind::detect(b"<svg xmlns="), None);
        assert_eq!(ImageKind::detect(b"BM\0\0"), None);
        assert_eq!(ImageKind::detect(b""), None);
    }

    #[test]
    fn reads_header_dimensions() {
        let l = ImageLimits::default();
        let p = probe(&png_header(640, 480), &l).expect("png");
        assert_eq!((p.kind, p.width, p.height), (ImageKind::Png, 640, 480));
        let p = probe(&jpeg_header(300, 200), &l).expect("jpeg");
        assert_eq!((p.kind, p.width, p.height), (ImageKind::Jpeg, 300, 200));
        let p = probe(b"GIF89a\x20\x03\x58\x02", &l).expect("gif");
        assert_eq!((p.width, p.height), (800, 600));
        let mut vp8l = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f".to_vec();
        vp8l.extend_from_slice(&(99u32 | (49 << 14)).to_le_bytes());
        let p = probe(&vp8l, &l).expect("vp8l");
        assert_eq!((p.width, p.height), (100, 50));
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x10\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0xFF, 0x03, 0, 0xC7, 0, 0]);
        let p = probe(&vp8x, &l).expect("vp8x");
        assert_eq!((p.width, p.height), (1024, 200));
    }

    #[test]
    fn limits_are_enforced_and_stated() {
        let l = ImageLimits::default();
        let e = probe(&png_header(20_000, 100), &l).expect_err("too wide");
        assert_eq!(e.code(), ErrorCode::ImageTooLarge);
        assert_eq!(
            e.to_string(),
            "image is 20000x100 pixels; the limit is 16384 pixels per side"
        );
        let e = probe(&png_header(10_000, 10_000), &l).expect_err("too many pixels");
        assert_eq!(e.code(), ErrorCode::ImageTooLarge);
        assert!(e.to_string().contains("the limit is 50 megapixels"), "{e}");
        let small = ImageLimits {
            max_upload_bytes: 10,
            ..ImageLimits::default()
        };
        let e = probe(&png_header(1, 1), &small).expect_err("too many bytes");
        assert_eq!(e.code(), ErrorCode::PayloadTooLarge);
        assert!(e.to_string().contains("the limit is 10 bytes"), "{e}");
    }

    #[test]
    fn garbage_and_truncated_headers_are_refused() {
        let l = ImageLimits::default();
        let e = probe(b"hello world", &l).expect_err("text");
        assert_eq!(e.code(), ErrorCode::UnsupportedMediaType);
        let e = probe(&png_header(1, 1)[..18], &l).expect_err("short png");
        assert_eq!(e.code(), ErrorCode::UndecodableImage);
        let e = probe(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0], &l).expect_err("bad jpeg length");
        assert_eq!(e.code(), ErrorCode::UndecodableImage);
        let e = probe(&jpeg_header(0, 10), &l).expect_err("empty");
        assert_eq!(e.code(), ErrorCode::UndecodableImage);
        // A JPEG that reaches its scan without a frame header.
        let e = probe(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2], &l).expect_err("no SOF");
        assert_eq!(e.code(), ErrorCode::UndecodableImage);
        // Every prefix of a valid header is handled without panicking.
        let full = jpeg_header(64, 64);
        for n in 0..full.len() {
            let _ = probe(&full[..n], &l);
        }
    }
}
