//! EXIF orientation, read from the container without decoding (API.md §Upload rules: the
//! crop is in oriented pixels, so the upload check needs the orientation too).
//!
//! The same reader serves the server's probe and the worker's orient stage, so both agree
//! on what an upload's displayed size is. Parsing is a bounded walk of IFD0 only, in either
//! byte order; anything malformed means "as stored" (1), never an error, because browsers
//! treat such files the same way.

use crate::probe::ImageKind;

/// The orientation tag (1..=8) of an upload, 1 when absent or malformed.
pub fn orientation_of(kind: ImageKind, bytes: &[u8]) -> u8 {
    find_exif(kind, bytes).map_or(1, orientation)
}

/// The orientation tag (1..=8) of an EXIF block (a TIFF header, optionally preceded by the
/// `Exif\0\0` prefix of JPEG APP1 and some WebP files); 1 when malformed.
pub fn orientation(exif: &[u8]) -> u8 {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    match read_orientation(tiff) {
        Some(v @ 1..=8) => v as u8,
        _ => 1,
    }
}

/// The raw EXIF block of a JPEG (APP1 before the scan), PNG (`eXIf` before `IDAT`) or WebP
/// (`EXIF` chunk). GIF has none.
pub fn find_exif(kind: ImageKind, b: &[u8]) -> Option<&[u8]> {
    match kind {
        ImageKind::Jpeg => jpeg_exif(b),
        ImageKind::Png => png_exif(b),
        ImageKind::WebP => webp_exif(b),
        ImageKind::Gif => None,
    }
}

fn jpeg_exif(b: &[u8]) -> Option<&[u8]> {
    let mut i = 2usize;
    loop {
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if b.get(i) != Some(&0xFF) {
            return None;
        }
        let marker = *b.get(i + 1)?;
        i += 2;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD8..=0xDA => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?));
        let data = b.get(i + 2..i.checked_add(len)?)?;
        if marker == 0xE1 && data.starts_with(b"Exif\0\0") {
            return Some(data);
        }
        i += len.max(2);
    }
}

fn png_exif(b: &[u8]) -> Option<&[u8]> {
    let mut i = 8usize;
    loop {
        let len = u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize;
        let kind = b.get(i + 4..i + 8)?;
        let data = b.get(i + 8..(i + 8).checked_add(len)?)?;
        match kind {
            b"eXIf" => return Some(data),
            b"IDAT" | b"IEND" => return None,
            _ => i = i + 12 + len,
        }
    }
}

fn webp_exif(b: &[u8]) -> Option<&[u8]> {
    // Only the extended format (VP8X) carries metadata; its flags say whether EXIF is there.
    if b.get(12..16) != Some(b"VP8X") || b.get(20).is_none_or(|f| f & 0x08 == 0) {
        return None;
    }
    let mut i = 12usize;
    loop {
        let len = u32::from_le_bytes(b.get(i + 4..i + 8)?.try_into().ok()?) as usize;
        let data = b.get(i + 8..(i + 8).checked_add(len)?)?;
        if b.get(i..i + 4)? == b"EXIF" {
            return Some(data);
        }
        // Chunks are padded to an even size.
        i = i + 8 + len + (len & 1);
    }
}

/// Walks IFD0 of a TIFF structure for tag 0x0112 (SHORT, count 1).
fn read_orientation(t: &[u8]) -> Option<u16> {
    let le = match t.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = t.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    // Two halves in the file's byte order.
    let u32_at = |at: usize| -> Option<u32> {
        let (a, b) = (
            u32::from(u16_at(at)?),
            u32::from(u16_at(at.checked_add(2)?)?),
        );
        Some(if le { a | (b << 16) } else { (a << 16) | b })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    // 12-byte entries; `get` bounds every read, so a lying count just ends the walk.
    for i in 0..count {
        let entry = ifd.checked_add(2 + i * 12)?;
        if u16_at(entry)? == 0x0112 {
            let kind = u16_at(entry + 2)?;
            // SHORT is the only legal type; tolerate LONG as some writers use it.
            return match kind {
                3 => u16_at(entry + 8),
                4 => u32_at(entry + 8).and_then(|v| u16::try_from(v).ok()),
                _ => None,
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big-endian TIFF whose IFD0 holds Orientation = `value`.
    fn tiff(value: u16) -> Vec<u8> {
        let mut v = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
        v.extend_from_slice(&value.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn finds_exif_in_every_container() {
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(tiff(6));
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
        jpeg.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
        jpeg.extend_from_slice(&exif);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        assert_eq!(orientation_of(ImageKind::Jpeg, &jpeg), 6);

        let t = tiff(8);
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&[0; 17]);
        png.extend_from_slice(&u32::try_from(t.len()).unwrap().to_be_bytes());
        png.extend_from_slice(b"eXIf");
        png.extend_from_slice(&t);
        png.extend_from_slice(&[0; 4]);
        assert_eq!(orientation_of(ImageKind::Png, &png), 8);

        let t = tiff(5);
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x08\0\0\0\0\0\0\0\0\0".to_vec();
        webp.extend_from_slice(b"EXIF");
        webp.extend_from_slice(&u32::try_from(t.len()).unwrap().to_le_bytes());
        webp.extend_from_slice(&t);
        assert_eq!(orientation_of(ImageKind::WebP, &webp), 5);

        // Every prefix is handled without panicking, and means "as stored" or the value.
        for n in 0..jpeg.len() {
            assert!(matches!(orientation_of(ImageKind::Jpeg, &jpeg[..n]), 1 | 6));
        }
        for n in 0..webp.len() {
            assert!(matches!(orientation_of(ImageKind::WebP, &webp[..n]), 1 | 5));
        }
    }

    #[test]
    fn malformed_exif_means_upright() {
        assert_eq!(orientation(&tiff(9)), 1);
        assert_eq!(orientation(b"II*\0\xff\xff\xff\xff"), 1);
        assert_eq!(orientation(b""), 1);
    }
}
