//! The trained parts that are not the LLM's own weights, kept together in one safetensors
//! file with a manifest (key → shape, the parts' hyper-parameters) in its header metadata,
//! checked at load: the projector, region projector, added-token rows, seg projector, mask
//! decoder, verdict head, vision-only heads, and (for encoders trained by dfa) the encoder.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::grounding::{AuxHeads, HeadLogits, MaskDecoder, Mlp2, VerdictHead};
use super::vision::{VisionConfig, VisionEncoder};

/// Sizes the parts are built with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartDims {
    pub llm_dim: usize,
    pub mask_dim: usize,
    pub n_types: usize,
    pub n_concepts: usize,
    /// Rows of added tokens ([SEG], <p>, </p>, <image>, <region>).
    pub n_added_tokens: usize,
    /// The verdict head and every `[SEG]` mask add the vision-only heads' logits: the LLM side
    /// learns a correction to the encoder's own verdict and artifact mask (false in older files).
    #[serde(default)]
    pub vision_prior: bool,
}

/// Every trained part around the LLM.
pub struct Parts {
    pub vision: VisionEncoder,
    pub projector: Mlp2,
    pub region_projector: Mlp2,
    pub seg_projector: Mlp2,
    pub mask_decoder: MaskDecoder,
    pub verdict: VerdictHead,
    pub aux: AuxHeads,
    /// (n_added_tokens, llm_dim) embeddings of the added tokens.
    pub token_rows: Tensor,
    /// See [`PartDims::vision_prior`].
    pub vision_prior: bool,
}

impl Parts {
    pub fn new(
        vision_cfg: &VisionConfig,
        dims: &PartDims,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let vision = VisionEncoder::new(vision_cfg, vb.pp(vision_cfg.weight_prefix()))?;
        let (tok, pix, d) = (vision.token_dim(), vision.pixel_dim(), dims.llm_dim);
        let pooled = tok;
        Ok(Self {
            projector: Mlp2::new(tok, d, d, vb.pp("mm_projector"))?,
            region_projector: Mlp2::new(pix, d, d, vb.pp("region_projector"))?,
            seg_projector: Mlp2::new(d, d, dims.mask_dim, vb.pp("seg_projector"))?,
            mask_decoder: MaskDecoder::new(pix, dims.mask_dim, vb.pp("mask_decoder"))?,
            verdict: VerdictHead::new(pooled, d, dims.n_types, vb.pp("verdict_head"))?,
            aux: AuxHeads::new(pooled, pix, dims.n_types, dims.n_concepts, vb.pp("aux"))?,
            token_rows: vb.get_with_hints(
                (dims.n_added_tokens, d),
                "added_tokens",
                candle_nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            )?,
            vision,
            vision_prior: dims.vision_prior,
        })
    }

    /// Verdict and type logits of the MLLM: the verdict head on [pooled ; LLM state], plus the
    /// vision-only heads' logits with `vision_prior`.
    pub fn verdict_logits(
        &self,
        pooled: &Tensor,
        llm_state: &Tensor,
    ) -> candle_core::Result<HeadLogits> {
        let out = self.verdict.forward(pooled, llm_state)?;
        if !self.vision_prior {
            return Ok(out);
        }
        let prior = self.aux.heads(pooled)?;
        Ok(HeadLogits {
            fake: (out.fake + prior.fake)?,
            types: (out.types + prior.types)?,
        })
    }

    /// What every `[SEG]` mask of one image is decoded against.
    pub fn seg_pixels(&self, pixels: &Tensor) -> candle_core::Result<SegPixels> {
        Ok(SegPixels {
            emb: self.mask_decoder.pixel_embeddings(pixels)?,
            prior: if self.vision_prior {
                Some(self.aux.mask_logits(pixels)?)
            } else {
                None
            },
        })
    }

    /// (b, 1, h, w) mask logits of queries (b, 1, dim) (from the seg projector).
    pub fn decode_mask(&self, q: &Tensor, px: &SegPixels) -> candle_core::Result<Tensor> {
        let logits = self.mask_decoder.decode(q, &px.emb)?;
        match &px.prior {
            Some(p) => logits.broadcast_add(p),
            None => Ok(logits),
        }
    }
}

/// Per-pixel embeddings of one image for the mask decoder, and the vision-only mask logits
/// (b, 1, h, w) that each `[SEG]` mask adds with `vision_prior`.
pub struct SegPixels {
    pub emb: Tensor,
    pub prior: Option<Tensor>,
}

/// What the extras file's header says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub vision: VisionConfig,
    pub dims: PartDims,
    /// Concept names of the vision-only concept head, in order.
    pub concepts: Vec<String>,
    /// key → shape of every tensor in the file.
    pub shapes: BTreeMap<String, Vec<usize>>,
}

pub const MANIFEST_FORMAT: &str = "dfa.extras/1";
const MANIFEST_KEY: &str = "dfa.manifest";

#[derive(Debug, thiserror::Error)]
pub enum ExtrasError {
    #[error("cannot read extras {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("extras {path} has no dfa manifest in its header (not written by dfa train?)")]
    NoManifest { path: String },
    #[error("extras {path}: {reason}")]
    Mismatch { path: String, reason: String },
}

/// Write tensors + manifest (shapes are filled in from the tensors).
pub fn save(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    mut manifest: Manifest,
) -> anyhow::Result<()> {
    manifest.format = MANIFEST_FORMAT.into();
    manifest.shapes = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.dims().to_vec()))
        .collect();
    let meta = HashMap::from([(MANIFEST_KEY.to_string(), serde_json::to_string(&manifest)?)]);
    let tmp = path.with_extension("safetensors.tmp");
    let sorted: BTreeMap<&String, &Tensor> = tensors.iter().collect();
    safetensors::serialize_to_file(
        sorted.into_iter().map(|(k, t)| (k.as_str(), t)),
        Some(meta),
        &tmp,
    )?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Read the manifest and check that it matches the tensors in the file.
pub fn read_manifest(path: &Path) -> Result<Manifest, ExtrasError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ExtrasError::Read {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| ExtrasError::Read {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| ExtrasError::Read {
            path: p.clone(),
            reason: e.to_string(),
        })?;
    let raw = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(MANIFEST_KEY))
        .ok_or(ExtrasError::NoManifest { path: p.clone() })?;
    let manifest: Manifest = serde_json::from_str(raw).map_err(|e| ExtrasError::Mismatch {
        path: p.clone(),
        reason: format!("manifest is malformed: {e}"),
    })?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(ExtrasError::Mismatch {
            path: p,
            reason: format!("format {} (expected {MANIFEST_FORMAT})", manifest.format),
        });
    }
    for (name, view) in st.tensors() {
        match manifest.shapes.get(&name) {
            None => {
                return Err(ExtrasError::Mismatch {
                    path: p,
                    reason: format!("tensor {name} is not in the manifest"),
                })
            }
            Some(s) if s != view.shape() => {
                return Err(ExtrasError::Mismatch {
                    path: p,
                    reason: format!(
                        "tensor {name} has shape {:?}, manifest says {s:?}",
                        view.shape()
                    ),
                })
            }
            _ => {}
        }
    }
    if let Some(missing) = manifest.shapes.keys().find(|k| st.tensor(k).is_err()) {
        return Err(ExtrasError::Mismatch {
            path: p,
            reason: format!("tensor {missing} is in the manifest but not in the file"),
        });
    }
    Ok(manifest)
}

/// Load the parts from an extras file (manifest checked first; shape errors name the key).
pub fn load(path: &Path, device: &Device) -> anyhow::Result<(Parts, Manifest)> {
    let manifest = read_manifest(path)?;
    let vb =
        unsafe { VarBuilder::from_mmaped_safetensors(&[path], candle_core::DType::F32, device)? };
    let parts =
        Parts::new(&manifest.vision, &manifest.dims, vb).map_err(|e| ExtrasError::Mismatch {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    Ok((parts, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cnn::CnnConfig;

    fn dims() -> PartDims {
        PartDims {
            llm_dim: 32,
            mask_dim: 16,
            n_types: 7,
            n_concepts: 5,
            n_added_tokens: 5,
            vision_prior: false,
        }
    }

    #[test]
    fn save_load_round_trip_and_manifest_checks() {
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let vision = VisionConfig::DfaCnn(CnnConfig {
            widths: [8, 8, 16, 16],
            pixel_dim: 8,
            token_grid: 2,
            in_channels: 3,
        });
        Parts::new(
            &vision,
            &dims(),
            VarBuilder::from_varmap(&vm, candle_core::DType::F32, &dev),
        )
        .unwrap();
        let tensors: HashMap<String, Tensor> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        let m = Manifest {
            format: String::new(),
            vision: vision.clone(),
            dims: dims(),
            concepts: vec![],
            shapes: BTreeMap::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extras.safetensors");
        save(&path, &tensors, m.clone()).unwrap();
        let (parts, manifest) = load(&path, &dev).unwrap();
        assert_eq!(manifest.dims, dims());
        assert_eq!(parts.token_rows.dims(), &[5, 32]);

        // A file whose tensors disagree with its manifest is refused, naming the tensor.
        let mut wrong = tensors.clone();
        wrong.insert(
            "mm_projector.0.weight".into(),
            Tensor::zeros((3, 3), candle_core::DType::F32, &dev).unwrap(),
        );
        let bad = dir.path().join("bad.safetensors");
        save(&bad, &wrong, m.clone()).unwrap();
        let err = load(&bad, &dev).err().unwrap().to_string();
        assert!(err.contains("mm_projector.0.weight"), "{err}");

        // A plain safetensors without manifest is refused.
        let plain = dir.path().join("plain.safetensors");
        candle_core::safetensors::save(&tensors, &plain).unwrap();
        assert!(matches!(
            read_manifest(&plain),
            Err(ExtrasError::NoManifest { .. })
        ));
    }
}
