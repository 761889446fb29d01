//! The iBUG 68-point markup (300-W) derived from the 468 FaceMesh landmarks, for comparing the
//! mesh with 68-point annotations. Two variants (docs/face-mesh.md):
//!
//! - `Ibug68::Subset`: 68 mesh vertices chosen from landmark semantics and the mesh topology;
//! - `Ibug68::Contour` (the default): the same, except that each eyebrow point is the midpoint of
//!   the brow's upper and lower contour vertices (annotators mark the brow itself, the mesh's
//!   "upper" brow row lies on the skin above it) and the 15 jaw points between the ends and the
//!   chin are spaced evenly along the 2-D silhouette (annotators space jaw points along the
//!   visible outline, whatever the head pose stretches).

/// Which derivation of the 68 points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ibug68 {
    Subset,
    Contour,
}

/// 68 mesh vertices, iBUG order: jaw 0–16 (image left to right on a frontal face), brows 17–26,
/// nose 27–35, eyes 36–47, outer lips 48–59, inner lips 60–67.
pub const MESH_TO_68: [usize; 68] = [
    127, 234, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356, // jaw
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300, // brows (upper contour)
    168, 197, 5, 1, 98, 99, 2, 328, 327, // nose bridge, nostril base
    33, 159, 158, 133, 153, 144, 362, 385, 386, 263, 373, 380, // eyes
    61, 39, 37, 0, 267, 269, 291, 321, 405, 17, 181, 91, // outer lips
    78, 81, 13, 311, 308, 402, 14, 178, // inner lips
];

/// The lower-contour partner of each brow point 17–26 (MediaPipe's eyebrow connections).
const BROW_LOWER: [usize; 10] = [46, 53, 52, 65, 55, 285, 295, 282, 283, 276];

/// The silhouette from jaw point 0 to the chin (152), and from the chin to jaw point 16.
const JAW_LEFT: [usize; 12] = [127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152];
const JAW_RIGHT: [usize; 12] = [152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356];

impl Ibug68 {
    /// The 68 points from 468 mesh points (image pixels). `None` unless there are 468.
    pub fn points(self, mesh: &[[f32; 2]]) -> Option<Vec<[f32; 2]>> {
        if mesh.len() != 468 {
            return None;
        }
        let mut out: Vec<[f32; 2]> = MESH_TO_68.iter().map(|&i| mesh[i]).collect();
        if self == Ibug68::Contour {
            for (k, &j) in BROW_LOWER.iter().enumerate() {
                out[17 + k] = midpoint(out[17 + k], mesh[j]);
            }
            let left = even_along(&JAW_LEFT.map(|i| mesh[i]), 9);
            let right = even_along(&JAW_RIGHT.map(|i| mesh[i]), 9);
            out[..9].copy_from_slice(&left);
            out[8..17].copy_from_slice(&right);
        }
        Some(out)
    }
}

fn midpoint(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// `n ≥ 2` points at equal arc length along a polyline, both ends included.
fn even_along(line: &[[f32; 2]], n: usize) -> Vec<[f32; 2]> {
    let mut cum = vec![0.0f32];
    for w in line.windows(2) {
        cum.push(cum[cum.len() - 1] + dist(w[0], w[1]));
    }
    let total = cum[cum.len() - 1];
    (0..n)
        .map(|k| {
            let t = total * k as f32 / (n - 1) as f32;
            let j = (1..cum.len())
                .find(|&j| cum[j] >= t)
                .unwrap_or(cum.len() - 1);
            let f = ((t - cum[j - 1]) / (cum[j] - cum[j - 1]).max(1e-6)).clamp(0.0, 1.0);
            let (a, b) = (line[j - 1], line[j]);
            [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_spacing_along_a_bent_line() {
        // An L: 10 along x, then 10 along y; 5 points → every 5 units.
        let line = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]];
        let p = even_along(&line, 5);
        let want = [
            [0.0, 0.0],
            [5.0, 0.0],
            [10.0, 0.0],
            [10.0, 5.0],
            [10.0, 10.0],
        ];
        for (a, b) in p.iter().zip(want) {
            assert!(dist(*a, b) < 1e-5, "{p:?}");
        }
    }

    #[test]
    fn contour_variant_keeps_ends_and_chin_and_moves_brows() {
        let mesh: Vec<[f32; 2]> = (0..468).map(|i| [i as f32, (i * 7 % 13) as f32]).collect();
        let subset = Ibug68::Subset.points(&mesh).unwrap();
        let contour = Ibug68::Contour.points(&mesh).unwrap();
        for k in [0, 8, 16] {
            assert_eq!(subset[k], contour[k], "jaw point {k}");
        }
        assert_eq!(contour[17], midpoint(mesh[70], mesh[46]));
        assert_eq!(subset[36..], contour[36..]);
        assert!(Ibug68::Contour.points(&mesh[..10]).is_none());
    }
}
