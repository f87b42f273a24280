//! `d=color`: a plain card in a colour picked by the hash (one of 36 hues at one of three
//! shades), for pages that only want a placeholder tint. Also the card behind `initials`.

use super::{
    canvas::Canvas,
    palette::{bits, hsl, seed_u64, wheel},
};

/// What of the hash the colour uses.
pub fn design(seed: &[u8]) -> u64 {
    let n = seed_u64(seed);
    (n % 36) | ((n >> 8) % 3) << 6
}

/// The RGB colour of `design`: mid-dark so white letters on it stay readable.
pub fn rgb(design: u64) -> [u8; 3] {
    let shade = bits(design, 6, 2) as f32;
    hsl(wheel(bits(design, 0, 6), 36), 0.5, 0.4 + shade * 0.04)
}

/// The plain card.
pub fn color(design: u64, size: u32) -> Canvas {
    Canvas::new(size, rgb(design))
}
