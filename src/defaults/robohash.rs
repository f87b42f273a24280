//! `d=robohash`: a robot head (antenna, eyes, mouth plate) in one of 12 paint colours on a
//! pale card. Our own drawing; 3,072 designs in all.

use super::{
    canvas::{capsule, circle, round_rect, Canvas},
    palette::{bits, hsl, seed_u64, wheel},
};

const INK: [u8; 3] = [0x25, 0x2A, 0x33];
const STEEL: [u8; 3] = [0xB8, 0xC0, 0xCC];
const STEEL_DARK: [u8; 3] = [0x7A, 0x84, 0x93];

/// What of the hash the robot uses: head, antenna, eyes, mouth (2 bits each) and paint.
pub fn design(seed: &[u8]) -> u64 {
    let n = seed_u64(seed).rotate_right(31);
    (n & 0xFF) | ((n >> 8) % 12) << 8
}

/// Draws robot `design` at `size` pixels.
pub fn robohash(design: u64, size: u32) -> Canvas {
    let (head, antenna, eyes, mouth) = (
        bits(design, 0, 2),
        bits(design, 2, 2),
        bits(design, 4, 2),
        bits(design, 6, 2),
    );
    let hue = wheel(bits(design, 8, 4), 12);
    let paint = hsl(hue, 0.5, 0.55);
    let light = hsl(hue + 40.0, 0.9, 0.6);
    let mut c = Canvas::new(size, hsl(hue, 0.25, 0.92));
    let half_w = [0.27f32, 0.31, 0.24, 0.29][head as usize];
    let radius = [0.06f32, 0.12, 0.03, 0.18][head as usize];
    // Neck and shoulders.
    c.fill(STEEL_DARK, 1.0, &|x, y| {
        round_rect(x, y, (0.5, 0.86), (0.09, 0.1), 0.02)
    });
    c.fill(paint, 1.0, &|x, y| {
        round_rect(x, y, (0.5, 1.02), (0.34, 0.1), 0.08)
    });
    // Antenna, behind the head.
    match antenna {
        0 => {
            c.fill(STEEL_DARK, 1.0, &|x, y| {
                capsule(x, y, (0.5, 0.25), (0.5, 0.12), 0.014)
            });
            c.fill(light, 1.0, &|x, y| circle(x, y, 0.5, 0.11, 0.04));
        }
        1 => {
            for side in [-1.0f32, 1.0] {
                c.fill(STEEL_DARK, 1.0, &move |x, y| {
                    capsule(
                        x,
                        y,
                        (0.5 + side * 0.1, 0.25),
                        (0.5 + side * 0.17, 0.12),
                        0.012,
                    )
                });
                c.fill(light, 1.0, &move |x, y| {
                    circle(x, y, 0.5 + side * 0.17, 0.12, 0.03)
                });
            }
        }
        2 => {
            for side in [-1.0f32, 1.0] {
                c.fill(STEEL_DARK, 1.0, &move |x, y| {
                    round_rect(
                        x,
                        y,
                        (0.5 + side * (half_w + 0.03), 0.47),
                        (0.04, 0.08),
                        0.02,
                    )
                });
            }
        }
        _ => c.fill(light, 1.0, &|x, y| {
            round_rect(x, y, (0.5, 0.235), (0.07, 0.035), 0.02)
        }),
    }
    // Head with a lighter face plate.
    c.fill(paint, 1.0, &move |x, y| {
        round_rect(x, y, (0.5, 0.5), (half_w, 0.26), radius)
    });
    c.fill(STEEL, 1.0, &move |x, y| {
        round_rect(
            x,
            y,
            (0.5, 0.52),
            (half_w - 0.05, 0.19),
            (radius - 0.03).max(0.02),
        )
    });
    // Eyes.
    match eyes {
        0 => {
            for ex in [0.41f32, 0.59] {
                c.fill(INK, 1.0, &move |x, y| circle(x, y, ex, 0.46, 0.055));
                c.fill(light, 1.0, &move |x, y| circle(x, y, ex, 0.46, 0.03));
            }
        }
        1 => {
            c.fill(INK, 1.0, &|x, y| {
                round_rect(x, y, (0.5, 0.46), (0.17, 0.045), 0.04)
            });
            c.fill(light, 1.0, &|x, y| {
                round_rect(x, y, (0.5, 0.46), (0.14, 0.018), 0.018)
            });
        }
        2 => {
            for ex in [0.41f32, 0.59] {
                c.fill(INK, 1.0, &move |x, y| {
                    round_rect(x, y, (ex, 0.46), (0.05, 0.05), 0.01)
                });
                c.fill(light, 1.0, &move |x, y| {
                    round_rect(x, y, (ex, 0.46), (0.022, 0.022), 0.004)
                });
            }
        }
        _ => {
            c.fill(INK, 1.0, &|x, y| circle(x, y, 0.5, 0.45, 0.075));
            c.fill(light, 1.0, &|x, y| circle(x, y, 0.5, 0.45, 0.04));
            c.fill([0xFF, 0xFF, 0xFF], 1.0, &|x, y| {
                circle(x, y, 0.515, 0.435, 0.012)
            });
        }
    }
    // Mouth plate.
    match mouth {
        0 => {
            c.fill(INK, 1.0, &|x, y| {
                round_rect(x, y, (0.5, 0.61), (0.11, 0.04), 0.01)
            });
            for i in 0..5 {
                let gx = 0.42 + i as f32 * 0.04;
                c.fill(STEEL, 1.0, &move |x, y| {
                    capsule(x, y, (gx, 0.585), (gx, 0.635), 0.006)
                });
            }
        }
        1 => c.fill(INK, 1.0, &|x, y| {
            capsule(x, y, (0.41, 0.61), (0.59, 0.61), 0.014)
        }),
        2 => {
            for i in 0..4 {
                let dx = 0.425 + i as f32 * 0.05;
                c.fill(light, 1.0, &move |x, y| circle(x, y, dx, 0.61, 0.016));
            }
        }
        _ => c.fill(INK, 1.0, &|x, y| {
            (circle(x, y, 0.5, 0.55, 0.085).abs() - 0.012).max(0.59 - y)
        }),
    }
    c
}
