//! Self-blending (SBI-style): a colour- and/or frequency-altered, slightly shifted copy of the
//! same face is blended back through a region hull with soft or hard edges.

use rand::Rng;

use super::{choose_op, choose_targets, edit_weight, region_of, Params};
use crate::forge::raster::{blend, mask_centroid, Rgbf};
use crate::forge::{ArtifactKind, Edit, FaceCrop, ForgeError};

const TARGETS: &[&str] = &[
    "left eye",
    "right eye",
    "left eyebrow",
    "right eyebrow",
    "nose",
    "lips",
    "left cheek",
    "right cheek",
    "forehead",
    "chin",
];
const OPS: &[&str] = &["colour", "frequency", "both"];

pub fn apply(face: &FaceCrop, rng: &mut impl Rng, p: &Params) -> Result<Edit, ForgeError> {
    let targets = choose_targets("self_blend", face, TARGETS, p, rng, 2)?;
    let op = choose_op("self_blend", OPS, p, rng)?;
    let region = region_of(face, &targets);
    let s = p.strength;
    let src = Rgbf::from_rgb(&face.image);
    let (colour, freq) = (op != "frequency", op != "colour");
    // Frequency change: blur or unsharp-mask.
    let sharpen = rng.random_bool(0.4);
    let sigma = 0.8 + 1.7 * s;
    let base = if freq {
        let b = src.blur(sigma);
        if sharpen {
            let k = 0.8 + 1.2 * s;
            let mut o = src.clone();
            for (v, bv) in o.data.iter_mut().zip(&b.data) {
                *v += k * (*v - bv);
            }
            o
        } else {
            b
        }
    } else {
        src.clone()
    };
    // Colour change: per-channel gain and offset, at least a visible amount.
    let sign = |r: &mut dyn FnMut() -> bool| if r() { 1.0 } else { -1.0 };
    let mut gain = [1.0f32; 3];
    let mut off = [0.0f32; 3];
    if colour {
        let g = sign(&mut || rng.random_bool(0.5)) * (0.08 + 0.17 * s);
        for c in 0..3 {
            gain[c] = 1.0 + g + rng.random_range(-0.06..0.06) * s;
            off[c] = rng.random_range(-18.0..18.0) * s;
        }
    }
    // Small misalignment around the region centre.
    let c = mask_centroid(&region, 127).unwrap_or([128.0, 128.0]);
    let (dx, dy) = (
        rng.random_range(-2.0..2.0) * s,
        rng.random_range(-2.0..2.0) * s,
    );
    let scale = 1.0 + rng.random_range(-0.03..0.03) * s;
    let mut alt = src.clone();
    for y in 0..src.h {
        for x in 0..src.w {
            let sx = c[0] + (x as f32 - c[0]) / scale + dx;
            let sy = c[1] + (y as f32 - c[1]) / scale + dy;
            let v = base.sample(sx, sy);
            alt.put(x, y, [0, 1, 2].map(|k| v[k] * gain[k] + off[k]));
        }
    }
    let opacity = 0.75 + 0.25 * s;
    let mask = edit_weight(&region, p, opacity, rng);
    let fake = blend(&face.image, &alt, &mask);
    Ok(Edit {
        fake,
        edit_mask: mask,
        params: format!(
            "self_blend:{op} {} blur={:.2}{} shift=({dx:.1},{dy:.1}) scale={scale:.3}",
            p.describe(),
            if freq { sigma } else { 0.0 },
            if freq && sharpen { " sharpen" } else { "" },
        ),
        concepts: targets,
        artifact_kind: if colour {
            ArtifactKind::ColourMismatch
        } else {
            ArtifactKind::BlendingSeam
        },
    })
}
