//! Colour and tone edits: lip tint, iris colour, brow darkening/lightening, skin tone and blush.
//! Done in YCbCr: luma kept or scaled, chroma pulled towards a target colour.

use rand::Rng;

use super::{choose_targets, edit_weight, region_of, Params};
use crate::forge::raster::{blend, Rgbf};
use crate::forge::{ArtifactKind, Edit, FaceCrop, ForgeError};

const TARGETS: &[&str] = &[
    "lips",
    "upper lip",
    "lower lip",
    "left iris",
    "right iris",
    "left eyebrow",
    "right eyebrow",
    "left cheek",
    "right cheek",
    "forehead",
    "chin",
];

fn to_ycc(p: [f32; 3]) -> [f32; 3] {
    let y = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    [y, 0.564 * (p[2] - y), 0.713 * (p[0] - y)]
}

fn from_ycc(q: [f32; 3]) -> [f32; 3] {
    let r = q[0] + q[2] / 0.713;
    let b = q[0] + q[1] / 0.564;
    let g = (q[0] - 0.299 * r - 0.114 * b) / 0.587;
    [r, g, b]
}

pub fn apply(face: &FaceCrop, rng: &mut impl Rng, p: &Params) -> Result<Edit, ForgeError> {
    let targets = choose_targets("colour", face, TARGETS, p, rng, 1)?;
    let t = targets[0].as_str();
    let s = p.strength;
    let (op, tint, luma_gain, mix): (&str, [f32; 3], f32, f32) = if t.contains("lip") {
        let tints = [
            ("red", [200.0, 40.0, 60.0]),
            ("pink", [230.0, 120.0, 160.0]),
            ("purple", [120.0, 40.0, 130.0]),
            ("brown", [120.0, 70.0, 50.0]),
        ];
        let (n, c) = tints[rng.random_range(0..tints.len())];
        (n, c, 1.0 + rng.random_range(-0.1..0.1) * s, 0.45 + 0.55 * s)
    } else if t.contains("iris") {
        let tints = [
            ("blue", [60.0, 120.0, 220.0]),
            ("green", [60.0, 170.0, 80.0]),
            ("amber", [200.0, 140.0, 40.0]),
            ("grey", [150.0, 150.0, 160.0]),
        ];
        let (n, c) = tints[rng.random_range(0..tints.len())];
        (n, c, 1.0 + rng.random_range(-0.25..0.25) * s, 0.6 + 0.4 * s)
    } else if t.contains("eyebrow") {
        if rng.random_bool(0.6) {
            ("darker", [40.0, 30.0, 25.0], 1.0 - (0.3 + 0.4 * s), 0.5)
        } else {
            ("lighter", [200.0, 170.0, 120.0], 1.0 + 0.5 + 0.6 * s, 0.5)
        }
    } else {
        let tints = [
            ("blush", [230.0, 90.0, 90.0]),
            ("tan", [180.0, 110.0, 60.0]),
            ("pale", [235.0, 225.0, 215.0]),
            ("sallow", [190.0, 180.0, 90.0]),
        ];
        let (n, c) = tints[rng.random_range(0..tints.len())];
        (
            n,
            c,
            1.0 + rng.random_range(-0.15..0.15) * s,
            0.35 + 0.45 * s,
        )
    };
    let tq = to_ycc(tint);
    let mut alt = Rgbf::from_rgb(&face.image);
    for px in alt.data.chunks_mut(3) {
        let q = to_ycc([px[0], px[1], px[2]]);
        // Chroma of the tint scaled to the pixel's brightness keeps shading natural.
        let k = (q[0] / tq[0].max(1.0)).clamp(0.3, 1.5);
        let nq = [
            q[0] * luma_gain,
            q[1] + (tq[1] * k - q[1]) * mix,
            q[2] + (tq[2] * k - q[2]) * mix,
        ];
        px.copy_from_slice(&from_ycc(nq));
    }
    let region = region_of(face, &targets);
    let mask = edit_weight(&region, p, 1.0, rng);
    let fake = blend(&face.image, &alt, &mask);
    Ok(Edit {
        fake,
        edit_mask: mask,
        params: format!(
            "colour:{op} mix={mix:.2} luma={luma_gain:.2} {}",
            p.describe()
        ),
        concepts: targets,
        artifact_kind: ArtifactKind::ColourMismatch,
    })
}
