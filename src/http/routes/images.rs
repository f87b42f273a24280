//! `GET /images/{id}` (API.md §Public reads): one stored variant by content id. Content
//! ids never change meaning, so the answer is cacheable forever. Also home of the shared
//! response builder for public images.

use axum::{
    body::Body,
    extract::{rejection::PathRejection, Path, Request, State},
    http::{request::Parts, HeaderMap, HeaderValue, Response, StatusCode},
};

use crate::http::{
    avatar_cache::Served,
    error::ApiError,
    routes::avatar::{none_match, public_error},
    AppState,
};

/// `Cache-Control` of `/images/{id}`: the bytes behind an id never change.
pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// A 200 (or 304 when `If-None-Match` matches) for a public image.
pub fn image_response(
    img: &Served,
    cache_control: &HeaderValue,
    req: &HeaderMap,
) -> Response<Body> {
    let not_modified = none_match(req, &img.etag);
    with_headers(img, img.headers(cache_control, not_modified), not_modified)
}

/// [`image_response`] for `/avatar/...`, whose headers are built with the image.
pub fn avatar_image_response(img: &Served, req: &HeaderMap) -> Response<Body> {
    let not_modified = none_match(req, &img.etag);
    let headers = img.avatar_headers[usize::from(not_modified)].clone();
    with_headers(img, headers, not_modified)
}

fn with_headers(img: &Served, headers: HeaderMap, not_modified: bool) -> Response<Body> {
    let mut res = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(img.body.clone()))
    };
    *res.headers_mut() = headers;
    res
}

/// Whether `id` could be a content id; anything else is answered 404 without a query.
fn plausible_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /images/{id}` (and HEAD).
#[utoipa::path(get, path = "/images/{id}", tag = "public",
    params(("id" = String, Path, description = "Content id from a profile's avatar urls")),
    responses((status = 200, description = "image/jpeg or image/png"), (status = 304, description = "If-None-Match matched"),
        (status = 404, body = crate::http::ErrorBody)))]
pub async fn get_image(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response<Body> {
    let (parts, _body) = req.into_parts();
    let id = path.map(|Path(id)| id).unwrap_or_default();
    respond(&state, &id, &parts, std::time::Instant::now()).await
}

/// The answer to `GET /images/{id}` (`id` percent-decoded) to a request that started at
/// `now`, shared by the router and the direct dispatch of `http::service`.
pub async fn respond(
    state: &AppState,
    id: &str,
    parts: &Parts,
    now: std::time::Instant,
) -> Response<Body> {
    let found = if plausible_id(id) {
        state.avatar_cache.image(&state.profiles, id, now).await
    } else {
        Ok(None)
    };
    let err = match found {
        Ok(Some(img)) => return image_response(&img, &IMMUTABLE, &parts.headers),
        Ok(None) => ApiError::NotFound("no image has this id".into()),
        Err(e) => ApiError::from(e),
    };
    public_error(err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids() {
        assert!(super::plausible_id("0123abcdef_-X"));
        assert!(!super::plausible_id(""));
        assert!(!super::plausible_id("../etc"));
        assert!(!super::plausible_id(&"a".repeat(129)));
    }
}
