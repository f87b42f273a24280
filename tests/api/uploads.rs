//! Upload refusals answered synchronously (API.md §Upload rules, §Errors v1.1): one table
//! of hostile headers and the exact status and code each must get. A header problem that
//! is not about size is 422 `undecodable_image`, never `image_too_large`; a crop is checked
//! against the size *after* EXIF orientation.

use axum::http::Method;

use crate::support::{fixture, TestApp};

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    v
}

async fn put(t: &TestApp, body: Vec<u8>, query: &str) -> crate::support::TestResponse {
    let tok = t.token("a@b.c");
    let uri = format!("/v1/profiles/a@b.c/avatar{query}");
    t.call(Method::PUT, &uri, Some(&tok), Some(("image/png", body)))
        .await
}

#[tokio::test]
async fn hostile_headers_get_exact_codes() {
    let t = TestApp::with_config(|c| c.queue.uploads_per_window = 1000).await;
    let webp = |chunk: &[u8]| {
        let mut v = b"RIFF\x40\0\0\0WEBP".to_vec();
        v.extend_from_slice(chunk);
        v
    };
    let table: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "SOI+EOI only",
            vec![0xFF, 0xD8, 0xFF, 0xD9],
            422,
            "undecodable_image",
        ),
        (
            "JPEG cut in a segment length",
            vec![0xFF, 0xD8, 0xFF, 0xE0, 0],
            422,
            "undecodable_image",
        ),
        (
            "JPEG scan before frame",
            vec![0xFF, 0xD8, 0xFF, 0xDA, 0, 2],
            422,
            "undecodable_image",
        ),
        (
            "JPEG zero width",
            fixture_with_width0(),
            422,
            "undecodable_image",
        ),
        (
            "PNG signature alone",
            b"\x89PNG\r\n\x1a\n".to_vec(),
            422,
            "undecodable_image",
        ),
        ("PNG zero width", png(0, 10), 422, "undecodable_image"),
        ("PNG zero height", png(10, 0), 422, "undecodable_image"),
        (
            "PNG cut in IHDR",
            png(10, 10)[..18].to_vec(),
            422,
            "undecodable_image",
        ),
        (
            "PNG first chunk not IHDR",
            b"\x89PNG\r\n\x1a\n\0\0\0\x0dIDAT\0\0\0\x01\0\0\0\x01".to_vec(),
            422,
            "undecodable_image",
        ),
        (
            "GIF cut in screen size",
            b"GIF89a\x01".to_vec(),
            422,
            "undecodable_image",
        ),
        (
            "GIF zero size",
            b"GIF89a\0\0\0\0".to_vec(),
            422,
            "undecodable_image",
        ),
        ("WebP no chunk", webp(b""), 422, "undecodable_image"),
        (
            "WebP unknown chunk",
            webp(b"ABCD\0\0\0\0"),
            422,
            "undecodable_image",
        ),
        (
            "WebP VP8 bad start code",
            webp(b"VP8 \0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            422,
            "undecodable_image",
        ),
        (
            "WebP VP8L bad signature",
            webp(b"VP8L\0\0\0\0\0\0\0\0\0"),
            422,
            "undecodable_image",
        ),
        (
            "PNG over the side limit",
            png(20_000, 10),
            422,
            "image_too_large",
        ),
        (
            "PNG over the megapixel limit",
            png(10_000, 10_000),
            422,
            "image_too_large",
        ),
        (
            "JPEG over the side limit",
            fixture("images/huge-dims.jpg"),
            422,
            "image_too_large",
        ),
        (
            "text",
            b"hello, world".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "BMP",
            b"BM\0\0\0\0\0\0".to_vec(),
            415,
            "unsupported_media_type",
        ),
        ("empty body", Vec::new(), 400, "bad_request"),
    ];
    for (what, body, status, code) in table {
        let r = put(&t, body, "").await;
        assert_eq!(
            (
                r.status.as_u16(),
                r.json()["code"].as_str().unwrap_or_default()
            ),
            (status, code),
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(!r.json()["message"].as_str().unwrap_or_default().is_empty());
    }
    // Nothing was queued by the refusals.
    assert_eq!(t.app.queue.depth().await.expect("depth"), 0);
}

/// A real JPEG header whose frame declares zero width.
fn fixture_with_width0() -> Vec<u8> {
    let mut b = fixture("images/grey.jpg");
    let sof = b
        .windows(2)
        .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0 | 0xC2))
        .expect("SOF");
    b[sof + 7] = 0;
    b[sof + 8] = 0;
    b
}

#[tokio::test]
async fn crop_is_checked_against_the_oriented_size_at_upload() {
    let t = TestApp::new().await;
    // orient-6: stored 64x96, displayed 96x64.
    let img = || fixture("images/orient-6-le.jpg");
    let r = put(&t, img(), "?crop=0,0,10,90").await;
    let msg = r.assert_error(422, "invalid_crop");
    assert!(msg.contains("96x64"), "{msg}");
    let msg = put(
        &t,
        fixture("images/photo-hubble.jpg"),
        "?crop=0,0,10,10000000",
    )
    .await
    .assert_error(422, "invalid_crop");
    assert!(msg.contains("after EXIF orientation"), "{msg}");
    // Fits only as displayed: accepted.
    assert_eq!(put(&t, img(), "?crop=0,0,90,10").await.status, 202);
    // PNG eXIf and WebP EXIF orientations are read too (both stored 64x96, shown 96x64).
    for name in ["orient-6.png", "orient-8.webp"] {
        let r = put(&t, fixture(&format!("images/{name}")), "?crop=0,0,10,90").await;
        assert!(
            r.assert_error(422, "invalid_crop").contains("96x64"),
            "{name}"
        );
        let r = put(&t, fixture(&format!("images/{name}")), "?crop=0,0,90,10").await;
        assert_eq!(r.status, 202, "{name}");
    }
}
