//! The vision side: one [`VisionEncoder`] type over the supported backbones, its output
//! [`VisionFeatures`], and image preprocessing (face crop → normalised tensor).

use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;
use image::{imageops::FilterType, GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use super::clip::{ClipConfig, ClipVit};
use super::cnn::{CnnConfig, DfaCnn};
use super::mobilenet::{MobileNetConfig, MobileNetV2};

/// What an encoder hands on.
#[derive(Debug, Clone)]
pub struct VisionFeatures {
    /// (b, n, c): tokens for the projector → LLM.
    pub tokens: Tensor,
    /// (b, c_pix, h, w): per-pixel features for the mask decoder and region pooling.
    pub pixels: Tensor,
    /// (b, c): one global vector for the verdict heads.
    pub pooled: Tensor,
}

/// Backbone choice in a model's config.json: `{"kind": "dfa-cnn", "config": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", content = "config", rename_all = "kebab-case")]
pub enum VisionConfig {
    DfaCnn(CnnConfig),
    Clip(ClipConfig),
    /// ImageNet-pretrained MobileNetV2 trunk (see `mobilenet.rs`).
    #[serde(rename = "mobilenet-v2")]
    MobileNetV2(MobileNetConfig),
}

pub enum VisionEncoder {
    Cnn(DfaCnn),
    Clip(ClipVit),
    MobileNet(MobileNetV2),
}

impl VisionEncoder {
    /// `vb` points at the encoder's prefix (`vision` for dfa-cnn, `vision_model` for CLIP).
    pub fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        Ok(match cfg {
            VisionConfig::DfaCnn(c) => Self::Cnn(DfaCnn::new(c, vb)?),
            VisionConfig::Clip(c) => Self::Clip(ClipVit::new(c, vb)?),
            VisionConfig::MobileNetV2(c) => Self::MobileNet(MobileNetV2::new(c, vb)?),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<VisionFeatures> {
        match self {
            Self::Cnn(m) => m.forward(x),
            Self::Clip(m) => m.forward(x),
            Self::MobileNet(m) => m.forward(x),
        }
    }

    /// The config's `kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cnn(_) => "dfa-cnn",
            Self::Clip(_) => "clip",
            Self::MobileNet(_) => "mobilenet-v2",
        }
    }

    /// Channels of each LLM token.
    pub fn token_dim(&self) -> usize {
        match self {
            Self::Cnn(m) => m.token_dim(),
            Self::Clip(m) => m.token_dim(),
            Self::MobileNet(m) => m.token_dim(),
        }
    }

    /// Channels of the per-pixel map.
    pub fn pixel_dim(&self) -> usize {
        match self {
            Self::Cnn(m) => m.cfg.pixel_dim,
            Self::Clip(m) => m.cfg.hidden_size,
            Self::MobileNet(m) => m.cfg.pixel_dim,
        }
    }

    /// Number of LLM tokens per image.
    pub fn num_tokens(&self) -> usize {
        let g = match self {
            Self::Cnn(m) => m.cfg.token_grid,
            Self::Clip(m) => m.cfg.token_grid,
            Self::MobileNet(m) => m.cfg.token_grid,
        };
        g * g + 1
    }
}

impl VisionConfig {
    /// Prefix of the encoder's weights in the extras safetensors.
    pub fn weight_prefix(&self) -> &'static str {
        match self {
            VisionConfig::DfaCnn(_) | VisionConfig::MobileNetV2(_) => "vision",
            VisionConfig::Clip(_) => "vision_model",
        }
    }
}

/// Input normalisation and size (config.json "image").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    /// Square input side in pixels.
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Extra context around the detected face box, as a fraction of its side on each side.
    #[serde(default = "default_margin")]
    pub face_margin: f32,
    /// Append a high-pass residual (image minus its 3×3 box blur, ×4) as three more channels:
    /// blending seams, resampling and noise edits live in high frequencies.
    #[serde(default)]
    pub highpass: bool,
}

fn default_margin() -> f32 {
    0.25
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            size: 128,
            mean: [0.5, 0.5, 0.5],
            std: [0.25, 0.25, 0.25],
            face_margin: default_margin(),
            highpass: false,
        }
    }
}

/// A square crop of the image around a face, and where it sits in the image.
#[derive(Debug, Clone)]
pub struct FaceCrop {
    pub image: RgbImage,
    /// `[x0, y0, side]` of the crop in image pixels (may extend past the image; padded with grey).
    pub origin: [f32; 3],
}

impl FaceCrop {
    /// Map a point of the crop (in `size`-pixel crop coordinates) to the image.
    pub fn to_image(&self, x: f32, y: f32, size: u32) -> (f32, f32) {
        let s = self.origin[2] / size as f32;
        (self.origin[0] + x * s, self.origin[1] + y * s)
    }
}

/// Square crop around `bbox` with `margin`, resized to `size`.
pub fn crop_face(img: &RgbImage, bbox: [f32; 4], margin: f32, size: u32) -> FaceCrop {
    let (cx, cy) = ((bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0);
    let side = (bbox[2] - bbox[0]).max(bbox[3] - bbox[1]).max(1.0) * (1.0 + 2.0 * margin);
    let (x0, y0) = (cx - side / 2.0, cy - side / 2.0);
    let s = side.round().max(1.0) as u32;
    let mut square = RgbImage::from_pixel(s, s, image::Rgb([128, 128, 128]));
    let (ix0, iy0) = (x0.round() as i64, y0.round() as i64);
    for y in 0..s as i64 {
        let sy = iy0 + y;
        if sy < 0 || sy >= img.height() as i64 {
            continue;
        }
        for x in 0..s as i64 {
            let sx = ix0 + x;
            if sx >= 0 && sx < img.width() as i64 {
                square.put_pixel(x as u32, y as u32, *img.get_pixel(sx as u32, sy as u32));
            }
        }
    }
    let image = image::imageops::resize(&square, size, size, FilterType::Triangle);
    FaceCrop {
        image,
        origin: [ix0 as f32, iy0 as f32, s as f32],
    }
}

/// Soft coverage (0..1, 3×3 samples per cell) of an image-sized binary mask on a g×g grid over
/// the crop: region inputs at inference and mask targets in training use this one function.
pub fn mask_to_grid(mask: &GrayImage, crop: &FaceCrop, g: usize) -> Vec<f32> {
    let [x0, y0, side] = crop.origin;
    let mut v = vec![0f32; g * g];
    let k = 3;
    for gy in 0..g {
        for gx in 0..g {
            let mut on = 0;
            for sy in 0..k {
                for sx in 0..k {
                    let x = x0 + (gx as f32 + (sx as f32 + 0.5) / k as f32) / g as f32 * side;
                    let y = y0 + (gy as f32 + (sy as f32 + 0.5) / k as f32) / g as f32 * side;
                    if x >= 0.0
                        && y >= 0.0
                        && (x as u32) < mask.width()
                        && (y as u32) < mask.height()
                        && mask.get_pixel(x as u32, y as u32).0[0] > 127
                    {
                        on += 1;
                    }
                }
            }
            v[gy * g + gx] = on as f32 / (k * k) as f32;
        }
    }
    v
}

/// (1, C, H, W) normalised tensor of an RGB image (C = 6 with `cfg.highpass`).
pub fn to_tensor(img: &RgbImage, cfg: &ImageConfig, device: &Device) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let plane = wu * hu;
    let channels = if cfg.highpass { 6 } else { 3 };
    let mut data = vec![0f32; channels * plane];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = (p.0[c] as f32 / 255.0 - cfg.mean[c]) / cfg.std[c];
        }
    }
    if cfg.highpass {
        for c in 0..3 {
            for y in 0..hu {
                for x in 0..wu {
                    let (mut sum, mut n) = (0f32, 0f32);
                    for yy in y.saturating_sub(1)..(y + 2).min(hu) {
                        for xx in x.saturating_sub(1)..(x + 2).min(wu) {
                            sum += img.get_pixel(xx as u32, yy as u32).0[c] as f32;
                            n += 1.0;
                        }
                    }
                    let v = img.get_pixel(x as u32, y as u32).0[c] as f32;
                    data[(3 + c) * plane + y * wu + x] = (v - sum / n) / 255.0 * 4.0 / cfg.std[c];
                }
            }
        }
    }
    Tensor::from_vec(data, (1, channels, hu, wu), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use candle_nn::VarMap;

    fn tiny_clip() -> ClipConfig {
        ClipConfig {
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            image_size: 32,
            patch_size: 8,
            layer_norm_eps: 1e-5,
            hidden_act: "quick_gelu".into(),
            feature_layers: vec![-2, -1],
            token_grid: 2,
        }
    }

    #[test]
    fn clip_uses_hf_keys_and_interpolates_positions() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let cfg = VisionConfig::Clip(tiny_clip());
        let enc = VisionEncoder::new(
            &cfg,
            VarBuilder::from_varmap(&vm, DType::F32, &dev).pp("vision_model"),
        )
        .unwrap();
        let keys: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
        for k in [
            "vision_model.embeddings.class_embedding",
            "vision_model.embeddings.patch_embedding.weight",
            "vision_model.embeddings.position_embedding.weight",
            "vision_model.pre_layrnorm.weight",
            "vision_model.encoder.layers.1.self_attn.out_proj.bias",
            "vision_model.encoder.layers.0.mlp.fc2.weight",
            "vision_model.post_layernorm.bias",
        ] {
            assert!(keys.iter().any(|x| x == k), "missing {k}");
        }
        // Round trip through a safetensors file, as a hub checkpoint would arrive.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.safetensors");
        vm.save(&path).unwrap();
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&path], DType::F32, &dev).unwrap() };
        let reloaded = VisionEncoder::new(&cfg, vb.pp("vision_model")).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, 3, 32, 32), &dev).unwrap();
        let a = enc.forward(&x).unwrap();
        let b = reloaded.forward(&x).unwrap();
        let diff = (a.tokens - b.tokens)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6);
        assert_eq!(a.pixels.dims(), &[1, 32, 4, 4]);
        assert_eq!(enc.num_tokens(), 5);
        // Another input size: positions are interpolated, features follow the new grid.
        let big = enc
            .forward(&Tensor::randn(0f32, 1.0, (1, 3, 48, 48), &dev).unwrap())
            .unwrap();
        assert_eq!(big.pixels.dims(), &[1, 32, 6, 6]);
        assert_eq!(big.tokens.dims(), &[1, 5, 32]);
    }

    #[test]
    fn cnn_feature_shapes() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let cfg = VisionConfig::DfaCnn(CnnConfig::default());
        let enc = VisionEncoder::new(
            &cfg,
            VarBuilder::from_varmap(&vm, DType::F32, &dev).pp("vision"),
        )
        .unwrap();
        let f = enc
            .forward(&Tensor::randn(0f32, 1.0, (2, 3, 128, 128), &dev).unwrap())
            .unwrap();
        assert_eq!(f.tokens.dims(), &[2, 17, 160]);
        assert_eq!(f.pixels.dims(), &[2, 64, 32, 32]);
        assert_eq!(f.pooled.dims(), &[2, 160]);
        // 160² input (10×10 top map) still gives a 4×4 token grid; 6 input channels with high-pass.
        let vm = VarMap::new();
        let cfg6 = VisionConfig::DfaCnn(CnnConfig {
            in_channels: 6,
            ..CnnConfig::default()
        });
        let enc = VisionEncoder::new(
            &cfg6,
            VarBuilder::from_varmap(&vm, DType::F32, &dev).pp("vision"),
        )
        .unwrap();
        let icfg = ImageConfig {
            size: 160,
            highpass: true,
            ..ImageConfig::default()
        };
        let x = to_tensor(
            &RgbImage::from_pixel(160, 160, image::Rgb([100, 100, 100])),
            &icfg,
            &dev,
        )
        .unwrap();
        assert_eq!(x.dims(), &[1, 6, 160, 160]);
        let hp: f32 = x
            .narrow(1, 3, 3)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(hp < 1e-6, "a flat image has no high-pass energy");
        let f = enc.forward(&x).unwrap();
        assert_eq!(f.tokens.dims(), &[1, 17, 160]);
        assert_eq!(f.pixels.dims(), &[1, 64, 40, 40]);
    }

    #[test]
    fn crop_maps_back_to_image_coordinates() {
        let mut img = RgbImage::new(100, 80);
        img.put_pixel(50, 40, image::Rgb([255, 0, 0]));
        let crop = crop_face(&img, [40.0, 30.0, 60.0, 50.0], 0.5, 40);
        assert_eq!(crop.origin, [30.0, 20.0, 40.0]);
        assert_eq!(crop.to_image(20.0, 20.0, 40), (50.0, 40.0));
        assert_eq!(crop.image.get_pixel(20, 20).0[0] > 100, true);
    }
}
