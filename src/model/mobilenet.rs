//! `mobilenet-v2`: torchvision's ImageNet MobileNetV2 as a pretrained face encoder. Its 17
//! inverted-residual blocks (batch norms folded into the convolutions by
//! `tools/mobilenet_to_safetensors.py`) feed the same kind of neck as dfa-cnn: a 1×1 neck on
//! the 1/32 map gives the LLM tokens and the pooled vector, and a top-down FPN over the 1/4,
//! 1/8, 1/16 and 1/32 maps gives the per-pixel features of the mask decoder.
//! Depthwise 3×3 convolutions and ReLU6 run on the CPU kernels of `depthwise.rs`.

use std::path::Path;

use candle_core::{Device, Module, Result, Tensor, D};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::cnn::{adaptive_avg_tokens, ConvNorm};
use super::depthwise::{depthwise3x3, relu6};
use super::vision::VisionFeatures;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MobileNetConfig {
    /// 3 (RGB) or 6 (RGB + high-pass residual); the extra stem inputs start at zero.
    #[serde(default = "default_in_channels")]
    pub in_channels: usize,
    /// Channels of the neck: each LLM token and the pooled vector.
    #[serde(default = "default_neck_dim")]
    pub neck_dim: usize,
    #[serde(default = "default_pixel_dim")]
    pub pixel_dim: usize,
    #[serde(default = "default_token_grid")]
    pub token_grid: usize,
}

fn default_in_channels() -> usize {
    3
}
fn default_neck_dim() -> usize {
    256
}
fn default_pixel_dim() -> usize {
    64
}
fn default_token_grid() -> usize {
    4
}

impl Default for MobileNetConfig {
    fn default() -> Self {
        Self {
            in_channels: default_in_channels(),
            neck_dim: default_neck_dim(),
            pixel_dim: default_pixel_dim(),
            token_grid: default_token_grid(),
        }
    }
}

/// (expansion, output channels, stride) of blocks 1..=17, as in the MobileNetV2 paper.
const BLOCKS: [(usize, usize, usize); 17] = [
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 32, 1),
    (6, 64, 2),
    (6, 64, 1),
    (6, 64, 1),
    (6, 64, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 160, 2),
    (6, 160, 1),
    (6, 160, 1),
    (6, 320, 1),
];
const STEM_CHANNELS: usize = 32;
/// Blocks whose outputs feed the FPN: the last block at 1/4, 1/8 and 1/16 of the input.
const TAPS: [usize; 3] = [3, 6, 13];
/// Weight prefixes (under the encoder's own prefix) that come from ImageNet.
pub const PRETRAINED_PREFIXES: [&str; 2] = ["stem.", "blocks."];

/// 1×1 convolution as a matrix product (candle's conv2d backward is slow for these).
#[derive(Debug, Clone)]
struct Pointwise {
    /// (out, in, 1, 1), the conv2d layout of the converted file.
    weight: Tensor,
    bias: Tensor,
}

impl Pointwise {
    fn new(cin: usize, cout: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(
                (cout, cin, 1, 1),
                "weight",
                candle_nn::init::DEFAULT_KAIMING_NORMAL,
            )?,
            bias: vb.get_with_hints(cout, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let o = self.weight.dim(0)?;
        let y = self
            .weight
            .reshape((o, c))?
            .broadcast_matmul(&x.reshape((b, c, h * w))?)?;
        y.broadcast_add(&self.bias.reshape((1, o, 1))?)?
            .reshape((b, o, h, w))
    }
}

#[derive(Debug, Clone)]
struct Depthwise {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
}

#[derive(Debug, Clone)]
struct InvertedResidual {
    expand: Option<Pointwise>,
    dw: Depthwise,
    project: Pointwise,
    residual: bool,
}

impl InvertedResidual {
    fn new(cin: usize, t: usize, cout: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let hidden = cin * t;
        let pw = |a, b, name| Pointwise::new(a, b, vb.pp(name));
        let expand = if t == 1 {
            None
        } else {
            Some(pw(cin, hidden, "expand")?)
        };
        let dvb = vb.pp("dw");
        let dw = Depthwise {
            weight: dvb.get_with_hints(
                (hidden, 1, 3, 3),
                "weight",
                candle_nn::init::DEFAULT_KAIMING_NORMAL,
            )?,
            bias: dvb.get_with_hints(hidden, "bias", candle_nn::Init::Const(0.0))?,
            stride,
        };
        Ok(Self {
            expand,
            dw,
            project: pw(hidden, cout, "project")?,
            residual: stride == 1 && cin == cout,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = match &self.expand {
            Some(e) => relu6(&e.forward(x)?)?,
            None => x.clone(),
        };
        let h = relu6(&depthwise3x3(
            &h,
            &self.dw.weight,
            &self.dw.bias,
            self.dw.stride,
        )?)?;
        let y = self.project.forward(&h)?;
        if self.residual {
            y + x
        } else {
            Ok(y)
        }
    }
}

/// The ImageNet trunk: stem + 17 blocks.
#[derive(Debug, Clone)]
pub struct Trunk {
    stem: Conv2d,
    blocks: Vec<InvertedResidual>,
}

impl Trunk {
    pub fn new(in_channels: usize, vb: VarBuilder) -> Result<Self> {
        let stem_cfg = Conv2dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        let stem = conv2d(in_channels, STEM_CHANNELS, 3, stem_cfg, vb.pp("stem"))?;
        let mut blocks = Vec::with_capacity(BLOCKS.len());
        let mut cin = STEM_CHANNELS;
        for (i, &(t, c, s)) in BLOCKS.iter().enumerate() {
            blocks.push(InvertedResidual::new(
                cin,
                t,
                c,
                s,
                vb.pp(format!("blocks.{}", i + 1)),
            )?);
            cin = c;
        }
        Ok(Self { stem, blocks })
    }

    /// Outputs of the stem (index 0) and of every block (index i for block i).
    pub fn forward_all(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut outs = vec![relu6(&self.stem.forward(x)?)?];
        for b in &self.blocks {
            let next = b.forward(outs.last().expect("stem output"))?;
            outs.push(next);
        }
        Ok(outs)
    }
}

#[derive(Debug, Clone)]
pub struct MobileNetV2 {
    pub cfg: MobileNetConfig,
    trunk: Trunk,
    neck: ConvNorm,
    lateral: [Conv2d; 4],
    smooth: ConvNorm,
}

impl MobileNetV2 {
    pub fn new(cfg: &MobileNetConfig, vb: VarBuilder) -> Result<Self> {
        let (p, nd) = (cfg.pixel_dim, cfg.neck_dim);
        let top = BLOCKS[BLOCKS.len() - 1].1;
        let lat = |c: usize, name: &str| conv2d(c, p, 1, Default::default(), vb.pp(name));
        let ch = |block: usize| BLOCKS[block - 1].1;
        Ok(Self {
            cfg: cfg.clone(),
            trunk: Trunk::new(cfg.in_channels, vb.clone())?,
            neck: ConvNorm::new(top, nd, 1, 1, true, vb.pp("neck"))?,
            lateral: [
                lat(ch(TAPS[0]), "lateral4")?,
                lat(ch(TAPS[1]), "lateral8")?,
                lat(ch(TAPS[2]), "lateral16")?,
                lat(nd, "lateral32")?,
            ],
            smooth: ConvNorm::new(p, p, 3, 1, true, vb.pp("smooth"))?,
        })
    }

    pub fn token_dim(&self) -> usize {
        self.cfg.neck_dim
    }

    /// `x`: (b, in_channels, H, W) normalised, H and W multiples of 32.
    pub fn forward(&self, x: &Tensor) -> Result<VisionFeatures> {
        let outs = self.trunk.forward_all(x)?;
        let top = self.neck.forward(outs.last().expect("blocks"))?;
        let mut p = self.lateral[3].forward(&top)?;
        for (k, &tap) in TAPS.iter().enumerate().rev() {
            let (h, w) = (outs[tap].dim(2)?, outs[tap].dim(3)?);
            p = (self.lateral[k].forward(&outs[tap])? + p.upsample_nearest2d(h, w)?)?;
        }
        let pixels = self.smooth.forward(&p)?;
        let (b, c, _, _) = top.dims4()?;
        let spatial = adaptive_avg_tokens(&top, self.cfg.token_grid)?;
        let pooled = top.flatten_from(2)?.mean(D::Minus1)?;
        let tokens = Tensor::cat(&[spatial, pooled.reshape((b, 1, c))?], 1)?;
        Ok(VisionFeatures {
            tokens,
            pixels,
            pooled,
        })
    }
}

/// Copy the ImageNet trunk from a converted file into `vm` under `prefix` (e.g. `vision.`).
/// A stem with more input channels than the file's keeps zeros for the extra ones. Returns the
/// number of tensors copied; every trunk weight must be in the file.
pub fn load_pretrained(vm: &VarMap, prefix: &str, path: &Path) -> anyhow::Result<usize> {
    let file = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| anyhow::anyhow!("cannot read backbone weights {}: {e}", path.display()))?;
    let vars = vm
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("varmap lock"))?;
    let mut copied = 0;
    for (name, var) in vars.iter() {
        let Some(key) = name.strip_prefix(prefix) else {
            continue;
        };
        if !PRETRAINED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            continue;
        }
        let src = file.get(key).ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no {key}: not a converted MobileNetV2",
                path.display()
            )
        })?;
        let want = var.dims().to_vec();
        let src = if src.dims() == want.as_slice() {
            src.clone()
        } else if key == "stem.weight" && src.dims().len() == 4 && want[1] > src.dim(1)? {
            let extra = want[1] - src.dim(1)?;
            src.pad_with_zeros(1, 0, extra)?
        } else {
            anyhow::bail!(
                "{}: {key} is {:?}, the model wants {:?}",
                path.display(),
                src.dims(),
                want
            );
        };
        var.set(&src.to_device(var.device())?)?;
        copied += 1;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    #[test]
    fn encoder_shapes_and_pretrained_stem_padding() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let cfg = MobileNetConfig {
            in_channels: 6,
            neck_dim: 16,
            pixel_dim: 8,
            token_grid: 2,
        };
        let vm = VarMap::new();
        let m = MobileNetV2::new(
            &cfg,
            VarBuilder::from_varmap(&vm, DType::F32, &dev).pp("vision"),
        )?;
        let f = m.forward(&Tensor::randn(0f32, 1.0, (2, 6, 64, 64), &dev)?)?;
        assert_eq!(f.tokens.dims(), &[2, 5, 16]);
        assert_eq!(f.pixels.dims(), &[2, 8, 16, 16]);
        assert_eq!(f.pooled.dims(), &[2, 16]);

        // A "converted" file made of the trunk's own weights, with a 3-channel stem.
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("mn.safetensors");
        let mut tensors = std::collections::HashMap::new();
        for (name, var) in vm.data().lock().unwrap().iter() {
            let key = name.strip_prefix("vision.").unwrap();
            if PRETRAINED_PREFIXES.iter().any(|p| key.starts_with(p)) {
                let t = (var.as_tensor() * 0.0)? + 0.5;
                tensors.insert(key.to_string(), t?);
            }
        }
        tensors.insert(
            "stem.weight".into(),
            Tensor::ones((32, 3, 3, 3), DType::F32, &dev)?,
        );
        candle_core::safetensors::save(&tensors, &path)?;
        let n = load_pretrained(&vm, "vision.", &path)?;
        assert_eq!(n, tensors.len());
        let stem = vm.data().lock().unwrap()["vision.stem.weight"]
            .as_tensor()
            .clone();
        let sums = stem.sum((0, 2, 3))?.to_vec1::<f32>()?;
        assert_eq!(sums, vec![288.0, 288.0, 288.0, 0.0, 0.0, 0.0]);

        // A file without the trunk is refused.
        tensors.remove("blocks.5.dw.weight");
        candle_core::safetensors::save(&tensors, &path)?;
        let err = load_pretrained(&vm, "vision.", &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocks.5.dw.weight"), "{err}");
        Ok(())
    }
}
