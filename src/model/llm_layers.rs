//! Building blocks of the llama-family decoder: linear layers (dense, quantized, with an
//! optional LoRA branch), RMS norm, rotary embeddings, attention with GQA and a KV cache, and
//! the SwiGLU MLP.
//!
//! Every op has two paths: a fast inference path (candle's fused kernels, which have no
//! backward) and a differentiable path composed of basic ops. The differentiable path is taken
//! when `train` is set or when the input already tracks gradients, so a gradient never stops
//! silently.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor, D};

use super::llm_frozen::frozen_linear;

/// Whether to take the differentiable path for `x`.
fn differentiable(x: &Tensor, train: bool) -> bool {
    train || x.track_op()
}

/// A frozen base weight, `(out, in)`.
#[derive(Debug, Clone)]
pub(crate) enum BaseWeight {
    /// A plain tensor (f32 unless the model was loaded in another dtype).
    Dense(Tensor),
    /// A GGUF quantized tensor run with candle's quantized matmul kernels.
    Quant(Arc<QTensor>),
    /// Both: the dense copy for many rows at once (prefill, training), the quantized one for
    /// a few rows (decoding), where int8 matvec beats f32.
    Hybrid { dense: Tensor, quant: Arc<QTensor> },
}

/// Inputs with fewer rows than this use the quantized half of a [`BaseWeight::Hybrid`].
const HYBRID_MAX_QUANT_ROWS: usize = 4;

impl BaseWeight {
    /// `(out, in)`.
    pub(crate) fn dims(&self) -> Result<(usize, usize)> {
        match self {
            Self::Dense(w) | Self::Hybrid { dense: w, .. } => w.dims2(),
            Self::Quant(q) => q.shape().dims2(),
        }
    }

    /// The weight as a dense tensor of `dtype`.
    pub(crate) fn dense(&self, device: &Device, dtype: DType) -> Result<Tensor> {
        match self {
            Self::Dense(w) | Self::Hybrid { dense: w, .. } => w.to_dtype(dtype),
            Self::Quant(q) => q.dequantize(device)?.to_dtype(dtype),
        }
    }
}

/// A low-rank update `scale · B · A` next to a frozen weight (unmerged LoRA).
#[derive(Debug, Clone)]
pub(crate) struct LoraBranch {
    /// `(r, in)`.
    pub a: Tensor,
    /// `(out, r)`.
    pub b: Tensor,
    pub scale: f64,
}

/// `y = W x (+ bias) (+ scale · B A x)`.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub base: BaseWeight,
    pub bias: Option<Tensor>,
    pub lora: Option<LoraBranch>,
}

/// `x (..., in) · wᵀ` for a 2-D weight, flattening leading dims so the GEMM is one call.
pub(crate) fn matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let k = dims[dims.len() - 1];
    let (n, _) = w.dims2()?;
    let y = x.reshape((x.elem_count() / k, k))?.matmul(&w.t()?)?;
    let mut out = dims;
    *out.last_mut().expect("non-empty dims") = n;
    y.reshape(out)
}

impl Linear {
    pub(crate) fn new(base: BaseWeight, bias: Option<Tensor>) -> Self {
        Self {
            base,
            bias,
            lora: None,
        }
    }

    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let train = differentiable(x, train);
        let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?.max(1);
        let mut y = match &self.base {
            BaseWeight::Dense(w) | BaseWeight::Hybrid { dense: w, .. } if train => {
                frozen_linear(x, w)?
            }
            BaseWeight::Hybrid { quant, .. } if rows < HYBRID_MAX_QUANT_ROWS => {
                QMatMul::QTensor(quant.clone()).forward(x)?
            }
            BaseWeight::Dense(w) | BaseWeight::Hybrid { dense: w, .. } => matmul_t(x, w)?,
            BaseWeight::Quant(q) if train => frozen_linear(x, &q.dequantize(x.device())?)?,
            BaseWeight::Quant(q) => QMatMul::QTensor(q.clone()).forward(x)?,
        };
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(bias)?;
        }
        if let Some(l) = &self.lora {
            let delta = matmul_t(&matmul_t(x, &l.a)?, &l.b)?;
            y = (y + (delta * l.scale)?)?;
        }
        Ok(y)
    }
}

/// Root-mean-square layer norm with a learned scale.
#[derive(Debug, Clone)]
pub(crate) struct RmsNorm {
    pub weight: Tensor,
    pub eps: f64,
}

impl RmsNorm {
    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !differentiable(x, train) {
            return candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps as f32);
        }
        let dtype = x.dtype();
        let wide = match dtype {
            DType::F16 | DType::BF16 => x.to_dtype(DType::F32)?,
            _ => x.clone(),
        };
        let ms = wide.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = wide.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
        normed.to_dtype(dtype)?.broadcast_mul(&self.weight)
    }
}

/// Rotary position embedding in the HF ("rotate half") layout.
#[derive(Debug, Clone)]
pub(crate) struct Rope {
    /// `(max_pos, head_dim / 2)`.
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    pub(crate) fn new(
        head_dim: usize,
        max_pos: usize,
        theta: f64,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let half = head_dim / 2;
        let inv: Vec<f32> = (0..half)
            .map(|i| (1.0 / theta.powf(2.0 * i as f64 / head_dim as f64)) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, half), dev)?;
        let pos = Tensor::arange(0u32, max_pos as u32, dev)?
            .to_dtype(DType::F32)?
            .reshape((max_pos, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok(Self {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
        })
    }

    pub(crate) fn max_positions(&self) -> usize {
        self.cos.dim(0).unwrap_or(0)
    }

    /// Rotates `x (b, heads, t, head_dim)` for positions `pos .. pos + t`.
    pub(crate) fn apply(&self, x: &Tensor, pos: usize, train: bool) -> Result<Tensor> {
        let t = x.dim(2)?;
        let cos = self.cos.narrow(0, pos, t)?;
        let sin = self.sin.narrow(0, pos, t)?;
        if !differentiable(x, train) {
            return candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin);
        }
        let half = x.dim(D::Minus1)? / 2;
        let cos = Tensor::cat(&[&cos, &cos], D::Minus1)?;
        let sin = Tensor::cat(&[&sin, &sin], D::Minus1)?;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
    }
}

/// Softmax over the last dim; the differentiable path is composed of basic ops.
fn softmax(x: &Tensor, train: bool) -> Result<Tensor> {
    if !differentiable(x, train) {
        return candle_nn::ops::softmax_last_dim(x);
    }
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Repeats each kv head `n_rep` times: `(b, kv, t, d)` → `(b, kv · n_rep, t, d)`.
fn repeat_kv(x: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x);
    }
    let (b, kv, t, d) = x.dims4()?;
    Tensor::cat(&vec![&x; n_rep], 2)?.reshape((b, kv * n_rep, t, d))
}

/// Causal mask `(t, pos + t)`: 0 where query `i` may see key `j`, -inf elsewhere.
pub(crate) fn causal_mask(t: usize, pos: usize, dtype: DType, dev: &Device) -> Result<Tensor> {
    let total = pos + t;
    let m: Vec<f32> = (0..t)
        .flat_map(|i| (0..total).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(m, (t, total), dev)?.to_dtype(dtype)
}

/// Self-attention with grouped-query heads.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub n_heads: usize,
    pub n_kv: usize,
    pub head_dim: usize,
}

/// Cached keys and values of one layer, `(b, kv, t, head_dim)` each.
pub(crate) type LayerCache = Option<(Tensor, Tensor)>;

impl Attention {
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        cache: Option<&mut LayerCache>,
        pos: usize,
        train: bool,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            y.reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(self.q.forward(x, train)?, self.n_heads)?;
        let k = heads(self.k.forward(x, train)?, self.n_kv)?;
        let v = heads(self.v.forward(x, train)?, self.n_kv)?;
        let q = rope.apply(&q, pos, train)?;
        let mut k = rope.apply(&k, pos, train)?;
        let mut v = v;
        if let Some(cache) = cache {
            if let Some((pk, pv)) = cache.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *cache = Some((k.clone(), v.clone()));
        }
        let past = k.dim(2)? - t;
        let n_rep = self.n_heads / self.n_kv;
        let k = repeat_kv(k, n_rep)?;
        let v = repeat_kv(v, n_rep)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut att = (q.matmul(&k.t()?)? * scale)?;
        if t > 1 {
            att = att.broadcast_add(&causal_mask(t, past, att.dtype(), att.device())?)?;
        }
        let att = softmax(&att, train)?;
        let y = att
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, self.n_heads * self.head_dim))?;
        self.o.forward(&y, train)
    }
}

/// The SwiGLU feed-forward block.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl Mlp {
    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let g = self.gate.forward(x, train)?.silu()?;
        self.down.forward(&(g * self.up.forward(x, train)?)?, train)
    }
}

/// One pre-norm decoder layer.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub attn_norm: RmsNorm,
    pub attn: Attention,
    pub mlp_norm: RmsNorm,
    pub mlp: Mlp,
}

impl Block {
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        cache: Option<&mut LayerCache>,
        pos: usize,
        train: bool,
    ) -> Result<Tensor> {
        let h = self
            .attn
            .forward(&self.attn_norm.forward(x, train)?, rope, cache, pos, train)?;
        let x = (x + h)?;
        let h = self
            .mlp
            .forward(&self.mlp_norm.forward(&x, train)?, train)?;
        x + h
    }

    /// The layer's linear maps by their HF module name (`q_proj`, ..., `down_proj`).
    pub(crate) fn linear_mut(&mut self, module: &str) -> Option<&mut Linear> {
        Some(match module {
            "q_proj" => &mut self.attn.q,
            "k_proj" => &mut self.attn.k,
            "v_proj" => &mut self.attn.v,
            "o_proj" => &mut self.attn.o,
            "gate_proj" => &mut self.mlp.gate,
            "up_proj" => &mut self.mlp.up,
            "down_proj" => &mut self.mlp.down,
            _ => return None,
        })
    }

    /// Read-only counterpart of [`Block::linear_mut`].
    pub(crate) fn linear(&self, module: &str) -> Option<&Linear> {
        Some(match module {
            "q_proj" => &self.attn.q,
            "k_proj" => &self.attn.k,
            "v_proj" => &self.attn.v,
            "o_proj" => &self.attn.o,
            "gate_proj" => &self.mlp.gate,
            "up_proj" => &self.mlp.up,
            "down_proj" => &self.mlp.down,
            _ => return None,
        })
    }
}

/// The HF submodule (`self_attn` / `mlp`) a linear module name lives in.
pub(crate) fn module_parent(module: &str) -> &'static str {
    match module {
        "gate_proj" | "up_proj" | "down_proj" => "mlp",
        _ => "self_attn",
    }
}
