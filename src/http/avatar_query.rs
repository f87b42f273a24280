//! The query string of `/avatar/{hash}` as Gravatar and Libravatar clients write it
//! (API.md §Public reads). Nothing here fails: a value that makes no sense falls back to
//! what a Gravatar client expects, because the answer lands in an `<img>`.

use std::borrow::Cow;

use crate::defaults::{self, DefaultKind};

/// What to serve when the hash has no avatar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// `d=404`: a 404.
    NotFound,
    /// A drawn default.
    Graphic(DefaultKind),
    /// `d=<allow-listed URL>`: a 302 there.
    Redirect(String),
}

/// What the query string asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarQuery {
    /// Requested pixels (before snapping to a configured size).
    pub size: u32,
    /// The default, resolved against the configuration.
    pub fallback: Fallback,
    /// `f=y`: serve the default even when there is an avatar.
    pub force: bool,
    /// Letters for `d=initials` (from `initials=` or `name=`).
    pub letters: Vec<char>,
}

/// The size when `s` is absent or unusable.
pub const DEFAULT_SIZE: u32 = 80;

/// `s=`: the leading digits (so `300x300`, as Mozilla's SSO dashboard sends, is 300);
/// nothing usable or below 1 is the default; huge values saturate (snapping then picks
/// the largest size).
fn size(v: &str) -> u32 {
    let digits = v.trim().bytes().take_while(u8::is_ascii_digit);
    let n = digits.fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    });
    if n == 0 {
        DEFAULT_SIZE
    } else {
        n
    }
}

/// The host of an absolute `http(s)` URL, lowercased, if `v` is one.
fn url_host(v: &str) -> Option<String> {
    let scheme_len = if v
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    {
        8
    } else if v
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
    {
        7
    } else {
        return None;
    };
    let rest = &v[scheme_len..];
    let authority = rest.split(['/', '?', '#']).next()?;
    // Userinfo would let `allowed.example@evil.example` pass a naive check.
    if authority.contains('@') || authority.contains('\\') {
        return None;
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Parses a query string: `s|size`, `d|default`, `f|forcedefault`, `initials`, `name`;
/// `r|rating` and unknown keys are ignored. Keys and values are form-decoded
/// (percent-escapes and `+`), invalid UTF-8 is replaced; a repeated key takes its last
/// value, as PHP (Gravatar) does. `default` is `avatars.default` and `hosts` is
/// `avatars.default_url_hosts`.
pub fn parse(query: Option<&str>, default: &Fallback, hosts: &[String]) -> AvatarQuery {
    let mut q = AvatarQuery {
        size: DEFAULT_SIZE,
        fallback: default.clone(),
        force: false,
        letters: Vec::new(),
    };
    let (mut initials, mut name): (Option<Cow<str>>, Option<Cow<str>>) = (None, None);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "s" | "size" => q.size = size(&v),
            "d" | "default" => q.fallback = fallback(&v, default, hosts),
            "f" | "forcedefault" => {
                q.force = ["y", "yes", "true", "1"]
                    .iter()
                    .any(|y| v.trim().eq_ignore_ascii_case(y));
            }
            "initials" => initials = Some(v),
            "name" => name = Some(v),
            _ => {}
        }
    }
    if q.fallback == Fallback::Graphic(DefaultKind::Initials) {
        q.letters = defaults::letters(initials.as_deref(), name.as_deref());
    }
    q
}

/// One `d=` value.
fn fallback(v: &str, default: &Fallback, hosts: &[String]) -> Fallback {
    let v = v.trim();
    if v == "404" {
        return Fallback::NotFound;
    }
    if let Some(kind) = DefaultKind::from_param(v) {
        return Fallback::Graphic(kind);
    }
    match url_host(v) {
        Some(host) if hosts.contains(&host) => Fallback::Redirect(v.to_owned()),
        _ => default.clone(),
    }
}

/// `avatars.default` as a fallback (validated at start-up; anything else is `moocard`).
pub fn configured_default(v: &str) -> Fallback {
    if v == "404" {
        Fallback::NotFound
    } else {
        Fallback::Graphic(DefaultKind::from_param(v).unwrap_or(DefaultKind::Moocard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> AvatarQuery {
        let hosts = vec!["img.example.org".to_owned()];
        parse(Some(q), &Fallback::Graphic(DefaultKind::Moocard), &hosts)
    }

    #[test]
    fn sizes_never_fail() {
        for (q, want) in [
            ("", 80),
            ("s=1", 1),
            ("size=200", 200),
            ("s=0", 80),
            ("s=-5", 80),
            ("s=abc", 80),
            ("s=", 80),
            ("s=300x300", 300),
            ("s=99999999999999999999", u32::MAX),
            ("s=%33%32", 32),
            ("s=40&s=64", 64),
        ] {
            assert_eq!(p(q).size, want, "{q}");
        }
    }

    #[test]
    fn every_gravatar_default() {
        let g = |q: &str| p(q).fallback;
        assert_eq!(g("d=404"), Fallback::NotFound);
        for (v, k) in [
            ("mm", DefaultKind::Mp),
            ("mp", DefaultKind::Mp),
            ("mysteryman", DefaultKind::Mp),
            ("identicon", DefaultKind::Identicon),
            ("monsterid", DefaultKind::Monsterid),
            ("wavatar", DefaultKind::Wavatar),
            ("retro", DefaultKind::Retro),
            ("robohash", DefaultKind::Robohash),
            ("blank", DefaultKind::Blank),
            ("color", DefaultKind::Color),
            ("RETRO", DefaultKind::Retro),
            ("moocard", DefaultKind::Moocard),
        ] {
            assert_eq!(g(&format!("d={v}")), Fallback::Graphic(k), "{v}");
            assert_eq!(g(&format!("default={v}")), Fallback::Graphic(k), "{v}");
        }
        let moo = Fallback::Graphic(DefaultKind::Moocard);
        for v in [
            "nope",
            "",
            "%ZZ",
            "http%3A%2F%2Fevil.example%2Fx.png",
            "javascript:alert(1)",
        ] {
            assert_eq!(g(&format!("d={v}")), moo, "{v}");
        }
        assert_eq!(
            g("d=https%3A%2F%2Fimg.example.org%2Fa.png%3Fx%3D1"),
            Fallback::Redirect("https://img.example.org/a.png?x=1".into())
        );
        assert_eq!(
            g("d=https://img.example.org:8443/a.png"),
            Fallback::Redirect("https://img.example.org:8443/a.png".into())
        );
        assert_eq!(g("d=https%3A%2F%2Fimg.example.org%40evil.example%2F"), moo);
        assert_eq!(g("d=https%3A%2F%2Fimg.example.org.evil.example%2F"), moo);
    }

    #[test]
    fn initials_force_and_noise() {
        let q = p("d=initials&name=Ada+Lovelace&r=pg");
        assert_eq!(q.letters, vec!['A', 'L']);
        assert_eq!(p("d=initials&initials=%C3%A9z").letters, vec!['É', 'Z']);
        assert!(p("f=y").force && p("forcedefault=yes").force && !p("f=n").force);
        // Malformed pairs are skipped, not fatal.
        let q = p("&&=&s&d&%&s=%FF64&d=retro&&");
        assert_eq!(q.fallback, Fallback::Graphic(DefaultKind::Retro));
    }
}
