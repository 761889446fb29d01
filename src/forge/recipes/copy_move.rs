//! Copy-move within the face: a part is overwritten by a copy of its counterpart (mirrored or
//! not: the right eye pasted over the left) or by skin from elsewhere on the same face.

use rand::Rng;

use super::{choose_targets, edit_weight, region_of, Params};
use crate::forge::raster::{blend, mask_centroid, Rgbf};
use crate::forge::{ArtifactKind, Edit, FaceCrop, ForgeError};

const TARGETS: &[&str] = &[
    "left eye",
    "right eye",
    "left eyebrow",
    "right eyebrow",
    "left cheek",
    "right cheek",
    "forehead",
    "chin",
    "nose",
];

fn counterpart(t: &str) -> Option<String> {
    if let Some(r) = t.strip_prefix("left ") {
        Some(format!("right {r}"))
    } else {
        t.strip_prefix("right ").map(|r| format!("left {r}"))
    }
}

pub fn apply(face: &FaceCrop, rng: &mut impl Rng, p: &Params) -> Result<Edit, ForgeError> {
    let targets = choose_targets("copy_move", face, TARGETS, p, rng, 1)?;
    let t = &targets[0];
    let source = match counterpart(t) {
        Some(c) if face.regions.contains_key(&c) => c,
        _ => {
            // Skin from another region.
            let skins: Vec<&str> = ["left cheek", "right cheek", "forehead", "chin"]
                .into_iter()
                .filter(|s| s != t && face.regions.contains_key(*s))
                .collect();
            if skins.is_empty() {
                return Err(ForgeError::NotApplicable {
                    recipe: "copy_move".into(),
                    reason: "no source region".into(),
                });
            }
            skins[rng.random_range(0..skins.len())].to_string()
        }
    };
    let region = region_of(face, &targets);
    let src_region = region_of(face, std::slice::from_ref(&source));
    let (Some(tc), Some(sc)) = (mask_centroid(&region, 127), mask_centroid(&src_region, 127))
    else {
        return Err(ForgeError::NotApplicable {
            recipe: "copy_move".into(),
            reason: "empty region".into(),
        });
    };
    let mirror = counterpart(t).is_some() && rng.random_bool(0.5);
    let (jx, jy) = (
        rng.random_range(-2.0..2.0) * p.strength,
        rng.random_range(-2.0..2.0) * p.strength,
    );
    let img = Rgbf::from_rgb(&face.image);
    let mut alt = img.clone();
    for y in 0..img.h {
        for x in 0..img.w {
            let (fx, fy) = (x as f32 + 0.5 - tc[0], y as f32 + 0.5 - tc[1]);
            let sx = sc[0] + if mirror { -fx } else { fx } + jx - 0.5;
            let sy = sc[1] + fy + jy - 0.5;
            alt.put(x, y, img.sample(sx, sy));
        }
    }
    let mask = edit_weight(&region, p, 1.0, rng);
    let fake = blend(&face.image, &alt, &mask);
    Ok(Edit {
        fake,
        edit_mask: mask,
        params: format!(
            "copy_move:from_{} mirror={mirror} {}",
            source.replace(' ', "_"),
            p.describe()
        ),
        concepts: targets,
        artifact_kind: ArtifactKind::BlendingSeam,
    })
}
