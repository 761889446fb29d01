//! A stand-in region provider: concept masks placed by fixed proportions of the face box
//! (ellipses for brows, eyes, irises, nose, lips, cheeks, forehead, chin, face). It keeps the
//! forge usable and testable before the FaceMesh + FICT provider is wired in; it is only as
//! good as a frontal, upright face. Left/right are the subject's (image-right = subject-left).

use std::collections::BTreeMap;

use image::{GrayImage, RgbImage};

use super::raster::ellipse;

/// Concept names this layout produces (a subset of FICT's names).
pub const LAYOUT_CONCEPTS: &[&str] = &[
    "left eyebrow",
    "right eyebrow",
    "left eye",
    "right eye",
    "left iris",
    "right iris",
    "nose",
    "upper lip",
    "lower lip",
    "lips",
    "left cheek",
    "right cheek",
    "forehead",
    "chin",
    "face",
];

/// `(name, cx, cy, rx, ry, angle)` in fractions of the face box (x from its left edge).
const SHAPES: &[(&str, f32, f32, f32, f32, f32)] = &[
    ("left eyebrow", 0.69, 0.27, 0.13, 0.035, 0.10),
    ("right eyebrow", 0.31, 0.27, 0.13, 0.035, -0.10),
    ("left eye", 0.69, 0.38, 0.10, 0.045, 0.0),
    ("right eye", 0.31, 0.38, 0.10, 0.045, 0.0),
    ("left iris", 0.69, 0.38, 0.04, 0.04, 0.0),
    ("right iris", 0.31, 0.38, 0.04, 0.04, 0.0),
    ("nose", 0.50, 0.56, 0.09, 0.14, 0.0),
    ("upper lip", 0.50, 0.785, 0.16, 0.035, 0.0),
    ("lower lip", 0.50, 0.84, 0.15, 0.04, 0.0),
    ("left cheek", 0.76, 0.62, 0.11, 0.12, 0.0),
    ("right cheek", 0.24, 0.62, 0.11, 0.12, 0.0),
    ("forehead", 0.50, 0.10, 0.30, 0.10, 0.0),
    ("chin", 0.50, 0.98, 0.14, 0.06, 0.0),
    ("face", 0.50, 0.55, 0.50, 0.60, 0.0),
];

/// Landmarks (5 points: subject-left eye, right eye, nose tip, left and right mouth corner)
/// and concept masks for a crop, from its face box.
pub fn regions_from_box(
    img: &RgbImage,
    bbox: [f32; 4],
) -> (Vec<[f32; 2]>, BTreeMap<String, GrayImage>) {
    let (w, h) = img.dimensions();
    let (bx, by) = (bbox[0], bbox[1]);
    let (bw, bh) = ((bbox[2] - bbox[0]).max(1.0), (bbox[3] - bbox[1]).max(1.0));
    let at = |fx: f32, fy: f32| [bx + fx * bw, by + fy * bh];
    let mut masks = BTreeMap::new();
    for &(name, cx, cy, rx, ry, a) in SHAPES {
        let [x, y] = at(cx, cy);
        masks.insert(name.to_string(), ellipse(w, h, x, y, rx * bw, ry * bh, a));
    }
    let lips = super::raster::mask_union(&masks["upper lip"], &masks["lower lip"]);
    masks.insert("lips".to_string(), lips);
    let landmarks = vec![
        at(0.69, 0.38),
        at(0.31, 0.38),
        at(0.5, 0.64),
        at(0.66, 0.81),
        at(0.34, 0.81),
    ];
    (landmarks, masks)
}

/// The real provider: FaceMesh landmarks (`crate::face::face_landmarks`) rasterised through the
/// FICT, keeping the concepts the recipes target (`LAYOUT_CONCEPTS`, all FICT names). The five
/// points are the mesh's eye centres, nose tip and mouth corners.
pub fn regions_from_mesh(
    img: &RgbImage,
    bbox: [f32; 4],
) -> (Vec<[f32; 2]>, BTreeMap<String, GrayImage>) {
    let Some(lm) = crate::face::face_landmarks(img, bbox) else {
        return regions_from_box(img, bbox);
    };
    let (w, h) = img.dimensions();
    let all = crate::face::fict::Fict::builtin().rasterize(&lm, w, h);
    let mut masks = BTreeMap::new();
    for &name in LAYOUT_CONCEPTS {
        match all.masks.get(name) {
            Some(m) if m.pixels().any(|p| p.0[0] > 127) => {
                masks.insert(name.to_string(), m.clone());
            }
            _ => return regions_from_box(img, bbox),
        }
    }
    let mid = |a: usize, b: usize| [(lm[a][0] + lm[b][0]) / 2.0, (lm[a][1] + lm[b][1]) / 2.0];
    // MediaPipe indices: subject-left eye corners 263/362, right 33/133, nose tip 1, mouth corners 291/61.
    let landmarks = vec![mid(263, 362), mid(33, 133), lm[1], lm[291], lm[61]];
    (landmarks, masks)
}
