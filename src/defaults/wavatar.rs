//! `d=wavatar`: a round cartoon face (hair, eyes, mouth, cheeks) in one of 12 skin-tone
//! or fantasy colours on a contrasting card. 3,072 designs in all.

use super::{
    canvas::{capsule, circle, ellipse, round_rect, Canvas},
    palette::{bits, hsl, seed_u64, wheel},
};

const INK: [u8; 3] = [0x33, 0x2B, 0x2E];
const WHITE: [u8; 3] = [0xFF, 0xFF, 0xFF];

/// What of the hash the face uses: hair, eyes, mouth, background (2 bits each) and hue.
pub fn design(seed: &[u8]) -> u64 {
    let n = seed_u64(seed).rotate_right(17);
    (n & 0xFF) | ((n >> 8) % 12) << 8
}

/// Draws face `design` at `size` pixels.
pub fn wavatar(design: u64, size: u32) -> Canvas {
    let (hair, eyes, mouth, bg) = (
        bits(design, 0, 2),
        bits(design, 2, 2),
        bits(design, 4, 2),
        bits(design, 6, 2),
    );
    let hue = wheel(bits(design, 8, 4), 12);
    let face = hsl(hue, 0.6, 0.72);
    let hair_c = hsl(hue + 200.0, 0.45, 0.32);
    let mut c = Canvas::new(size, hsl(hue + 90.0 * (bg as f32 + 1.0), 0.45, 0.85));
    // Shoulders, then the face.
    c.fill(hair_c, 1.0, &|x, y| circle(x, y, 0.5, 1.22, 0.42));
    c.fill(face, 1.0, &|x, y| circle(x, y, 0.5, 0.52, 0.32));
    let head = |x: f32, y: f32| circle(x, y, 0.5, 0.52, 0.32);
    match hair {
        // Bangs: the top of the head cut by a wavy line.
        1 => c.fill(hair_c, 1.0, &move |x, y| {
            head(x, y + 0.004).max(y - 0.33 - 0.03 * (x * 40.0).sin())
        }),
        // Three spikes.
        2 => {
            for (sx, tip) in [(0.38f32, 0.1f32), (0.5, 0.06), (0.62, 0.1)] {
                c.fill(hair_c, 1.0, &move |x, y| {
                    capsule(x, y, (sx, 0.3), (sx, tip + 0.06), 0.06)
                });
            }
            c.fill(hair_c, 1.0, &move |x, y| head(x, y).max(y - 0.3));
        }
        // A top knot.
        3 => {
            c.fill(hair_c, 1.0, &|x, y| circle(x, y, 0.5, 0.15, 0.085));
            c.fill(hair_c, 1.0, &move |x, y| head(x, y).max(y - 0.28));
        }
        _ => {}
    }
    // Cheeks.
    for side in [-1.0f32, 1.0] {
        c.fill([0xFF, 0x8F, 0xA3], 0.4, &move |x, y| {
            ellipse(x, y, 0.5 + side * 0.19, 0.62, 0.05, 0.03)
        });
    }
    // Eyes.
    for side in [-1.0f32, 1.0] {
        let ex = 0.5 + side * 0.11;
        match eyes {
            0 => c.fill(INK, 1.0, &move |x, y| circle(x, y, ex, 0.5, 0.03)),
            1 => {
                c.fill(WHITE, 1.0, &move |x, y| {
                    ellipse(x, y, ex, 0.49, 0.045, 0.06)
                });
                c.fill(INK, 1.0, &move |x, y| circle(x, y, ex, 0.505, 0.028));
            }
            // Happy closed eyes: an upward arc.
            2 => c.fill(INK, 1.0, &move |x, y| {
                (circle(x, y, ex, 0.53, 0.045).abs() - 0.01).max(y - 0.515)
            }),
            _ => {
                c.fill(INK, 1.0, &move |x, y| {
                    round_rect(x, y, (ex, 0.5), (0.065, 0.05), 0.02).abs() - 0.009
                });
                c.fill(INK, 1.0, &move |x, y| circle(x, y, ex, 0.5, 0.022));
            }
        }
    }
    if eyes == 3 {
        c.fill(INK, 1.0, &|x, y| {
            capsule(x, y, (0.455, 0.5), (0.545, 0.5), 0.008)
        });
    }
    // Mouth.
    match mouth {
        0 => c.fill(INK, 1.0, &|x, y| {
            (circle(x, y, 0.5, 0.6, 0.085).abs() - 0.011).max(0.625 - y)
        }),
        1 => {
            c.fill(INK, 1.0, &|x, y| {
                circle(x, y, 0.5, 0.63, 0.08).max(0.63 - y)
            });
            c.fill(WHITE, 1.0, &|x, y| {
                circle(x, y, 0.5, 0.63, 0.08).max(0.63 - y).max(y - 0.655)
            });
        }
        2 => c.fill(INK, 1.0, &|x, y| ellipse(x, y, 0.5, 0.68, 0.03, 0.04)),
        _ => c.fill(INK, 1.0, &|x, y| {
            capsule(x, y, (0.44, 0.68), (0.56, 0.67), 0.011)
        }),
    }
    c
}
