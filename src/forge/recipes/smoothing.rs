//! Smoothing / beautify: skin areas blurred (texture removed), optionally brightened and
//! flattened in contrast, blended back through a feathered mask.

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
];
const OPS: &[&str] = &["blur", "beautify"];

pub fn apply(face: &FaceCrop, rng: &mut impl Rng, p: &Params) -> Result<Edit, ForgeError> {
    let targets = choose_targets("smoothing", face, TARGETS, p, rng, 2)?;
    let op = choose_op("smoothing", OPS, p, rng)?;
    let region = region_of(face, &targets);
    let sigma = 1.5 + 3.5 * p.strength;
    let mut alt = Rgbf::from_rgb(&face.image).blur(sigma);
    let (lift, flat) = if op == "beautify" {
        (
            rng.random_range(6.0..18.0) * p.strength,
            rng.random_range(0.7..0.9),
        )
    } else {
        (0.0, 1.0)
    };
    if op == "beautify" {
        for px in alt.data.chunks_mut(3) {
            let m = (px[0] + px[1] + px[2]) / 3.0;
            for v in px.iter_mut() {
                *v = m + (*v - m) * flat + lift;
            }
        }
    }
    let mask = edit_weight(&region, p, 1.0, rng);
    let fake = blend(&face.image, &alt, &mask);
    Ok(Edit {
        fake,
        edit_mask: mask,
        params: format!(
            "smoothing:{op} sigma={sigma:.2} lift={lift:.1} {}",
            p.describe()
        ),
        concepts: targets,
        artifact_kind: ArtifactKind::TextureBlur,
    })
}
