//! Colours shared by the drawings: HSL to RGB and the small hue wheels that keep the number
//! of distinct designs (and so the cache of rendered graphics) bounded.

/// HSL (hue in degrees, saturation and lightness 0..1) to 8-bit RGB.
pub fn hsl(h: f32, s: f32, l: f32) -> [u8; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h.rem_euclid(360.0) / 60.0;
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

/// Hue `i` of a wheel of `n` evenly spaced hues, in degrees (offset so that 0 is a warm
/// coral rather than pure red).
pub fn wheel(i: u64, n: u64) -> f32 {
    (i % n.max(1)) as f32 * 360.0 / n.max(1) as f32 + 8.0
}

/// Reads `count` bits at `shift` of a design.
pub fn bits(design: u64, shift: u32, count: u32) -> u64 {
    (design >> shift) & ((1u64 << count) - 1)
}

/// The first eight bytes of a seed as a number (zero-padded).
pub fn seed_u64(seed: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = seed.len().min(8);
    b[..n].copy_from_slice(&seed[..n]);
    u64::from_le_bytes(b)
}
