//! Stage 2: the LLM side. The encoder is frozen and its features cached per sample; trained are
//! the projector, region projector, added-token rows, LoRA, seg projector, mask decoder and
//! verdict head. Losses: next-token CE on the answer; BCE + dice for the mask of every `[SEG]`
//! (query = hidden state at the position that PREDICTS `[SEG]`); BCE/CE for verdict and type.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::data::Item;
use super::losses::{bce_with_logits, cross_entropy};
use super::progress::{warmup_cosine, Progress, StepLog};
use crate::forge::record::TaskRecord;
use crate::model::extras::Parts;
use crate::model::grounding::pool_region;
use crate::model::llm::Llm;
use crate::model::prompt::{positions_of, predicting_positions, splice_rows, user_text};
use crate::model::tokenizer::{render_chat, DfaTokenIds};

/// Frozen encoder outputs of one item.
pub struct Cached {
    pub tokens: Tensor,
    pub pixels: Tensor,
    pub pooled: Tensor,
}

/// Run the (frozen) encoder once per item.
pub fn cache_features(parts: &Parts, items: &[Item]) -> candle_core::Result<Vec<Cached>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(16) {
        let x = Tensor::stack(
            &chunk
                .iter()
                .map(|i| i.input(i.mask.device()))
                .collect::<candle_core::Result<Vec<_>>>()?,
            0,
        )?;
        let f = parts.vision.forward(&x)?;
        for k in 0..chunk.len() {
            out.push(Cached {
                tokens: f.tokens.get(k)?.detach(),
                pixels: f.pixels.get(k)?.unsqueeze(0)?.detach(),
                pooled: f.pooled.get(k)?.unsqueeze(0)?.detach(),
            });
        }
    }
    Ok(out)
}

/// One tokenised training sequence.
pub struct Sequence {
    pub ids: Vec<u32>,
    /// Tokens before the answer (the last of them predicts the first answer token).
    pub prompt_len: usize,
    /// With `<region>`: the region's grid mask (g, g).
    pub region: Option<Tensor>,
    /// Per `[SEG]` in order: the target mask (g, g).
    pub seg_targets: Vec<Tensor>,
}

/// Which task records stage 2 trains on, with their sampling weights.
pub const TASK_WEIGHTS: &[(&str, f64)] = &[("age", 0.6), ("region", 0.25), ("det", 0.15)];

/// Pick a task of `item` by TASK_WEIGHTS.
pub fn pick_task<'a>(item: &'a Item, rng: &mut StdRng) -> Option<&'a TaskRecord> {
    let avail: Vec<(&TaskRecord, f64)> = item
        .sample
        .tasks
        .iter()
        .filter_map(|t| {
            TASK_WEIGHTS
                .iter()
                .find(|(n, _)| *n == t.task)
                .map(|(_, w)| (t, *w))
        })
        .collect();
    let total: f64 = avail.iter().map(|a| a.1).sum();
    if total <= 0.0 {
        return None;
    }
    let mut r = rng.random::<f64>() * total;
    for (t, w) in &avail {
        if r < *w {
            return Some(t);
        }
        r -= w;
    }
    avail.last().map(|a| a.0)
}

/// Build the token sequence for `task` on `item`. `region_grid` resolves a region name to its
/// grid mask (None = skip the task).
pub fn build_sequence(
    tok: &tokenizers::Tokenizer,
    ids: &DfaTokenIds,
    n_visual: usize,
    item: &Item,
    task: &TaskRecord,
    region_grid: &dyn Fn(&Item, &TaskRecord) -> Option<Tensor>,
) -> anyhow::Result<Option<Sequence>> {
    let region = if task.region.is_some() || task.bbox.is_some() {
        match region_grid(item, task) {
            Some(g) => Some(g),
            None => return Ok(None),
        }
    } else {
        None
    };
    let prompt = render_chat(
        None,
        &[],
        &user_text(n_visual, &task.prompt, region.is_some()),
    );
    let p_ids = tok
        .encode(prompt, false)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .get_ids()
        .to_vec();
    let a_ids = tok
        .encode(format!("{}<|im_end|>", task.answer.trim()), false)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .get_ids()
        .to_vec();
    let prompt_len = p_ids.len();
    let mut all = p_ids;
    all.extend(a_ids);
    // [SEG] targets: the GT segment named by the phrase before each [SEG] (else by order).
    let mut seg_targets = Vec::new();
    let answer = &task.answer;
    let phrases: Vec<String> = answer
        .split("<p>")
        .skip(1)
        .filter_map(|s| s.split("</p>").next())
        .map(|s| s.trim().to_string())
        .collect();
    let n_seg = positions_of(&all[prompt_len..], ids.seg).len();
    for k in 0..n_seg {
        let by_phrase = phrases.get(k).and_then(|p| {
            item.sample
                .segments
                .iter()
                .position(|g| g.phrase.trim() == p)
        });
        let idx = by_phrase.unwrap_or(k);
        match item.segments.get(idx) {
            Some((_, m)) => seg_targets.push(m.clone()),
            None => return Ok(None),
        }
    }
    Ok(Some(Sequence {
        ids: all,
        prompt_len,
        region,
        seg_targets,
    }))
}

/// Loss of one batch of sequences. Returns (total, [text, mask, verdict]).
#[allow(clippy::too_many_arguments)]
pub fn batch_loss(
    llm: &Llm,
    parts: &Parts,
    ids: &DfaTokenIds,
    pad: u32,
    batch: &[(&Item, &Cached, Sequence)],
    dev: &Device,
) -> anyhow::Result<(Tensor, [f32; 3])> {
    let t_max = batch.iter().map(|b| b.2.ids.len()).max().unwrap_or(1);
    let mut rows = Vec::new();
    for (_, c, s) in batch {
        let mut padded = s.ids.clone();
        padded.resize(t_max, pad);
        let idt = Tensor::from_vec(padded.clone(), (1, t_max), dev)?;
        let mut e = llm.embed(&idt)?.squeeze(0)?;
        let visual = parts.projector.forward(&c.tokens)?;
        let img_pos = positions_of(&padded, ids.image);
        e = splice_rows(&e, &img_pos, &visual)?;
        if let Some(r) = &s.region {
            let rp = positions_of(&s.ids, ids.region);
            if let Some(&p) = rp.last() {
                let emb = parts
                    .region_projector
                    .forward(&pool_region(&c.pixels, r)?)?;
                e = splice_rows(&e, &[p], &emb)?;
            }
        }
        rows.push(e);
    }
    let embeds = Tensor::stack(&rows, 0)?;
    let hidden = llm.forward_train(&embeds)?; // (b, t, d)

    // Text loss on answer tokens.
    let mut pos_idx = Vec::new();
    let mut targets = Vec::new();
    for (k, (_, _, s)) in batch.iter().enumerate() {
        for p in s.prompt_len - 1..s.ids.len() - 1 {
            pos_idx.push((k * t_max + p) as u32);
            targets.push(s.ids[p + 1]);
        }
    }
    let d = hidden.dim(2)?;
    let flat = hidden.reshape((batch.len() * t_max, d))?;
    let picked = flat.index_select(&Tensor::from_vec(pos_idx.clone(), pos_idx.len(), dev)?, 0)?;
    let logits = llm.logits(&picked.unsqueeze(0)?)?.squeeze(0)?;
    let l_text = cross_entropy(&logits, &Tensor::from_vec(targets, pos_idx.len(), dev)?)?;

    // Mask loss for every [SEG], from the predicting position.
    let mut mask_losses = Vec::new();
    for (k, (_, c, s)) in batch.iter().enumerate() {
        let preds = predicting_positions(&s.ids, ids.seg);
        if preds.is_empty() {
            continue;
        }
        let pe = parts.seg_pixels(&c.pixels)?;
        for (p, target) in preds.iter().zip(&s.seg_targets) {
            let h = flat.get(k * t_max + p)?.unsqueeze(0)?;
            let q = parts.seg_projector.forward(&h)?.unsqueeze(0)?;
            let logit = parts.decode_mask(&q, &pe)?.squeeze(0)?; // (1, g, g)
            let t = target.unsqueeze(0)?;
            let bce = (bce_with_logits(&logit, &t)? * 4.0)?;
            let dice = super::losses::dice_loss(&logit, &t)?;
            mask_losses.push((bce + dice)?);
        }
    }
    let l_mask = if mask_losses.is_empty() {
        Tensor::zeros((), DType::F32, dev)?
    } else {
        (Tensor::stack(&mask_losses, 0)?.mean_all())?
    };

    // Verdict head from the last prompt position.
    let mut states = Vec::new();
    let mut pooled = Vec::new();
    let mut fake = Vec::new();
    let mut type_rows = Vec::new();
    let mut type_ids = Vec::new();
    for (k, (item, c, s)) in batch.iter().enumerate() {
        states.push(flat.get(k * t_max + s.prompt_len - 1)?);
        pooled.push(c.pooled.squeeze(0)?);
        fake.push(item.fake);
        if let Some(t) = item.type_idx {
            type_rows.push(k as u32);
            type_ids.push(t as u32);
        }
    }
    let out = parts.verdict_logits(&Tensor::stack(&pooled, 0)?, &Tensor::stack(&states, 0)?)?;
    let mut l_verdict = bce_with_logits(&out.fake, &Tensor::from_vec(fake, batch.len(), dev)?)?;
    if !type_rows.is_empty() {
        let n = type_rows.len();
        let tl = cross_entropy(
            &out.types
                .contiguous()?
                .index_select(&Tensor::from_vec(type_rows, n, dev)?, 0)?,
            &Tensor::from_vec(type_ids, n, dev)?,
        )?;
        l_verdict = (l_verdict + tl)?;
    }
    let total = ((&l_text + &l_mask)? + &l_verdict)?;
    Ok((
        total,
        [
            l_text.to_scalar()?,
            l_mask.to_scalar()?,
            l_verdict.to_scalar()?,
        ],
    ))
}

pub struct LlmStageOptions {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// Train stage 2 in place.
#[allow(clippy::too_many_arguments)]
pub fn train(
    llm: &Llm,
    parts: &Parts,
    trainable: Vec<candle_core::Var>,
    tok: &tokenizers::Tokenizer,
    ids: &DfaTokenIds,
    items: &[Item],
    cached: &[Cached],
    region_grid: &dyn Fn(&Item, &TaskRecord) -> Option<Tensor>,
    opts: &LlmStageOptions,
    start_step: usize,
    progress: &mut Progress,
    checkpoint: &mut dyn FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // The batches go where the cached features already are.
    let dev = cached
        .first()
        .map_or(Device::Cpu, |c| c.tokens.device().clone());
    let pad = tok.token_to_id("<|endoftext|>").unwrap_or(0);
    let n_visual = cached
        .first()
        .map(|c| c.tokens.dim(0))
        .transpose()?
        .unwrap_or(0);
    let mut opt = AdamW::new(
        trainable,
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_add(1000 + start_step as u64));
    for step in start_step..opts.steps {
        let lr = warmup_cosine(step, opts.steps, opts.lr);
        opt.set_learning_rate(lr);
        let mut batch = Vec::new();
        let mut guard = 0;
        while batch.len() < opts.batch && guard < opts.batch * 20 {
            guard += 1;
            let k = rng.random_range(0..items.len());
            let Some(task) = pick_task(&items[k], &mut rng) else {
                continue;
            };
            if let Some(seq) = build_sequence(tok, ids, n_visual, &items[k], task, region_grid)? {
                batch.push((&items[k], &cached[k], seq));
            }
        }
        if batch.is_empty() {
            anyhow::bail!("no trainable task records (age/region/det) in the data");
        }
        let (loss, pv) = batch_loss(llm, parts, ids, pad, &batch, &dev)?;
        opt.backward_step(&loss)?;
        progress.record(
            StepLog {
                stage: "llm",
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
