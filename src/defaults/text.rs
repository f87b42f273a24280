//! Text on the drawings (`d=initials`): glyph outlines from the embedded Noto Sans Bold
//! (font/README.md) rasterized with ab_glyph, so letters are real type at every size.

use std::sync::OnceLock;

use ab_glyph::{Font as _, FontRef, OutlineCurve, Point};
use ab_glyph_rasterizer::{point, Rasterizer};

use super::canvas::Canvas;

const FONT_BYTES: &[u8] = include_bytes!("font/NotoSans-Bold-subset.ttf");

/// Empty pixels around the text in the coverage buffer: the rasterizer can spill a pixel
/// past an outline's bounds, which would otherwise index outside its buffer.
const PAD: f32 = 2.0;

fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// Whether the font has a glyph for every character of `text`.
pub fn covers(text: &str) -> bool {
    font().is_some_and(|f| text.chars().all(|c| f.glyph_id(c).0 != 0))
}

/// Draws `text` centred on the canvas in `color`, with its cap height `cap` of the side
/// (0..1). Returns false (drawing nothing) when the font lacks a glyph.
pub fn draw_centred(canvas: &mut Canvas, text: &str, cap: f32, color: [u8; 3]) -> bool {
    let Some(font) = font() else {
        return false;
    };
    if text.is_empty() || !covers(text) {
        return false;
    }
    let side = canvas.size() as f32;
    // Font units to pixels, so that a capital's height is `cap` of the side.
    let cap_units = font
        .outline(font.glyph_id('H'))
        .map(|o| {
            let ys = o.curves.iter().flat_map(|cv| match *cv {
                OutlineCurve::Line(a, b) => vec![a.y, b.y],
                OutlineCurve::Quad(a, b, c) => vec![a.y, b.y, c.y],
                OutlineCurve::Cubic(a, b, c, d) => vec![a.y, b.y, c.y, d.y],
            });
            ys.fold(0.0f32, f32::max)
        })
        .filter(|&h| h > 1.0)
        .unwrap_or(0.7 * font.units_per_em().unwrap_or(1000.0));
    let k = cap * side / cap_units;
    // Lay the outlines out on a baseline at y = 0 (y down), in pixels.
    let mut curves: Vec<OutlineCurve> = Vec::new();
    let mut pen = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern_unscaled(p, id) * k;
        }
        let map = |p: Point| point(pen + p.x * k, -p.y * k);
        if let Some(o) = font.outline(id) {
            curves.extend(o.curves.into_iter().map(|cv| match cv {
                OutlineCurve::Line(a, b) => OutlineCurve::Line(map(a), map(b)),
                OutlineCurve::Quad(a, b, c) => OutlineCurve::Quad(map(a), map(b), map(c)),
                OutlineCurve::Cubic(a, b, c, d) => {
                    OutlineCurve::Cubic(map(a), map(b), map(c), map(d))
                }
            }));
        }
        pen += font.h_advance_unscaled(id) * k;
        prev = Some(id);
    }
    let points = curves.iter().flat_map(|cv| match *cv {
        OutlineCurve::Line(a, b) => vec![a, b],
        OutlineCurve::Quad(a, b, c) => vec![a, b, c],
        OutlineCurve::Cubic(a, b, c, d) => vec![a, b, c, d],
    });
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in points {
        (x0, y0, x1, y1) = (x0.min(p.x), y0.min(p.y), x1.max(p.x), y1.max(p.y));
    }
    // Nothing to draw, or a layout far larger than the canvas (a broken font).
    if x0 > x1 || y0 > y1 || x1 - x0 > 4.0 * side || y1 - y0 > 4.0 * side {
        return false;
    }
    // Centre the ink horizontally and the capital height vertically (whole pixels), so
    // that "Jo" and "AB" sit at the same height.
    let left = ((side - (x1 - x0)) / 2.0).round() - x0;
    let baseline = ((side + cap * side) / 2.0).round();
    let (ox, oy) = (x0.floor() - PAD, y0.floor() - PAD);
    let w = (x1 - ox + PAD).ceil() as usize + 1;
    let h = (y1 - oy + PAD).ceil() as usize + 1;
    let mut r = Rasterizer::new(w, h);
    let local = |p: Point| point(p.x - ox, p.y - oy);
    for cv in &curves {
        match *cv {
            OutlineCurve::Line(a, b) => r.draw_line(local(a), local(b)),
            OutlineCurve::Quad(a, b, c) => r.draw_quad(local(a), local(b), local(c)),
            OutlineCurve::Cubic(a, b, c, d) => {
                r.draw_cubic(local(a), local(b), local(c), local(d));
            }
        }
    }
    r.for_each_pixel_2d(|x, y, cover| {
        let px = x as f32 + ox + left;
        let py = y as f32 + oy + baseline;
        if cover > 0.0 && px >= 0.0 && py >= 0.0 {
            canvas.blend(px as u32, py as u32, color, cover);
        }
    });
    true
}
