//! One line of a dataset JSONL (docs/dataset-format.md). `forge` writes it; `train` and `eval`
//! read it; users convert their own datasets into it. Paths are relative to the JSONL's folder.

use serde::{Deserialize, Serialize};

/// A ground-truth grounded segment: one FICT concept that the edit touched, with its mask
/// (the artifact mask restricted to that concept's region).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GtSegment {
    pub concept: String,
    /// The phrase used for it in the AGE answer, e.g. "the left eyebrow".
    pub phrase: String,
    /// PNG mask, image-sized, relative path.
    pub mask: String,
    pub area_px: u64,
}

/// One question/answer pair derived from a sample (FiFa task families).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskRecord {
    /// "det" | "cls" | "age" | "toe" | "loc" | "region" | "box"
    pub task: String,
    pub prompt: String,
    /// Target answer; AGE answers contain `<p> phrase </p> [SEG]` markup.
    pub answer: String,
    /// For region questions: the FICT concept asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// For box questions: `[x0, y0, x1, y1]` in image pixels.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "box")]
    pub bbox: Option<[f32; 4]>,
    /// For region/box questions: is the asked region manipulated?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<bool>,
}

/// One image of a dataset, real or fake, with every label.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    pub id: String,
    /// "train" | "val" | "test", or "test-id" (unseen people of sources that train saw)
    pub split: String,
    /// Who is in the picture; splits never share an identity.
    pub identity: String,
    /// The photo source (collection) the face came from, e.g. `lfw`; absent in old datasets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The image to analyse.
    pub image: String,
    /// For a fake: its pixel-aligned real twin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_image: Option<String>,
    /// "real" | "fake"
    pub label: String,
    /// Forgery type (the recipe family), e.g. "self_blend"; None for real.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgery_type: Option<String>,
    /// Exact recipe name and parameters, for breakdowns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    /// Artifact kind: "blending_seam" | "colour_mismatch" | "texture_blur" | "geometric_distortion" | "noise_inconsistency".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_kind: Option<String>,
    /// Face box `[x0, y0, x1, y1]` in image pixels.
    pub face_bbox: [f32; 4],
    /// FiFa artifact mask: top 5% of the pixel difference real vs fake (PNG), fakes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_mask: Option<String>,
    /// The exact edit mask the recipe used (PNG), fakes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_mask: Option<String>,
    /// Artifact box `[x0, y0, x1, y1]`, fakes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f32; 4]>,
    /// FICT concepts the edit touched (above the coverage threshold).
    #[serde(default)]
    pub concepts: Vec<String>,
    /// Ground-truth grounded segments, one per concept (fakes only).
    #[serde(default)]
    pub segments: Vec<GtSegment>,
    #[serde(default)]
    pub tasks: Vec<TaskRecord>,
}

/// Forgery types (recipe families) in a fixed order: the verdict head's class indices.
/// Append new types at the end only: trained models map class index → name through it.
pub const FORGERY_TYPES: &[&str] = &[
    "self_blend",
    "region_swap",
    "warp",
    "smoothing",
    "colour",
    "noise",
    "copy_move",
    "face_swap",
];
