//! `d=retro`: an 8x8 pixel sprite, mirrored left to right like an arcade invader, in one
//! colour on a pale tint of it. Cells land on whole pixels so it stays crisp at 32 px.

use super::{
    identicon::{paint, Indexed},
    palette::{bits, hsl, seed_u64, wheel},
};

/// What of the hash the sprite uses: 32 cell bits (4 columns x 8 rows, mirrored) and one
/// of 24 hues.
pub fn design(seed: &[u8]) -> u64 {
    let n = seed_u64(seed);
    let cells = (n & 0xFFFF_FFFF) as u32;
    u64::from(cells) | ((n >> 32) % 24) << 32
}

/// Draws sprite `design` at `size` pixels with a one-cell margin.
pub fn retro(design: u64, size: u32) -> Indexed {
    let mut grid = [[false; 8]; 8];
    for (row, line) in grid.iter_mut().enumerate() {
        for col in 0..4 {
            let on = bits(design, (row * 4 + col) as u32, 1) == 1;
            line[col] = on;
            line[7 - col] = on;
        }
    }
    // Rows 2 and 3 carry the eyes: filled around, hollow at columns 2 and 5.
    for row in [2, 3] {
        grid[row] = [
            grid[row][0],
            true,
            false,
            true,
            true,
            false,
            true,
            grid[row][7],
        ];
    }
    // A solid head row keeps the sprite one connected shape.
    grid[1][2..6].fill(true);
    let hue = wheel(bits(design, 32, 5), 24);
    let fg = hsl(hue, 0.55, 0.42);
    let bg = hsl(hue, 0.45, 0.9);
    // 10 cells across: the sprite plus a margin cell on each side.
    let cell_of = |p: u32| -> Option<usize> {
        let c = (p * 10 / size.max(1)) as usize;
        (1..=8).contains(&c).then(|| c - 1)
    };
    // Mirror pixel columns so the sprite is exactly symmetric at any size.
    let cols: Vec<Option<usize>> = (0..size)
        .map(|x| {
            let xm = if x < size / 2 { x } else { size - 1 - x };
            cell_of(xm).map(|c| if x < size / 2 { c } else { 7 - c })
        })
        .collect();
    let rows: Vec<Option<usize>> = (0..size).map(cell_of).collect();
    Indexed {
        size,
        palette: vec![bg, fg],
        packed: paint(&rows, &cols, |r, c| grid[r][c]),
    }
}
