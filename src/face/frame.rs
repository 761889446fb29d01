//! Square, possibly rotated crops of an image resampled for a network input (FaceMesh 192²,
//! BlazeFace 256²), and the map from crop pixels back to image pixels.

use image::RgbImage;

/// A square crop of the image, possibly rotated, resampled to `n x n`: crop pixel `(u, v)` in
/// `[0, n]²` maps to `center + R(roll) · ((u, v) / n - 0.5) · size` (image y points down, so a
/// positive roll turns the crop's x axis clockwise on screen).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CropFrame {
    pub center: [f32; 2],
    pub size: f32,
    pub roll: f32,
}

impl CropFrame {
    /// The image point of crop point `(u, v)` of an `n x n` crop.
    pub fn to_image(self, u: f32, v: f32, n: usize) -> [f32; 2] {
        let half = n as f32 / 2.0;
        let s = self.size / n as f32;
        let (lx, ly) = ((u - half) * s, (v - half) * s);
        let (sin, cos) = self.roll.sin_cos();
        [
            self.center[0] + cos * lx - sin * ly,
            self.center[1] + sin * lx + cos * ly,
        ]
    }

    /// Resample the crop as NHWC f32 in `[0, 1]`, bilinear, zero outside the image, with
    /// supersampling when the crop shrinks the face.
    pub fn sample(&self, img: &RgbImage, n: usize) -> Vec<f32> {
        let ss = (self.size / n as f32).ceil().clamp(1.0, 4.0) as usize;
        let mut out = vec![0f32; n * n * 3];
        let norm = 1.0 / (255.0 * (ss * ss) as f32);
        for v in 0..n {
            for u in 0..n {
                let mut acc = [0f32; 3];
                for sy in 0..ss {
                    for sx in 0..ss {
                        let fu = u as f32 + (sx as f32 + 0.5) / ss as f32;
                        let fv = v as f32 + (sy as f32 + 0.5) / ss as f32;
                        let [x, y] = self.to_image(fu, fv, n);
                        let p = bilinear(img, x - 0.5, y - 0.5);
                        for c in 0..3 {
                            acc[c] += p[c];
                        }
                    }
                }
                let o = (v * n + u) * 3;
                for c in 0..3 {
                    out[o + c] = acc[c] * norm;
                }
            }
        }
        out
    }
}

/// Bilinear sample at continuous pixel-index coordinates; zero outside the image.
fn bilinear(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let mut acc = [0f32; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (px, py) = (x0 + dx, y0 + dy);
            let wgt = wx * wy;
            if px < 0 || py < 0 || px >= w || py >= h || wgt == 0.0 {
                continue;
            }
            let p = img.get_pixel(px as u32, py as u32).0;
            for c in 0..3 {
                acc[c] += wgt * p[c] as f32;
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_frame_maps_centre_and_corners() {
        let f = CropFrame {
            center: [100.0, 50.0],
            size: 96.0,
            roll: std::f32::consts::FRAC_PI_2,
        };
        assert_eq!(f.to_image(96.0, 96.0, 192), [100.0, 50.0]);
        // Crop x axis points down the image after a quarter turn clockwise.
        let p = f.to_image(192.0, 96.0, 192);
        assert!(
            (p[0] - 100.0).abs() < 1e-4 && (p[1] - 98.0).abs() < 1e-4,
            "{p:?}"
        );
    }

    #[test]
    fn sample_is_zero_outside_and_the_pixel_inside() {
        let img = RgbImage::from_pixel(8, 8, image::Rgb([255, 0, 51]));
        let f = CropFrame {
            center: [4.0, 4.0],
            size: 16.0,
            roll: 0.0,
        };
        let out = f.sample(&img, 16);
        assert_eq!(out.len(), 16 * 16 * 3);
        assert_eq!(&out[..3], &[0.0, 0.0, 0.0]); // top-left corner is outside
        let mid = (8 * 16 + 8) * 3;
        assert!((out[mid] - 1.0).abs() < 1e-6 && (out[mid + 2] - 0.2).abs() < 1e-6);
    }
}
