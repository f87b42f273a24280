//! `GET /avatar/{hash}` (API.md §Public reads): the live avatar of a Gravatar MD5,
//! Libravatar SHA-256 or opaque public id, else a default graphic, with the caching and
//! security headers of a public image.

use axum::{
    extract::{rejection::PathRejection, Path, Request, State},
    http::{header, request::Parts, HeaderValue},
    response::{IntoResponse, Response},
};
use md5::Digest as _;
use std::time::Instant;

use crate::{
    defaults::DefaultKind,
    domain::ids::AvatarHash,
    http::{error::ApiError, formats, routes::images::avatar_image_response, AppState},
};

/// What the query string asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Params {
    size: u32,
    /// `None` for `d=404`.
    default: Option<DefaultKind>,
    force: bool,
}

const DEFAULT_SIZE: u32 = 80;
const MAX_SIZE: u32 = 2048;
const ALLOWED_DEFAULTS: &str = "404, mp, identicon, blank, moocard";

/// Parses `s|size`, `d|default` and `f|forcedefault` without allocating; other keys (such
/// as Gravatar's `r=g`) are ignored, as Gravatar clients send them.
fn parse_query(query: Option<&str>) -> Result<Params, ApiError> {
    let mut p = Params {
        size: DEFAULT_SIZE,
        default: Some(DefaultKind::Moocard),
        force: false,
    };
    for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "s" | "size" => {
                p.size = v
                    .parse::<u32>()
                    .ok()
                    .filter(|s| (1..=MAX_SIZE).contains(s))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "{k} must be a whole number of pixels from 1 to {MAX_SIZE}"
                        ))
                    })?;
            }
            "d" | "default" => {
                p.default = match v {
                    "404" => None,
                    "mp" => Some(DefaultKind::Mp),
                    "identicon" => Some(DefaultKind::Identicon),
                    "blank" => Some(DefaultKind::Blank),
                    "moocard" => Some(DefaultKind::Moocard),
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "{k} must be one of: {ALLOWED_DEFAULTS}"
                        )))
                    }
                };
            }
            "f" | "forcedefault" => p.force = v.eq_ignore_ascii_case("y"),
            _ => {}
        }
    }
    Ok(p)
}

/// Whether an `If-None-Match` header matches `etag`: `*`, or any listed tag under weak
/// comparison (RFC 9110 §13.1.2: `W/` prefixes are ignored).
pub fn none_match(headers: &axum::http::HeaderMap, etag: &HeaderValue) -> bool {
    let tag = etag.as_bytes();
    let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
    headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        // A revalidating cache sends back exactly the tag it got: one comparison.
        v.as_bytes() == etag.as_bytes()
            || v.as_bytes().split(|&b| b == b',').any(|t| {
                let t = t.trim_ascii();
                t == b"*" || t.strip_prefix(b"W/").unwrap_or(t) == tag
            })
    })
}

/// An error of a public read: the JSON error plus CORS (so pages can read a `d=404`
/// answer or a 400) and `nosniff` (these routes skip the layer that adds it).
pub fn public_error(e: ApiError) -> Response {
    let mut res = e.into_response();
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// `GET /avatar/{hash}` (and HEAD).
#[utoipa::path(get, path = "/avatar/{hash}", tag = "public",
    params(("hash" = String, Path, description = "MD5 or SHA-256 of the normalized email, or the public id; optional .jpg/.png/.webp/.avif"),
        ("s" = Option<u32>, Query, description = "1..=2048, default 80; snapped to a configured size"),
        ("d" = Option<String>, Query, description = "404 | mp | identicon | blank | moocard"),
        ("f" = Option<String>, Query, description = "y: always the default")),
    responses((status = 200, description = "image/jpeg or image/png"), (status = 304, description = "If-None-Match matched"),
        (status = 400, body = crate::http::ErrorBody), (status = 404, body = crate::http::ErrorBody)))]
pub async fn get_avatar(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    // Only the head is kept across awaits: a request body is not `Sync`.
    let (parts, _body) = req.into_parts();
    // A segment that is not valid UTF-8 names no profile; it still gets a default.
    let raw = path.map(|Path(p)| p).unwrap_or_default();
    respond(&state, &raw, &parts, Instant::now()).await
}

/// The answer to `GET /avatar/{raw}` (`raw` percent-decoded) to a request that started
/// at `now`, shared by the router and the direct dispatch of `http::service`.
pub async fn respond(state: &AppState, raw: &str, req: &Parts, now: Instant) -> Response {
    match serve(state, raw, req, now).await {
        Ok(res) => res,
        Err(e) => public_error(e),
    }
}

async fn serve(
    state: &AppState,
    raw: &str,
    req: &Parts,
    now: Instant,
) -> Result<Response, ApiError> {
    let params = parse_query(req.uri.query())?;
    let cache = &state.avatar_cache;
    let size = cache.snap(params.size);
    let (name, suffix) = formats::split_suffix(raw);
    let negotiate = state.config.avatars.negotiate_format;
    let wanted = formats::wanted(suffix, &req.headers, negotiate);
    let hash = AvatarHash::parse(name);
    // MD5/SHA-256 lookups can be switched off (API.md §Identity); such hashes then behave
    // as unknown, exactly like a hash nobody registered.
    let lookup = hash.filter(|h| !h.is_email_hash() || state.config.avatars.hash_lookup);
    let found = match (lookup, params.force) {
        (Some(h), false) => {
            cache
                .avatar_as(&state.profiles, &h, size, wanted, now)
                .await?
        }
        _ => None,
    };
    let max_age = &cache.max_age;
    if let Some(img) = found {
        let mut res = avatar_image_response(&img, &req.headers);
        if negotiate {
            formats::vary_accept(res.headers_mut());
        }
        return Ok(res);
    }
    let Some(kind) = params.default else {
        // "No avatar" is a stable, cacheable answer like any other.
        let mut res = public_error(ApiError::NotFound("this hash has no avatar".into()));
        res.headers_mut()
            .insert(header::CACHE_CONTROL, max_age.clone());
        return Ok(res);
    };
    // Identicons are seeded by the hash bytes; a malformed name by a digest of its text, so
    // any name still gets a stable picture (Gravatar does the same).
    let digest;
    let seed: &[u8] = match &hash {
        Some(h) => h.bytes(),
        None => {
            digest = md5::Md5::digest(name.to_ascii_lowercase().as_bytes());
            &digest
        }
    };
    let img = cache
        .default_graphic(kind, size, seed)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut res = avatar_image_response(&img, &req.headers);
    if negotiate {
        // A cache must not hand this default to a client whose Accept gets a WebP later.
        formats::vary_accept(res.headers_mut());
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn query_rules() {
        let p = parse_query(None).expect("empty");
        assert_eq!(
            (p.size, p.default, p.force),
            (80, Some(DefaultKind::Moocard), false)
        );
        let p = parse_query(Some("size=200&default=404&forcedefault=y&r=g")).expect("long");
        assert_eq!((p.size, p.default, p.force), (200, None, true));
        let p = parse_query(Some("s=1&d=identicon&f=n")).expect("short");
        assert_eq!(
            (p.size, p.default, p.force),
            (1, Some(DefaultKind::Identicon), false)
        );
        for bad in [
            "s=0",
            "s=2049",
            "s=abc",
            "s=",
            "size=-1",
            "d=retro",
            "d=https%3A%2F%2Fx",
        ] {
            let e = parse_query(Some(bad)).expect_err(bad);
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn if_none_match_lists_weak_and_star() {
        let tag = HeaderValue::from_static("\"abc\"");
        let mut h = axum::http::HeaderMap::new();
        assert!(!none_match(&h, &tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(none_match(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abcd\""));
        assert!(!none_match(&h, &tag));
    }
}
