//! The MobileNetV2 port with the real ImageNet weights: the trunk plus torchvision's head,
//! run on scikit-image's photos, must classify them as ImageNet does. Checks the pickle
//! converter (`tools/mobilenet_to_safetensors.py`, BN folding) and the candle port together.
//! Reads the git-ignored cache that `tools/fetch-sources.sh` fills; skipped with a note when
//! it is missing.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{conv2d, linear, VarBuilder};
use dfa::model::mobilenet::Trunk;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// ImageNet-normalised 224² tensor of a photo.
fn imagenet_input(path: &Path) -> Tensor {
    let img = dfa::imageio::load_rgb(path).unwrap();
    let img = image::imageops::resize(&img, 224, 224, image::imageops::FilterType::Triangle);
    let (mean, std) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    let mut data = vec![0f32; 3 * 224 * 224];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * 224 * 224 + i] = (p.0[c] as f32 / 255.0 - mean[c]) / std[c];
        }
    }
    Tensor::from_vec(data, (1, 3, 224, 224), &Device::Cpu).unwrap()
}

#[test]
fn imagenet_classes_of_real_photos() {
    let weights = root().join("cache/mobilenet_v2.safetensors");
    let photos = root().join("cache/sources/un/skimage/data");
    if !weights.exists() || !photos.exists() {
        eprintln!("SKIPPED: run tools/fetch-sources.sh for the ImageNet MobileNetV2 and photos");
        return;
    }
    let dev = Device::Cpu;
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &dev) }.unwrap();
    let trunk = Trunk::new(3, vb.clone()).unwrap();
    let head = conv2d(320, 1280, 1, Default::default(), vb.pp("head")).unwrap();
    let classifier = linear(1280, 1000, vb.pp("classifier")).unwrap();
    // ImageNet class indices: 281 tabby … 285 Egyptian cat; 967 espresso, 968 cup, 504 coffee mug.
    let cases: [(&str, &[usize]); 2] = [
        ("chelsea.png", &[281, 282, 283, 284, 285]),
        ("coffee.png", &[967, 968, 504]),
    ];
    for (name, want) in cases {
        let outs = trunk
            .forward_all(&imagenet_input(&photos.join(name)))
            .unwrap();
        let h = head
            .forward(outs.last().unwrap())
            .unwrap()
            .clamp(0f32, 6f32)
            .unwrap();
        let pooled = h.flatten_from(2).unwrap().mean(D::Minus1).unwrap();
        let logits = classifier.forward(&pooled).unwrap().squeeze(0).unwrap();
        let top = logits.argmax(0).unwrap().to_scalar::<u32>().unwrap() as usize;
        let probs = candle_nn::ops::softmax(&logits, 0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        eprintln!("{name}: top-1 class {top} (p {:.3})", probs[top]);
        assert!(
            want.contains(&top),
            "{name}: top-1 {top}, want one of {want:?}"
        );
    }
}
