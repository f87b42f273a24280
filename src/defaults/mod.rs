//! The default graphics of `/avatar/{hash}` (API.md §Public reads: every Gravatar `d=`
//! value plus `moocard`), our own drawings in pure Rust, encoded as PNG. One file per
//! graphic; `canvas` (shapes), `text` (glyphs) and `palette` (colours) are shared. A
//! drawing depends only on its [`Design`], so callers cache renderings by design and size
//! (`http::graphics`), not by hash.

mod art;
mod canvas;
mod color;
mod identicon;
mod initials;
mod monsterid;
mod palette;
mod retro;
mod robohash;
mod text;
mod wavatar;

pub use initials::letters;

/// A default graphic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefaultKind {
    /// The moocard cow (the default when `d` is absent).
    Moocard,
    /// Mystery-person silhouette (`mp`, `mm`, `mysteryman`).
    Mp,
    /// Per-hash geometric pattern.
    Identicon,
    /// Per-hash monster.
    Monsterid,
    /// Per-hash cartoon face.
    Wavatar,
    /// Per-hash 8-bit sprite.
    Retro,
    /// Per-hash robot.
    Robohash,
    /// A fully transparent square.
    Blank,
    /// Letters (from `initials=` or `name=`) on the hash's colour.
    Initials,
    /// A plain card in the hash's colour.
    Color,
}

impl DefaultKind {
    /// Every kind, in a stable order (used to index pre-rendered slots).
    pub const ALL: [DefaultKind; 10] = [
        Self::Moocard,
        Self::Mp,
        Self::Identicon,
        Self::Monsterid,
        Self::Wavatar,
        Self::Retro,
        Self::Robohash,
        Self::Blank,
        Self::Initials,
        Self::Color,
    ];

    /// The `d=` value that selects it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Moocard => "moocard",
            Self::Mp => "mp",
            Self::Identicon => "identicon",
            Self::Monsterid => "monsterid",
            Self::Wavatar => "wavatar",
            Self::Retro => "retro",
            Self::Robohash => "robohash",
            Self::Blank => "blank",
            Self::Initials => "initials",
            Self::Color => "color",
        }
    }

    /// The kind a `d=` value names (Gravatar's aliases included, ASCII case ignored).
    pub fn from_param(v: &str) -> Option<Self> {
        if ["mm", "mysteryman"]
            .iter()
            .any(|a| v.eq_ignore_ascii_case(a))
        {
            return Some(Self::Mp);
        }
        Self::ALL
            .into_iter()
            .find(|k| v.eq_ignore_ascii_case(k.as_str()))
    }

    /// Whether the picture is the same for every hash (rendered once per size).
    pub fn is_fixed(self) -> bool {
        matches!(self, Self::Moocard | Self::Mp | Self::Blank)
    }

    /// Whether drawing it takes microseconds at every size (cells or a plain card at one
    /// bit per pixel): drawn where it is asked for, not handed to the blocking pool.
    pub fn is_cheap(self) -> bool {
        matches!(
            self,
            Self::Identicon | Self::Retro | Self::Color | Self::Blank
        )
    }
}

/// Everything that determines a drawing: its kind, the few bits of the hash that kind
/// uses, and the letters of `initials`. Two hashes with the same design share one
/// rendering, which is what keeps the cache of rendered graphics small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Design {
    /// The graphic.
    pub kind: DefaultKind,
    bits: u64,
    letters: [char; initials::MAX_LETTERS],
}

impl Design {
    /// The design of `kind` for a request whose hash (or name digest) is `seed` (16+
    /// bytes) and whose `initials` letters are `letters` (see [`letters`]). `initials`
    /// without letters is the plain colour card.
    pub fn new(kind: DefaultKind, seed: &[u8], letters: &[char]) -> Self {
        let mut l = ['\0'; initials::MAX_LETTERS];
        let kind = match kind {
            DefaultKind::Initials if letters.is_empty() => DefaultKind::Color,
            k => k,
        };
        let bits = match kind {
            DefaultKind::Moocard | DefaultKind::Mp | DefaultKind::Blank => 0,
            DefaultKind::Identicon => identicon::design(seed),
            DefaultKind::Monsterid => monsterid::design(seed),
            DefaultKind::Wavatar => wavatar::design(seed),
            DefaultKind::Retro => retro::design(seed),
            DefaultKind::Robohash => robohash::design(seed),
            DefaultKind::Initials => {
                for (d, s) in l.iter_mut().zip(letters) {
                    *d = *s;
                }
                color::design(seed)
            }
            DefaultKind::Color => color::design(seed),
        };
        Self {
            kind,
            bits,
            letters: l,
        }
    }

    fn text(&self) -> String {
        self.letters.iter().take_while(|&&c| c != '\0').collect()
    }
}

/// Rendering failed (only possible on an internal bug).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// PNG encoding failed.
    #[error("could not encode the default image: {0}")]
    Encode(#[from] png::EncodingError),
    /// The rendering task panicked or was cancelled.
    #[error("rendering the default image failed: {0}")]
    Panicked(String),
}

/// Renders `design` at `size` pixels as PNG.
pub fn render(design: &Design, size: u32) -> Result<Vec<u8>, RenderError> {
    let size = size.max(1);
    let bits = design.bits;
    // The fixed pictures are drawn once per size and served to everyone: worth the best
    // compression. Per-hash pictures are drawn on demand, and a flood of new hashes draws
    // one per request, so they are compressed fast (fdeflate; a few % larger).
    let level = if design.kind.is_fixed() {
        png::Compression::Best
    } else {
        png::Compression::Fast
    };
    match design.kind {
        DefaultKind::Moocard => rgb_png(art::moocard(size), level),
        DefaultKind::Mp => rgb_png(art::mystery_person(size), level),
        DefaultKind::Identicon => indexed(identicon::identicon(bits, size)),
        DefaultKind::Retro => indexed(retro::retro(bits, size)),
        DefaultKind::Monsterid => rgb_png(monsterid::monsterid(bits, size), level),
        DefaultKind::Wavatar => rgb_png(wavatar::wavatar(bits, size), level),
        DefaultKind::Robohash => rgb_png(robohash::robohash(bits, size), level),
        DefaultKind::Initials => rgb_png(initials::initials(bits, &design.text(), size), level),
        DefaultKind::Color => indexed_png(size, &[color::rgb(bits)], None, &zeros(size)),
        // One transparent palette entry at one bit per pixel: about 100 bytes at any size.
        DefaultKind::Blank => indexed_png(size, &[[0, 0, 0]], Some(&[0]), &zeros(size)),
    }
}

fn indexed(icon: identicon::Indexed) -> Result<Vec<u8>, RenderError> {
    indexed_png(icon.size, &icon.palette, None, &icon.packed)
}

/// A 1-bit picture of palette entry 0 only.
fn zeros(size: u32) -> Vec<u8> {
    vec![0u8; (size as usize).div_ceil(8) * size as usize]
}

fn rgb_png(canvas: canvas::Canvas, level: png::Compression) -> Result<Vec<u8>, RenderError> {
    let size = canvas.size();
    let data = canvas.into_rgb();
    // Adaptive filtering is worth its five trial filters per row only when compressing hard.
    let filter = match level {
        png::Compression::Best => None,
        _ => Some(png::FilterType::Sub),
    };
    encode(
        size,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        None,
        &data,
        level,
        filter,
    )
}

/// Encodes packed 1-bit indices (the palettes here have at most two entries). Rows of a
/// 1-bit palette image are compressed best unfiltered (PNG spec, 12.8).
fn indexed_png(
    size: u32,
    palette: &[[u8; 3]],
    trns: Option<&[u8]>,
    packed: &[u8],
) -> Result<Vec<u8>, RenderError> {
    let plte: Vec<u8> = palette.iter().flatten().copied().collect();
    encode(
        size,
        png::ColorType::Indexed,
        png::BitDepth::One,
        Some((&plte, trns)),
        packed,
        png::Compression::Fast,
        Some(png::FilterType::NoFilter),
    )
}

/// Encodes one PNG; `filter` None means adaptive filtering.
fn encode(
    size: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<(&[u8], Option<&[u8]>)>,
    data: &[u8],
    level: png::Compression,
    filter: Option<png::FilterType>,
) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size, size);
        enc.set_color(color);
        enc.set_depth(depth);
        enc.set_compression(level);
        match filter {
            Some(f) => {
                enc.set_filter(f);
                enc.set_adaptive_filter(png::AdaptiveFilterType::NonAdaptive);
            }
            None => enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive),
        }
        if let Some((plte, trns)) = palette {
            enc.set_palette(plte.to_vec());
            if let Some(t) = trns {
                enc.set_trns(t.to_vec());
            }
        }
        let mut w = enc.write_header()?;
        w.write_image_data(data)?;
        w.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_renders_a_png_of_the_right_size() {
        for kind in DefaultKind::ALL {
            for size in [1, 32, 80] {
                let d = Design::new(kind, &[7; 16], &['M', 'C']);
                let bytes = render(&d, size).expect("render");
                let dec = png::Decoder::new(bytes.as_slice());
                let reader = dec.read_info().expect("valid png");
                assert_eq!((reader.info().width, reader.info().height), (size, size));
            }
        }
    }

    /// `MOOCARD_WRITE_DEFAULTS=dir cargo test` writes the graphics out for a visual check.
    #[test]
    fn write_samples_when_asked() {
        let Some(dir) = std::env::var_os("MOOCARD_WRITE_DEFAULTS") else {
            return;
        };
        for kind in DefaultKind::ALL {
            for (n, seed) in [
                b"0123456789abcdef",
                b"fedcba9876543210",
                b"\x93q7\x10zz\xc4Qabcdefgh",
            ]
            .into_iter()
            .enumerate()
            {
                for size in [32, 128, 512] {
                    let d = Design::new(
                        kind,
                        seed,
                        &letters(None, Some(["Ada Lovelace", "José", "Wu Li Ng"][n])),
                    );
                    let bytes = render(&d, size).expect("render");
                    let name = format!("{}-{n}-{size}.png", kind.as_str());
                    std::fs::write(std::path::Path::new(&dir).join(name), bytes).expect("write");
                }
            }
        }
    }
}
