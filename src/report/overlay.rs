//! Mask overlays shared by `dfa regions`, `dfa explain` (overlay.png), forge contact sheets and
//! the TUI: tinted masks with solid outlines and numbered labels, a legend strip, and 8×8
//! bitmap text (the `font8x8` glyphs, scaled by whole pixels).

use font8x8::UnicodeFonts;
use image::{GrayImage, Rgb, RgbImage};

use crate::face::raster;

/// Twelve distinct colours that stay apart for the common colour-vision deficiencies: the
/// Okabe–Ito palette (without black) followed by Paul Tol's indigo, wine, olive and brown.
/// Layer `i` uses `PALETTE[i % 12]`.
pub const PALETTE: [[u8; 3]; 12] = [
    [230, 159, 0],   // orange
    [86, 180, 233],  // sky blue
    [0, 158, 115],   // bluish green
    [240, 228, 66],  // yellow
    [0, 114, 178],   // blue
    [213, 94, 0],    // vermilion
    [204, 121, 167], // reddish purple
    [51, 34, 136],   // indigo
    [136, 34, 85],   // wine
    [153, 153, 51],  // olive
    [102, 17, 0],    // brown
    [68, 170, 153],  // teal
];

/// Pixel height of one line of text at `scale`.
pub fn text_height(scale: u32) -> u32 {
    8 * scale.max(1)
}

/// Pixel width of `text` at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * 8 * scale.max(1)
}

/// Draw `text` with its top-left corner at `(x, y)`; characters without a glyph draw as '?';
/// what falls outside the image is clipped.
pub fn draw_text(img: &mut RgbImage, x: i32, y: i32, text: &str, colour: [u8; 3], scale: u32) {
    let s = scale.max(1) as i32;
    let (w, h) = (img.width() as i32, img.height() as i32);
    for (k, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS
            .get(ch)
            .or_else(|| font8x8::BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        let ox = x + k as i32 * 8 * s;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) == 0 {
                    continue;
                }
                for dy in 0..s {
                    for dx in 0..s {
                        let px = ox + col * s + dx;
                        let py = y + row as i32 * s + dy;
                        if px >= 0 && py >= 0 && px < w && py < h {
                            img.put_pixel(px as u32, py as u32, Rgb(colour));
                        }
                    }
                }
            }
        }
    }
}

fn fill_rect(img: &mut RgbImage, x: i32, y: i32, w: u32, h: u32, colour: [u8; 3]) {
    for py in y.max(0)..(y + h as i32).min(img.height() as i32) {
        for px in x.max(0)..(x + w as i32).min(img.width() as i32) {
            img.put_pixel(px as u32, py as u32, Rgb(colour));
        }
    }
}

/// Black or white, whichever reads better on `bg`.
fn ink_for(bg: [u8; 3]) -> [u8; 3] {
    let luma = 0.299 * bg[0] as f32 + 0.587 * bg[1] as f32 + 0.114 * bg[2] as f32;
    if luma > 140.0 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

/// Label scale that suits an image of this size.
fn label_scale(img: &RgbImage) -> u32 {
    (img.width().min(img.height()) / 400).clamp(1, 4)
}

/// Tint each layer's mask with its colour (`alpha` in 0..=1), outline it in the solid colour
/// and put its number (1-based position in `layers`) at the point deepest inside the mask.
/// Layers are drawn in order, so later ones cover earlier ones. Masks of another size than
/// the image are skipped. The result has the size of `img`; see [`draw_legend`] for the key.
pub fn draw_overlay(
    img: &RgbImage,
    layers: &[(GrayImage, [u8; 3], String)],
    alpha: f32,
) -> RgbImage {
    let a = alpha.clamp(0.0, 1.0);
    let mut out = img.clone();
    let thickness = (img.width().min(img.height()) as f32 / 300.0).max(1.0);
    let mut labels = Vec::new();
    for (k, (mask, colour, _)) in layers.iter().enumerate() {
        if mask.dimensions() != img.dimensions() {
            continue;
        }
        for (o, m) in out.pixels_mut().zip(mask.iter()) {
            if *m > 0 {
                for c in 0..3 {
                    o[c] = ((1.0 - a) * o[c] as f32 + a * colour[c] as f32).round() as u8;
                }
            }
        }
        // Outline and label spot are computed on the mask's box only (fast on big images).
        let Some(b) = raster::bbox(mask) else {
            continue;
        };
        let m = thickness.ceil() as u32 + 2;
        let (x0, y0) = (b[0].saturating_sub(m), b[1].saturating_sub(m));
        let (x1, y1) = ((b[2] + m).min(img.width()), (b[3] + m).min(img.height()));
        let sub = image::imageops::crop_imm(mask, x0, y0, x1 - x0, y1 - y0).to_image();
        let edge = raster::outline(&sub, thickness);
        for (x, y, e) in edge.enumerate_pixels() {
            if e[0] > 0 {
                out.put_pixel(x0 + x, y0 + y, Rgb(*colour));
            }
        }
        if let Some((px, py, depth)) = raster::pole_of_inaccessibility(&sub) {
            labels.push((k + 1, (x0 + px, y0 + py, depth), *colour));
        }
    }
    // A label goes where its mask is deepest; labels of regions too thin to show one, or that
    // would cover an earlier label, are left out (the legend still lists every layer).
    let s = label_scale(img);
    let mut placed: Vec<[i32; 4]> = Vec::new();
    for (n, (x, y, depth), colour) in labels {
        let text = n.to_string();
        let (tw, th) = (text_width(&text, s), text_height(s));
        let (x0, y0) = (x as i32 - tw as i32 / 2 - 1, y as i32 - th as i32 / 2 - 1);
        let rect = [x0, y0, x0 + tw as i32 + 2, y0 + th as i32 + 2];
        let clash = placed
            .iter()
            .any(|r| rect[0] < r[2] && r[0] < rect[2] && rect[1] < r[3] && r[1] < rect[3]);
        if depth < th as f32 / 3.0 || clash {
            continue;
        }
        placed.push(rect);
        fill_rect(&mut out, x0, y0, tw + 2, th + 2, colour);
        draw_text(&mut out, x0 + 1, y0 + 1, &text, ink_for(colour), s);
    }
    out
}

/// A legend strip `width` pixels wide: one entry per layer (swatch, number, name), in as many
/// columns as fit.
pub fn draw_legend(width: u32, layers: &[(GrayImage, [u8; 3], String)], scale: u32) -> RgbImage {
    let s = scale.max(1);
    let line = text_height(s) + 4 * s;
    let entry_w = layers
        .iter()
        .enumerate()
        .map(|(k, (_, _, name))| text_width(&format!("{} {}", k + 1, name), s) + line + 6 * s)
        .max()
        .unwrap_or(1);
    let cols = (width / entry_w.max(1)).max(1) as usize;
    let rows = layers.len().div_ceil(cols);
    let height = (rows as u32 * line + 4 * s).max(1);
    let mut strip = RgbImage::from_pixel(width.max(1), height, Rgb([24, 24, 24]));
    for (k, (_, colour, name)) in layers.iter().enumerate() {
        let (r, c) = (k / cols, k % cols);
        let x = (c as u32 * entry_w + 2 * s) as i32;
        let y = (r as u32 * line + 4 * s) as i32;
        let sw = text_height(s);
        fill_rect(&mut strip, x, y, sw, sw, *colour);
        let label = format!("{} {}", k + 1, name);
        draw_text(
            &mut strip,
            x + (sw + 3 * s) as i32,
            y,
            &label,
            [235, 235, 235],
            s,
        );
    }
    strip
}

/// [`draw_overlay`] with the [`draw_legend`] strip below it.
pub fn overlay_with_legend(
    img: &RgbImage,
    layers: &[(GrayImage, [u8; 3], String)],
    alpha: f32,
) -> RgbImage {
    let top = draw_overlay(img, layers, alpha);
    let legend = draw_legend(img.width(), layers, label_scale(img));
    let mut out = RgbImage::new(img.width(), img.height() + legend.height());
    image::imageops::replace(&mut out, &top, 0, 0);
    image::imageops::replace(&mut out, &legend, 0, img.height() as i64);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_colours_are_distinct() {
        for (i, a) in PALETTE.iter().enumerate() {
            for (j, b) in PALETTE.iter().enumerate().skip(i + 1) {
                let d: i32 = (0..3).map(|c| (a[c] as i32 - b[c] as i32).pow(2)).sum();
                assert!(d > 40 * 40, "colours {i} and {j} are too close");
            }
        }
    }

    #[test]
    fn text_draws_glyph_pixels_only_in_its_cell() {
        let mut img = RgbImage::new(40, 20);
        draw_text(&mut img, 2, 3, "A", [255, 0, 0], 2);
        let lit: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p[0] == 255)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert!(!lit.is_empty());
        assert!(lit
            .iter()
            .all(|&(x, y)| (2..18).contains(&x) && (3..19).contains(&y)));
        // Off-image text is clipped, not a panic.
        draw_text(&mut img, -100, -100, "clipped", [1, 2, 3], 3);
        draw_text(&mut img, 35, 15, "é", [1, 2, 3], 1);
    }
}
