//! Faces: detection, 468-point mesh, alignment and the facial concept tree (FICT).

pub mod canonical;
pub mod detect;
pub mod fict;
pub mod mesh;
pub mod raster;
pub mod regions;

pub use detect::{detect_faces, DetectOptions, FaceBox};

/// 468 FaceMesh landmarks (image pixels, 2-D) for a face box, when a landmark model is available.
/// Until the FaceMesh port is wired in, the canonical face placed in the box (frontal faces only).
pub fn face_landmarks(img: &image::RgbImage, bbox: [f32; 4]) -> Option<Vec<[f32; 2]>> {
    let _ = img;
    Some(canonical::landmarks_from_box(bbox))
}
