//! The drawn defaults: the moocard cow (served when a profile has no avatar) and the
//! `mp` mystery person. Both are full-bleed opaque squares, because avatars are usually
//! shown cropped to a circle and transparent corners would show the page through.

use super::canvas::{circle, ellipse, rotated_ellipse, round_rect, Canvas};

const MINT: [u8; 3] = [0xC9, 0xEB, 0xDD];
const MEADOW: [u8; 3] = [0xA8, 0xDC, 0xC4];
const WHITE: [u8; 3] = [0xFF, 0xFD, 0xF8];
const INK: [u8; 3] = [0x2E, 0x2A, 0x33];
const PINK: [u8; 3] = [0xF7, 0xB9, 0xC3];
const PINK_DARK: [u8; 3] = [0xD9, 0x7F, 0x93];
const HORN: [u8; 3] = [0xF3, 0xDF, 0xB4];
const BLUSH: [u8; 3] = [0xFF, 0x9E, 0xB1];

/// The head outline: a broad skull over a wide muzzle, as one shape so patches clip to it.
fn head(x: f32, y: f32) -> f32 {
    let skull = ellipse(x, y, 0.5, 0.45, 0.245, 0.235);
    let jaw = ellipse(x, y, 0.5, 0.66, 0.215, 0.155);
    skull.min(jaw)
}

/// The moocard default: a friendly cow face on a mint card.
pub fn moocard(size: u32) -> Canvas {
    let mut c = Canvas::new(size, MINT);
    // A low hill behind the cow gives the card depth without competing with the face.
    c.fill(MEADOW, 1.0, &|x, y| circle(x, y, 0.5, 1.55, 0.78));
    // Horns, then ears behind the head.
    for side in [-1.0f32, 1.0] {
        let hx = 0.5 + side * 0.15;
        c.fill(HORN, 1.0, &move |x, y| {
            rotated_ellipse(x, y, (hx, 0.215), (0.035, 0.07), side * 0.35)
        });
        let ex = 0.5 + side * 0.265;
        c.fill(WHITE, 1.0, &move |x, y| {
            rotated_ellipse(x, y, (ex, 0.34), (0.115, 0.055), side * 0.45)
        });
        c.fill(PINK, 1.0, &move |x, y| {
            rotated_ellipse(x, y, (ex + side * 0.012, 0.345), (0.075, 0.03), side * 0.45)
        });
        c.fill(INK, 1.0, &move |x, y| {
            rotated_ellipse(x, y, (ex, 0.34), (0.115, 0.055), side * 0.45)
                .max(-(x - (0.5 + side * 0.31)) * side)
        });
    }
    // The head, with two black patches clipped to its outline.
    c.fill(WHITE, 1.0, &head);
    c.fill(INK, 1.0, &|x, y| {
        head(x, y).max(ellipse(x, y, 0.355, 0.33, 0.13, 0.115).min(circle(x, y, 0.29, 0.45, 0.06)))
    });
    c.fill(INK, 1.0, &|x, y| {
        head(x, y).max(circle(x, y, 0.7, 0.465, 0.07))
    });
    c.fill(INK, 1.0, &|x, y| {
        head(x, y).max(circle(x, y, 0.6, 0.245, 0.05))
    });
    // Eyes with a catch-light, and a soft blush.
    for side in [-1.0f32, 1.0] {
        let ex = 0.5 + side * 0.1;
        // Outline the eye inside the dark patch so it stays readable.
        if side < 0.0 {
            c.fill(WHITE, 1.0, &move |x, y| circle(x, y, ex, 0.46, 0.045));
        }
        c.fill(INK, 1.0, &move |x, y| circle(x, y, ex, 0.465, 0.031));
        c.fill(WHITE, 1.0, &move |x, y| {
            circle(x, y, ex + 0.011, 0.452, 0.01)
        });
        let bx = 0.5 + side * 0.185;
        c.fill(BLUSH, 0.45, &move |x, y| {
            ellipse(x, y, bx, 0.575, 0.04, 0.022)
        });
    }
    // Muzzle with nostrils and a small smile.
    c.fill(PINK, 1.0, &|x, y| ellipse(x, y, 0.5, 0.67, 0.185, 0.115));
    for side in [-1.0f32, 1.0] {
        let nx = 0.5 + side * 0.07;
        c.fill(PINK_DARK, 1.0, &move |x, y| {
            rotated_ellipse(x, y, (nx, 0.645), (0.028, 0.018), side * 0.5)
        });
    }
    c.fill(PINK_DARK, 1.0, &|x, y| {
        // A thin arc: a ring segment below the nostrils.
        let ring = (circle(x, y, 0.5, 0.665, 0.07)).abs() - 0.007;
        ring.max(0.7 - y)
    });
    // A little fringe tuft between the horns.
    c.fill(WHITE, 1.0, &|x, y| {
        circle(x, y, 0.47, 0.235, 0.045).min(circle(x, y, 0.53, 0.23, 0.04))
    });
    c
}

/// The mystery person (`d=mp`): a plain head-and-shoulders silhouette.
pub fn mystery_person(size: u32) -> Canvas {
    let mut c = Canvas::new(size, [0xC5, 0xCD, 0xD6]);
    let fg = [0xF2, 0xF4, 0xF7];
    c.fill(fg, 1.0, &|x, y| circle(x, y, 0.5, 0.39, 0.175));
    c.fill(fg, 1.0, &|x, y| {
        round_rect(x, y, (0.5, 0.93), (0.33, 0.3), 0.26)
    });
    c
}
