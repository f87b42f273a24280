//! JPEG marker walk for the decode stage: finds ICC and Adobe segments, the frame
//! type, and proves the data reaches its end-of-image marker (mozjpeg would otherwise fill
//! a truncated file with grey and report success).

use super::super::PipelineError;

/// What the marker walk learned about a JPEG.
#[derive(Debug, Default)]
pub(super) struct JpegInfo {
    pub(super) progressive: bool,
    pub(super) components: u8,
    /// Adobe APP14 present: CMYK samples are stored inverted (Photoshop convention).
    pub(super) adobe: bool,
    pub(super) icc: Option<Vec<u8>>,
    scans: u32,
}

/// Upper bound on JPEG scans (SOS markers); see [`scan_jpeg`].
const MAX_SCANS: u32 = 100;

pub(super) fn truncated(format: &str, why: &str) -> PipelineError {
    PipelineError::undecodable(format!("{format} data is truncated or corrupt: {why}"))
}

/// Walks a JPEG's marker segments and entropy-coded data up to EOI, collecting ICC
/// and Adobe markers. A missing EOI means the upload was cut short.
pub(super) fn scan_jpeg(b: &[u8]) -> Result<JpegInfo, PipelineError> {
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
