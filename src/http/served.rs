//! A public image answer built once and shared: the body with its `Content-Type`, strong
//! `ETag` and the prebuilt header maps of `/avatar` answers (the caches hold these).

use std::sync::Arc;

use axum::{
    body::Bytes,
    http::{header, HeaderMap, HeaderValue},
};
use sha2::{Digest as _, Sha256};

/// A response body with its header values, built once and shared.
#[derive(Debug)]
pub struct Served {
    /// The image bytes (cloning is a reference-count bump).
    pub body: Bytes,
    /// `image/jpeg` or `image/png`.
    pub content_type: HeaderValue,
    /// Strong entity tag, quoted.
    pub etag: HeaderValue,
    /// The headers of `/avatar/...`'s 200 and 304 (indexed by "not modified"): cloning a
    /// built map costs a fraction of building it, on the hottest path there is.
    pub avatar_headers: [HeaderMap; 2],
}

/// Memory a [`Served`] takes besides its body (its header maps), for the cache weighers.
pub(crate) const SERVED_OVERHEAD: usize = 1536;

impl Served {
    /// The headers of a public image answer: a 200 (with `Content-Type`) or a 304.
    pub fn headers(&self, cache_control: &HeaderValue, not_modified: bool) -> HeaderMap {
        image_headers(&self.content_type, &self.etag, cache_control, not_modified)
    }
}

fn image_headers(
    content_type: &HeaderValue,
    etag: &HeaderValue,
    cache_control: &HeaderValue,
    not_modified: bool,
) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(6);
    if !not_modified {
        h.insert(header::CONTENT_TYPE, content_type.clone());
    }
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, cache_control.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h
}

/// A strong ETag: the content id when it is a plain token, else a digest of the bytes.
fn etag_for(id: Option<&str>, bytes: &[u8]) -> HeaderValue {
    let token = match id {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_owned()
        }
        _ => hex::encode(&Sha256::digest(bytes)[..12]),
    };
    HeaderValue::from_str(&format!("\"{token}\"")).unwrap_or(HeaderValue::from_static("\"x\""))
}

/// A shared response body with its prebuilt headers.
pub(crate) fn served(
    bytes: Vec<u8>,
    content_type: &str,
    id: Option<&str>,
    max_age: &HeaderValue,
) -> Arc<Served> {
    let etag = etag_for(id, &bytes);
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let avatar_headers = [false, true].map(|nm| image_headers(&content_type, &etag, max_age, nm));
    Arc::new(Served {
        body: Bytes::from(bytes),
        content_type,
        etag,
        avatar_headers,
    })
}
