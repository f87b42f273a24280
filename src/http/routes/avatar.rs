//! `GET /avatar/{hash}` (API.md §Public reads): the live avatar of a Gravatar MD5,
//! Libravatar SHA-256 or opaque public id, else a default graphic, with the caching and
//! security headers of a public image. It never answers 400 or 5xx (API.md v1.1): any
//! query gets an image, the 404 it asked for, or a redirect it asked for.

use axum::{
    extract::{rejection::PathRejection, Path, Request, State},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use md5::Digest as _;
use std::time::Instant;

use crate::{
    defaults::{DefaultKind, Design},
    domain::ids::AvatarHash,
    http::{
        avatar_cache::Lookup,
        avatar_query::{self, Fallback},
        error::ApiError,
        formats,
        routes::images::avatar_image_response,
        AppState,
    },
};

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
    public_headers(res.headers_mut());
    res
}

/// CORS and `nosniff`, which every public answer carries.
fn public_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// `GET /avatar/{hash}` (and HEAD).
#[utoipa::path(get, path = "/avatar/{hash}", tag = "public",
    params(("hash" = String, Path, description = "MD5 or SHA-256 of the normalized email, or the public id; optional .jpg/.png/.webp/.avif"),
        ("s" = Option<String>, Query, description = "pixels, default 80; snapped to a configured size (non-numeric or < 1: 80; above the largest: the largest)"),
        ("d" = Option<String>, Query, description = "404 | mp (mm, mysteryman) | identicon | monsterid | wavatar | retro | robohash | blank | initials | color | moocard | an allow-listed http(s) URL"),
        ("initials" = Option<String>, Query, description = "letters for d=initials"),
        ("name" = Option<String>, Query, description = "a name whose first and last initials d=initials draws"),
        ("r" = Option<String>, Query, description = "rating; accepted and ignored (everything here is G)"),
        ("f" = Option<String>, Query, description = "y: always the default")),
    responses((status = 200, description = "image/jpeg or image/png"), (status = 302, description = "d=<allowed URL>, or avatars.fallback = gravatar"),
        (status = 304, description = "If-None-Match matched"), (status = 404, body = crate::http::ErrorBody, description = "d=404 and no avatar")))]
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
    let negotiate = state.config.avatars.negotiate_format;
    let mut res = answer(state, raw, req, now, negotiate).await;
    if negotiate {
        // Every answer, defaults included: a cache must not hand a JPEG default to a
        // client whose Accept gets a WebP once the avatar exists (API.md §Formats).
        formats::vary_accept(res.headers_mut());
    }
    res
}

async fn answer(
    state: &AppState,
    raw: &str,
    req: &Parts,
    now: Instant,
    negotiate: bool,
) -> Response {
    let cache = &state.avatar_cache;
    let conf = &state.config.avatars;
    let q = avatar_query::parse(
        req.uri.query(),
        &avatar_query::configured_default(&conf.default),
        &conf.default_url_hosts,
    );
    let size = cache.snap(q.size);
    let (name, suffix) = formats::split_suffix(raw);
    let wanted = formats::wanted(suffix, &req.headers, negotiate);
    let hash = AvatarHash::parse(name);
    // MD5/SHA-256 lookups can be switched off (API.md §Identity); such hashes then behave
    // as unknown, exactly like a hash nobody registered.
    let lookup = hash.filter(|h| !h.is_email_hash() || conf.hash_lookup);
    let found = match (lookup, q.force) {
        (Some(h), false) => {
            cache
                .avatar_as(&state.profiles, &h, size, wanted, now)
                .await
        }
        _ => Lookup::Missing,
    };
    let degraded = match found {
        Lookup::Found(img) => return avatar_image_response(&img, &req.headers),
        Lookup::Degraded(Some(img)) => {
            let mut res = avatar_image_response(&img, &req.headers);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, cache.degraded_max_age.clone());
            return res;
        }
        Lookup::Degraded(None) => true,
        Lookup::Missing => false,
    };
    let cache_control = if degraded {
        &cache.degraded_max_age
    } else {
        &cache.max_age
    };
    // Only a hash known not to be ours goes to Gravatar; not while the store is down.
    if conf.fallback == "gravatar" && !degraded && !q.force {
        if let Some(h) = hash.as_ref().filter(|h| h.is_email_hash()) {
            return gravatar_redirect(h, req.uri.query(), cache_control);
        }
    }
    let kind = match q.fallback {
        Fallback::NotFound => {
            // "No avatar" is a stable, cacheable answer like any other.
            let mut res = public_error(ApiError::NotFound("this hash has no avatar".into()));
            res.headers_mut()
                .insert(header::CACHE_CONTROL, cache_control.clone());
            return res;
        }
        Fallback::Redirect(url) => return redirect(&url, cache_control),
        Fallback::Graphic(kind) => kind,
    };
    // Graphics are seeded by the hash bytes; a malformed name by a digest of its text, so
    // any name still gets a stable picture (Gravatar does the same).
    let digest;
    let seed: &[u8] = match &hash {
        Some(h) => h.bytes(),
        None => {
            digest = md5::Md5::digest(name.to_ascii_lowercase().as_bytes());
            &digest
        }
    };
    let design = Design::new(kind, seed, &q.letters);
    let img = match cache.graphics.get(design, size).await {
        Ok(img) => img,
        Err(e) => {
            // A bug, not the caller's fault: still an image (the blank one) if possible.
            tracing::error!(error = %e, "default graphic failed");
            match cache
                .graphics
                .get(Design::new(DefaultKind::Blank, seed, &[]), size)
                .await
            {
                Ok(img) => img,
                Err(_) => {
                    return public_error(ApiError::NotFound("this hash has no avatar".into()))
                }
            }
        }
    };
    let mut res = avatar_image_response(&img, &req.headers);
    if degraded {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, cache_control.clone());
    }
    res
}

/// A 302 to `location` with the public headers.
fn redirect(location: &str, cache_control: &HeaderValue) -> Response {
    let Ok(loc) = HeaderValue::from_str(location) else {
        return public_error(ApiError::NotFound("this hash has no avatar".into()));
    };
    let mut res = StatusCode::FOUND.into_response();
    let h = res.headers_mut();
    h.insert(header::LOCATION, loc);
    h.insert(header::CACHE_CONTROL, cache_control.clone());
    public_headers(h);
    res
}

/// `avatars.fallback = "gravatar"`: the same request at Gravatar (which takes MD5 and
/// SHA-256 hashes and the same parameters).
fn gravatar_redirect(
    hash: &AvatarHash,
    query: Option<&str>,
    cache_control: &HeaderValue,
) -> Response {
    let mut url = format!(
        "https://www.gravatar.com/avatar/{}",
        hex::encode(hash.bytes())
    );
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    redirect(&url, cache_control)
}

#[cfg(test)]
mod tests {
    use super::*;

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
