//! Whole-image post-processing applied identically to a fake and its real twin, so that global
//! statistics (compression, scale, sharpness) say nothing about which one is edited.

use image::imageops::FilterType;
use image::RgbImage;
use rand::Rng;

use super::raster::Rgbf;
use super::recipes::noise::jpeg_roundtrip;

/// One draw of post-processing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostProcess {
    /// Down-scale factor then back up (1 = none).
    pub resize: f32,
    /// Gaussian blur sigma (0 = none).
    pub blur: f32,
    /// JPEG quality (None = lossless).
    pub jpeg: Option<u8>,
}

impl PostProcess {
    pub const NONE: PostProcess = PostProcess {
        resize: 1.0,
        blur: 0.0,
        jpeg: None,
    };

    /// Resize 0.55..0.95 (30%), blur 0.3..0.8 (25%), JPEG 55..97 (60%).
    pub fn random(rng: &mut impl Rng) -> Self {
        PostProcess {
            resize: if rng.random_bool(0.3) {
                rng.random_range(0.55..0.95)
            } else {
                1.0
            },
            blur: if rng.random_bool(0.25) {
                rng.random_range(0.3..0.8)
            } else {
                0.0
            },
            jpeg: rng.random_bool(0.6).then(|| rng.random_range(55..=97)),
        }
    }

    /// Apply: resize down and up, blur, JPEG — same size out.
    pub fn apply(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        let mut out = img.clone();
        if self.resize < 0.999 {
            let (sw, sh) = (
                ((w as f32) * self.resize).round().max(8.0) as u32,
                ((h as f32) * self.resize).round().max(8.0) as u32,
            );
            let small = image::imageops::resize(&out, sw, sh, FilterType::Triangle);
            out = image::imageops::resize(&small, w, h, FilterType::Triangle);
        }
        if self.blur > 0.05 {
            out = Rgbf::from_rgb(&out).blur(self.blur).to_rgb();
        }
        if let Some(q) = self.jpeg {
            out = jpeg_roundtrip(&out, q);
        }
        out
    }

    /// Short description for the recipe string.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.resize < 0.999 {
            parts.push(format!("resize={:.2}", self.resize));
        }
        if self.blur > 0.05 {
            parts.push(format!("blur={:.2}", self.blur));
        }
        if let Some(q) = self.jpeg {
            parts.push(format!("jpeg={q}"));
        }
        if parts.is_empty() {
            "post=none".into()
        } else {
            format!("post={}", parts.join(","))
        }
    }
}
