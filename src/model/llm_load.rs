//! Loading [`Llm`] weights from a GGUF file (llama.cpp layout) or an HF safetensors directory.
//!
//! GGUF llama files store q/k rows permuted for interleaved RoPE (llama.cpp's converter
//! interleaves the two halves of every head). They are un-permuted here, row by row on the raw
//! (possibly quantized) bytes, so every model runs in the HF layout: one RoPE path, and PEFT
//! LoRA adapters mean the same thing on a GGUF or an HF base.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};

use super::llm::{Llm, LlmConfig, LlmError, Result};
use super::llm_layers::{Attention, BaseWeight, Block, Linear, Mlp, RmsNorm, Rope};

/// Rotary tables are built for at most this many positions (longer contexts are refused).
const MAX_ROPE_POSITIONS: usize = 32_768;

/// How GGUF weights are held in memory. See `benches/llm.rs` for the measured speeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightMode {
    /// Keep the file's quantization and run candle's quantized kernels.
    Native,
    /// Dequantize every weight to f32 at load (plain GEMM): exactly the file's weights, the
    /// same numerics LoRA training sees. The default.
    #[default]
    F32,
    /// Re-quantize every matrix to Q8_0 at load (int8 kernels, 1/4 of f32 memory).
    Q8_0,
    /// Both f32 (for prefill) and Q8_0 (for decoding a few rows at a time); 1.25× f32 memory.
    /// The fastest (f32 prefill, ~1.5× faster decode), but the int8 weights *and* activations
    /// shift logits enough to flip marginal greedy choices (SmolLM2-135M answers the France
    /// question with "L'Étoile ..." instead of "Paris"), so it is opt-in.
    F32Q8,
}

impl WeightMode {
    fn label(self) -> &'static str {
        match self {
            Self::Native => "native quantized",
            Self::F32 => "f32 (dequantized)",
            Self::Q8_0 => "q8_0 (re-quantized)",
            Self::F32Q8 => "f32 + q8_0 (prefill f32, decode q8_0)",
        }
    }
}

/// Tokenizer and chat metadata carried by a GGUF file.
#[derive(Debug, Clone, Default)]
pub struct GgufMeta {
    pub architecture: String,
    pub name: Option<String>,
    /// `tokenizer.ggml.model`, e.g. `gpt2` (byte-level BPE).
    pub tokenizer_model: Option<String>,
    /// `tokenizer.ggml.pre`, e.g. `smollm`.
    pub tokenizer_pre: Option<String>,
    pub tokens: Vec<String>,
    /// llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte.
    pub token_types: Vec<i32>,
    /// `"left right"` pairs in merge order.
    pub merges: Vec<String>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub unk_id: Option<u32>,
    pub pad_id: Option<u32>,
    pub chat_template: Option<String>,
}

type Meta = HashMap<String, gguf_file::Value>;

fn meta_u32(m: &Meta, key: &str) -> Option<u32> {
    m.get(key).and_then(|v| {
        v.to_u32()
            .ok()
            .or_else(|| v.to_u64().ok().map(|x| x as u32))
    })
}

fn meta_string(m: &Meta, key: &str) -> Option<String> {
    m.get(key).and_then(|v| v.to_string().ok().cloned())
}

fn meta_strings(m: &Meta, key: &str) -> Vec<String> {
    m.get(key)
        .and_then(|v| v.to_vec().ok())
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.to_string().ok().cloned())
                .collect()
        })
        .unwrap_or_default()
}

impl GgufMeta {
    fn from_metadata(m: &Meta) -> Self {
        let token_types = m
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok())
            .map(|vs| vs.iter().filter_map(|v| v.to_i32().ok()).collect())
            .unwrap_or_default();
        Self {
            architecture: meta_string(m, "general.architecture").unwrap_or_default(),
            name: meta_string(m, "general.name"),
            tokenizer_model: meta_string(m, "tokenizer.ggml.model"),
            tokenizer_pre: meta_string(m, "tokenizer.ggml.pre"),
            tokens: meta_strings(m, "tokenizer.ggml.tokens"),
            token_types,
            merges: meta_strings(m, "tokenizer.ggml.merges"),
            bos_id: meta_u32(m, "tokenizer.ggml.bos_token_id"),
            eos_id: meta_u32(m, "tokenizer.ggml.eos_token_id"),
            unk_id: meta_u32(m, "tokenizer.ggml.unknown_token_id"),
            pad_id: meta_u32(m, "tokenizer.ggml.padding_token_id"),
            chat_template: meta_string(m, "tokenizer.chat_template"),
        }
    }
}

impl LlmConfig {
    /// Reads the `llama.*` hyper-parameters of a GGUF file.
    pub fn from_gguf_metadata(m: &Meta, n_tokens: usize) -> Result<Self> {
        let need = |k: &str| {
            meta_u32(m, &format!("llama.{k}"))
                .map(|v| v as usize)
                .ok_or_else(|| LlmError::Config(format!("GGUF metadata lacks llama.{k}")))
        };
        let f = |k: &str, d: f64| {
            m.get(&format!("llama.{k}"))
                .and_then(|v| v.to_f32().ok().map(f64::from).or_else(|| v.to_f64().ok()))
                .unwrap_or(d)
        };
        let heads = need("attention.head_count")?;
        let hidden = need("embedding_length")?;
        let vocab = match need("vocab_size") {
            Ok(v) => v,
            Err(_) if n_tokens > 0 => n_tokens,
            Err(e) => return Err(e),
        };
        let cfg = Self {
            model_type: "llama".into(),
            hidden_size: hidden,
            intermediate_size: need("feed_forward_length")?,
            num_hidden_layers: need("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: Some(need("attention.head_count_kv").unwrap_or(heads)),
            head_dim: need("rope.dimension_count")
                .ok()
                .filter(|&d| d != hidden / heads),
            rms_norm_eps: f("attention.layer_norm_rms_epsilon", 1e-5),
            rope_theta: f("rope.freq_base", 10_000.0),
            vocab_size: vocab,
            tie_word_embeddings: true,
            max_position_embeddings: need("context_length").unwrap_or(2048),
            attention_bias: Some(false),
            hidden_act: "silu".into(),
            rope_scaling: None,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Reorders the rows of a GGUF q/k weight from llama.cpp's interleaved-RoPE order back to the
/// HF order: within each head, HF row `j·half + i` is GGUF row `2i + j`.
fn unpermute_rows(q: QTensor, heads: usize, device: &Device) -> Result<QTensor> {
    let (rows, _) = q.shape().dims2()?;
    let data = q.data()?;
    let row_bytes = data.len() / rows;
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut out = Vec::with_capacity(data.len());
    for h in 0..heads {
        for hf_row in 0..head_dim {
            let (j, i) = (hf_row / half, hf_row % half);
            let src = h * head_dim + 2 * i + j;
            out.extend_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
        }
    }
    let storage = QStorage::from_data(std::borrow::Cow::Owned(out), device, q.dtype())?;
    Ok(QTensor::new(storage, q.shape().clone())?)
}

/// Turns a GGUF matrix into a base weight held as `mode` says.
fn base_weight(q: QTensor, mode: WeightMode, device: &Device) -> Result<BaseWeight> {
    let is_float = matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
    Ok(match mode {
        WeightMode::F32 => BaseWeight::Dense(q.dequantize(device)?),
        WeightMode::Native if is_float => BaseWeight::Dense(q.dequantize(device)?),
        WeightMode::Native => BaseWeight::Quant(Arc::new(q)),
        WeightMode::Q8_0 if q.dtype() == GgmlDType::Q8_0 => BaseWeight::Quant(Arc::new(q)),
        WeightMode::Q8_0 => {
            let dense = q.dequantize(device)?;
            match QTensor::quantize(&dense, GgmlDType::Q8_0) {
                Ok(q8) => BaseWeight::Quant(Arc::new(q8)),
                Err(_) => BaseWeight::Dense(dense), // rows not a multiple of 32 values
            }
        }
        WeightMode::F32Q8 => hybrid(q.dequantize(device)?, Some(q))?,
    })
}

/// A [`BaseWeight::Hybrid`] of `dense` and its Q8_0 form (`q` re-used when already Q8_0);
/// plain dense when the rows do not split into Q8_0 blocks.
pub(crate) fn hybrid(dense: Tensor, q: Option<QTensor>) -> Result<BaseWeight> {
    let quant = match q {
        Some(q) if q.dtype() == GgmlDType::Q8_0 => Ok(q),
        _ => QTensor::quantize(&dense, GgmlDType::Q8_0),
    };
    Ok(match quant {
        Ok(quant) => BaseWeight::Hybrid {
            dense,
            quant: Arc::new(quant),
        },
        Err(_) => BaseWeight::Dense(dense),
    })
}

impl Llm {
    /// Loads a llama-architecture GGUF file. `dequantize = true` holds every weight in f32
    /// ([`WeightMode::F32`]), `false` keeps the file's quantization ([`WeightMode::Native`]).
    pub fn load_gguf(path: &Path, dequantize: bool, device: &Device) -> Result<(Llm, GgufMeta)> {
        let mode = if dequantize {
            WeightMode::F32
        } else {
            WeightMode::Native
        };
        Self::load_gguf_with(path, mode, device)
    }

    /// Loads a llama-architecture GGUF file, holding the weights as `mode` says.
    pub fn load_gguf_with(
        path: &Path,
        mode: WeightMode,
        device: &Device,
    ) -> Result<(Llm, GgufMeta)> {
        let io = |source| LlmError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| {
            LlmError::Config(format!("{}: not a readable GGUF file: {e}", path.display()))
        })?;
        let meta = GgufMeta::from_metadata(&content.metadata);
        if meta.architecture != "llama" {
            return Err(LlmError::Config(format!(
                "{}: GGUF architecture {:?} (only llama)",
                path.display(),
                meta.architecture
            )));
        }
        let cfg = LlmConfig::from_gguf_metadata(&content.metadata, meta.tokens.len())?;
        let mut read = |name: &str| -> Result<QTensor> {
            if !content.tensor_infos.contains_key(name) {
                return Err(LlmError::MissingWeight(name.to_string()));
            }
            Ok(content.tensor(&mut file, name, device)?)
        };
        let (d, hd) = (cfg.hidden_size, cfg.head_dim());
        let (heads, kv) = (cfg.num_attention_heads, cfg.kv_heads());
        let mut expect = |name: &str, want: &[usize]| -> Result<QTensor> {
            let q = read(name)?;
            if q.shape().dims() != want {
                return Err(LlmError::WeightShape {
                    name: name.into(),
                    got: q.shape().dims().to_vec(),
                    want: want.to_vec(),
                });
            }
            Ok(q)
        };
        let norm = |q: QTensor| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: q.dequantize(device)?,
                eps: cfg.rms_norm_eps,
            })
        };
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            let ff = cfg.intermediate_size;
            let q = unpermute_rows(expect(&p("attn_q"), &[heads * hd, d])?, heads, device)?;
            let k = unpermute_rows(expect(&p("attn_k"), &[kv * hd, d])?, kv, device)?;
            let lin = |q: QTensor| -> Result<Linear> {
                Ok(Linear::new(base_weight(q, mode, device)?, None))
            };
            blocks.push(Block {
                attn_norm: norm(expect(&p("attn_norm"), &[d])?)?,
                attn: Attention {
                    q: lin(q)?,
                    k: lin(k)?,
                    v: lin(expect(&p("attn_v"), &[kv * hd, d])?)?,
                    o: lin(expect(&p("attn_output"), &[d, heads * hd])?)?,
                    n_heads: heads,
                    n_kv: kv,
                    head_dim: hd,
                },
                mlp_norm: norm(expect(&p("ffn_norm"), &[d])?)?,
                mlp: Mlp {
                    gate: lin(expect(&p("ffn_gate"), &[ff, d])?)?,
                    up: lin(expect(&p("ffn_up"), &[ff, d])?)?,
                    down: lin(expect(&p("ffn_down"), &[d, ff])?)?,
                },
            });
        }
        let tok = expect("token_embd.weight", &[cfg.vocab_size, d])?;
        let embed = tok.dequantize(device)?;
        let head = if content.tensor_infos.contains_key("output.weight") {
            base_weight(expect("output.weight", &[cfg.vocab_size, d])?, mode, device)?
        } else if mode == WeightMode::F32 {
            BaseWeight::Dense(embed.clone())
        } else if mode == WeightMode::F32Q8 {
            hybrid(embed.clone(), Some(tok))?
        } else {
            base_weight(tok, mode, device)?
        };
        let final_norm = norm(expect("output_norm.weight", &[d])?)?;
        let rope = Rope::new(
            hd,
            cfg.max_position_embeddings.min(MAX_ROPE_POSITIONS),
            cfg.rope_theta,
            DType::F32,
            device,
        )?;
        let llm = Llm {
            embed,
            extra: None,
            blocks,
            norm: final_norm,
            head: Linear::new(head, None),
            rope,
            device: device.clone(),
            dtype: DType::F32,
            lora_cfg: None,
            weights_desc: format!("gguf {}", mode.label()),
            cfg,
        };
        Ok((llm, meta))
    }

    /// Loads an HF model directory: `config.json` plus `model.safetensors` (or the shards named
    /// by `model.safetensors.index.json`). Weights are converted to `dtype` (use f32 on CPU).
    pub fn load_safetensors(dir: &Path, dtype: DType, device: &Device) -> Result<Llm> {
        let cfg = LlmConfig::from_file(&dir.join("config.json"))?;
        let mut files = Vec::new();
        let index = dir.join("model.safetensors.index.json");
        if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|source| LlmError::Io {
                path: index.display().to_string(),
                source,
            })?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|source| LlmError::Json {
                    path: index.display().to_string(),
                    source,
                })?;
            let mut names: Vec<String> = v["weight_map"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(|f| f.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names.dedup();
            files.extend(names.into_iter().map(|n| dir.join(n)));
        } else {
            files.push(dir.join("model.safetensors"));
        }
        let mut tensors = HashMap::new();
        for f in &files {
            if !f.exists() {
                return Err(LlmError::MissingWeight(format!("file {}", f.display())));
            }
            tensors.extend(candle_core::safetensors::load(f, device)?);
        }
        Self::from_hf_tensors(cfg, &tensors, dtype, device)
    }

    /// Builds the model from HF-named tensors (`model.layers.N.self_attn.q_proj.weight`, ...).
    pub fn from_hf_tensors(
        cfg: LlmConfig,
        tensors: &HashMap<String, Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Llm> {
        cfg.validate()?;
        let get = |name: &str, want: &[usize]| -> Result<Tensor> {
            let t = tensors
                .get(name)
                .ok_or_else(|| LlmError::MissingWeight(name.to_string()))?;
            if t.dims() != want {
                return Err(LlmError::WeightShape {
                    name: name.into(),
                    got: t.dims().to_vec(),
                    want: want.to_vec(),
                });
            }
            Ok(t.to_dtype(dtype)?.to_device(device)?)
        };
        let (d, hd, ff) = (cfg.hidden_size, cfg.head_dim(), cfg.intermediate_size);
        let (heads, kv) = (cfg.num_attention_heads, cfg.kv_heads());
        let bias = cfg.qkv_bias();
        let lin = |name: &str, out: usize, inp: usize, with_bias: bool| -> Result<Linear> {
            let b = if with_bias {
                Some(get(&format!("{name}.bias"), &[out])?)
            } else {
                None
            };
            Ok(Linear::new(
                BaseWeight::Dense(get(&format!("{name}.weight"), &[out, inp])?),
                b,
            ))
        };
        let norm = |name: &str| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: get(name, &[d])?,
                eps: cfg.rms_norm_eps,
            })
        };
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = |s: &str| format!("model.layers.{i}.{s}");
            blocks.push(Block {
                attn_norm: norm(&p("input_layernorm.weight"))?,
                attn: Attention {
                    q: lin(&p("self_attn.q_proj"), heads * hd, d, bias)?,
                    k: lin(&p("self_attn.k_proj"), kv * hd, d, bias)?,
                    v: lin(&p("self_attn.v_proj"), kv * hd, d, bias)?,
                    o: lin(&p("self_attn.o_proj"), d, heads * hd, false)?,
                    n_heads: heads,
                    n_kv: kv,
                    head_dim: hd,
                },
                mlp_norm: norm(&p("post_attention_layernorm.weight"))?,
                mlp: Mlp {
                    gate: lin(&p("mlp.gate_proj"), ff, d, false)?,
                    up: lin(&p("mlp.up_proj"), ff, d, false)?,
                    down: lin(&p("mlp.down_proj"), d, ff, false)?,
                },
            });
        }
        let embed = get("model.embed_tokens.weight", &[cfg.vocab_size, d])?;
        let head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            get("lm_head.weight", &[cfg.vocab_size, d])?
        };
        Ok(Llm {
            embed,
            extra: None,
            blocks,
            norm: norm("model.norm.weight")?,
            head: Linear::new(BaseWeight::Dense(head), None),
            rope: Rope::new(
                hd,
                cfg.max_position_embeddings.min(MAX_ROPE_POSITIONS),
                cfg.rope_theta,
                dtype,
                device,
            )?,
            device: device.clone(),
            dtype,
            lora_cfg: None,
            weights_desc: format!("safetensors {dtype:?}"),
            cfg,
        })
    }
}
