//! Mask colours and overlay drawing for the chat front ends.
//!
//! TEMPORARY: `crate::report::overlay::{PALETTE, draw_overlay}` is being written by the FICT
//! helper with the same names and signatures; once it lands, this file re-exports it instead.

use image::{GrayImage, RgbImage};

/// Twelve distinct mask colours (Okabe–Ito-like, colour-blind aware). TEMPORARY copy.
pub const PALETTE: [[u8; 3]; 12] = [
    [230, 159, 0],
    [86, 180, 233],
    [0, 158, 115],
    [240, 228, 66],
    [0, 114, 178],
    [213, 94, 0],
    [204, 121, 167],
    [255, 255, 255],
    [170, 68, 153],
    [68, 170, 153],
    [221, 204, 119],
    [136, 34, 85],
];

/// The colour of the mask numbered `seg_id` (1-based).
pub fn seg_colour(seg_id: usize) -> [u8; 3] {
    PALETTE[seg_id.saturating_sub(1) % PALETTE.len()]
}

/// Tint every layer's mask (pixels > 127) over the image with `alpha`, and draw its outline at
/// full colour. Masks of another size than the image are sampled nearest-neighbour.
/// TEMPORARY stand-in for `crate::report::overlay::draw_overlay` (same signature; no labels).
pub fn draw_overlay(
    img: &RgbImage,
    layers: &[(GrayImage, [u8; 3], String)],
    alpha: f32,
) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = img.clone();
    let alpha = alpha.clamp(0.0, 1.0);
    for (mask, colour, _label) in layers {
        let (mw, mh) = mask.dimensions();
        if mw == 0 || mh == 0 {
            continue;
        }
        let on = |x: i64, y: i64| -> bool {
            if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                return false;
            }
            let mx = (x as u64 * mw as u64 / w as u64) as u32;
            let my = (y as u64 * mh as u64 / h as u64) as u32;
            mask.get_pixel(mx, my).0[0] > 127
        };
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                if !on(x, y) {
                    continue;
                }
                let edge = !on(x - 1, y) || !on(x + 1, y) || !on(x, y - 1) || !on(x, y + 1);
                let p = out.get_pixel_mut(x as u32, y as u32);
                let a = if edge { 1.0 } else { alpha };
                for (v, c) in p.0.iter_mut().zip(colour) {
                    *v = (*v as f32 * (1.0 - a) + *c as f32 * a).round() as u8;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tints_only_inside_the_mask() {
        let img = RgbImage::from_pixel(20, 20, image::Rgb([0, 0, 0]));
        let mut mask = GrayImage::new(20, 20);
        for y in 5..15 {
            for x in 5..15 {
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
        let out = draw_overlay(&img, &[(mask, [200, 100, 0], "x".into())], 0.5);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(5, 5).0, [200, 100, 0]); // outline
        assert_eq!(out.get_pixel(10, 10).0, [100, 50, 0]); // tinted inside
    }
}
