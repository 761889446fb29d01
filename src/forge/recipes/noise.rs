//! Local noise and resampling traces: added Gaussian noise, down/up-sampling (blocky or
//! soft), or a JPEG grid that does not line up with the rest of the image.

use image::RgbImage;
use rand::Rng;

use super::{choose_op, choose_targets, edit_weight, region_of, Params};
use crate::forge::raster::{blend, Rgbf};
use crate::forge::{ArtifactKind, Edit, FaceCrop, ForgeError};

const TARGETS: &[&str] = &[
    "left cheek",
    "right cheek",
    "forehead",
    "nose",
    "chin",
    "lips",
    "left eye",
    "right eye",
];
const OPS: &[&str] = &["gaussian", "resample", "jpeg_grid"];

/// Round-trip through JPEG at `quality`.
pub fn jpeg_roundtrip(img: &RgbImage, quality: u8) -> RgbImage {
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    if img.write_with_encoder(enc).is_err() {
        return img.clone();
    }
    image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
        .map(|i| i.to_rgb8())
        .unwrap_or_else(|_| img.clone())
}

pub fn apply(face: &FaceCrop, rng: &mut impl Rng, p: &Params) -> Result<Edit, ForgeError> {
    let targets = choose_targets("noise", face, TARGETS, p, rng, 2)?;
    let op = choose_op("noise", OPS, p, rng)?;
    let s = p.strength;
    let img = &face.image;
    let (w, h) = img.dimensions();
    let (alt, detail) = match op {
        "gaussian" => {
            let sigma = 6.0 + 14.0 * s;
            let chroma = rng.random_bool(0.4);
            let mut a = Rgbf::from_rgb(img);
            for px in a.data.chunks_mut(3) {
                // Box-Muller from two uniforms.
                let n = |rng: &mut dyn rand::RngCore| {
                    let u1: f32 = rand::Rng::random_range(rng, 1e-6..1.0);
                    let u2: f32 = rand::Rng::random_range(rng, 0.0..1.0);
                    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos() * sigma
                };
                let l = n(rng);
                for v in px.iter_mut() {
                    *v += l + if chroma { n(rng) * 0.5 } else { 0.0 };
                }
            }
            (a, format!("sigma={sigma:.1} chroma={chroma}"))
        }
        "resample" => {
            let f = 3.0 + 3.0 * s;
            let (sw, sh) = (
                (w as f32 / f).round().max(1.0) as u32,
                (h as f32 / f).round().max(1.0) as u32,
            );
            let small = image::imageops::resize(img, sw, sh, image::imageops::FilterType::Triangle);
            let nearest = rng.random_bool(0.7);
            let filt = if nearest {
                image::imageops::FilterType::Nearest
            } else {
                image::imageops::FilterType::Triangle
            };
            (
                Rgbf::from_rgb(&image::imageops::resize(&small, w, h, filt)),
                format!("factor={f:.2} nearest={nearest}"),
            )
        }
        _ => {
            let q = (20.0 - 15.0 * s).round() as u8;
            let (dx, dy) = (rng.random_range(1..8u32), rng.random_range(1..8u32));
            // Shift so the 8x8 grid lands off the image's own grid, compress, shift back.
            let shifted = RgbImage::from_fn(w, h, |x, y| {
                *img.get_pixel((x + w - dx) % w, (y + h - dy) % h)
            });
            let j = jpeg_roundtrip(&shifted, q);
            let back = RgbImage::from_fn(w, h, |x, y| *j.get_pixel((x + dx) % w, (y + dy) % h));
            (
                Rgbf::from_rgb(&back),
                format!("quality={q} grid_shift=({dx},{dy})"),
            )
        }
    };
    let region = region_of(face, &targets);
    let mask = edit_weight(&region, p, 1.0, rng);
    let fake = blend(img, &alt, &mask);
    Ok(Edit {
        fake,
        edit_mask: mask,
        params: format!("noise:{op} {detail} {}", p.describe()),
        concepts: targets,
        artifact_kind: ArtifactKind::NoiseInconsistency,
    })
}
