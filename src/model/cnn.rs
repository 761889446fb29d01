//! `dfa-cnn`: a small four-stage convolutional face encoder trained from scratch by `dfa train`.
//! Stride-2 stages give a 1/16 map for the LLM tokens and an FPN-style 1/4 map of per-pixel
//! features for the mask decoder. Group norm (composed ops, so it has a backward) + GELU.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{conv2d, group_norm, Conv2d, Conv2dConfig, GroupNorm, VarBuilder};
use serde::{Deserialize, Serialize};

use super::vision::VisionFeatures;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CnnConfig {
    /// Channels of the stem and the three stages.
    #[serde(default = "default_widths")]
    pub widths: [usize; 4],
    /// Channels of the per-pixel feature map handed to the mask decoder.
    #[serde(default = "default_pixel_dim")]
    pub pixel_dim: usize,
    /// The LLM sees `token_grid`² spatial tokens plus one global token.
    #[serde(default = "default_token_grid")]
    pub token_grid: usize,
    /// Input channels: 3 (RGB) or 6 (RGB + high-pass residual, see `ImageConfig::highpass`).
    #[serde(default = "default_in_channels")]
    pub in_channels: usize,
}

fn default_in_channels() -> usize {
    3
}

fn default_widths() -> [usize; 4] {
    [24, 48, 96, 160]
}
fn default_pixel_dim() -> usize {
    64
}
fn default_token_grid() -> usize {
    4
}

impl Default for CnnConfig {
    fn default() -> Self {
        Self {
            widths: default_widths(),
            pixel_dim: default_pixel_dim(),
            token_grid: default_token_grid(),
            in_channels: default_in_channels(),
        }
    }
}

fn groups_for(c: usize) -> usize {
    [8, 4, 2, 1].into_iter().find(|g| c % g == 0).unwrap_or(1)
}

/// conv → group norm → (optional) GELU.
#[derive(Debug, Clone)]
pub(crate) struct ConvNorm {
    conv: Conv2d,
    norm: GroupNorm,
    act: bool,
}

impl ConvNorm {
    pub(crate) fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        act: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: k / 2,
            stride,
            ..Default::default()
        };
        let conv = conv2d(cin, cout, k, cfg, vb.pp("conv"))?;
        let norm = group_norm(groups_for(cout), cout, 1e-5, vb.pp("norm"))?;
        Ok(Self { conv, norm, act })
    }
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.norm.forward(&self.conv.forward(x)?)?;
        if self.act {
            y.gelu_erf()
        } else {
            Ok(y)
        }
    }
}

/// A residual stage: stride-2 conv, conv, plus a strided 1×1 shortcut.
#[derive(Debug, Clone)]
struct Stage {
    a: ConvNorm,
    b: ConvNorm,
    skip: Conv2d,
}

impl Stage {
    fn new(cin: usize, cout: usize, vb: VarBuilder) -> Result<Self> {
        let skip_cfg = Conv2dConfig {
            stride: 2,
            ..Default::default()
        };
        Ok(Self {
            a: ConvNorm::new(cin, cout, 3, 2, true, vb.pp("a"))?,
            b: ConvNorm::new(cout, cout, 3, 1, false, vb.pp("b"))?,
            skip: conv2d(cin, cout, 1, skip_cfg, vb.pp("skip"))?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (self.b.forward(&self.a.forward(x)?)? + self.skip.forward(x)?)?.gelu_erf()
    }
}

#[derive(Debug, Clone)]
pub struct DfaCnn {
    pub cfg: CnnConfig,
    stem: ConvNorm,
    stages: [Stage; 3],
    lateral: [Conv2d; 3],
    smooth: ConvNorm,
}

impl DfaCnn {
    pub fn new(cfg: &CnnConfig, vb: VarBuilder) -> Result<Self> {
        let w = cfg.widths;
        let p = cfg.pixel_dim;
        let lat = |c: usize, name: &str| conv2d(c, p, 1, Default::default(), vb.pp(name));
        Ok(Self {
            cfg: cfg.clone(),
            stem: ConvNorm::new(cfg.in_channels, w[0], 3, 2, true, vb.pp("stem"))?,
            stages: [
                Stage::new(w[0], w[1], vb.pp("stage1"))?,
                Stage::new(w[1], w[2], vb.pp("stage2"))?,
                Stage::new(w[2], w[3], vb.pp("stage3"))?,
            ],
            lateral: [
                lat(w[1], "lateral1")?,
                lat(w[2], "lateral2")?,
                lat(w[3], "lateral3")?,
            ],
            smooth: ConvNorm::new(p, p, 3, 1, true, vb.pp("smooth"))?,
        })
    }

    pub fn token_dim(&self) -> usize {
        self.cfg.widths[3]
    }

    /// `x`: (b, 3, H, W) normalised, H and W multiples of 16.
    pub fn forward(&self, x: &Tensor) -> Result<VisionFeatures> {
        let s0 = self.stem.forward(x)?;
        let s1 = self.stages[0].forward(&s0)?;
        let s2 = self.stages[1].forward(&s1)?;
        let s3 = self.stages[2].forward(&s2)?;
        // Top-down pathway to the 1/4 map.
        let (h2, w2) = (s2.dim(2)?, s2.dim(3)?);
        let (h1, w1) = (s1.dim(2)?, s1.dim(3)?);
        let p3 = self.lateral[2].forward(&s3)?.upsample_nearest2d(h2, w2)?;
        let p2 = (self.lateral[1].forward(&s2)? + p3)?.upsample_nearest2d(h1, w1)?;
        let pixels = self
            .smooth
            .forward(&(self.lateral[0].forward(&s1)? + p2)?)?;
        // LLM tokens: a g×g grid of the 1/16 map plus one global token.
        let (b, c, _, _) = s3.dims4()?;
        let g = self.cfg.token_grid;
        let spatial = adaptive_avg_tokens(&s3, g)?; // (b, g*g, c)
        let pooled = s3.flatten_from(2)?.mean(D::Minus1)?; // (b, c)
        let tokens = Tensor::cat(&[spatial, pooled.reshape((b, 1, c))?], 1)?;
        Ok(VisionFeatures {
            tokens,
            pixels,
            pooled,
        })
    }
}

/// Average (b, c, h, w) over a g×g grid of (possibly uneven) cells → (b, g*g, c) tokens.
pub fn adaptive_avg_tokens(x: &Tensor, g: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let mut cells = Vec::with_capacity(g * g);
    for i in 0..g {
        let (y0, y1) = (i * h / g, ((i + 1) * h).div_ceil(g));
        for j in 0..g {
            let (x0, x1) = (j * w / g, ((j + 1) * w).div_ceil(g));
            cells.push(
                x.narrow(2, y0, y1 - y0)?
                    .narrow(3, x0, x1 - x0)?
                    .mean_keepdim(2)?
                    .mean_keepdim(3)?
                    .flatten_from(1)?,
            );
        }
    }
    Tensor::stack(&cells, 1)
}
