//! Faces: detection, 468-point mesh, alignment and the facial concept tree (FICT).

pub mod canonical;
pub mod detect;
pub mod fict;
pub mod mesh;
pub mod raster;
pub mod regions;

pub use detect::{detect_faces, DetectOptions, FaceBox};
