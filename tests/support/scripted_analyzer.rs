//! A small deterministic stand-in for the engine, for the front-end tests (the UI, REPL and
//! batch code under test is real). Its verdict depends on the image (mean red > 127 = fake), its
//! masks are rectangles placed relative to the image size, it streams word by word, honours the
//! sink's stop signal and rejects regions it does not know, like the real engine.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dfa::analysis::*;
use image::{GrayImage, Luma, RgbImage};

pub const KNOWN_REGIONS: &[&str] = &["left eye", "right eye", "nose", "mouth"];

#[derive(Default)]
pub struct ScriptedAnalyzer {
    /// Sleep this long before each word (to test stopping and concurrency).
    pub word_delay: Duration,
    /// How many requests were analysed.
    pub calls: AtomicUsize,
}

impl ScriptedAnalyzer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn slow(word_delay: Duration) -> Self {
        Self {
            word_delay,
            ..Self::default()
        }
    }

    pub fn shared() -> Arc<dyn Analyzer> {
        Arc::new(Self::new())
    }
}

/// A test image: `red` sets the verdict (> 127 = fake).
pub fn face_image(w: u32, h: u32, red: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([red, (x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8])
    })
}

fn rect_mask(w: u32, h: u32, r: [f32; 4]) -> (GrayImage, [u32; 4], u64) {
    let b = [
        (r[0] * w as f32) as u32,
        (r[1] * h as f32) as u32,
        (r[2] * w as f32) as u32,
        (r[3] * h as f32) as u32,
    ];
    let mut m = GrayImage::new(w, h);
    for y in b[1]..b[3] {
        for x in b[0]..b[2] {
            m.put_pixel(x, y, Luma([255]));
        }
    }
    let area = (b[2] - b[0]) as u64 * (b[3] - b[1]) as u64;
    (m, b, area)
}

enum Word {
    Text(&'static str),
    Phrase(&'static str, &'static str, [f32; 4]),
}

impl Analyzer for ScriptedAnalyzer {
    fn analyze(
        &self,
        req: &Request,
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<AnalysisResult, AnalysisError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (w, h) = req.image.dimensions();
        let mut asked_region = None;
        match &req.region {
            Some(RegionQuery::Concept(c)) => {
                if !KNOWN_REGIONS.contains(&c.as_str()) {
                    return Err(AnalysisError::BadRegion(format!("unknown region \"{c}\"")));
                }
                asked_region = Some(c.clone());
            }
            Some(RegionQuery::Box(b)) if b[0] >= w as f32 || b[1] >= h as f32 => {
                return Err(AnalysisError::BadRegion(
                    "the box is outside the image".into(),
                ))
            }
            _ => {}
        }
        if let Some(f) = req.face {
            if f > 0 {
                return Err(AnalysisError::NoSuchFace { asked: f, found: 1 });
            }
        }
        let n = (w as u64 * h as u64).max(1);
        let red: u64 = req.image.pixels().map(|p| p.0[0] as u64).sum::<u64>() / n;
        let fake = red > 127;
        let p_fake = red as f32 / 255.0;
        let verdict = if fake { Verdict::Fake } else { Verdict::Real };
        let forgery_type = fake.then(|| "warp".to_string());
        let bbox = [0.0, 0.0, w as f32, h as f32];

        let mut stopped = !sink(Event::FaceStart { face_id: 0, bbox });
        stopped = stopped
            || !sink(Event::Verdict {
                face_id: 0,
                verdict,
                p_fake,
                forgery_type: forgery_type.clone(),
            });
        let words: Vec<Word> = if fake {
            vec![
                Word::Text("The skin is smooth, but "),
                Word::Phrase("the left eye", "left eye", [0.1, 0.2, 0.45, 0.4]),
                Word::Text(" and "),
                Word::Phrase("the mouth", "mouth", [0.3, 0.65, 0.7, 0.85]),
                Word::Text(" show warping at their edges."),
            ]
        } else {
            vec![Word::Text(
                "No sign of manipulation: lighting and texture are consistent.",
            )]
        };
        let mut explanation = String::new();
        let mut raw = String::new();
        if let Some(r) = &asked_region {
            let t = format!("About the {r}: ");
            explanation.push_str(&t);
            raw.push_str(&t);
            stopped = stopped
                || !sink(Event::TextDelta {
                    face_id: 0,
                    text: t,
                });
        }
        let mut segments = Vec::new();
        for word in words {
            if stopped {
                break;
            }
            std::thread::sleep(self.word_delay);
            match word {
                Word::Text(t) => {
                    for piece in t.split_inclusive(' ') {
                        if stopped {
                            break;
                        }
                        std::thread::sleep(self.word_delay);
                        explanation.push_str(piece);
                        raw.push_str(piece);
                        stopped = !sink(Event::TextDelta {
                            face_id: 0,
                            text: piece.to_string(),
                        });
                    }
                }
                Word::Phrase(phrase, region, r) => {
                    let id = segments.len() + 1;
                    stopped = !sink(Event::PhraseOpen {
                        face_id: 0,
                        seg_id: id,
                    });
                    stopped = stopped
                        || !sink(Event::TextDelta {
                            face_id: 0,
                            text: phrase.to_string(),
                        });
                    stopped = stopped
                        || !sink(Event::PhraseClose {
                            face_id: 0,
                            seg_id: id,
                            phrase: phrase.to_string(),
                        });
                    explanation.push_str(&format!("{phrase} [{id}]"));
                    raw.push_str(&format!("<p> {phrase} </p> [SEG]"));
                    let (mask, bbox, area_px) = rect_mask(w, h, r);
                    let segment = SegmentResult {
                        id,
                        phrase: phrase.to_string(),
                        region: Some(region.to_string()),
                        bbox,
                        area_px,
                        mask,
                        consistent: Some(true),
                    };
                    stopped = stopped
                        || !sink(Event::MaskReady {
                            face_id: 0,
                            segment: segment.clone(),
                        });
                    segments.push(segment);
                }
            }
        }
        sink(Event::Done { stopped });
        Ok(AnalysisResult {
            image_path: req.image_path.clone(),
            width: w,
            height: h,
            faces: vec![FaceResult {
                face_id: 0,
                bbox,
                verdict,
                p_fake,
                forgery_type,
                type_probs: vec![("warp".into(), p_fake)],
                explanation,
                explanation_raw: raw,
                segments,
            }],
            warnings: Vec::new(),
            provenance: Provenance {
                dfa_version: "test".into(),
                model: "scripted".into(),
                model_sha256: "0".repeat(64),
                adapter: None,
                adapter_sha256: None,
                dtype: "f32".into(),
                device: "cpu".into(),
                seed: req.gen.seed,
                prompt_id: "test".into(),
                trained: false,
            },
        })
    }
}
