//! `d=identicon`: a symmetric 5x5 grid (GitHub/Gravatar style) whose cells and colour come
//! from the request hash, so the same hash always draws the same picture.

use super::palette::{bits, hsl, seed_u64, wheel};

/// A two-colour picture: palette plus one bit per pixel (PNG's packing: rows top to
/// bottom, each `size.div_ceil(8)` bytes, most significant bit first).
pub struct Indexed {
    /// Side length in pixels.
    pub size: u32,
    /// RGB palette entries.
    pub palette: Vec<[u8; 3]>,
    /// Packed 1-bit palette indices.
    pub packed: Vec<u8>,
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
    let cols: Vec<Option<usize>> = (0..size).map(col_of).collect();
    let rows: Vec<Option<usize>> = (0..size).map(cell_of).collect();
    Indexed {
        size,
        palette: vec![BACKGROUND, fg],
        packed: paint(&rows, &cols, |r, c| grid[r][c]),
    }
}

/// Packed 1-bit rows of a cell picture: pixel (x, y) is set when `on(rows[y], cols[x])`
/// (None: margin). A row equal to the one above (same cell row) is copied, so the work
/// is one pass per distinct row, not per pixel.
pub fn paint(
    rows: &[Option<usize>],
    cols: &[Option<usize>],
    on: impl Fn(usize, usize) -> bool,
) -> Vec<u8> {
    let row_bytes = cols.len().div_ceil(8);
    let mut packed = vec![0u8; row_bytes * rows.len()];
    for (y, row) in rows.iter().enumerate() {
        let Some(r) = *row else { continue };
        let start = y * row_bytes;
        if y > 0 && rows[y - 1] == Some(r) {
            packed.copy_within(start - row_bytes..start, start);
            continue;
        }
        let line = &mut packed[start..start + row_bytes];
        for (x, c) in cols.iter().enumerate() {
            if matches!(*c, Some(c) if on(r, c)) {
                line[x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_deterministic() {
        let seed = [0x5a; 16];
        let a = identicon(design(&seed), 64);
        assert_eq!(a.packed, identicon(design(&seed), 64).packed);
        let bit = |x: usize, y: usize| a.packed[y * 8 + x / 8] & (0x80 >> (x % 8)) != 0;
        for y in 0..64 {
            for x in 0..64 {
                assert_eq!(bit(x, y), bit(63 - x, y), "mirror at {x},{y}");
            }
        }
        assert!(
            (0..64).any(|y| (0..64).any(|x| bit(x, y))),
            "some cells drawn"
        );
        let mut other = seed;
        other[0] ^= 1;
        assert_ne!(a.packed, identicon(design(&other), 64).packed);
    }
}
