//! The engine: detection → face crop → vision encoder → projector → LLM (+LoRA) → streamed text,
//! with a mask decoded for every `[SEG]` from the hidden state that predicted it, and a verdict
//! from the verdict head. Implements [`Analyzer`]; every front end consumes its [`Event`]s.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use image::{GrayImage, RgbImage};

use crate::analysis::*;
use crate::face::fict::Fict;

use super::config::{default_model_dir, sha256_file, ModelDir};
use super::extras::{self, Parts, SegPixels};
use super::llm::Llm;
use super::lora::LoraAdapter;
use super::naming::{concept_of_phrase, name_from_mask, CropRegions};
use super::prompt::{positions_of, splice_rows, user_text};
use super::sampling::Sampler;
use super::tokenizer::{
    add_dfa_tokens, load_tokenizer, render_chat, tokenizer_from_gguf, DfaTokenIds,
};
use super::vision::{crop_face, mask_to_grid, to_tensor, FaceCrop, VisionFeatures};

/// How to load an engine.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Model directory or `org/repo`; `None` = the embedded default.
    pub model: Option<String>,
    /// PEFT adapter directory overriding the model's own.
    pub adapter: Option<String>,
    /// Merge LoRA into the base weights at load (faster decode, more memory).
    pub merge_lora: bool,
}

pub struct Engine {
    pub model: ModelDir,
    device: Device,
    llm: Llm,
    tokenizer: tokenizers::Tokenizer,
    ids: DfaTokenIds,
    stop_ids: Vec<u32>,
    parts: Parts,
    provenance: Provenance,
}

impl Engine {
    pub fn load(opts: &LoadOptions) -> anyhow::Result<Self> {
        let spec = match &opts.model {
            Some(m) => m.clone(),
            None => default_model_dir()
                .ok_or_else(|| {
                    anyhow::anyhow!("no default model found (set DFA_MODEL or pass --model DIR)")
                })?
                .display()
                .to_string(),
        };
        let model = ModelDir::open(&spec)?;
        let cfg = &model.config;
        let device = Device::Cpu;
        let (mut llm, mut tokenizer) = if let Some(gguf) = &cfg.llm.gguf {
            let (llm, meta) = Llm::load_gguf(gguf, cfg.llm.dequantize, &device)?;
            let tok = match &cfg.tokenizer {
                Some(t) => load_tokenizer(t)?,
                None => tokenizer_from_gguf(&meta)?,
            };
            (llm, tok)
        } else {
            let dir = cfg
                .llm
                .safetensors
                .as_ref()
                .expect("checked by ModelDir::open");
            let tok_path = cfg
                .tokenizer
                .clone()
                .unwrap_or_else(|| dir.join("tokenizer.json"));
            (
                Llm::load_safetensors(dir, DType::F32, &device)?,
                load_tokenizer(&tok_path)?,
            )
        };
        let ids = add_dfa_tokens(&mut tokenizer)?;
        let (parts, manifest) = extras::load(&cfg.extras, &device)?;
        if manifest.dims.llm_dim != llm.hidden_size() {
            anyhow::bail!(
                "extras {} were trained for an LLM of width {}, but the LLM has width {}",
                cfg.extras.display(),
                manifest.dims.llm_dim,
                llm.hidden_size()
            );
        }
        llm.set_extra_rows(parts.token_rows.clone())?;
        let adapter_dir: Option<PathBuf> = opts
            .adapter
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| cfg.adapter.clone());
        let mut adapter_sha = None;
        if let Some(dir) = &adapter_dir {
            let adapter = LoraAdapter::load(dir)?;
            llm.apply_lora(&adapter, opts.merge_lora)?;
            adapter_sha = sha256_file(&dir.join("adapter_model.safetensors")).ok();
        }
        let stop_ids = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        let model_sha256 = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(std::fs::read(model.dir.join("config.json"))?);
            h.update(sha256_file(&cfg.extras)?);
            if let Some(g) = &cfg.llm.gguf {
                h.update(sha256_file(g)?);
            }
            h.finalize().iter().map(|b| format!("{b:02x}")).collect()
        };
        let provenance = Provenance {
            dfa_version: env!("CARGO_PKG_VERSION").into(),
            model: format!("{} ({})", cfg.name, model.dir.display()),
            model_sha256,
            adapter: adapter_dir.map(|d| d.display().to_string()),
            adapter_sha256: adapter_sha,
            dtype: if cfg.llm.gguf.is_some() && !cfg.llm.dequantize {
                "q4_1+f32".into()
            } else {
                "f32".into()
            },
            device: "cpu".into(),
            seed: 0,
            prompt_id: cfg.prompt.prompt_id.clone(),
            trained: cfg.trained,
        };
        Ok(Self {
            model,
            device,
            llm,
            tokenizer,
            ids,
            stop_ids,
            parts,
            provenance,
        })
    }

    /// Encode one face crop.
    pub fn encode_face(&self, crop: &FaceCrop) -> candle_core::Result<VisionFeatures> {
        let x = to_tensor(&crop.image, &self.model.config.image, &self.device)?;
        self.parts.vision.forward(&x)
    }

    fn region_mask(
        &self,
        img: &RgbImage,
        bbox: [f32; 4],
        q: &RegionQuery,
    ) -> Result<GrayImage, AnalysisError> {
        let (w, h) = img.dimensions();
        Ok(match q {
            RegionQuery::Mask(m) => {
                if m.dimensions() != (w, h) {
                    return Err(AnalysisError::BadRegion(format!(
                        "region mask is {}x{} but the image is {w}x{h}",
                        m.width(),
                        m.height()
                    )));
                }
                m.clone()
            }
            RegionQuery::Box(b) => box_mask(w, h, *b),
            RegionQuery::Point([x, y]) => {
                let r = ((bbox[2] - bbox[0]).max(bbox[3] - bbox[1]) * 0.06).max(3.0);
                box_mask(w, h, [x - r, y - r, x + r, y + r])
            }
            RegionQuery::Concept(name) => {
                return Err(AnalysisError::BadRegion(format!(
                    "region \"{name}\" is resolved in the face crop, not as an image mask"
                )))
            }
        })
    }

    /// Region mask (image coordinates) → weights on the encoder's (square) pixel grid.
    fn mask_on_grid(
        &self,
        mask: &GrayImage,
        crop: &FaceCrop,
        g: usize,
    ) -> candle_core::Result<Tensor> {
        Tensor::from_vec(mask_to_grid(mask, crop, g), (g, g), &self.device)
    }

    /// Analyse one face; `None` when the sink asked to stop before anything was produced.
    fn analyze_face(
        &self,
        req: &Request,
        face_id: usize,
        bbox: [f32; 4],
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<(FaceResult, bool), AnalysisError> {
        let cfg = &self.model.config;
        let img = &req.image;
        let crop = crop_face(img, bbox, cfg.image.face_margin, cfg.image.size);
        let feats = self.encode_face(&crop).map_err(merr)?;
        let visual = self.parts.projector_forward(&feats.tokens).map_err(merr)?; // (n, d)

        // Region token.
        let mut regions: Option<Option<CropRegions>> = None;
        let region = match &req.region {
            Some(q) => {
                let (_, _, gh, _) = feats.pixels.dims4().map_err(merr)?;
                let grid = if let RegionQuery::Concept(name) = q {
                    let fict = Fict::builtin();
                    let concept = fict
                        .lookup(name)
                        .map_err(|e| AnalysisError::BadRegion(e.to_string()))?;
                    let r = regions
                        .get_or_insert_with(|| CropRegions::new(img, bbox, &crop))
                        .as_ref()
                        .ok_or_else(|| {
                            AnalysisError::BadRegion(format!(
                                "cannot place \"{name}\": no facial landmarks for this face"
                            ))
                        })?;
                    let m = r.masks.masks.get(&concept.name).ok_or_else(|| {
                        AnalysisError::BadRegion(format!("region \"{name}\" is empty on this face"))
                    })?;
                    let local = FaceCrop {
                        image: RgbImage::new(1, 1),
                        origin: [0.0, 0.0, r.side as f32],
                    };
                    self.mask_on_grid(m, &local, gh).map_err(merr)?
                } else {
                    let mask = self.region_mask(img, bbox, q)?;
                    self.mask_on_grid(&mask, &crop, gh).map_err(merr)?
                };
                Some(
                    self.parts
                        .region_embedding(&feats.pixels, &grid)
                        .map_err(merr)?,
                )
            }
            None => None,
        };

        let question = req
            .prompt
            .clone()
            .unwrap_or_else(|| cfg.prompt.default_prompt.clone());
        let history: Vec<(String, String)> = req
            .history
            .iter()
            .map(|t| (t.user.clone(), t.assistant.clone()))
            .collect();
        let text = render_chat(
            cfg.prompt.system.as_deref(),
            &history,
            &user_text(visual.dim(0).map_err(merr)?, &question, region.is_some()),
        );
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| AnalysisError::Model(e.to_string()))?;
        let ids: Vec<u32> = enc.get_ids().to_vec();
        let id_t = Tensor::new(ids.as_slice(), &self.device)
            .map_err(merr)?
            .unsqueeze(0)
            .map_err(merr)?;
        let mut embeds = self
            .llm
            .embed(&id_t)
            .map_err(merr)?
            .squeeze(0)
            .map_err(merr)?;
        // Visual tokens: only this turn's <image> placeholders (history turns are text).
        let img_pos = positions_of(&ids, self.ids.image);
        let n_vis = visual.dim(0).map_err(merr)?;
        if img_pos.len() < n_vis {
            return Err(AnalysisError::Model(format!(
                "prompt has {} <image> tokens, need {n_vis}",
                img_pos.len()
            )));
        }
        let img_pos = img_pos[img_pos.len() - n_vis..].to_vec();
        embeds = splice_rows(&embeds, &img_pos, &visual).map_err(merr)?;
        if let Some(r) = &region {
            let rp = positions_of(&ids, self.ids.region);
            if let Some(&last) = rp.last() {
                embeds = splice_rows(&embeds, &[last], r).map_err(merr)?;
            }
        }

        let mut cache = self.llm.new_cache();
        let hidden = self
            .llm
            .forward(&embeds.unsqueeze(0).map_err(merr)?, Some(&mut cache), 0)
            .map_err(merr)?;
        let t = ids.len();
        let mut h_last = hidden
            .narrow(1, t - 1, 1)
            .map_err(merr)?
            .squeeze(1)
            .map_err(merr)?; // (1, d)

        // Verdict from the head (never from prose).
        let (p_fake, type_probs) = self
            .parts
            .verdict_probs(&feats.pooled, &h_last)
            .map_err(merr)?;
        let p_fake = cfg.calibrated(p_fake);
        let verdict = if cfg.trained {
            cfg.thresholds.verdict(p_fake)
        } else {
            Verdict::Uncertain
        };
        let forgery_type = (cfg.trained && verdict != Verdict::Real)
            .then(|| type_probs.first().map(|(n, _)| n.clone()))
            .flatten();
        if !sink(Event::Verdict {
            face_id,
            verdict,
            p_fake,
            forgery_type: forgery_type.clone(),
        }) {
            return Ok((
                empty_face(face_id, bbox, verdict, p_fake, forgery_type, type_probs),
                true,
            ));
        }
        // Masks only back a "fake" verdict: an uncertain answer may name suspect regions but
        // draws nothing an analyst could take for a finding.
        let draw_masks = cfg.trained && verdict == Verdict::Fake;
        let pixel_emb = if draw_masks {
            Some(self.parts.seg_pixels(&feats.pixels).map_err(merr)?)
        } else {
            None
        };

        // Decode.
        let mut sampler = Sampler::new(
            req.gen.seed,
            req.gen.temperature as f64,
            req.gen.top_p as f64,
        );
        let mut raw = String::new();
        let mut visible = String::new();
        let mut text_ids: Vec<u32> = Vec::new();
        // Constrained first tokens: a whole-face answer opens with the head's verdict, so the
        // prose can never contradict it (the openers are the forge answers' own).
        let opener = match (cfg.trained, req.region.is_some(), verdict) {
            (false, _, _) => Some("Uncertain: this model's heads are untrained."),
            (true, false, Verdict::Fake) => Some("The face is manipulated."),
            (true, false, Verdict::Real) => Some("Real face."),
            (true, false, Verdict::Uncertain) => Some("The face may be manipulated."),
            (true, true, _) => None,
        };
        let mut forced: std::collections::VecDeque<u32> = match opener {
            Some(o) => self
                .tokenizer
                .encode(o, false)
                .map_err(merr)?
                .get_ids()
                .iter()
                .copied()
                .collect(),
            None => Default::default(),
        };
        let max_tokens = if cfg.trained {
            req.gen.max_tokens + forced.len()
        } else {
            forced.len()
        };
        let mut emitted = 0usize;
        let mut phrase: Option<(usize, String)> = None;
        let mut last_phrase: Option<(usize, String)> = None;
        // A closed phrase (id, text as streamed) waiting for its [SEG] mask.
        let mut held: Option<(usize, String)> = None;
        let mut segments: Vec<SegmentResult> = Vec::new();
        let mut next_seg = 1usize;
        let mut stopped = false;
        let mut pos = t;
        for _ in 0..max_tokens {
            let tok = match forced.pop_front() {
                Some(t) => t,
                None => {
                    let logits = self
                        .llm
                        .logits(&h_last)
                        .map_err(merr)?
                        .squeeze(0)
                        .map_err(merr)?;
                    sampler.sample(&logits).map_err(merr)?
                }
            };
            if self.stop_ids.contains(&tok) {
                break;
            }
            let mut events = Vec::new();
            // A held phrase that no [SEG] followed is shown as it was written (spaces between
            // `</p>` and `[SEG]` do not count).
            let blank = || {
                self.tokenizer
                    .decode(&[tok], false)
                    .is_ok_and(|t| t.trim().is_empty())
            };
            if held.is_some() && tok != self.ids.seg && !blank() {
                release_held(&mut held, &mut visible, &mut events, face_id);
            }
            if tok == self.ids.p_open {
                raw.push_str("<p> ");
                let id = next_seg;
                phrase = Some((id, String::new()));
                events.push(Event::PhraseOpen {
                    face_id,
                    seg_id: id,
                });
            } else if tok == self.ids.p_close {
                raw.push_str(" </p>");
                if let Some((id, p)) = phrase.take() {
                    if pixel_emb.is_some() {
                        // Held until its [SEG]: the mask may correct the side it names.
                        held = Some((id, p.clone()));
                    } else {
                        events.push(Event::PhraseClose {
                            face_id,
                            seg_id: id,
                            phrase: p.trim().to_string(),
                        });
                    }
                    last_phrase = Some((id, p.trim().to_string()));
                }
            } else if tok == self.ids.seg {
                raw.push_str(" [SEG]");
                let (id, p) = last_phrase.take().unwrap_or((next_seg, String::new()));
                next_seg = id.max(next_seg) + 1;
                if let Some(pe) = &pixel_emb {
                    // h_last is the state whose output predicted [SEG].
                    let r = regions.get_or_insert_with(|| CropRegions::new(img, bbox, &crop));
                    let seg = self
                        .segment(img, &crop, pe, &h_last, id, &p, r.as_ref())
                        .map_err(merr)?;
                    let shown = match held.take() {
                        Some((_, text)) if !p.is_empty() => text.replacen(&p, &seg.phrase, 1),
                        Some((_, text)) => text,
                        None => String::new(),
                    };
                    let text = format!("{shown} [{id}]");
                    visible.push_str(&text);
                    events.push(Event::TextDelta { face_id, text });
                    events.push(Event::PhraseClose {
                        face_id,
                        seg_id: id,
                        phrase: seg.phrase.clone(),
                    });
                    events.push(Event::MaskReady {
                        face_id,
                        segment: seg.clone(),
                    });
                    segments.push(seg);
                }
            } else if tok == self.ids.image || tok == self.ids.region {
                // Never meaningful in an answer: skip.
            } else {
                text_ids.push(tok);
                let decoded = self
                    .tokenizer
                    .decode(&text_ids, false)
                    .map_err(|e| AnalysisError::Model(e.to_string()))?;
                if decoded.len() > emitted && decoded.is_char_boundary(emitted) {
                    let delta = decoded[emitted..].to_string();
                    emitted = decoded.len();
                    raw.push_str(&delta);
                    match phrase.as_mut() {
                        // A phrase that will get a mask is shown when its mask is ready.
                        Some((_, p)) if pixel_emb.is_some() => p.push_str(&delta),
                        open => {
                            if let Some((_, p)) = open {
                                p.push_str(&delta);
                            }
                            visible.push_str(&delta);
                            events.push(Event::TextDelta {
                                face_id,
                                text: delta,
                            });
                        }
                    }
                }
            }
            if tok == self.ids.p_open || tok == self.ids.p_close || tok == self.ids.seg {
                // Special tokens break the text decode window.
                text_ids.clear();
                emitted = 0;
            }
            for e in events {
                if !sink(e) {
                    stopped = true;
                }
            }
            if stopped {
                break;
            }
            let e = self
                .llm
                .embed(
                    &Tensor::new(&[tok], &self.device)
                        .map_err(merr)?
                        .unsqueeze(0)
                        .map_err(merr)?,
                )
                .map_err(merr)?;
            let h = self.llm.forward(&e, Some(&mut cache), pos).map_err(merr)?;
            pos += 1;
            h_last = h.squeeze(1).map_err(merr)?;
        }
        let mut events = Vec::new();
        release_held(&mut held, &mut visible, &mut events, face_id);
        for e in events {
            sink(e);
        }
        let explanation = visible.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok((
            FaceResult {
                face_id,
                bbox,
                verdict,
                p_fake,
                forgery_type,
                type_probs,
                explanation,
                explanation_raw: raw.trim().to_string(),
                segments,
            },
            stopped,
        ))
    }

    /// Decode one mask (from the predicting hidden state) and paste it into image coordinates.
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &self,
        img: &RgbImage,
        crop: &FaceCrop,
        pixel_emb: &SegPixels,
        h: &Tensor,
        id: usize,
        phrase: &str,
        regions: Option<&CropRegions>,
    ) -> candle_core::Result<SegmentResult> {
        let logits = self.parts.mask_logits(pixel_emb, h)?; // (gh, gw)
        let mask = paste_logits(&logits, crop, img.width(), img.height())?;
        let mut region = concept_of_phrase(phrase);
        let mut phrase = phrase.to_string();
        if let (Some(r), Some(regions)) = (&region, regions) {
            if let Some((p, m)) = name_from_mask(&phrase, r, &mask, regions) {
                (phrase, region) = (p, Some(m));
            }
        }
        let consistent = region.as_ref().and_then(|r| regions?.mask_inside(&mask, r));
        let (bb, area) = mask_bbox(&mask);
        Ok(SegmentResult {
            id,
            phrase,
            region,
            bbox: bb,
            area_px: area,
            mask,
            consistent,
        })
    }
}

impl Analyzer for Engine {
    fn analyze(
        &self,
        req: &Request,
        sink: &mut dyn FnMut(Event) -> bool,
    ) -> Result<AnalysisResult, AnalysisError> {
        let (boxes, mut warnings) = find_faces(req, self.model.config.image.face_margin)?;
        if !self.model.config.trained {
            warnings.push("the model's heads are UNTRAINED: the verdict is 'uncertain' and no masks are drawn".into());
        }
        for w in &warnings {
            sink(Event::Warning(w.clone()));
        }
        let first = req.face.unwrap_or(0);
        let mut faces = Vec::new();
        let mut stopped = false;
        for (k, b) in boxes.iter().enumerate() {
            let face_id = first + k;
            if !sink(Event::FaceStart { face_id, bbox: *b }) {
                stopped = true;
                break;
            }
            let (face, s) = self.analyze_face(req, face_id, *b, sink)?;
            faces.push(face);
            if s {
                stopped = true;
                break;
            }
        }
        sink(Event::Done { stopped });
        let mut provenance = self.provenance.clone();
        provenance.seed = req.gen.seed;
        let (width, height) = req.image.dimensions();
        Ok(AnalysisResult {
            image_path: req.image_path.clone(),
            width,
            height,
            faces,
            warnings,
            provenance,
        })
    }
}

impl Parts {
    /// (1, n, c) vision tokens → (n, d).
    pub fn projector_forward(&self, tokens: &Tensor) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        self.projector.forward(&tokens.squeeze(0)?)
    }

    /// Pooled region features → one `<region>` embedding (1, d).
    pub fn region_embedding(&self, pixels: &Tensor, grid: &Tensor) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        self.region_projector
            .forward(&super::grounding::pool_region(pixels, grid)?)
    }

    /// P(fake) and sorted type probabilities.
    pub fn verdict_probs(
        &self,
        pooled: &Tensor,
        h: &Tensor,
    ) -> candle_core::Result<(f32, Vec<(String, f32)>)> {
        let out = self.verdict_logits(pooled, h)?;
        let p = candle_nn::ops::sigmoid(&out.fake)?
            .flatten_all()?
            .to_vec1::<f32>()?[0];
        let probs = candle_nn::ops::softmax(&out.types, candle_core::D::Minus1)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut named: Vec<(String, f32)> = crate::forge::record::FORGERY_TYPES
            .iter()
            .map(|s| s.to_string())
            .zip(probs)
            .collect();
        named.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok((p, named))
    }

    /// Mask logits (gh, gw) for one predicting hidden state (1, d).
    pub fn mask_logits(&self, pixel_emb: &SegPixels, h: &Tensor) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        let q = self.seg_projector.forward(h)?.unsqueeze(0)?; // (1, 1, dim)
        self.decode_mask(&q, pixel_emb)?.squeeze(0)?.squeeze(0)
    }
}

/// The face boxes a request is about: given boxes, or detected ones; with none and
/// `whole_image_fallback`, a centred square (with a warning); `req.face` picks one.
pub fn find_faces(
    req: &Request,
    face_margin: f32,
) -> Result<(Vec<[f32; 4]>, Vec<String>), AnalysisError> {
    let mut warnings = Vec::new();
    let mut boxes: Vec<[f32; 4]> = match &req.face_boxes {
        Some(b) => b.clone(),
        None => crate::face::detect_faces(&req.image, Default::default())
            .into_iter()
            .map(|f| f.bbox)
            .collect(),
    };
    if boxes.is_empty() {
        if !req.whole_image_fallback {
            return Err(AnalysisError::NoFace(req.image_path.clone()));
        }
        warnings.push("no face found: the whole image was analysed as one face".to_string());
        let (w, h) = req.image.dimensions();
        // A box whose margin-grown crop is the largest centred square.
        let side = w.min(h) as f32 / (1.0 + 2.0 * face_margin);
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        boxes.push([
            cx - side / 2.0,
            cy - side / 2.0,
            cx + side / 2.0,
            cy + side / 2.0,
        ]);
    }
    if let Some(i) = req.face {
        let found = boxes.len();
        let b = *boxes
            .get(i)
            .ok_or(AnalysisError::NoSuchFace { asked: i, found })?;
        boxes = vec![b];
    }
    Ok((boxes, warnings))
}

fn merr<E: std::fmt::Display>(e: E) -> AnalysisError {
    AnalysisError::Model(e.to_string())
}

fn empty_face(
    face_id: usize,
    bbox: [f32; 4],
    verdict: Verdict,
    p_fake: f32,
    forgery_type: Option<String>,
    type_probs: Vec<(String, f32)>,
) -> FaceResult {
    FaceResult {
        face_id,
        bbox,
        verdict,
        p_fake,
        forgery_type,
        type_probs,
        explanation: String::new(),
        explanation_raw: String::new(),
        segments: vec![],
    }
}

/// Show a held phrase (see the decode loop) as it was written, when no [SEG] followed it.
fn release_held(
    held: &mut Option<(usize, String)>,
    visible: &mut String,
    events: &mut Vec<Event>,
    face_id: usize,
) {
    if let Some((id, text)) = held.take() {
        visible.push_str(&text);
        events.push(Event::TextDelta {
            face_id,
            text: text.clone(),
        });
        events.push(Event::PhraseClose {
            face_id,
            seg_id: id,
            phrase: text.trim().to_string(),
        });
    }
}

/// Bounding box `[x0, y0, x1, y1)` and area of a mask.
pub fn mask_bbox(mask: &GrayImage) -> ([u32; 4], u64) {
    let (mut x0, mut y0, mut x1, mut y1, mut area) = (u32::MAX, u32::MAX, 0, 0, 0u64);
    for (x, y, p) in mask.enumerate_pixels() {
        if p.0[0] > 127 {
            area += 1;
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
    }
    if area == 0 {
        ([0; 4], 0)
    } else {
        ([x0, y0, x1, y1], area)
    }
}

fn box_mask(w: u32, h: u32, b: [f32; 4]) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
        image::Luma([if fx >= b[0] && fx < b[2] && fy >= b[1] && fy < b[3] {
            255
        } else {
            0
        }])
    })
}

/// Bilinearly sample crop-grid logits at every image pixel inside the crop; > 0 = on.
pub fn paste_logits(
    logits: &Tensor,
    crop: &FaceCrop,
    w: u32,
    h: u32,
) -> candle_core::Result<GrayImage> {
    let (gh, gw) = logits.dims2()?;
    let l: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    let [x0, y0, side] = crop.origin;
    let mut out = GrayImage::new(w, h);
    let xs = (x0.max(0.0) as u32)..((x0 + side).min(w as f32).max(0.0) as u32);
    let ys = (y0.max(0.0) as u32)..((y0 + side).min(h as f32).max(0.0) as u32);
    for y in ys {
        let v = ((y as f32 + 0.5 - y0) / side * gh as f32 - 0.5).clamp(0.0, (gh - 1) as f32);
        let (v0, fv) = (v.floor() as usize, v.fract());
        let v1 = (v0 + 1).min(gh - 1);
        for x in xs.clone() {
            let u = ((x as f32 + 0.5 - x0) / side * gw as f32 - 0.5).clamp(0.0, (gw - 1) as f32);
            let (u0, fu) = (u.floor() as usize, u.fract());
            let u1 = (u0 + 1).min(gw - 1);
            let val = l[v0 * gw + u0] * (1.0 - fu) * (1.0 - fv)
                + l[v0 * gw + u1] * fu * (1.0 - fv)
                + l[v1 * gw + u0] * (1.0 - fu) * fv
                + l[v1 * gw + u1] * fu * fv;
            if val > 0.0 {
                out.put_pixel(x, y, image::Luma([255]));
            }
        }
    }
    Ok(out)
}
