//! `d=monsterid`: a friendly monster assembled from parts (body, eyes, mouth, horns or
//! antennae or ears) in one of 12 colours. 3,072 designs in all, so every design's
//! rendering can be cached however many hashes ask.

use super::{
    canvas::{capsule, circle, ellipse, rotated_ellipse, round_rect, Canvas},
    palette::{bits, hsl, seed_u64, wheel},
};

const INK: [u8; 3] = [0x2B, 0x25, 0x33];
const WHITE: [u8; 3] = [0xFF, 0xFF, 0xFF];

/// What of the hash the monster uses: body, eyes, mouth and extra (2 bits each) and hue.
pub fn design(seed: &[u8]) -> u64 {
    let n = seed_u64(seed);
    (n & 0xFF) | ((n >> 8) % 12) << 8
}

fn body(shape: u64, x: f32, y: f32) -> f32 {
    match shape {
        0 => circle(x, y, 0.5, 0.6, 0.3),
        1 => ellipse(x, y, 0.5, 0.58, 0.25, 0.33),
        2 => ellipse(x, y, 0.5, 0.63, 0.36, 0.26),
        _ => round_rect(x, y, (0.5, 0.6), (0.28, 0.29), 0.16),
    }
}

/// Draws monster `design` at `size` pixels.
pub fn monsterid(design: u64, size: u32) -> Canvas {
    let (shape, eyes, mouth, extra) = (
        bits(design, 0, 2),
        bits(design, 2, 2),
        bits(design, 4, 2),
        bits(design, 6, 2),
    );
    let hue = wheel(bits(design, 8, 4), 12);
    let skin = hsl(hue, 0.55, 0.6);
    let dark = hsl(hue, 0.5, 0.4);
    let belly = hsl(hue, 0.6, 0.78);
    let accent = hsl(hue + 150.0, 0.55, 0.72);
    let mut c = Canvas::new(size, hsl(hue + 180.0, 0.3, 0.93));
    // Extras sit behind the body.
    for side in [-1.0f32, 1.0] {
        let sx = 0.5 + side * 0.16;
        match extra {
            1 => c.fill(accent, 1.0, &move |x, y| {
                rotated_ellipse(x, y, (sx, 0.3), (0.04, 0.1), side * 0.5)
            }),
            2 => {
                c.fill(dark, 1.0, &move |x, y| {
                    capsule(x, y, (sx, 0.38), (sx + side * 0.07, 0.17), 0.014)
                });
                c.fill(accent, 1.0, &move |x, y| {
                    circle(x, y, sx + side * 0.07, 0.16, 0.04)
                });
            }
            3 => {
                let ex = 0.5 + side * 0.25;
                c.fill(skin, 1.0, &move |x, y| circle(x, y, ex, 0.36, 0.09));
                c.fill(belly, 1.0, &move |x, y| circle(x, y, ex, 0.36, 0.05));
            }
            _ => {}
        }
    }
    // Arms and feet, then the body with a lighter belly.
    for side in [-1.0f32, 1.0] {
        c.fill(dark, 1.0, &move |x, y| {
            rotated_ellipse(x, y, (0.5 + side * 0.3, 0.68), (0.1, 0.045), side * -0.6)
        });
        c.fill(dark, 1.0, &move |x, y| {
            ellipse(x, y, 0.5 + side * 0.12, 0.9, 0.085, 0.045)
        });
    }
    c.fill(skin, 1.0, &move |x, y| body(shape, x, y));
    c.fill(belly, 1.0, &move |x, y| {
        body(shape, x, y).max(ellipse(x, y, 0.5, 0.8, 0.2, 0.15))
    });
    // Eyes.
    let pairs: &[(f32, f32, f32)] = match eyes {
        0 => &[(0.5, 0.47, 0.1)],
        1 => &[(0.42, 0.49, 0.06), (0.58, 0.49, 0.06)],
        2 => &[(0.39, 0.5, 0.048), (0.5, 0.43, 0.052), (0.61, 0.5, 0.048)],
        _ => &[(0.42, 0.49, 0.065), (0.58, 0.49, 0.065)],
    };
    for &(ex, ey, r) in pairs {
        c.fill(WHITE, 1.0, &move |x, y| circle(x, y, ex, ey, r));
        c.fill(INK, 1.0, &move |x, y| {
            circle(x, y, ex, ey + r * 0.15, r * 0.5)
        });
        c.fill(WHITE, 1.0, &move |x, y| {
            circle(x, y, ex + r * 0.2, ey - r * 0.1, r * 0.16)
        });
        if eyes == 3 {
            // Sleepy lids: the body colour over the upper half.
            c.fill(skin, 1.0, &move |x, y| {
                circle(x, y, ex, ey, r + 0.004).max(y - ey + r * 0.1)
            });
        }
    }
    // Mouth.
    match mouth {
        0 => c.fill(INK, 1.0, &|x, y| {
            (circle(x, y, 0.5, 0.6, 0.09).abs() - 0.012).max(0.62 - y)
        }),
        1 => {
            c.fill(INK, 1.0, &|x, y| ellipse(x, y, 0.5, 0.67, 0.09, 0.055));
            c.fill([0xF2, 0x8C, 0x9A], 1.0, &|x, y| {
                ellipse(x, y, 0.5, 0.67, 0.09, 0.055).max(circle(x, y, 0.5, 0.73, 0.05))
            });
        }
        2 => {
            c.fill(INK, 1.0, &|x, y| {
                capsule(x, y, (0.4, 0.66), (0.6, 0.66), 0.012)
            });
            for fx in [0.44f32, 0.56] {
                c.fill(WHITE, 1.0, &move |x, y| {
                    // A fang: the lower half of a small ellipse below the lip line.
                    ellipse(x, y, fx, 0.665, 0.022, 0.045).max(0.665 - y)
                });
            }
        }
        _ => c.fill(INK, 1.0, &|x, y| circle(x, y, 0.5, 0.67, 0.04)),
    }
    c
}
