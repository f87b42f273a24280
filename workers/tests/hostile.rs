//! Hostile inputs through the whole pipeline (issue 14): truncation of every fixture at many
//! offsets, with and without a JPEG end marker appended, plus crafted bombs. A cut image
//! must fail with `undecodable_image` (or be refused earlier by its header), never come
//! out `ready` with a grey or transparent remainder, never panic or hang.

use moocard::ErrorCode;
use moocard_worker::pipeline::{process, PipelineConfig};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/../fixtures/images", env!("CARGO_MANIFEST_DIR"));
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| matches!(e.to_str(), Some("jpg" | "png" | "gif" | "webp")))
        })
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect();
    all.sort();
    all
}

/// Offsets to cut at: every one in the headers, then about `n` spread over the rest.
fn offsets(len: usize, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..len.min(48)).collect();
    let step = (len / n).max(1);
    v.extend((48..len).step_by(step));
    v
}

fn cfg() -> PipelineConfig {
    let mut cfg = PipelineConfig::default();
    // Fewer sizes: the same decode paths, less encoding in an unoptimised build.
    cfg.limits.sizes = vec![64];
    cfg
}

#[test]
fn every_truncation_of_every_fixture_is_refused() {
    let cfg = cfg();
    for (name, bytes) in fixtures() {
        // A well-formed original must work, so the cuts below are what fails.
        let whole = process(&bytes, None, &cfg);
        let valid = whole.is_ok();
        for cut in offsets(bytes.len(), 24) {
            let part = &bytes[..cut];
            match process(part, None, &cfg) {
                // GIF: only the first frame matters, so a cut after it is a whole image.
                Ok(_) if name.ends_with(".gif") => {}
                Ok(_) => panic!("{name} cut at {cut}/{} came out ready", bytes.len()),
                Err(e) => {
                    assert!(
                        matches!(
                            e.code,
                            ErrorCode::UndecodableImage
                                | ErrorCode::UnsupportedMediaType
                                | ErrorCode::ImageTooLarge
                        ),
                        "{name} cut at {cut}: {e}"
                    );
                    // Too large only where the whole fixture is refused too.
                    if e.code == ErrorCode::ImageTooLarge {
                        assert!(!valid, "{name} cut at {cut} became too large: {e}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_cut_jpeg_with_an_end_marker_appended_is_undecodable() {
    let cfg = cfg();
    for (name, bytes) in fixtures() {
        if !name.ends_with(".jpg") || process(&bytes, None, &cfg).is_err() {
            continue;
        }
        // Cuts inside the entropy-coded data (after the first scan header).
        let sos = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .expect("a scan");
        let end = bytes.len() - 2;
        for cut in (sos + 16..end).step_by(((end - sos) / 6).max(1)) {
            let mut part = bytes[..cut].to_vec();
            part.extend_from_slice(&[0xFF, 0xD9]);
            let e = process(&part, None, &cfg)
                .err()
                .unwrap_or_else(|| panic!("{name} cut at {cut} + EOI came out ready"));
            assert_eq!(
                e.code,
                ErrorCode::UndecodableImage,
                "{name} cut at {cut}: {e}"
            );
        }
    }
}

#[test]
fn bogus_lengths_and_empty_frames_are_undecodable() {
    let cfg = cfg();
    let png = |ihdr_len: u32, w: u32, h: u32| {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend_from_slice(&ihdr_len.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
        v
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("PNG IHDR length past the end", png(0x7FFF_FFFF, 8, 8)),
        ("PNG without IDAT", png(13, 8, 8)),
        (
            "GIF whose only frame is empty",
            b"GIF89a\x08\0\x08\0\0\0\0,\0\0\0\0\0\0\0\0\0\x02\x02D\x01\0;".to_vec(),
        ),
        (
            "GIF without any frame",
            b"GIF89a\x08\0\x08\0\0\0\0;".to_vec(),
        ),
        (
            "WebP RIFF size past the end",
            b"RIFF\xff\xff\xff\x0fWEBPVP8L\x05\0\0\0\x2f\x07\xc0\x01\0".to_vec(),
        ),
        ("JPEG SOI EOI", vec![0xFF, 0xD8, 0xFF, 0xD9]),
    ];
    for (what, bytes) in cases {
        let e = process(&bytes, None, &cfg).expect_err(what);
        assert_eq!(e.code, ErrorCode::UndecodableImage, "{what}: {e}");
    }
}
