//! **[v1.1]** Which encoding an `/avatar` request asks for (API.md §Formats, issue 15): a
//! `.webp`/`.avif`/`.jpg`/`.png` suffix, else (when `avatars.negotiate_format` is on) the
//! `Accept` header. The answer falls back to JPEG/PNG when the asked format is not stored.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::domain::derivation::ExtraFormat;

/// A set of acceptable extra formats (bit per [`ExtraFormat`]); empty means JPEG/PNG.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted(pub u8);

impl Wanted {
    /// Only JPEG/PNG.
    pub const BASE: Wanted = Wanted(0);

    fn bit(f: ExtraFormat) -> u8 {
        match f {
            ExtraFormat::Webp => 1,
            ExtraFormat::Avif => 2,
        }
    }

    /// Just `f`.
    pub fn only(f: ExtraFormat) -> Self {
        Wanted(Self::bit(f))
    }

    /// Whether `f` is acceptable.
    pub fn accepts(self, f: ExtraFormat) -> bool {
        self.0 & Self::bit(f) != 0
    }
}

/// Splits a known suffix off the `/avatar/{name}` segment: the name, and the formats the
/// suffix asks for (`None`: no suffix).
pub fn split_suffix(raw: &str) -> (&str, Option<Wanted>) {
    if let Some((name, ext)) = raw.rsplit_once('.') {
        match ext {
            "jpg" | "jpeg" | "png" => return (name, Some(Wanted::BASE)),
            _ => {
                if let Some(f) = ExtraFormat::parse(ext) {
                    return (name, Some(Wanted::only(f)));
                }
            }
        }
    }
    (raw, None)
}

/// The extra formats an `Accept` header lists with a non-zero quality (`image/webp`,
/// `image/avif`; wildcards do not count: a browser that sends `*/*` may not decode AVIF).
pub fn from_accept(headers: &HeaderMap) -> Wanted {
    let mut w = Wanted::BASE;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            for f in ExtraFormat::ALL {
                if media.eq_ignore_ascii_case(f.content_type()) {
                    w.0 |= Wanted::bit(f);
                }
            }
        }
    }
    w
}

/// What the request asks for: the suffix wins; without one, `Accept` when negotiating.
pub fn wanted(suffix: Option<Wanted>, headers: &HeaderMap, negotiate: bool) -> Wanted {
    match suffix {
        Some(w) => w,
        None if negotiate => from_accept(headers),
        None => Wanted::BASE,
    }
}

/// `Vary: Accept`, set on every `/avatar` answer while negotiation is on.
pub fn vary_accept(headers: &mut HeaderMap) {
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_and_accept() {
        assert_eq!(split_suffix("abc.webp"), ("abc", Some(Wanted(1))));
        assert_eq!(split_suffix("abc.avif"), ("abc", Some(Wanted(2))));
        assert_eq!(split_suffix("abc.jpg"), ("abc", Some(Wanted::BASE)));
        assert_eq!(split_suffix("abc.png"), ("abc", Some(Wanted::BASE)));
        assert_eq!(split_suffix("abc.gif"), ("abc.gif", None));
        assert_eq!(split_suffix("abc"), ("abc", None));
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("image/avif,image/webp;q=0.9,*/*;q=0.8"),
        );
        assert_eq!(from_accept(&h), Wanted(3));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("image/webp;q=0, */*"),
        );
        assert_eq!(from_accept(&h), Wanted::BASE);
        h.insert(header::ACCEPT, HeaderValue::from_static("IMAGE/WEBP"));
        assert_eq!(wanted(None, &h, true), Wanted(1));
        assert_eq!(wanted(None, &h, false), Wanted::BASE);
        assert_eq!(wanted(Some(Wanted::BASE), &h, true), Wanted::BASE);
    }
}
