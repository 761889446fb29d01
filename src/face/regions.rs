//! Facial regions of every face in a photo: detection → landmarks → FICT masks, boxes, areas.
//!
//! Landmarks come from [`face_landmarks`], the one place that chooses the landmark source.
//! Until the FaceMesh port is wired in, it places the canonical face into the detection box
//! ([`crate::face::canonical::landmarks_from_box`]): right for frontal, upright faces only.

use std::collections::BTreeMap;

use image::RgbImage;
use serde::Serialize;

use super::canonical;
use super::detect::{detect_faces, DetectOptions, FaceBox};
use super::fict::{Concept, Fict, RegionMasks, UnknownConcept};
use super::raster;

/// Where a face's landmarks came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LandmarkSource {
    /// The 468-point FaceMesh network.
    Mesh,
    /// The canonical frontal face placed into the detection box (no pose, no expression).
    CanonicalFallback,
}

/// One concept's measurements on one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionStats {
    /// Pixels in the mask.
    pub area: u64,
    /// Tight box `[x0, y0, x1, y1]` (exclusive end); `None` when the mask is empty.
    pub bbox: Option<[u32; 4]>,
}

/// The regions of one face.
#[derive(Debug, Clone)]
pub struct FaceRegions {
    /// Detection box `[x0, y0, x1, y1]` in image pixels.
    pub bbox: [f32; 4],
    /// Detector score.
    pub score: f32,
    /// 468 (or 478) landmarks in image pixels.
    pub landmarks: Vec<[f32; 2]>,
    pub landmark_source: LandmarkSource,
    /// Image-sized 0/255 masks of every concept (atomic and parent), by canonical name.
    pub masks: RegionMasks,
    /// Area and box of every concept, by canonical name.
    pub stats: BTreeMap<String, RegionStats>,
}

impl FaceRegions {
    /// The mask of a concept by name or synonym ("lips", "image-left eye", ...).
    pub fn mask(&self, query: &str) -> Result<&image::GrayImage, UnknownConcept> {
        let concept = Fict::builtin().lookup(query)?;
        self.masks.get(&concept.name).ok_or_else(|| UnknownConcept {
            query: query.to_string(),
            suggestions: Vec::new(),
        })
    }

    /// Area in pixels of a concept by canonical name (0 when unknown).
    pub fn area(&self, name: &str) -> u64 {
        self.stats.get(name).map(|s| s.area).unwrap_or(0)
    }
}

/// Landmarks for a detected face. The single swap point for the landmark source.
pub fn face_landmarks(_img: &RgbImage, face: &FaceBox) -> (Vec<[f32; 2]>, LandmarkSource) {
    (
        canonical::landmarks_from_box(face.bbox),
        LandmarkSource::CanonicalFallback,
    )
}

/// Detect every face and compute its FICT regions (largest detector score first).
pub fn regions(img: &RgbImage) -> Vec<FaceRegions> {
    detect_faces(img, DetectOptions::default())
        .iter()
        .map(|face| {
            let (landmarks, source) = face_landmarks(img, face);
            regions_for_landmarks(
                face.bbox,
                face.score,
                landmarks,
                source,
                img.width(),
                img.height(),
            )
        })
        .collect()
}

/// FICT regions for known landmarks (e.g. from another detector, or canonical ones in tests).
pub fn regions_for_landmarks(
    bbox: [f32; 4],
    score: f32,
    landmarks: Vec<[f32; 2]>,
    landmark_source: LandmarkSource,
    width: u32,
    height: u32,
) -> FaceRegions {
    let masks = Fict::builtin().rasterize(&landmarks, width, height);
    let stats = masks
        .masks
        .iter()
        .map(|(name, m)| {
            (
                name.clone(),
                RegionStats {
                    area: raster::area(m),
                    bbox: raster::bbox(m),
                },
            )
        })
        .collect();
    FaceRegions {
        bbox,
        score,
        landmarks,
        landmark_source,
        masks,
        stats,
    }
}

/// Look a region name up in the built-in tree (synonyms, "image-left ...", typo suggestions).
pub fn lookup(query: &str) -> Result<&'static Concept, UnknownConcept> {
    Fict::builtin().lookup(query)
}
