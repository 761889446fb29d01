//! Faces: detection (SeetaFace, BlazeFace fallback), 468-point mesh, alignment and the facial
//! concept tree (FICT).

pub mod blaze;
pub mod canonical;
pub mod detect;
pub mod fict;
pub(crate) mod frame;
pub mod hits;
pub mod ibug68;
pub mod mesh;
pub(crate) mod mesh_net;
pub mod raster;
pub mod regions;

pub use detect::{detect_faces, DetectOptions, FaceBox};

/// 468 landmarks (image pixels, 2-D) for a face box: the FaceMesh port when it finds a usable
/// face, else the canonical face placed in the box (good only for frontal, upright faces).
pub fn face_landmarks(img: &image::RgbImage, bbox: [f32; 4]) -> Option<Vec<[f32; 2]>> {
    static MESH: std::sync::OnceLock<Option<mesh::FaceMesh>> = std::sync::OnceLock::new();
    let model = MESH.get_or_init(|| mesh::FaceMesh::load_default().ok());
    if let Some(m) = model {
        if let Ok(r) = m.landmarks(img, &FaceBox { bbox, score: 1.0 }) {
            if r.is_usable() {
                return Some(r.points_2d());
            }
        }
    }
    Some(canonical::landmarks_from_box(bbox))
}
