//! The default graphics of `/avatar/{hash}` (API.md §Public reads: `d=mp|identicon|blank|
//! moocard`), drawn in pure Rust and encoded as PNG. Rendering costs milliseconds at 512 px,
//! so callers render each (kind, size) once and keep the bytes (`http::cache`).

mod art;
mod canvas;
mod identicon;

/// A default graphic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefaultKind {
    /// The moocard cow (the default when `d` is absent).
    Moocard,
    /// Mystery-person silhouette.
    Mp,
    /// Per-hash geometric pattern.
    Identicon,
    /// A fully transparent square.
    Blank,
}

impl DefaultKind {
    /// Every kind, in a stable order (used to index pre-rendered slots).
    pub const ALL: [DefaultKind; 4] = [Self::Moocard, Self::Mp, Self::Identicon, Self::Blank];

    /// The `d=` value that selects it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Moocard => "moocard",
            Self::Mp => "mp",
            Self::Identicon => "identicon",
            Self::Blank => "blank",
        }
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

/// Renders `kind` at `size` pixels as PNG. `seed` (the request hash) only matters for
/// identicons.
pub fn render(kind: DefaultKind, size: u32, seed: &[u8]) -> Result<Vec<u8>, RenderError> {
    let size = size.max(1);
    match kind {
        DefaultKind::Moocard => rgb_png(art::moocard(size)),
        DefaultKind::Mp => rgb_png(art::mystery_person(size)),
        DefaultKind::Identicon => {
            let icon = identicon::identicon(seed, size);
            indexed_png(icon.size, &icon.palette, None, &icon.pixels)
        }
        // One transparent palette entry at one bit per pixel: about 100 bytes at any size.
        DefaultKind::Blank => {
            let pixels = vec![0u8; (size as usize) * (size as usize)];
            indexed_png(size, &[[0, 0, 0]], Some(&[0]), &pixels)
        }
    }
}

fn rgb_png(canvas: canvas::Canvas) -> Result<Vec<u8>, RenderError> {
    let size = canvas.size();
    let data = canvas.into_rgb();
    encode(size, png::ColorType::Rgb, png::BitDepth::Eight, None, &data)
}

/// Packs 1-bit indices (the palettes here have at most two entries) and encodes.
fn indexed_png(
    size: u32,
    palette: &[[u8; 3]],
    trns: Option<&[u8]>,
    pixels: &[u8],
) -> Result<Vec<u8>, RenderError> {
    let row_bytes = (size as usize).div_ceil(8);
    let mut packed = vec![0u8; row_bytes * size as usize];
    for (i, &p) in pixels.iter().enumerate() {
        let (y, x) = (i / size as usize, i % size as usize);
        if p != 0 {
            packed[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
        }
    }
    let plte: Vec<u8> = palette.iter().flatten().copied().collect();
    encode(
        size,
        png::ColorType::Indexed,
        png::BitDepth::One,
        Some((&plte, trns)),
        &packed,
    )
}

fn encode(
    size: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<(&[u8], Option<&[u8]>)>,
    data: &[u8],
) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size, size);
        enc.set_color(color);
        enc.set_depth(depth);
        enc.set_compression(png::Compression::Best);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
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
                let bytes = render(kind, size, &[7; 16]).expect("render");
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
            for size in [32, 128, 512] {
                let bytes = render(kind, size, b"0123456789abcdef").expect("render");
                let path = std::path::Path::new(&dir).join(format!("{}-{size}.png", kind.as_str()));
                std::fs::write(path, bytes).expect("write");
            }
        }
    }
}
