//! `d=identicon`: a symmetric 5x5 grid (GitHub/Gravatar style) whose cells and colour come
//! from the request hash, so the same hash always draws the same picture.

use super::palette::{bits, hsl, seed_u64, wheel};

/// A two-colour picture: palette plus one palette index per pixel.
pub struct Indexed {
    /// Side length in pixels.
    pub size: u32,
    /// RGB palette entries.
    pub palette: Vec<[u8; 3]>,
    /// One index per pixel, rows top to bottom.
    pub pixels: Vec<u8>,
}

const BACKGROUND: [u8; 3] = [0xF0, 0xF0, 0xF0];

/// What of the hash the picture uses: 15 cell bits (3 columns x 5 rows; columns 3 and 4
/// mirror 1 and 0) and one of 48 hues at one of 4 shades.
pub fn design(seed: &[u8]) -> u64 {
    let n = seed_u64(seed);
    let cells = n & 0x7FFF;
    let hue = (n >> 16) % 48;
    let shade = (n >> 24) & 3;
    cells | hue << 15 | shade << 21
}

/// Draws identicon `design` at `size` pixels, with a margin of 1/12 on each side and
/// cell edges on whole pixels so small sizes stay crisp.
pub fn identicon(design: u64, size: u32) -> Indexed {
    let mut grid = [[false; 5]; 5];
    for col in 0..3 {
        for (row, line) in grid.iter_mut().enumerate() {
            let on = bits(design, col * 5 + row as u32, 1) == 1;
            line[col as usize] = on;
            line[4 - col as usize] = on;
        }
    }
    // Saturation and lightness in a band that stays legible on the light background.
    let shade = bits(design, 21, 2) as f32;
    let fg = hsl(
        wheel(bits(design, 15, 6), 48),
        0.5 + shade * 0.05,
        0.45 + shade * 0.04,
    );
    let margin = (size + 6) / 12;
    let inner = size.saturating_sub(2 * margin).max(1);
    let cell_of = |p: u32| -> Option<usize> {
        let q = p.checked_sub(margin)?;
        (q < inner).then(|| (q * 5 / inner) as usize)
    };
    // Columns of the right half are the mirror image of the left half's pixel columns, so
    // the picture is exactly symmetric even when the cell width is not a whole number.
    let col_of = |x: u32| -> Option<usize> {
        if x < size / 2 {
            cell_of(x)
        } else {
            cell_of(size - 1 - x).map(|c| 4 - c)
        }
    };
    let mut pixels = Vec::with_capacity((size * size) as usize);
    for y in 0..size {
        for x in 0..size {
            let on = matches!((cell_of(y), col_of(x)), (Some(r), Some(c)) if grid[r][c]);
            pixels.push(u8::from(on));
        }
    }
    Indexed {
        size,
        palette: vec![BACKGROUND, fg],
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_deterministic() {
        let seed = [0x5a; 16];
        let a = identicon(design(&seed), 64);
        assert_eq!(a.pixels, identicon(design(&seed), 64).pixels);
        for y in 0..64 {
            for x in 0..64 {
                let row = (y * 64) as usize;
                assert_eq!(
                    a.pixels[row + x],
                    a.pixels[row + 63 - x],
                    "mirror at {x},{y}"
                );
            }
        }
        let mut other = seed;
        other[0] ^= 1;
        assert_ne!(a.pixels, identicon(design(&other), 64).pixels);
    }
}
