//! The `vision-only` baseline: the same trained encoder with its auxiliary heads and no LLM —
//! verdict and type from pooled features, one artifact mask from the per-pixel head, concepts
//! from the multi-label head. It answers "is the LLM worth it?" in `dfa eval`.

use candle_core::Device;

use crate::analysis::*;
use crate::face::fict::Fict;

use super::config::{default_model_dir, ModelDir};
use super::engine::{mask_bbox, paste_logits};
use super::extras::{self, Manifest, Parts};
use super::vision::{crop_face, to_tensor};

pub struct VisionOnly {
    model: ModelDir,
    parts: Parts,
    manifest: Manifest,
    device: Device,
}

impl VisionOnly {
    pub fn load(model: Option<&str>) -> anyhow::Result<Self> {
        let spec = match model {
            Some(m) => m.to_string(),
            None => default_model_dir()
                .ok_or_else(|| anyhow::anyhow!("no default model found"))?
                .display()
                .to_string(),
        };
        let model = ModelDir::open(&spec)?;
        let device = Device::Cpu;
        let (parts, manifest) = extras::load(&model.config.extras, &device)?;
        Ok(Self {
            model,
            parts,
            manifest,
            device,
        })
    }
}

impl Analyzer for VisionOnly {
    fn analyze(
        &self,
        req: &Request,
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<AnalysisResult, AnalysisError> {
        let err = |e: candle_core::Error| AnalysisError::Model(e.to_string());
        let cfg = &self.model.config;
        let (boxes, warnings) = super::engine::find_faces(req, cfg.image.face_margin)?;
        let (w, h) = req.image.dimensions();
        let mut faces = Vec::new();
        for (face_id, bbox) in boxes.into_iter().enumerate() {
            let crop = crop_face(&req.image, bbox, cfg.image.face_margin, cfg.image.size);
            let x = to_tensor(&crop.image, &cfg.image, &self.device).map_err(err)?;
            let f = self.parts.vision.forward(&x).map_err(err)?;
            let out = self.parts.aux.forward(&f.pooled, &f.pixels).map_err(err)?;
            let p_fake = candle_nn::ops::sigmoid(&out.heads.fake)
                .map_err(err)?
                .flatten_all()
                .map_err(err)?
                .to_vec1::<f32>()
                .map_err(err)?[0];
            let probs = candle_nn::ops::softmax(&out.heads.types, candle_core::D::Minus1)
                .map_err(err)?
                .flatten_all()
                .map_err(err)?
                .to_vec1::<f32>()
                .map_err(err)?;
            let mut type_probs: Vec<(String, f32)> = crate::forge::record::FORGERY_TYPES
                .iter()
                .map(|s| s.to_string())
                .zip(probs)
                .collect();
            type_probs.sort_by(|a, b| b.1.total_cmp(&a.1));
            // The model's calibration and thresholds apply to this head's score too: the same
            // monotone map on both sides keeps its decisions what they were uncalibrated.
            let p_fake = cfg.calibrated(p_fake);
            let verdict = cfg.thresholds.verdict(p_fake);
            let concept_p = candle_nn::ops::sigmoid(&out.concepts)
                .map_err(err)?
                .flatten_all()
                .map_err(err)?
                .to_vec1::<f32>()
                .map_err(err)?;
            let mut segments = Vec::new();
            if verdict == Verdict::Fake {
                let logits = out.mask.squeeze(0).map_err(err)?.squeeze(0).map_err(err)?;
                let mask = paste_logits(&logits, &crop, w, h).map_err(err)?;
                let names = cfg
                    .thresholds
                    .pick_concepts(&self.manifest.concepts, &concept_p);
                let (bb, area) = mask_bbox(&mask);
                let phrase = if names.is_empty() {
                    "the artifact".to_string()
                } else {
                    names
                        .iter()
                        .map(|n| format!("the {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let region = names
                    .first()
                    .and_then(|n| Fict::builtin().lookup(n).ok())
                    .map(|c| c.name.clone());
                segments.push(SegmentResult {
                    id: 1,
                    phrase,
                    region,
                    bbox: bb,
                    area_px: area,
                    mask,
                    consistent: None,
                });
            }
            let explanation = segments
                .first()
                .map(|s| format!("{} [1]", s.phrase))
                .unwrap_or_default();
            let face = FaceResult {
                face_id,
                bbox,
                verdict,
                p_fake,
                forgery_type: (verdict != Verdict::Real).then(|| type_probs[0].0.clone()),
                type_probs,
                explanation: explanation.clone(),
                explanation_raw: explanation,
                segments,
            };
            sink(Event::Verdict {
                face_id,
                verdict,
                p_fake,
                forgery_type: face.forgery_type.clone(),
            });
            faces.push(face);
        }
        sink(Event::Done { stopped: false });
        let provenance = Provenance {
            dfa_version: env!("CARGO_PKG_VERSION").into(),
            model: format!("{} vision-only ({})", cfg.name, self.model.dir.display()),
            model_sha256: super::config::sha256_file(&cfg.extras).unwrap_or_default(),
            adapter: None,
            adapter_sha256: None,
            dtype: "f32".into(),
            device: "cpu".into(),
            seed: req.gen.seed,
            prompt_id: "vision-only".into(),
            trained: cfg.trained,
        };
        Ok(AnalysisResult {
            image_path: req.image_path.clone(),
            width: w,
            height: h,
            faces,
            warnings,
            provenance,
        })
    }
}
