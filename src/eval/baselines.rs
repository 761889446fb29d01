//! Reference systems to read the model's numbers against, as [`Analyzer`]s:
//!
//! - `always-fake`: P(fake) = 1 for every face, names every atomic FICT concept, and grounds each
//!   named concept in the whole face box (with an empty concept tree: one phrase, "the face").
//! - `whole-face`: fake, one phrase "the face" whose mask is the face box.
//! - `vision-only`: the model's vision encoder with its auxiliary heads and no LLM, provided by
//!   the engine (`crate::model::load_vision_only`).

use image::GrayImage;

use crate::analysis::{
    AnalysisError, AnalysisResult, Analyzer, Event, FaceResult, Provenance, Request, SegmentResult,
    Verdict,
};
use crate::face::fict::Fict;

/// The baselines `dfa eval --baseline` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    AlwaysFake,
    WholeFace,
    VisionOnly,
}

impl Baseline {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::AlwaysFake => "always-fake",
            Baseline::WholeFace => "whole-face",
            Baseline::VisionOnly => "vision-only",
        }
    }

    /// Build the analyzer. `model` is only used by `vision-only`.
    pub fn load(self, model: Option<&str>) -> anyhow::Result<Box<dyn Analyzer>> {
        match self {
            Baseline::AlwaysFake => Ok(Box::new(FaceBoxBaseline {
                every_concept: true,
            })),
            Baseline::WholeFace => Ok(Box::new(FaceBoxBaseline {
                every_concept: false,
            })),
            Baseline::VisionOnly => crate::model::load_vision_only(model),
        }
    }
}

/// Both fixed baselines: verdict fake with certainty, masks = the face box.
struct FaceBoxBaseline {
    every_concept: bool,
}

impl FaceBoxBaseline {
    fn phrases(&self) -> Vec<(String, Option<String>)> {
        let concepts: Vec<String> = if self.every_concept {
            Fict::builtin()
                .concepts
                .iter()
                .filter(|c| c.is_atomic())
                .map(|c| c.name.clone())
                .collect()
        } else {
            Vec::new()
        };
        if concepts.is_empty() {
            vec![("the face".to_string(), None)]
        } else {
            concepts
                .into_iter()
                .map(|c| (format!("the {c}"), Some(c)))
                .collect()
        }
    }
}

/// The face box of a request in whole pixels, clamped to the image (the whole image without one).
fn face_box(req: &Request) -> [u32; 4] {
    let (w, h) = req.image.dimensions();
    let b = req
        .face_boxes
        .as_ref()
        .and_then(|b| b.get(req.face.unwrap_or(0)))
        .copied()
        .unwrap_or([0.0, 0.0, w as f32, h as f32]);
    let clamp = |v: f32, max: u32| (v.max(0.0).round() as u32).min(max);
    let (x0, y0) = (clamp(b[0], w), clamp(b[1], h));
    let (x1, y1) = (clamp(b[2], w).max(x0), clamp(b[3], h).max(y0));
    [x0, y0, x1, y1]
}

fn box_mask(w: u32, h: u32, b: [u32; 4]) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        image::Luma([if x >= b[0] && x < b[2] && y >= b[1] && y < b[3] {
            255
        } else {
            0
        }])
    })
}

impl Analyzer for FaceBoxBaseline {
    fn analyze(
        &self,
        req: &Request,
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<AnalysisResult, AnalysisError> {
        let (w, h) = req.image.dimensions();
        let b = face_box(req);
        let fbox = [b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32];
        let mask = box_mask(w, h, b);
        let area = (b[2] - b[0]) as u64 * (b[3] - b[1]) as u64;
        let mut raw = String::from("This face is manipulated:");
        let mut segments = Vec::new();
        let _ = sink(Event::FaceStart {
            face_id: 0,
            bbox: fbox,
        });
        let _ = sink(Event::Verdict {
            face_id: 0,
            verdict: Verdict::Fake,
            p_fake: 1.0,
            forgery_type: None,
        });
        for (i, (phrase, region)) in self.phrases().into_iter().enumerate() {
            raw.push_str(&format!(" <p> {phrase} </p> [SEG]"));
            let seg = SegmentResult {
                id: i + 1,
                phrase,
                region,
                bbox: if area > 0 { b } else { [0; 4] },
                area_px: area,
                mask: mask.clone(),
                consistent: None,
            };
            if !sink(Event::MaskReady {
                face_id: 0,
                segment: seg.clone(),
            }) {
                break;
            }
            segments.push(seg);
        }
        raw.push('.');
        let explanation = crate::eval::text::strip_markup(&raw);
        let _ = sink(Event::TextDelta {
            face_id: 0,
            text: raw.clone(),
        });
        let _ = sink(Event::Done { stopped: false });
        Ok(AnalysisResult {
            image_path: req.image_path.clone(),
            width: w,
            height: h,
            faces: vec![FaceResult {
                face_id: 0,
                bbox: fbox,
                verdict: Verdict::Fake,
                p_fake: 1.0,
                forgery_type: None,
                type_probs: Vec::new(),
                explanation,
                explanation_raw: raw,
                segments,
            }],
            warnings: Vec::new(),
            provenance: Provenance {
                dfa_version: env!("CARGO_PKG_VERSION").to_string(),
                model: if self.every_concept {
                    "baseline:always-fake"
                } else {
                    "baseline:whole-face"
                }
                .to_string(),
                model_sha256: String::new(),
                adapter: None,
                adapter_sha256: None,
                dtype: "none".into(),
                device: "cpu".into(),
                seed: req.gen.seed,
                prompt_id: "baseline".into(),
                trained: false,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn whole_face_masks_the_clamped_face_box() {
        let img = Arc::new(image::RgbImage::new(20, 10));
        let mut req = Request::new(img, "x.png");
        req.face_boxes = Some(vec![[2.0, 3.0, 30.0, 8.0]]);
        let a = Baseline::WholeFace.load(None).unwrap();
        let r = a.analyze(&req, &mut |_| true).unwrap();
        let f = &r.faces[0];
        assert_eq!((f.verdict, f.p_fake), (Verdict::Fake, 1.0));
        assert_eq!(f.segments.len(), 1);
        assert_eq!(f.segments[0].bbox, [2, 3, 20, 8]);
        assert_eq!(f.segments[0].area_px, 18 * 5);
        let on = f.segments[0]
            .mask
            .as_raw()
            .iter()
            .filter(|p| **p == 255)
            .count();
        assert_eq!(on, 18 * 5);
        let missing = std::env::temp_dir().join("dfa-eval-no-such-model-dir");
        assert!(Baseline::VisionOnly.load(missing.to_str()).is_err());
    }
}
