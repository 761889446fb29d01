//! Training/eval samples in memory: the face crop as a tensor and every target on the encoder's
//! pixel grid. Decoded once; epochs reuse them.

use std::path::Path;

use anyhow::Context;
use candle_core::{Device, Tensor};
use image::GrayImage;

use crate::forge::record::{Sample, FORGERY_TYPES};
use crate::model::vision::{crop_face, mask_to_grid, to_tensor, FaceCrop, ImageConfig};

/// One sample ready for training.
pub struct Item {
    pub sample: Sample,
    pub crop: FaceCrop,
    /// How `crop` becomes the encoder's input (kept as 8-bit pixels: a preloaded f32 tensor
    /// costs 600 kB an image, 23 GB for a 38k-image dataset).
    pub image_cfg: std::sync::Arc<ImageConfig>,
    pub fake: f32,
    /// Forgery-type index into FORGERY_TYPES (fakes only).
    pub type_idx: Option<usize>,
    /// Multi-hot over the concept vocabulary.
    pub concepts: Vec<f32>,
    /// (g, g) soft artifact mask on the pixel grid (zeros for reals).
    pub mask: Tensor,
    /// Ground-truth segments: (concept, (g, g) soft mask).
    pub segments: Vec<(String, Tensor)>,
}

impl Item {
    /// The encoder's input, (C, S, S), made from the 8-bit crop on each call.
    pub fn input(&self, device: &Device) -> candle_core::Result<Tensor> {
        to_tensor(&self.crop.image, &self.image_cfg, device)?.squeeze(0)
    }
}

/// Read a dataset JSONL (paths relative to it), keeping lines of `split` (or all with "all").
pub fn read_samples(jsonl: &Path, split: &str) -> anyhow::Result<Vec<Sample>> {
    let text = std::fs::read_to_string(jsonl)
        .with_context(|| format!("cannot read {}", jsonl.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Sample>(line) {
            Ok(s) if split == "all" || s.split == split => out.push(s),
            Ok(_) => {}
            Err(e) => eprintln!(
                "warning: {}:{}: skipped malformed line: {e}",
                jsonl.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

fn load_mask(root: &Path, rel: &str) -> anyhow::Result<GrayImage> {
    let p = root.join(rel);
    Ok(image::open(&p)
        .with_context(|| format!("cannot read mask {}", p.display()))?
        .to_luma8())
}

/// Decode samples into items. `grid` = side of the encoder's pixel map.
pub fn load_items(
    jsonl: &Path,
    samples: Vec<Sample>,
    cfg: &ImageConfig,
    grid: usize,
    vocab: &[String],
    device: &Device,
) -> anyhow::Result<Vec<Item>> {
    let root = jsonl.parent().unwrap_or(Path::new("."));
    let image_cfg = std::sync::Arc::new(cfg.clone());
    let mut items = Vec::with_capacity(samples.len());
    for s in samples {
        let img = match crate::imageio::load_rgb(&root.join(&s.image)) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("warning: sample {} skipped: {e}", s.id);
                continue;
            }
        };
        let crop = crop_face(&img, s.face_bbox, cfg.face_margin, cfg.size);
        let fake = (s.label == "fake") as u8 as f32;
        let type_idx = s
            .forgery_type
            .as_ref()
            .and_then(|t| FORGERY_TYPES.iter().position(|x| x == t));
        let concepts = vocab
            .iter()
            .map(|c| s.concepts.contains(c) as u8 as f32)
            .collect();
        let mask = match &s.artifact_mask {
            Some(m) if fake > 0.0 => mask_to_grid(&load_mask(root, m)?, &crop, grid),
            _ => vec![0f32; grid * grid],
        };
        let mut segments = Vec::new();
        for g in &s.segments {
            let m = mask_to_grid(&load_mask(root, &g.mask)?, &crop, grid);
            segments.push((
                g.concept.clone(),
                Tensor::from_vec(m, (grid, grid), device)?,
            ));
        }
        items.push(Item {
            image_cfg: image_cfg.clone(),
            fake,
            type_idx,
            concepts,
            mask: Tensor::from_vec(mask, (grid, grid), device)?,
            segments,
            crop,
            sample: s,
        });
    }
    Ok(items)
}

/// Sorted concept names seen in the samples.
pub fn concept_vocab(samples: &[Sample]) -> Vec<String> {
    let mut v: Vec<String> = samples
        .iter()
        .flat_map(|s| s.concepts.iter().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// For a horizontal flip: index of each concept's mirror twin ("left X" ↔ "right X").
pub fn mirror_index(vocab: &[String]) -> Vec<usize> {
    vocab
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let twin = if c.contains("left") {
                c.replace("left", "right")
            } else if c.contains("right") {
                c.replace("right", "left")
            } else {
                c.clone()
            };
            vocab.iter().position(|x| *x == twin).unwrap_or(i)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_coverage_and_mirror() {
        let crop = FaceCrop {
            image: image::RgbImage::new(4, 4),
            origin: [0.0, 0.0, 8.0],
        };
        let mut m = GrayImage::new(8, 8);
        for y in 0..4 {
            for x in 0..4 {
                m.put_pixel(x, y, image::Luma([255]));
            }
        }
        let g = mask_to_grid(&m, &crop, 2);
        assert_eq!(g, vec![1.0, 0.0, 0.0, 0.0]);
        let vocab: Vec<String> = ["left eye", "nose", "right eye"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(mirror_index(&vocab), vec![2, 1, 0]);
    }
}
