//! Landmark/region-guided warps in the style of FaceApp attribute edits: bigger eyes, slimmer
//! nose, fuller lips, narrower jaw, smile. A displacement field with compact support (the
//! feathered target region) is sampled backwards; the edit mask is where pixels move.

use rand::Rng;

use super::{choose_op, choose_targets, region_of, smooth_support, Params};
use crate::forge::raster::{blend, mask_bbox, mask_centroid, Plane, Rgbf};
use crate::forge::{ArtifactKind, Edit, FaceCrop, ForgeError};

const OPS: &[&str] = &[
    "bigger_eyes",
    "slimmer_nose",
    "fuller_lips",
    "narrower_jaw",
    "smile",
];

pub fn apply(face: &FaceCrop, rng: &mut impl Rng, p: &Params) -> Result<Edit, ForgeError> {
    let op = choose_op("warp", OPS, p, rng)?;
    let candidates: &[&str] = match op {
        "bigger_eyes" => &["left eye", "right eye"],
        "slimmer_nose" => &["nose"],
        "fuller_lips" | "smile" => &["lips"],
        _ => &["left cheek", "right cheek", "chin"],
    };
    let targets = if op == "narrower_jaw" && p.target.is_none() {
        let t: Vec<String> = candidates.iter().map(|s| s.to_string()).collect();
        if t.iter().any(|n| !face.regions.contains_key(n)) {
            return Err(ForgeError::NotApplicable {
                recipe: "warp".into(),
                reason: "no cheek/chin regions".into(),
            });
        }
        t
    } else {
        choose_targets("warp", face, candidates, p, rng, 2)?
    };
    let a = (0.10 + 0.22 * p.strength) * if op == "narrower_jaw" { 0.5 } else { 1.0 };
    let src = Rgbf::from_rgb(&face.image);
    let mut alt = src.clone();
    let mut moved = Plane::new(src.w, src.h);
    let face_cx = (face.face_bbox[0] + face.face_bbox[2]) / 2.0;
    // Each target gets its own field (two eyes = two magnifiers).
    let groups: Vec<Vec<String>> = if op == "narrower_jaw" {
        vec![targets.clone()]
    } else {
        targets.iter().map(|t| vec![t.clone()]).collect()
    };
    for g in groups {
        let region = region_of(face, &g);
        let (Some(c), Some(bb)) = (mask_centroid(&region, 127), mask_bbox(&region, 127)) else {
            continue;
        };
        let sup = smooth_support(&region, if op == "narrower_jaw" { 5.0 } else { 3.0 });
        let half_w = ((bb[2] - bb[0]) / 2.0).max(1.0);
        let height = (bb[3] - bb[1]).max(1.0);
        for y in 0..src.h {
            for x in 0..src.w {
                let w = sup.get(x, y);
                if w <= 0.0 {
                    continue;
                }
                let (fx, fy) = (x as f32, y as f32);
                let (sx, sy) = match op {
                    "bigger_eyes" => (
                        c[0] + (fx - c[0]) * (1.0 - a * w),
                        c[1] + (fy - c[1]) * (1.0 - a * w),
                    ),
                    "slimmer_nose" => (c[0] + (fx - c[0]) * (1.0 + a * w), fy),
                    "fuller_lips" => (
                        c[0] + (fx - c[0]) * (1.0 - 0.3 * a * w),
                        c[1] + (fy - c[1]) * (1.0 - a * w),
                    ),
                    "smile" => {
                        let r = ((fx - c[0]) / half_w).clamp(-1.2, 1.2);
                        (fx, fy + a * 2.0 * height * r * r * w)
                    }
                    _ => (face_cx + (fx - face_cx) * (1.0 + a * w), fy),
                };
                let d = ((sx - fx).powi(2) + (sy - fy).powi(2)).sqrt();
                if d > 0.0 {
                    alt.put(x, y, src.sample(sx, sy));
                    moved.set(x, y, moved.get(x, y).max((d / 2.0).min(1.0)));
                }
            }
        }
    }
    let mask = if p.hard_edge {
        let mut m = moved.clone();
        m.data
            .iter_mut()
            .for_each(|v| *v = if *v >= 0.25 { 1.0 } else { 0.0 });
        m.to_gray()
    } else {
        moved.to_gray()
    };
    let fake = blend(&face.image, &alt, &mask);
    Ok(Edit {
        fake,
        edit_mask: mask,
        params: format!("warp:{op} amount={a:.3} {}", p.describe()),
        concepts: targets,
        artifact_kind: ArtifactKind::GeometricDistortion,
    })
}
