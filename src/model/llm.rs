//! A llama-family decoder (llama, SmolLM2, Qwen2) written for this project in candle: it takes
//! input *embeddings* (so image and region tokens can be spliced in), returns the last hidden
//! states (the `[SEG]` mask embeddings come from them), supports LoRA (see [`super::lora`]) and
//! added token rows, and has a differentiable training path.
//!
//! Architecture: Touvron et al., "LLaMA" (arXiv 2302.13971); grouped-query attention
//! (arXiv 2305.13245); rotary embeddings (arXiv 2104.09864). Weights load from a GGUF file
//! ([`Llm::load_gguf`], see `llm_load.rs`) or an HF safetensors directory
//! ([`Llm::load_safetensors`]); both end up in the HF layout (GGUF q/k rows are un-permuted at
//! load), so one RoPE path and one LoRA layout serve both.
//!
//! ```ignore
//! let (mut llm, meta) = Llm::load_gguf(path, true, &Device::Cpu)?;
//! let mut tok = tokenizer_from_gguf(&meta)?;
//! let ids = add_dfa_tokens(&mut tok)?;                    // [SEG] <p> </p> <image> <region>
//! llm.append_token_rows(&rows)?;                          // (5, hidden), or set_extra_rows(var)
//! let embeds = Tensor::cat(&[&llm.embed(&text_ids)?, &image_embeds], 1)?;
//! let mut cache = llm.new_cache();
//! let hidden = llm.forward(&embeds, Some(&mut cache), 0)?; // (b, t, hidden), final-normed
//! let logits = llm.logits(&hidden.narrow(1, t - 1, 1)?)?;
//! // training: llm.add_trainable_lora(&cfg, &varmap)?; llm.forward_train(&embeds)? ...
//! ```

use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};

use super::llm_layers::{matmul_t, Block, LayerCache, Linear, RmsNorm, Rope};
use super::lora::LoraConfig;
use super::sampling::Sampler;

/// Errors of the LLM, tokenizer and LoRA code.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("unsupported model config: {0}")]
    Config(String),
    #[error("missing weight {0}")]
    MissingWeight(String),
    #[error("weight {name} has shape {got:?}, expected {want:?}")]
    WeightShape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    #[error("LoRA adapter: {0}")]
    Adapter(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Input(String),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, LlmError>;

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    2048
}
fn default_act() -> String {
    "silu".into()
}

/// Hyper-parameters of a llama-family decoder, as in an HF `config.json` (llama, qwen2) or
/// the `llama.*` keys of a GGUF file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmConfig {
    #[serde(default)]
    pub model_type: String,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Defaults to `num_attention_heads` (no GQA).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Defaults to `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    pub vocab_size: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Bias on q/k/v (qwen2 has it; llama's `attention_bias`). Defaults by `model_type`.
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Only `null` / absent is supported (no llama-3 / YaRN scaling).
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
}

impl LlmConfig {
    /// Reads and checks an HF `config.json`.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| LlmError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|source| LlmError::Json {
            path: path.display().to_string(),
            source,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether q/k/v carry a bias (qwen2 does).
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.model_type == "qwen2")
    }

    /// Rejects configurations this implementation would compute wrongly.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LlmError::Config(m));
        if self.num_attention_heads == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return bad("zero-sized model".into());
        }
        if self.kv_heads() == 0 || !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return bad(format!(
                "{} attention heads are not a multiple of {} kv heads",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if self.head_dim() == 0 || !self.head_dim().is_multiple_of(2) {
            return bad(format!("head_dim {} must be even", self.head_dim()));
        }
        if self.hidden_act != "silu" {
            return bad(format!("hidden_act {:?} (only silu)", self.hidden_act));
        }
        if matches!(&self.rope_scaling, Some(v) if !v.is_null()) {
            return bad("rope_scaling is not supported".into());
        }
        Ok(())
    }
}

/// Keys and values of every layer for incremental decoding. One cache per sequence (batch).
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(super) layers: Vec<LayerCache>,
    pub(super) len: usize,
}

impl KvCache {
    /// Number of positions already cached (the `pos` of the next [`Llm::forward`] call).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops everything after the first `len` positions (to re-use a shared prefix).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len {
            return Ok(());
        }
        for layer in self.layers.iter_mut() {
            if let Some((k, v)) = layer.take() {
                if len > 0 {
                    *layer = Some((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?));
                }
            }
        }
        self.len = len;
        Ok(())
    }
}

/// A llama-family decoder with optional LoRA branches and added token rows.
#[derive(Debug, Clone)]
pub struct Llm {
    pub(super) cfg: LlmConfig,
    /// `(vocab, hidden)` input embeddings of the base vocabulary.
    pub(super) embed: Tensor,
    /// `(n, hidden)` rows of added tokens (ids `vocab..vocab + n`), input and output alike.
    pub(super) extra: Option<Tensor>,
    pub(super) blocks: Vec<Block>,
    pub(super) norm: RmsNorm,
    /// The output projection of the base vocabulary (tied to `embed` or separate).
    pub(super) head: Linear,
    pub(super) rope: Rope,
    pub(super) device: Device,
    pub(super) dtype: DType,
    /// The LoRA configuration of the branches currently attached (unmerged or trainable).
    pub(super) lora_cfg: Option<LoraConfig>,
    /// How the weights are held, for provenance (e.g. "gguf q8_0", "safetensors f32").
    pub(super) weights_desc: String,
}

impl Llm {
    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of activations and dense weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }

    /// Size of the base vocabulary (without added rows).
    pub fn base_vocab(&self) -> usize {
        self.cfg.vocab_size
    }

    /// Base vocabulary plus added rows: valid ids are `0..vocab_size()`.
    pub fn vocab_size(&self) -> usize {
        self.cfg.vocab_size + self.extra.as_ref().map_or(0, |e| e.dim(0).unwrap_or(0))
    }

    /// How the weights are held (for provenance), e.g. `"gguf f32 (dequantized)"`.
    pub fn weights_description(&self) -> &str {
        &self.weights_desc
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: vec![None; self.blocks.len()],
            len: 0,
        }
    }

    /// The rows of added tokens, if any.
    pub fn extra_rows(&self) -> Option<&Tensor> {
        self.extra.as_ref()
    }

    /// Appends `rows (n, hidden)` as new tokens `vocab_size()..vocab_size() + n`, used both as
    /// input embeddings and as output (head) rows.
    pub fn append_token_rows(&mut self, rows: &Tensor) -> Result<()> {
        let rows = self.check_rows(rows)?;
        self.extra = Some(match &self.extra {
            Some(old) => Tensor::cat(&[old, &rows], 0)?,
            None => rows,
        });
        Ok(())
    }

    /// Replaces all added-token rows by `rows (n, hidden)`, e.g. a trainer's own `Var`: both
    /// [`Llm::embed`] and [`Llm::logits`] then read (and backpropagate into) that tensor.
    pub fn set_extra_rows(&mut self, rows: Tensor) -> Result<()> {
        self.extra = Some(self.check_rows(&rows)?);
        Ok(())
    }

    fn check_rows(&self, rows: &Tensor) -> Result<Tensor> {
        let (_, d) = rows.dims2()?;
        if d != self.cfg.hidden_size {
            return Err(LlmError::Input(format!(
                "token rows have width {d}, the model's hidden size is {}",
                self.cfg.hidden_size
            )));
        }
        if rows.dtype() != self.dtype || !rows.device().same_device(&self.device) {
            return Ok(rows.to_dtype(self.dtype)?.to_device(&self.device)?);
        }
        Ok(rows.clone())
    }

    /// Token ids `(b, t)` → embeddings `(b, t, hidden)`; ids past the base vocabulary read the
    /// added rows (differentiably, when those are a `Var`).
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let flat: Vec<u32> = ids.flatten_all()?.to_dtype(DType::U32)?.to_vec1()?;
        let (base_n, total) = (self.base_vocab() as u32, self.vocab_size() as u32);
        if let Some(bad) = flat.iter().find(|&&i| i >= total) {
            return Err(LlmError::Input(format!(
                "token id {bad} is outside the vocabulary (size {total})"
            )));
        }
        let dev = &self.device;
        let d = self.cfg.hidden_size;
        let pick = |table: &Tensor, idx: Vec<u32>| -> Result<Tensor> {
            Ok(table.index_select(&Tensor::from_vec(idx, flat.len(), dev)?, 0)?)
        };
        let out = match &self.extra {
            Some(extra) if flat.iter().any(|&i| i >= base_n) => {
                let base = pick(
                    &self.embed,
                    flat.iter()
                        .map(|&i| if i < base_n { i } else { 0 })
                        .collect(),
                )?;
                let added = pick(
                    extra,
                    flat.iter().map(|&i| i.saturating_sub(base_n)).collect(),
                )?;
                let is_added: Vec<u8> = flat.iter().map(|&i| u8::from(i >= base_n)).collect();
                let mask = Tensor::from_vec(is_added, (flat.len(), 1), dev)?
                    .broadcast_as((flat.len(), d))?;
                mask.where_cond(&added, &base)?
            }
            _ => pick(&self.embed, flat.clone())?,
        };
        Ok(out.reshape((b, t, d))?)
    }

    /// Runs the decoder on `embeds (b, t, hidden)` at positions `pos..pos + t` and returns the
    /// last hidden states after the final norm, `(b, t, hidden)`, for every position. With a
    /// cache, `pos` must equal `cache.len()` and the new keys/values are appended to it.
    pub fn forward(
        &self,
        embeds: &Tensor,
        cache: Option<&mut KvCache>,
        pos: usize,
    ) -> Result<Tensor> {
        self.run(embeds, cache, pos, false)
    }

    /// Training forward: no cache, full causal attention, only ops with a backward, so
    /// gradients reach LoRA branches, added token rows and `embeds`; frozen base weights get
    /// none (their matmuls skip the weight gradient). Same result as [`Llm::forward`] at
    /// `pos = 0`. Train on an f32-held base: a quantized weight is dequantized on every call.
    /// Padding is not masked, so pad batches on the right.
    pub fn forward_train(&self, embeds: &Tensor) -> Result<Tensor> {
        self.run(embeds, None, 0, true)
    }

    fn run(
        &self,
        embeds: &Tensor,
        mut cache: Option<&mut KvCache>,
        pos: usize,
        train: bool,
    ) -> Result<Tensor> {
        let (_, t, d) = embeds.dims3()?;
        if d != self.cfg.hidden_size {
            return Err(LlmError::Input(format!(
                "embeddings have width {d}, the model's hidden size is {}",
                self.cfg.hidden_size
            )));
        }
        if pos + t > self.rope.max_positions() {
            return Err(LlmError::Input(format!(
                "sequence of {} positions exceeds the model's maximum of {}",
                pos + t,
                self.rope.max_positions()
            )));
        }
        if let Some(c) = cache.as_deref() {
            if c.len != pos || c.layers.len() != self.blocks.len() {
                return Err(LlmError::Input(format!(
                    "cache holds {} positions of {} layers, but forward was called at position {pos} with {} layers",
                    c.len,
                    c.layers.len(),
                    self.blocks.len()
                )));
            }
        }
        let mut x = embeds.to_dtype(self.dtype)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(&x, &self.rope, layer_cache, pos, train)?;
        }
        if let Some(c) = cache {
            c.len += t;
        }
        Ok(self.norm.forward(&x, train)?)
    }

    /// Hidden states `(b, t, hidden)` → logits `(b, t, vocab_size())` over the base vocabulary
    /// followed by the added tokens. Differentiable w.r.t. `hidden` and the added rows.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let base = self.head.forward(hidden, false)?;
        Ok(match &self.extra {
            Some(extra) => Tensor::cat(&[&base, &matmul_t(hidden, extra)?], D::Minus1)?,
            None => base,
        })
    }

    /// Decodes from `prompt` token ids until a `stop` id or `max_new` tokens; returns the new
    /// ids (a stop id that ended decoding is included).
    pub fn generate(
        &self,
        prompt: &[u32],
        max_new: usize,
        sampler: &mut Sampler,
        stop: &[u32],
    ) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(LlmError::Input("empty prompt".into()));
        }
        let mut cache = self.new_cache();
        let ids = Tensor::from_vec(prompt.to_vec(), (1, prompt.len()), &self.device)?;
        let mut hidden = self.forward(&self.embed(&ids)?, Some(&mut cache), 0)?;
        let mut out = Vec::new();
        while out.len() < max_new {
            let last = hidden.narrow(1, hidden.dim(1)? - 1, 1)?;
            let next = sampler.sample(&self.logits(&last)?)?;
            out.push(next);
            if stop.contains(&next) {
                break;
            }
            let ids = Tensor::from_vec(vec![next], (1, 1), &self.device)?;
            let pos = cache.len();
            hidden = self.forward(&self.embed(&ids)?, Some(&mut cache), pos)?;
        }
        Ok(out)
    }

    /// Every frozen base tensor (for tests that check they get no gradient).
    #[cfg(test)]
    pub(super) fn frozen_weights_for_test(&self) -> Vec<Tensor> {
        use super::llm_layers::BaseWeight;
        let mut out = vec![self.embed.clone(), self.norm.weight.clone()];
        for b in &self.blocks {
            out.push(b.attn_norm.weight.clone());
            out.push(b.mlp_norm.weight.clone());
            for m in super::lora::LORA_MODULES {
                if let BaseWeight::Dense(w) = &b.linear(m).expect("known module").base {
                    out.push(w.clone());
                }
            }
        }
        out
    }
}
