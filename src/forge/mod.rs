//! `dfa forge`: pixel-aligned real/fake face pairs with every label FiFa-style training needs.
//!
//! Pipeline: [`sources`] finds real faces and crops them to 256×256 squares; a region provider
//! gives per-concept masks (FICT once the mesh lands, [`layout`] until then); a [`recipes`]
//! family edits one or more concepts; [`post`] applies the same global post-processing to the
//! real twin and the fake; [`annotate`] derives the top-5% artifact mask, the concepts hit and
//! the task records; [`writer`] writes `data.jsonl` + PNGs, resumably. [`contact`] draws a
//! contact sheet of a written dataset.

pub mod annotate;
pub mod collections;
pub mod contact;
pub mod layout;
pub mod phrases;
pub mod post;
pub mod raster;
pub mod recipes;
pub mod record;
pub mod sources;
pub mod writer;

use std::collections::BTreeMap;

use image::{GrayImage, RgbImage};

/// One face, cropped to a square (the face box is about the central 60%), with its regions.
#[derive(Debug, Clone)]
pub struct FaceCrop {
    pub image: RgbImage,
    /// Who this is; splits never share an identity.
    pub identity: String,
    /// Which source file and face index it came from, e.g. `solvay-1927.png#3`.
    pub source: String,
    /// Face box `[x0, y0, x1, y1]` in crop pixels.
    pub face_bbox: [f32; 4],
    /// Landmarks in crop pixels (468 FaceMesh points once available; may be empty).
    pub landmarks: Vec<[f32; 2]>,
    /// Concept name → mask (0/255, crop-sized).
    pub regions: BTreeMap<String, GrayImage>,
}

/// What kind of trace an edit leaves; the AGE phrase banks are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactKind {
    BlendingSeam,
    ColourMismatch,
    TextureBlur,
    GeometricDistortion,
    NoiseInconsistency,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 5] = [
        ArtifactKind::BlendingSeam,
        ArtifactKind::ColourMismatch,
        ArtifactKind::TextureBlur,
        ArtifactKind::GeometricDistortion,
        ArtifactKind::NoiseInconsistency,
    ];

    /// The name written to `Sample::artifact_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::BlendingSeam => "blending_seam",
            ArtifactKind::ColourMismatch => "colour_mismatch",
            ArtifactKind::TextureBlur => "texture_blur",
            ArtifactKind::GeometricDistortion => "geometric_distortion",
            ArtifactKind::NoiseInconsistency => "noise_inconsistency",
        }
    }
}

/// The result of one recipe: the edited image, where it was edited and how.
#[derive(Debug, Clone)]
pub struct Edit {
    pub fake: RgbImage,
    /// Edit weight per pixel (0 = untouched, 255 = fully replaced); soft or hard edges.
    pub edit_mask: GrayImage,
    /// The concepts the recipe aimed at.
    pub concepts: Vec<String>,
    /// Recipe name and parameters, e.g. `warp:bigger_eyes strength=0.62 hard=false`.
    pub params: String,
    pub artifact_kind: ArtifactKind,
}

/// Errors of the forge library.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("unknown recipe \"{0}\"; known: self_blend, region_swap, warp, smoothing, colour, noise, copy_move, face_swap")]
    UnknownRecipe(String),
    #[error("unknown split \"{0}\"; use train, val, test or all")]
    UnknownSplit(String),
    #[error("recipe {recipe} cannot be applied: {reason}")]
    NotApplicable { recipe: String, reason: String },
    #[error("no usable faces found (looked in {0}); run tools/fetch-sources.sh, or pass --packages / --sources")]
    NoFaces(String),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path} line {line}: {reason}")]
    BadLine {
        path: String,
        line: usize,
        reason: String,
    },
}

impl ForgeError {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        ForgeError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}
