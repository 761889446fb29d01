//! The trained parts around the LLM (all in the extras safetensors; `vb.pp` names = keys):
//! - `mm_projector`: vision tokens → LLM width (LLaVA's mlp2x_gelu).
//! - `region_projector`: per-pixel features pooled inside a region mask → one `<region>` embedding.
//! - `seg_projector`: the LLM hidden state that predicts `[SEG]` → a mask query (LISA's text_hidden_fcs).
//! - `mask_decoder`: MaskFormer-style dot product between the query and per-pixel embeddings.
//!   Chosen over a SAM decoder because no SAM weights exist offline, a SAM image encoder costs
//!   8.7 s on this CPU, and a dot-product head trains in minutes (see docs/model-format.md).
//! - `verdict_head`: [pooled vision ; LLM hidden at the last prompt position] → P(fake) + type logits.
//! - `aux`: vision-only heads (verdict, type, concepts, per-pixel artifact mask) — the
//!   `vision-only` baseline and an auxiliary training signal for the encoder.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, VarBuilder};

/// Linear → GELU → Linear, keys `.0` and `.2` as in PyTorch `nn.Sequential`.
#[derive(Debug, Clone)]
pub struct Mlp2 {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp2 {
    pub fn new(din: usize, dhid: usize, dout: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(din, dhid, vb.pp("0"))?,
            fc2: linear(dhid, dout, vb.pp("2"))?,
        })
    }
}

impl Module for Mlp2 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.gelu_erf()?)
    }
}

/// Per-pixel embeddings and the dot product with mask queries.
#[derive(Debug, Clone)]
pub struct MaskDecoder {
    pixel_proj: Conv2d,
    refine: Conv2d,
    bias: Tensor,
    dim: usize,
}

impl MaskDecoder {
    pub fn new(pixel_dim: usize, dim: usize, vb: VarBuilder) -> Result<Self> {
        let pad = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Self {
            pixel_proj: conv2d(pixel_dim, dim, 1, Default::default(), vb.pp("pixel_proj"))?,
            refine: conv2d(dim, dim, 3, pad, vb.pp("refine"))?,
            bias: vb.get(1, "bias")?,
            dim,
        })
    }

    /// (b, c_pix, h, w) → (b, dim, h, w).
    pub fn pixel_embeddings(&self, pixels: &Tensor) -> Result<Tensor> {
        let e = self.pixel_proj.forward(pixels)?.gelu_erf()?;
        e.clone() + self.refine.forward(&e)?
    }

    /// Queries (b, q, dim) against embeddings (b, dim, h, w) → mask logits (b, q, h, w).
    pub fn decode(&self, queries: &Tensor, embeddings: &Tensor) -> Result<Tensor> {
        let (b, d, h, w) = embeddings.dims4()?;
        let q = queries.dim(1)?;
        let flat = embeddings.reshape((b, d, h * w))?;
        let logits =
            (queries.matmul(&flat)? / (self.dim as f64).sqrt())?.broadcast_add(&self.bias)?;
        logits.reshape((b, q, h, w))
    }
}

/// P(fake) and forgery-type logits from pooled vision features and the LLM's prompt state.
#[derive(Debug, Clone)]
pub struct VerdictHead {
    mlp: Mlp2,
}

/// Raw head outputs.
#[derive(Debug, Clone)]
pub struct HeadLogits {
    /// (b,)
    pub fake: Tensor,
    /// (b, n_types)
    pub types: Tensor,
}

impl VerdictHead {
    pub fn new(vision_dim: usize, llm_dim: usize, n_types: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            mlp: Mlp2::new(vision_dim + llm_dim, 128, 1 + n_types, vb)?,
        })
    }

    pub fn forward(&self, pooled: &Tensor, llm_state: &Tensor) -> Result<HeadLogits> {
        let out = self
            .mlp
            .forward(&Tensor::cat(&[pooled, llm_state], D::Minus1)?)?;
        split_fake_types(&out)
    }
}

fn split_fake_types(out: &Tensor) -> Result<HeadLogits> {
    let n = out.dim(D::Minus1)?;
    Ok(HeadLogits {
        fake: out.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?,
        types: out.narrow(D::Minus1, 1, n - 1)?,
    })
}

/// Vision-only heads: verdict/type/concept logits from pooled features and a per-pixel mask.
#[derive(Debug, Clone)]
pub struct AuxHeads {
    cls: Mlp2,
    mask: Conv2d,
    n_types: usize,
}

#[derive(Debug, Clone)]
pub struct AuxOut {
    pub heads: HeadLogits,
    /// (b, n_concepts) multi-label logits.
    pub concepts: Tensor,
    /// (b, 1, h, w) artifact-mask logits at the pixel-feature resolution.
    pub mask: Tensor,
}

impl AuxHeads {
    pub fn new(
        vision_dim: usize,
        pixel_dim: usize,
        n_types: usize,
        n_concepts: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            cls: Mlp2::new(vision_dim, 128, 1 + n_types + n_concepts, vb.pp("cls"))?,
            mask: conv2d(pixel_dim, 1, 1, Default::default(), vb.pp("mask"))?,
            n_types,
        })
    }

    /// Verdict and type logits only.
    pub fn heads(&self, pooled: &Tensor) -> Result<HeadLogits> {
        let out = self.cls.forward(pooled)?;
        split_fake_types(&out.narrow(D::Minus1, 0, 1 + self.n_types)?)
    }

    /// (b, 1, h, w) artifact-mask logits.
    pub fn mask_logits(&self, pixels: &Tensor) -> Result<Tensor> {
        self.mask.forward(pixels)
    }

    pub fn forward(&self, pooled: &Tensor, pixels: &Tensor) -> Result<AuxOut> {
        let out = self.cls.forward(pooled)?;
        let n = out.dim(D::Minus1)?;
        let heads = split_fake_types(&out.narrow(D::Minus1, 0, 1 + self.n_types)?)?;
        let concepts = out.narrow(D::Minus1, 1 + self.n_types, n - 1 - self.n_types)?;
        Ok(AuxOut {
            heads,
            concepts,
            mask: self.mask.forward(pixels)?,
        })
    }
}

/// Mean of `pixels` (1, c, h, w) inside `mask` (h, w) of weights in [0, 1] → (1, c).
/// An empty mask gives the mean over the whole map.
pub fn pool_region(pixels: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (_, c, h, w) = pixels.dims4()?;
    let total = mask.sum_all()?.to_scalar::<f32>()?;
    let m = if total > 0.0 {
        (mask / total as f64)?
    } else {
        Tensor::ones((h, w), pixels.dtype(), pixels.device())?.affine(1.0 / (h * w) as f64, 0.0)?
    };
    let weights = m.reshape((1, h * w, 1))?;
    pixels
        .reshape((1, c, h * w))?
        .matmul(&weights)?
        .reshape((1, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn pools_exactly_inside_a_known_mask() {
        let dev = Device::Cpu;
        // Channel 0 = x coordinate, channel 1 = y coordinate on a 4×4 map.
        let mut v = Vec::new();
        for c in 0..2 {
            for y in 0..4 {
                for x in 0..4 {
                    v.push(if c == 0 { x as f32 } else { y as f32 });
                }
            }
        }
        let pixels = Tensor::from_vec(v, (1, 2, 4, 4), &dev).unwrap();
        let mut m = vec![0f32; 16];
        m[4 + 3] = 1.0; // (x=3, y=1)
        m[2 * 4 + 3] = 1.0; // (x=3, y=2)
        let mask = Tensor::from_vec(m, (4, 4), &dev).unwrap();
        let pooled: Vec<f32> = pool_region(&pixels, &mask)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(pooled, vec![3.0, 1.5]);
        let empty = Tensor::zeros((4, 4), DType::F32, &dev).unwrap();
        let pooled: Vec<f32> = pool_region(&pixels, &empty)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(pooled, vec![1.5, 1.5]);
    }

    #[test]
    fn mask_decoder_shapes_and_dot_product() {
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let dec = MaskDecoder::new(8, 4, vb.pp("md")).unwrap();
        let pixels = Tensor::randn(0f32, 1.0, (2, 8, 6, 5), &dev).unwrap();
        let emb = dec.pixel_embeddings(&pixels).unwrap();
        assert_eq!(emb.dims(), &[2, 4, 6, 5]);
        let q = Tensor::randn(0f32, 1.0, (2, 3, 4), &dev).unwrap();
        let logits = dec.decode(&q, &emb).unwrap();
        assert_eq!(logits.dims(), &[2, 3, 6, 5]);
        // One logit by hand: (q · e) / sqrt(4) + bias.
        let e: Vec<f32> = emb
            .get(1)
            .unwrap()
            .flatten_from(1)
            .unwrap()
            .narrow(1, 7, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let qv: Vec<f32> = q.get(1).unwrap().get(2).unwrap().to_vec1().unwrap();
        let bias: f32 = vm.data().lock().unwrap()["md.bias"]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        let want = qv.iter().zip(&e).map(|(a, b)| a * b).sum::<f32>() / 2.0 + bias;
        let got: f32 = logits
            .get(1)
            .unwrap()
            .get(2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[7];
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}
