//! A ViT in the HF `CLIPVisionModel` layout (CLIP, FaRL: "General Facial Representation Learning
//! in a Visual-Linguistic Manner", arXiv 2112.03109, uses the same ViT-B/16). Every `vb.pp` name is
//! the checkpoint key, so `vision_model.*` weights from a hub checkpoint load as they are.
//! Position embeddings are interpolated (bilinear) to other input sizes; features can be taken
//! from any layer (multi-level), e.g. the penultimate one as LLaVA does.

use candle_core::{Module, Result, Tensor};
use candle_nn::{
    conv2d_no_bias, embedding, layer_norm, linear, Conv2dConfig, Embedding, LayerNorm, Linear,
    VarBuilder,
};
use serde::{Deserialize, Serialize};

use super::vision::VisionFeatures;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClipConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Size the position embeddings were trained at.
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// "quick_gelu" (OpenAI CLIP) or "gelu".
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Layers whose outputs are averaged into the features (negative = from the end).
    #[serde(default = "default_feature_layers")]
    pub feature_layers: Vec<i32>,
    /// Patch tokens are average-pooled to a `token_grid`² grid for the LLM (plus the CLS token).
    #[serde(default = "default_token_grid")]
    pub token_grid: usize,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "quick_gelu".into()
}
fn default_feature_layers() -> Vec<i32> {
    vec![-2]
}
fn default_token_grid() -> usize {
    4
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let hd = d / self.heads;
        let split = |t: Tensor| {
            t.reshape((b, n, self.heads, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = (split(self.q.forward(x)?)? * (hd as f64).powf(-0.5))?;
        let k = split(self.k.forward(x)?)?;
        let v = split(self.v.forward(x)?)?;
        let att = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, n, d))?;
        self.out.forward(&y)
    }
}

struct Layer {
    attn: Attention,
    ln1: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    ln2: LayerNorm,
    quick_gelu: bool,
}

impl Layer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln1.forward(x)?)?)?;
        let h = self.fc1.forward(&self.ln2.forward(&x)?)?;
        let h = if self.quick_gelu {
            (&h * candle_nn::ops::sigmoid(&(&h * 1.702)?)?)?
        } else {
            h.gelu_erf()?
        };
        x + self.fc2.forward(&h)?
    }
}

pub struct ClipVit {
    pub cfg: ClipConfig,
    patch: candle_nn::Conv2d,
    class_embedding: Tensor,
    positions: Embedding,
    pre_ln: LayerNorm,
    layers: Vec<Layer>,
    post_ln: LayerNorm,
}

impl ClipVit {
    /// `vb` points at the `vision_model` prefix.
    pub fn new(cfg: &ClipConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.hidden_size;
        let emb = vb.pp("embeddings");
        let pcfg = Conv2dConfig {
            stride: cfg.patch_size,
            ..Default::default()
        };
        let grid = cfg.image_size / cfg.patch_size;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layers.{i}"));
            let a = l.pp("self_attn");
            layers.push(Layer {
                attn: Attention {
                    q: linear(d, d, a.pp("q_proj"))?,
                    k: linear(d, d, a.pp("k_proj"))?,
                    v: linear(d, d, a.pp("v_proj"))?,
                    out: linear(d, d, a.pp("out_proj"))?,
                    heads: cfg.num_attention_heads,
                },
                ln1: layer_norm(d, cfg.layer_norm_eps, l.pp("layer_norm1"))?,
                fc1: linear(d, cfg.intermediate_size, l.pp("mlp.fc1"))?,
                fc2: linear(cfg.intermediate_size, d, l.pp("mlp.fc2"))?,
                ln2: layer_norm(d, cfg.layer_norm_eps, l.pp("layer_norm2"))?,
                quick_gelu: cfg.hidden_act == "quick_gelu",
            });
        }
        Ok(Self {
            cfg: cfg.clone(),
            patch: conv2d_no_bias(3, d, cfg.patch_size, pcfg, emb.pp("patch_embedding"))?,
            class_embedding: emb.get(d, "class_embedding")?,
            positions: embedding(grid * grid + 1, d, emb.pp("position_embedding"))?,
            pre_ln: layer_norm(d, cfg.layer_norm_eps, vb.pp("pre_layrnorm"))?,
            layers,
            post_ln: layer_norm(d, cfg.layer_norm_eps, vb.pp("post_layernorm"))?,
        })
    }

    pub fn token_dim(&self) -> usize {
        self.cfg.hidden_size
    }

    /// Position embeddings for a `gh`×`gw` patch grid: the trained grid resized bilinearly.
    fn position_embeddings(&self, gh: usize, gw: usize) -> Result<Tensor> {
        let table = self.positions.embeddings();
        let d = self.cfg.hidden_size;
        let g0 = self.cfg.image_size / self.cfg.patch_size;
        if gh == g0 && gw == g0 {
            return Ok(table.clone());
        }
        let cls = table.narrow(0, 0, 1)?;
        let grid = table.narrow(0, 1, g0 * g0)?.t()?.reshape((1, d, g0, g0))?;
        let grid = grid
            .upsample_bilinear2d(gh, gw, false)?
            .reshape((d, gh * gw))?
            .t()?;
        Tensor::cat(&[cls, grid], 0)
    }

    /// `x`: (b, 3, H, W) normalised; H and W multiples of the patch size.
    pub fn forward(&self, x: &Tensor) -> Result<VisionFeatures> {
        let p = self.patch.forward(x)?; // (b, d, gh, gw)
        let (b, d, gh, gw) = p.dims4()?;
        let patches = p.flatten_from(2)?.transpose(1, 2)?;
        let cls = self
            .class_embedding
            .reshape((1, 1, d))?
            .broadcast_as((b, 1, d))?;
        let h = Tensor::cat(&[cls, patches], 1)?
            .broadcast_add(&self.position_embeddings(gh, gw)?.unsqueeze(0)?)?;
        let mut h = self.pre_ln.forward(&h)?;
        let n = self.layers.len() as i32;
        let wanted: Vec<usize> = self
            .cfg
            .feature_layers
            .iter()
            .map(|&l| if l < 0 { (n + l) as usize } else { l as usize })
            .collect();
        let mut picked: Vec<Tensor> = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if wanted.contains(&i) {
                picked.push(h.clone());
            }
        }
        let feats = if picked.is_empty() {
            h.clone()
        } else {
            (Tensor::stack(&picked, 0)?.mean(0))?
        };
        let pooled = self.post_ln.forward(&h.narrow(1, 0, 1)?.squeeze(1)?)?;
        let patch_feats = feats.narrow(1, 1, gh * gw)?; // (b, n, d)
        let pixels = patch_feats.transpose(1, 2)?.reshape((b, d, gh, gw))?;
        let g = self.cfg.token_grid;
        let grid = pixels
            .avg_pool2d((gh / g, gw / g))?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let tokens = Tensor::cat(&[grid, pooled.unsqueeze(1)?], 1)?;
        Ok(VisionFeatures {
            tokens,
            pixels,
            pooled,
        })
    }
}
