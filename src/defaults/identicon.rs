//! `d=identicon`: a symmetric 5x5 grid (GitHub/Gravatar style) whose cells and colour come
//! from the request hash, so the same hash always draws the same picture.

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

/// Which of the 15 distinct cells (3 columns x 5 rows; columns 3 and 4 mirror 1 and 0)
/// are filled, and the foreground colour, from at least 16 bytes of hash.
fn design(seed: &[u8]) -> ([[bool; 5]; 5], [u8; 3]) {
    let byte = |i: usize| seed.get(i).copied().unwrap_or(0);
    let bits = u32::from(byte(0)) | u32::from(byte(1)) << 8 | u32::from(byte(2)) << 16;
    let mut grid = [[false; 5]; 5];
    for col in 0..3 {
        for (row, line) in grid.iter_mut().enumerate() {
            let on = bits >> (col * 5 + row) & 1 == 1;
            line[col] = on;
            line[4 - col] = on;
        }
    }
    // Hue over the whole circle; saturation and lightness in a band that stays legible on
    // the light background.
    let hue = f32::from(u16::from(byte(13)) << 4 | u16::from(byte(14)) >> 4) / 4096.0 * 360.0;
    let sat = 0.45 + f32::from(byte(15) & 0x0F) / 15.0 * 0.2;
    let light = 0.45 + f32::from(byte(15) >> 4) / 15.0 * 0.15;
    (grid, hsl(hue, sat, light))
}

fn hsl(h: f32, s: f32, l: f32) -> [u8; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [r, g, b].map(|v| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8)
}

/// Draws the identicon of `seed` at `size` pixels, with a margin of 1/12 on each side and
/// cell edges on whole pixels so small sizes stay crisp.
pub fn identicon(seed: &[u8], size: u32) -> Indexed {
    let (grid, fg) = design(seed);
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
        let a = identicon(&seed, 64);
        assert_eq!(a.pixels, identicon(&seed, 64).pixels);
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
        assert_ne!(a.pixels, identicon(&other, 64).pixels);
    }
}
