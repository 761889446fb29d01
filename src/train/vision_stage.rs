//! Stage 1: the vision encoder and its vision-only heads (verdict, type, concepts, artifact mask),
//! trained from scratch on forge crops. Fast on a CPU (STACK.md: ~50k img/h at 128²).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::data::Item;
use super::losses::{bce_with_logits, cross_entropy};
use super::progress::{warmup_cosine, Progress, StepLog};
use crate::model::extras::Parts;

pub struct VisionStageOptions {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Weights that start pretrained (full names, e.g. `vision.blocks.`) learn at
    /// `lr * pretrained_lr_scale`, so that fine-tuning does not wash out what they know.
    pub pretrained: Vec<String>,
    pub pretrained_lr_scale: f64,
}

/// Trainable variables whose names start with one of `prefixes`.
pub fn vars_with_prefix(vm: &VarMap, prefixes: &[&str]) -> Vec<Var> {
    let data = vm.data().lock().expect("varmap lock");
    let mut named: Vec<(&String, &Var)> = data
        .iter()
        .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named.into_iter().map(|(_, v)| v.clone()).collect()
}

/// A batch: inputs (b,3,S,S), fake (b), type ids + mask of fakes, concepts (b,n), masks (b,g,g).
pub struct Batch {
    pub x: Tensor,
    pub fake: Tensor,
    pub types: Option<(Tensor, Tensor)>,
    pub concepts: Tensor,
    pub masks: Tensor,
    pub is_fake: Tensor,
}

/// Stack items; `flip` mirrors images, masks and left/right concepts.
pub fn make_batch(
    items: &[&Item],
    mirror: &[usize],
    flip: bool,
    dev: &Device,
) -> candle_core::Result<Batch> {
    let mut x = Tensor::stack(
        &items
            .iter()
            .map(|i| i.input(dev))
            .collect::<candle_core::Result<Vec<_>>>()?,
        0,
    )?;
    let mut masks = Tensor::stack(&items.iter().map(|i| i.mask.clone()).collect::<Vec<_>>(), 0)?;
    let n = mirror.len();
    let mut cvec: Vec<f32> = items.iter().flat_map(|i| i.concepts.clone()).collect();
    if flip {
        let w = x.dim(3)?;
        let rev = Tensor::from_vec((0..w as u32).rev().collect::<Vec<_>>(), w, dev)?;
        x = x.index_select(&rev, 3)?;
        let g = masks.dim(2)?;
        let rev = Tensor::from_vec((0..g as u32).rev().collect::<Vec<_>>(), g, dev)?;
        masks = masks.index_select(&rev, 2)?;
        for row in cvec.chunks_mut(n.max(1)) {
            let orig = row.to_vec();
            for (i, &m) in mirror.iter().enumerate() {
                row[m] = orig[i];
            }
        }
    }
    let b = items.len();
    let concepts = Tensor::from_vec(cvec, (b, n), dev)?;
    let fake = Tensor::from_vec(items.iter().map(|i| i.fake).collect::<Vec<_>>(), b, dev)?;
    let fakes: Vec<(usize, u32)> = items
        .iter()
        .enumerate()
        .filter_map(|(k, i)| i.type_idx.map(|t| (k, t as u32)))
        .collect();
    let types = if fakes.is_empty() {
        None
    } else {
        Some((
            Tensor::from_vec(
                fakes.iter().map(|f| f.0 as u32).collect::<Vec<_>>(),
                fakes.len(),
                dev,
            )?,
            Tensor::from_vec(
                fakes.iter().map(|f| f.1).collect::<Vec<_>>(),
                fakes.len(),
                dev,
            )?,
        ))
    };
    let is_fake = fake.clone();
    Ok(Batch {
        x,
        fake,
        types,
        concepts,
        masks,
        is_fake,
    })
}

/// The stage-1 loss of a batch: (total, [verdict, type, concepts, mask]).
pub fn vision_loss(parts: &Parts, batch: &Batch) -> candle_core::Result<(Tensor, [f32; 4])> {
    let f = parts.vision.forward(&batch.x)?;
    let out = parts.aux.forward(&f.pooled, &f.pixels)?;
    let l_fake = bce_with_logits(&out.heads.fake, &batch.fake)?;
    let l_type = match &batch.types {
        Some((rows, ids)) => {
            cross_entropy(&out.heads.types.contiguous()?.index_select(rows, 0)?, ids)?
        }
        None => Tensor::zeros((), DType::F32, batch.x.device())?,
    };
    let l_conc = if batch.concepts.dim(1)? > 0 {
        bce_with_logits(&out.concepts, &batch.concepts)?
    } else {
        Tensor::zeros((), DType::F32, batch.x.device())?
    };
    let mask_logits = out.mask.squeeze(1)?;
    let l_mask = (bce_with_logits(&mask_logits, &batch.masks)? * 4.0)?;
    // Dice only where there is an artifact.
    let dice = {
        let per = dice_per_row(&mask_logits, &batch.masks)?;
        let n = batch.is_fake.sum_all()?.to_scalar::<f32>()?.max(1.0);
        ((per * &batch.is_fake)?.sum_all()? / n as f64)?
    };
    let total = (((&l_fake + &l_type)? + (&l_conc * 2.0)?)? + (&l_mask + &dice)?)?;
    let parts_v = [
        l_fake.to_scalar::<f32>()?,
        l_type.to_scalar::<f32>()?,
        l_conc.to_scalar::<f32>()?,
        (l_mask + dice)?.to_scalar::<f32>()?,
    ];
    Ok((total, parts_v))
}

fn dice_per_row(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let p = candle_nn::ops::sigmoid(logits)?.flatten_from(1)?;
    let t = targets.flatten_from(1)?;
    let inter = (&p * &t)?.sum(1)?;
    let denom = ((p.sum(1)? + t.sum(1)?)? + 1.0)?;
    1.0 - ((inter * 2.0)? / denom)?
}

/// For each item, the index of its pixel-aligned twin (a fake's real, a real's fake), when both
/// are in `items`. Stage 1 draws twins into the same batch: the only difference between the two
/// is the edit, so the heads learn the edit rather than the person or the photo.
pub fn twins(items: &[Item]) -> Vec<Option<usize>> {
    let by_image: std::collections::HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.sample.image.as_str(), i))
        .collect();
    let mut out = vec![None; items.len()];
    for (i, it) in items.iter().enumerate() {
        if let Some(&r) = it
            .sample
            .real_image
            .as_deref()
            .and_then(|r| by_image.get(r))
        {
            out[i] = Some(r);
            out[r] = Some(i);
        }
    }
    out
}

/// Train stage 1 in place. `checkpoint(step)` is called every few minutes and at the end.
pub fn train(
    parts: &Parts,
    vm: &VarMap,
    items: &[Item],
    mirror: &[usize],
    opts: &VisionStageOptions,
    start_step: usize,
    progress: &mut Progress,
    checkpoint: &mut dyn FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let pre: Vec<&str> = opts.pretrained.iter().map(String::as_str).collect();
    let pretrained = vars_with_prefix(vm, &pre);
    let fresh: Vec<Var> = vars_with_prefix(vm, &["vision.", "aux."])
        .into_iter()
        .filter(|v| {
            !pretrained
                .iter()
                .any(|p| p.as_tensor().id() == v.as_tensor().id())
        })
        .collect();
    let params = ParamsAdamW {
        lr: opts.lr,
        weight_decay: 1e-4,
        ..Default::default()
    };
    let mut opt = AdamW::new(fresh, params.clone())?;
    let mut opt_pre = AdamW::new(pretrained, params)?;
    let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_add(start_step as u64));
    // The batches go where the data already is.
    let dev = items
        .first()
        .map_or(Device::Cpu, |i| i.mask.device().clone());
    let twin = twins(items);
    for step in start_step..opts.steps {
        // Cosine decay after a short warm-up.
        let lr = warmup_cosine(step, opts.steps, opts.lr);
        opt.set_learning_rate(lr);
        opt_pre.set_learning_rate(lr * opts.pretrained_lr_scale);
        let mut picks: Vec<&Item> = Vec::with_capacity(opts.batch);
        while picks.len() < opts.batch {
            let i = rng.random_range(0..items.len());
            picks.push(&items[i]);
            if let Some(t) = twin[i].filter(|_| picks.len() < opts.batch) {
                picks.push(&items[t]);
            }
        }
        let batch = make_batch(&picks, mirror, rng.random_bool(0.5), &dev)?;
        let (loss, pv) = vision_loss(parts, &batch)?;
        let grads = loss.backward()?;
        opt.step(&grads)?;
        opt_pre.step(&grads)?;
        progress.record(
            StepLog {
                stage: "vision",
                step: step + 1,
                total: opts.steps,
                loss: loss.to_scalar::<f32>()?,
                parts: pv.to_vec(),
                lr,
            },
            checkpoint,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::record::Sample;
    use crate::model::cnn::CnnConfig;
    use crate::model::extras::PartDims;
    use crate::model::vision::{FaceCrop, VisionConfig};
    use candle_nn::VarBuilder;

    fn sample(fake: bool) -> Sample {
        serde_json::from_value(serde_json::json!({
            "id": "x", "split": "train", "identity": "i", "image": "x.png",
            "label": if fake { "fake" } else { "real" }, "face_bbox": [0.0, 0.0, 32.0, 32.0],
            "forgery_type": if fake { Some("colour") } else { None }
        }))
        .unwrap()
    }

    #[test]
    fn twins_pair_a_fake_with_its_real_and_leave_orphans_alone() {
        let mk = |image: &str, real: Option<&str>| {
            let mut s = sample(real.is_some());
            s.image = format!("{image}.png");
            s.real_image = real.map(|r| format!("{r}.png"));
            Item {
                sample: s,
                crop: FaceCrop {
                    image: image::RgbImage::new(1, 1),
                    origin: [0.0; 3],
                },
                image_cfg: Default::default(),
                fake: 0.0,
                type_idx: None,
                concepts: vec![],
                mask: Tensor::zeros((1, 1), candle_core::DType::F32, &Device::Cpu).unwrap(),
                segments: vec![],
            }
        };
        let items = vec![
            mk("a-real", None),
            mk("b-fake", Some("b-real")),
            mk("a-fake", Some("a-real")),
        ];
        assert_eq!(twins(&items), vec![Some(2), None, Some(0)]);
    }

    /// Fakes carry a bright 8×8 square at a random place: the verdict and mask heads must learn
    /// it within a few dozen steps, or gradients are not reaching the encoder.
    #[test]
    fn learns_a_visible_artifact() {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(3);
        let mut items = Vec::new();
        let image_cfg = std::sync::Arc::new(crate::model::vision::ImageConfig {
            size: 32,
            mean: [0.25 / 2.25; 3],
            std: [1.0 / 2.25; 3],
            face_margin: 0.0,
            highpass: false,
        });
        for k in 0..64 {
            let fake = k % 2 == 0;
            let mut x = vec![0f32; 3 * 32 * 32];
            let mut m = vec![0f32; 8 * 8];
            for v in x.iter_mut() {
                *v = rng.random::<f32>() * 0.5 - 0.25;
            }
            if fake {
                let (ox, oy) = (
                    rng.random_range(0..3usize) * 8,
                    rng.random_range(0..3usize) * 8,
                );
                for c in 0..3 {
                    for y in oy..oy + 8 {
                        for xx in ox..ox + 8 {
                            x[c * 1024 + y * 32 + xx] = 2.0;
                        }
                    }
                }
                for y in oy / 4..oy / 4 + 2 {
                    for xx in ox / 4..ox / 4 + 2 {
                        m[y * 8 + xx] = 1.0;
                    }
                }
            }
            // Pixels in [-0.25, 2.0] stored as 8-bit, read back through mean/std.
            let image = image::RgbImage::from_fn(32, 32, |px, py| {
                let at = |c: usize| x[c * 1024 + py as usize * 32 + px as usize];
                image::Rgb([0, 1, 2].map(|c| ((at(c) + 0.25) / 2.25 * 255.0).round() as u8))
            });
            items.push(Item {
                sample: sample(fake),
                crop: FaceCrop {
                    image,
                    origin: [0.0, 0.0, 32.0],
                },
                image_cfg: image_cfg.clone(),
                fake: fake as u8 as f32,
                type_idx: fake.then_some(4),
                concepts: vec![],
                mask: Tensor::from_vec(m, (8, 8), &dev).unwrap(),
                segments: vec![],
            });
        }
        let vm = VarMap::new();
        let dims = PartDims {
            llm_dim: 16,
            mask_dim: 8,
            n_types: 7,
            n_concepts: 0,
            n_added_tokens: 5,
            vision_prior: false,
        };
        let cfg = VisionConfig::DfaCnn(CnnConfig {
            widths: [8, 16, 16, 16],
            pixel_dim: 8,
            token_grid: 2,
            in_channels: 3,
        });
        let parts =
            Parts::new(&cfg, &dims, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        let refs: Vec<&Item> = items.iter().collect();
        let eval = make_batch(&refs, &[], false, &dev).unwrap();
        let (before, b_parts) = vision_loss(&parts, &eval).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut progress = Progress::new(
            &dir.path().join("log.jsonl"),
            60,
            0,
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
        let opts = VisionStageOptions {
            steps: 60,
            batch: 16,
            lr: 3e-3,
            seed: 1,
            pretrained: vec![],
            pretrained_lr_scale: 1.0,
        };
        train(
            &parts,
            &vm,
            &items,
            &[],
            &opts,
            0,
            &mut progress,
            &mut |_| Ok(()),
        )
        .unwrap();
        let (after, a_parts) = vision_loss(&parts, &eval).unwrap();
        let (before, after) = (
            before.to_scalar::<f32>().unwrap(),
            after.to_scalar::<f32>().unwrap(),
        );
        assert!(after < 0.5 * before, "loss {before} -> {after}");
        assert!(
            a_parts[0] < 0.3 && a_parts[0] < b_parts[0],
            "verdict BCE {:?} -> {:?}",
            b_parts,
            a_parts
        );
    }
}
