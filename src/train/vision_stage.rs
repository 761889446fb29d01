//! Stage 1: the vision encoder and its vision-only heads (verdict, type, concepts, artifact mask),
//! trained from scratch on forge crops. Fast on a CPU (STACK.md: ~50k img/h at 128²).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::data::Item;
use super::losses::{bce_with_logits, cross_entropy, dice_loss};
use super::progress::{Progress, StepLog};
use crate::model::extras::Parts;

pub struct VisionStageOptions {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// Trainable variables whose names start with one of `prefixes`.
pub fn vars_with_prefix(vm: &VarMap, prefixes: &[&str]) -> Vec<Var> {
    let data = vm.data().lock().expect("varmap lock");
    let mut named: Vec<(&String, &Var)> = data.iter().filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p))).collect();
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
pub fn make_batch(items: &[&Item], mirror: &[usize], flip: bool, dev: &Device) -> candle_core::Result<Batch> {
    let mut x = Tensor::stack(&items.iter().map(|i| i.input.clone()).collect::<Vec<_>>(), 0)?;
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
    let fakes: Vec<(usize, u32)> = items.iter().enumerate().filter_map(|(k, i)| i.type_idx.map(|t| (k, t as u32))).collect();
    let types = if fakes.is_empty() {
        None
    } else {
        Some((
            Tensor::from_vec(fakes.iter().map(|f| f.0 as u32).collect::<Vec<_>>(), fakes.len(), dev)?,
            Tensor::from_vec(fakes.iter().map(|f| f.1).collect::<Vec<_>>(), fakes.len(), dev)?,
        ))
    };
    let is_fake = fake.clone();
    Ok(Batch { x, fake, types, concepts, masks, is_fake })
}

/// The stage-1 loss of a batch: (total, [verdict, type, concepts, mask]).
pub fn vision_loss(parts: &Parts, batch: &Batch) -> candle_core::Result<(Tensor, [f32; 4])> {
    let f = parts.vision.forward(&batch.x)?;
    let out = parts.aux.forward(&f.pooled, &f.pixels)?;
    let l_fake = bce_with_logits(&out.heads.fake, &batch.fake)?;
    let l_type = match &batch.types {
        Some((rows, ids)) => cross_entropy(&out.heads.types.contiguous()?.index_select(rows, 0)?, ids)?,
        None => Tensor::zeros((), DType::F32, batch.x.device())?,
    };
    let l_conc = if batch.concepts.dim(1)? > 0 { bce_with_logits(&out.concepts, &batch.concepts)? } else { Tensor::zeros((), DType::F32, batch.x.device())? };
    let mask_logits = out.mask.squeeze(1)?;
    let l_mask = (bce_with_logits(&mask_logits, &batch.masks)? * 4.0)?;
    // Dice only where there is an artifact.
    let dice = {
        let per = dice_per_row(&mask_logits, &batch.masks)?;
        let n = batch.is_fake.sum_all()?.to_scalar::<f32>()?.max(1.0);
        ((per * &batch.is_fake)?.sum_all()? / n as f64)?
    };
    let total = (((&l_fake + &l_type)? + (&l_conc * 2.0)?)? + (&l_mask + &dice)?)?;
    let parts_v = [l_fake.to_scalar::<f32>()?, l_type.to_scalar::<f32>()?, l_conc.to_scalar::<f32>()?, (l_mask + dice)?.to_scalar::<f32>()?];
    Ok((total, parts_v))
}

fn dice_per_row(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let p = candle_nn::ops::sigmoid(logits)?.flatten_from(1)?;
    let t = targets.flatten_from(1)?;
    let inter = (&p * &t)?.sum(1)?;
    let denom = ((p.sum(1)? + t.sum(1)?)? + 1.0)?;
    1.0 - ((inter * 2.0)? / denom)?
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
    let _ = dice_loss;
    let vars = vars_with_prefix(vm, &["vision.", "aux."]);
    let mut opt = AdamW::new(vars, ParamsAdamW { lr: opts.lr, weight_decay: 1e-4, ..Default::default() })?;
    let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_add(start_step as u64));
    let dev = Device::Cpu;
    for step in start_step..opts.steps {
        // Cosine decay after a short warm-up.
        let warm = (opts.steps / 20).max(1);
        let lr = if step < warm { opts.lr * (step + 1) as f64 / warm as f64 } else { opts.lr * 0.5 * (1.0 + (std::f64::consts::PI * (step - warm) as f64 / (opts.steps - warm).max(1) as f64).cos()) };
        opt.set_learning_rate(lr);
        let picks: Vec<&Item> = (0..opts.batch).map(|_| &items[rng.random_range(0..items.len())]).collect();
        let batch = make_batch(&picks, mirror, rng.random_bool(0.5), &dev)?;
        let (loss, pv) = vision_loss(parts, &batch)?;
        opt.backward_step(&loss)?;
        progress.step(StepLog { stage: "vision", step: step + 1, total: opts.steps, loss: loss.to_scalar::<f32>()?, parts: pv.to_vec(), lr })?;
        if progress.checkpoint_due() || step + 1 == opts.steps {
            checkpoint(step + 1)?;
        }
    }
    Ok(())
}
