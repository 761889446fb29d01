//! The types every front end and the engine agree on: what is asked ([`Request`]), what streams
//! back while the model runs ([`Event`]), and what is returned ([`AnalysisResult`]).
//!
//! The engine implements [`Analyzer`]; `explain`, `chat`, `batch` and `eval` only consume these
//! types, so the TUI never touches tensors.

use std::sync::Arc;

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

/// A region the user asks about, in full-image pixel coordinates (or a FICT concept name).
#[derive(Debug, Clone)]
pub enum RegionQuery {
    /// A FICT concept name or synonym, e.g. "left eye".
    Concept(String),
    /// `[x0, y0, x1, y1]`.
    Box([f32; 4]),
    /// `[x, y]`.
    Point([f32; 2]),
    /// A binary mask the size of the image (pixels > 127 are inside).
    Mask(GrayImage),
}

/// Sampling settings. Greedy (temperature 0) by default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenOptions {
    pub seed: u64,
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: usize,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            temperature: 0.0,
            top_p: 1.0,
            max_tokens: 64,
        }
    }
}

/// One earlier exchange of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Turn {
    pub user: String,
    pub assistant: String,
}

/// One analysis request: an image (already decoded), an optional prompt and region.
#[derive(Debug, Clone)]
pub struct Request {
    pub image: Arc<RgbImage>,
    /// Where the image came from (only reported, never re-read).
    pub image_path: String,
    /// `None` = the default "is this face manipulated? explain" prompt.
    pub prompt: Option<String>,
    pub region: Option<RegionQuery>,
    /// Analyse only this face (0-based, in detection order). `None` = every face.
    pub face: Option<usize>,
    /// Known face box(es) in image coordinates; skips detection (forge data carries them).
    pub face_boxes: Option<Vec<[f32; 4]>>,
    /// With no face found, analyse the whole image as one face (with a warning) instead of failing.
    pub whole_image_fallback: bool,
    pub gen: GenOptions,
    pub history: Vec<Turn>,
}

impl Request {
    pub fn new(image: Arc<RgbImage>, image_path: impl Into<String>) -> Self {
        Self {
            image,
            image_path: image_path.into(),
            prompt: None,
            region: None,
            face: None,
            face_boxes: None,
            whole_image_fallback: false,
            gen: GenOptions::default(),
            history: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Real,
    Fake,
    Uncertain,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Real => "real",
            Verdict::Fake => "fake",
            Verdict::Uncertain => "uncertain",
        }
    }
}

/// One grounded phrase and its mask (full-image coordinates).
#[derive(Debug, Clone)]
pub struct SegmentResult {
    /// 1-based number shown to the user; also picks the colour.
    pub id: usize,
    pub phrase: String,
    /// The FICT concept the phrase names, when it names one.
    pub region: Option<String>,
    /// `[x0, y0, x1, y1]`, inclusive-exclusive pixel box of the mask; all zero when empty.
    pub bbox: [u32; 4],
    pub area_px: u64,
    pub mask: GrayImage,
    /// `Some(false)` when the mask misses the region its phrase names (consistency check).
    pub consistent: Option<bool>,
}

/// Everything said about one face.
#[derive(Debug, Clone)]
pub struct FaceResult {
    pub face_id: usize,
    pub bbox: [f32; 4],
    pub verdict: Verdict,
    pub p_fake: f32,
    pub forgery_type: Option<String>,
    /// (type name, probability), sorted by probability.
    pub type_probs: Vec<(String, f32)>,
    /// Explanation with grounding markup removed and phrases numbered: "the [1] left eye ...".
    pub explanation: String,
    /// The model's raw text including `<p> ... </p> [SEG]`.
    pub explanation_raw: String,
    pub segments: Vec<SegmentResult>,
}

/// Who produced a result: enough to reproduce it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    pub dfa_version: String,
    pub model: String,
    pub model_sha256: String,
    pub adapter: Option<String>,
    pub adapter_sha256: Option<String>,
    pub dtype: String,
    pub device: String,
    pub seed: u64,
    pub prompt_id: String,
    /// False while the shipped heads are untrained: masks are then not findings.
    pub trained: bool,
}

#[derive(Debug, Clone)]
pub struct AnalysisResult {
    pub image_path: String,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<FaceResult>,
    pub warnings: Vec<String>,
    pub provenance: Provenance,
}

/// What streams out while a request runs. Every front end consumes exactly this.
#[derive(Debug, Clone)]
pub enum Event {
    FaceStart {
        face_id: usize,
        bbox: [f32; 4],
    },
    Verdict {
        face_id: usize,
        verdict: Verdict,
        p_fake: f32,
        forgery_type: Option<String>,
    },
    TextDelta {
        face_id: usize,
        text: String,
    },
    PhraseOpen {
        face_id: usize,
        seg_id: usize,
    },
    PhraseClose {
        face_id: usize,
        seg_id: usize,
        phrase: String,
    },
    MaskReady {
        face_id: usize,
        segment: SegmentResult,
    },
    Warning(String),
    /// The whole request finished (or was stopped: `stopped = true`).
    Done {
        stopped: bool,
    },
}

/// Errors an analysis can end with; each is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("no face found in {0} (use --whole-image to analyse the whole picture anyway)")]
    NoFace(String),
    #[error("face {asked} does not exist: the image has {found} face(s)")]
    NoSuchFace { asked: usize, found: usize },
    #[error("{0}")]
    BadRegion(String),
    #[error("model error: {0}")]
    Model(String),
}

/// The engine, as the front ends see it. `sink` gets every event; returning `false` stops the
/// turn early (what was produced so far is kept and returned).
pub trait Analyzer: Send + Sync {
    fn analyze(
        &self,
        req: &Request,
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<AnalysisResult, AnalysisError>;
}
