//! Mask colours for the chat front ends (the shared [`PALETTE`] of `crate::report::overlay`)
//! and a label-free tint for the TUI's small image pane.

use image::{GrayImage, RgbImage};

pub use crate::report::overlay::PALETTE;

/// The colour of the mask numbered `seg_id` (1-based).
pub fn seg_colour(seg_id: usize) -> [u8; 3] {
    PALETTE[seg_id.saturating_sub(1) % PALETTE.len()]
}

/// Tint every layer's mask (pixels > 127) over the image with `alpha` and draw its outline at
/// full colour, without number labels: the TUI draws at a few dozen pixels a side, where
/// labels would hide the mask (the legend carries the numbers). Masks of another size than
/// the image are sampled nearest-neighbour. Full-size overlays use
/// `crate::report::overlay::draw_overlay`.
pub fn tint_masks(img: &RgbImage, layers: &[(GrayImage, [u8; 3])], alpha: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = img.clone();
    let alpha = alpha.clamp(0.0, 1.0);
    for (mask, colour) in layers {
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
    fn tints_only_inside_the_mask_at_any_scale() {
        let img = RgbImage::from_pixel(20, 20, image::Rgb([0, 0, 0]));
        // A mask at twice the image size: sampled down.
        let mut mask = GrayImage::new(40, 40);
        for y in 10..30 {
            for x in 10..30 {
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
        let out = tint_masks(&img, &[(mask, [200, 100, 0])], 0.5);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(5, 5).0, [200, 100, 0]); // outline
        assert_eq!(out.get_pixel(10, 10).0, [100, 50, 0]); // tinted inside
    }
}
