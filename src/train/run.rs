//! The whole `dfa train` run: data → stage 1 (vision) → stage 2 (LLM side) → a model directory
//! (config.json, extras.safetensors, PEFT adapter). Checkpoints under `--work DIR` every few
//! minutes; rerunning the same command resumes where it stopped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::data::{concept_vocab, load_items, mirror_index, read_samples, Item};
use super::progress::Progress;
use super::{llm_stage, vision_stage};
use crate::forge::record::{TaskRecord, FORGERY_TYPES};
use crate::model::cnn::CnnConfig;
use crate::model::config::{LlmSource, ModelConfig, PromptConfig, Thresholds, MODEL_FORMAT};
use crate::model::extras::{self, Manifest, PartDims, Parts};
use crate::model::llm::Llm;
use crate::model::lora::LoraConfig;
use crate::model::mobilenet::{self, MobileNetConfig};
use crate::model::tokenizer::{add_dfa_tokens, tokenizer_from_gguf};
use crate::model::vision::{mask_to_grid, ImageConfig, VisionConfig};

/// Side of the encoder's per-pixel map (input / 4).
const GRID: usize = 40;

/// The vision encoder a run trains.
#[derive(Debug, Clone, PartialEq)]
pub enum Backbone {
    /// dfa-cnn from scratch.
    DfaCnn,
    /// ImageNet MobileNetV2, initialised from a converted file (tools/fetch-sources.sh).
    MobileNetV2 { init: PathBuf },
}

impl Backbone {
    /// Input and encoder configs. 160² crops with a 15% margin keep the face near its forge
    /// resolution (artifacts are high-frequency); the high-pass channels make them visible.
    fn configs(&self) -> (ImageConfig, VisionConfig) {
        let base = ImageConfig {
            size: 160,
            face_margin: 0.15,
            highpass: true,
            ..ImageConfig::default()
        };
        match self {
            Backbone::DfaCnn => (
                base,
                VisionConfig::DfaCnn(CnnConfig {
                    in_channels: 6,
                    ..CnnConfig::default()
                }),
            ),
            Backbone::MobileNetV2 { .. } => (
                ImageConfig {
                    mean: [0.485, 0.456, 0.406],
                    std: [0.229, 0.224, 0.225],
                    ..base
                },
                VisionConfig::MobileNetV2(MobileNetConfig {
                    in_channels: 6,
                    ..MobileNetConfig::default()
                }),
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub out: PathBuf,
    pub work: PathBuf,
    pub gguf: PathBuf,
    pub vision_steps: usize,
    pub vision_batch: usize,
    pub llm_steps: usize,
    pub llm_batch: usize,
    /// At most this many items for stage 2 (seeded draw, fakes and reals alike).
    pub llm_items: usize,
    pub lora_rank: usize,
    pub seed: u64,
    /// Leave these recipes (forgery types) out of training (generalisation runs).
    pub exclude: Vec<String>,
    pub checkpoint_minutes: f64,
    pub default_prompt: String,
    /// Where every tensor lives (CPU, or CUDA in a `--features cuda` build).
    pub device: Device,
    pub backbone: Backbone,
    /// See [`PartDims::vision_prior`].
    pub vision_prior: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct State {
    vision_step: usize,
    llm_step: usize,
    concepts: Vec<String>,
}

fn save_state(work: &Path, s: &State) -> anyhow::Result<()> {
    let tmp = work.join("state.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(s)?)?;
    std::fs::rename(tmp, work.join("state.json"))?;
    Ok(())
}

fn save_varmap(vm: &VarMap, path: &Path) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    vm.save(&tmp)?;
    std::fs::rename(tmp, path)?;
    Ok(())
}

pub fn run(cfg: &TrainConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.work)?;
    let dev = cfg.device.clone();
    let (image_cfg, vision_cfg) = cfg.backbone.configs();
    let mut samples = read_samples(&cfg.data, "train")?;
    samples.retain(|s| {
        s.forgery_type
            .as_ref()
            .is_none_or(|t| !cfg.exclude.contains(t))
    });
    if samples.is_empty() {
        anyhow::bail!("{} has no train-split samples", cfg.data.display());
    }
    let mut state: State = std::fs::read_to_string(cfg.work.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if state.concepts.is_empty() {
        state.concepts = concept_vocab(&samples);
    }
    let vocab = state.concepts.clone();
    eprintln!(
        "train: {} samples, {} concepts; work dir {}",
        samples.len(),
        vocab.len(),
        cfg.work.display()
    );
    let items = load_items(&cfg.data, samples, &image_cfg, GRID, &vocab, &dev)?;
    let mirror = mirror_index(&vocab);

    // The LLM (frozen, f32) and tokenizer.
    let (mut llm, meta) = Llm::load_gguf(&cfg.gguf, true, &dev)?;
    let mut tok = tokenizer_from_gguf(&meta)?;
    let ids = add_dfa_tokens(&mut tok)?;
    let dims = PartDims {
        llm_dim: llm.hidden_size(),
        mask_dim: 64,
        n_types: FORGERY_TYPES.len(),
        n_concepts: vocab.len(),
        n_added_tokens: 5,
        vision_prior: cfg.vision_prior,
    };

    let vm = VarMap::new();
    let parts = Parts::new(
        &vision_cfg,
        &dims,
        VarBuilder::from_varmap(&vm, DType::F32, &dev),
    )?;
    let parts_ckpt = cfg.work.join("parts.safetensors");
    let mut vm_mut = vm.clone();
    if parts_ckpt.exists() {
        if state.llm_step == 0 {
            // Stage 2 has not started: only the stage-1 parts carry anything (this also lets a
            // finished stage 1 be copied into a new work dir to try another stage 2).
            load_prefixes(&vm, &parts_ckpt, &["vision.", "aux."])
        } else {
            vm_mut.load(&parts_ckpt).map_err(anyhow::Error::from)
        }
        .with_context(|| format!("cannot resume from {}", parts_ckpt.display()))?;
        eprintln!(
            "train: resumed parts at vision step {}, llm step {}",
            state.vision_step, state.llm_step
        );
    } else if let Backbone::MobileNetV2 { init } = &cfg.backbone {
        let n = mobilenet::load_pretrained(&vm, "vision.", init)
            .context("run tools/fetch-sources.sh to make the ImageNet MobileNetV2 file")?;
        eprintln!("train: {n} ImageNet tensors from {}", init.display());
    }
    let every = Duration::from_secs_f64(cfg.checkpoint_minutes * 60.0);
    let log = cfg.work.join("log.jsonl");

    // Stage 1.
    if state.vision_step < cfg.vision_steps {
        let mut progress = Progress::new(
            &log,
            cfg.vision_steps as u64,
            state.vision_step as u64,
            every,
        )?;
        let opts = vision_stage::VisionStageOptions {
            steps: cfg.vision_steps,
            batch: cfg.vision_batch,
            lr: 2e-3,
            seed: cfg.seed,
            pretrained: match cfg.backbone {
                Backbone::DfaCnn => vec![],
                Backbone::MobileNetV2 { .. } => mobilenet::PRETRAINED_PREFIXES
                    .iter()
                    .map(|p| format!("vision.{p}"))
                    .collect(),
            },
            pretrained_lr_scale: 0.25,
        };
        let start = state.vision_step;
        let mut st = state.clone();
        vision_stage::train(
            &parts,
            &vm,
            &items,
            &mirror,
            &opts,
            start,
            &mut progress,
            &mut |step| {
                save_varmap(&vm, &parts_ckpt)?;
                st.vision_step = step;
                save_state(&cfg.work, &st)
            },
        )?;
        progress.finish();
        state = st;
    }

    // Stage 2.
    let lora_vm = VarMap::new();
    let lora_cfg = LoraConfig::new(
        cfg.lora_rank,
        (2 * cfg.lora_rank) as f64,
        &["q_proj", "v_proj"],
    );
    llm.add_trainable_lora(&lora_cfg, &lora_vm)?;
    let lora_ckpt = cfg.work.join("lora.safetensors");
    if lora_ckpt.exists() && state.llm_step > 0 {
        let mut l = lora_vm.clone();
        l.load(&lora_ckpt)?;
    }
    llm.set_extra_rows(parts.token_rows.clone())?;
    let items = subset(items, cfg.llm_items, cfg.seed);
    if state.llm_step < cfg.llm_steps {
        eprintln!(
            "train: caching frozen encoder features of {} samples",
            items.len()
        );
        let cached = llm_stage::cache_features(&parts, &items)?;
        let region_grids = region_grids(&cfg.data, &items, &dev)?;
        let region_grid = |item: &Item, task: &TaskRecord| -> Option<Tensor> {
            let key = (item.sample.id.clone(), task_region_key(task));
            region_grids.get(&key).cloned()
        };
        let mut trainable = vision_stage::vars_with_prefix(
            &vm,
            &[
                "mm_projector.",
                "region_projector.",
                "seg_projector.",
                "mask_decoder.",
                "verdict_head.",
                "added_tokens",
            ],
        );
        trainable.extend(lora_vm.all_vars());
        let mut progress = Progress::new(&log, cfg.llm_steps as u64, state.llm_step as u64, every)?;
        let opts = llm_stage::LlmStageOptions {
            steps: cfg.llm_steps,
            batch: cfg.llm_batch,
            lr: 1e-3,
            seed: cfg.seed,
        };
        let mut st = state.clone();
        llm_stage::train(
            &llm,
            &parts,
            trainable,
            &tok,
            &ids,
            &items,
            &cached,
            &region_grid,
            &opts,
            st.llm_step,
            &mut progress,
            &mut |step| {
                save_varmap(&vm, &parts_ckpt)?;
                save_varmap(&lora_vm, &lora_ckpt)?;
                st.llm_step = step;
                save_state(&cfg.work, &st)
            },
        )?;
        progress.finish();
        state = st;
    }
    write_model_dir(
        cfg,
        &vm,
        &llm,
        &vision_cfg,
        &dims,
        &state.concepts,
        &image_cfg,
    )?;
    write_loss_curve(&log, &cfg.out.join("loss.png"))?;
    eprintln!("train: wrote {}", cfg.out.display());
    Ok(())
}

/// Set every variable of `vm` whose name starts with one of `prefixes` from `path`.
fn load_prefixes(vm: &VarMap, path: &Path, prefixes: &[&str]) -> anyhow::Result<()> {
    let file = candle_core::safetensors::load(path, &Device::Cpu)?;
    let vars = vm
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("varmap lock"))?;
    for (name, var) in vars.iter() {
        if prefixes.iter().any(|p| name.starts_with(p)) {
            let t = file
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("no {name} in the checkpoint"))?;
            var.set(&t.to_device(var.device())?)?;
        }
    }
    Ok(())
}

fn task_region_key(t: &TaskRecord) -> String {
    match (&t.region, &t.bbox) {
        (Some(r), _) => format!("region:{r}"),
        (None, Some(b)) => format!("box:{:?}", b),
        _ => String::new(),
    }
}

/// At most `n` of `items`, a seeded draw (all of them when there are fewer), in their order.
fn subset(items: Vec<Item>, n: usize, seed: u64) -> Vec<Item> {
    if items.len() <= n {
        return items;
    }
    let mut keep: Vec<usize> = (0..items.len()).collect();
    rand::seq::SliceRandom::shuffle(
        &mut keep[..],
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed ^ 0x11),
    );
    let keep: std::collections::HashSet<usize> = keep.into_iter().take(n).collect();
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, it)| it)
        .collect()
}

/// Grid masks for every region/box question of every item.
fn region_grids(
    data: &Path,
    items: &[Item],
    dev: &Device,
) -> anyhow::Result<HashMap<(String, String), Tensor>> {
    let root = data.parent().unwrap_or(Path::new("."));
    let fict = crate::face::fict::Fict::builtin();
    let mut out = HashMap::new();
    for item in items {
        let tasks: Vec<&TaskRecord> = item
            .sample
            .tasks
            .iter()
            .filter(|t| t.region.is_some() || t.bbox.is_some())
            .collect();
        if tasks.is_empty() {
            continue;
        }
        let img = crate::imageio::load_rgb(&root.join(&item.sample.image))?;
        let (w, h) = img.dimensions();
        let mut regions = None;
        for t in tasks {
            let mask = if let Some(name) = &t.region {
                let regions = regions.get_or_insert_with(|| {
                    crate::face::face_landmarks(&img, item.sample.face_bbox)
                        .map(|lm| fict.rasterize(&lm, w, h))
                });
                let Some(r) = regions.as_ref() else { continue };
                let Ok(c) = fict.lookup(name) else { continue };
                let Some(m) = r.masks.get(&c.name) else {
                    continue;
                };
                m.clone()
            } else {
                let b = t.bbox.expect("filtered");
                image::GrayImage::from_fn(w, h, |x, y| {
                    image::Luma([
                        if (x as f32) >= b[0]
                            && (x as f32) < b[2]
                            && (y as f32) >= b[1]
                            && (y as f32) < b[3]
                        {
                            255
                        } else {
                            0
                        },
                    ])
                })
            };
            let g = mask_to_grid(&mask, &item.crop, GRID);
            out.insert(
                (item.sample.id.clone(), task_region_key(t)),
                Tensor::from_vec(g, (GRID, GRID), dev)?,
            );
        }
    }
    Ok(out)
}

fn write_model_dir(
    cfg: &TrainConfig,
    vm: &VarMap,
    llm: &Llm,
    vision: &VisionConfig,
    dims: &PartDims,
    concepts: &[String],
    image: &ImageConfig,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.out)?;
    let tensors: HashMap<String, Tensor> = vm
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("varmap lock"))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    let manifest = Manifest {
        format: String::new(),
        vision: vision.clone(),
        dims: dims.clone(),
        concepts: concepts.to_vec(),
        shapes: Default::default(),
    };
    extras::save(&cfg.out.join("extras.safetensors"), &tensors, manifest)?;
    let adapter_dir = cfg.out.join("adapter");
    let mut adapter = llm.export_lora()?;
    adapter.config.base_model_name_or_path = Some("HuggingFaceTB/SmolLM2-135M-Instruct".into());
    adapter.save(&adapter_dir)?;
    let rel_gguf = pathdiff(&cfg.gguf, &cfg.out);
    let config = ModelConfig {
        format: MODEL_FORMAT.into(),
        name: "dfa-tiny".into(),
        llm: LlmSource {
            gguf: Some(rel_gguf),
            safetensors: None,
            dequantize: true,
        },
        tokenizer: None,
        image: image.clone(),
        extras: "extras.safetensors".into(),
        adapter: Some("adapter".into()),
        prompt: PromptConfig {
            template: "chatml".into(),
            system: None,
            default_prompt: cfg.default_prompt.clone(),
            prompt_id: "age-v1".into(),
        },
        thresholds: Thresholds::default(),
        calibration: None,
        trained: cfg.vision_steps > 0 && cfg.llm_steps > 0,
    };
    std::fs::write(
        cfg.out.join("config.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    Ok(())
}

/// `target` relative to `base` when both are relative to the working directory.
fn pathdiff(target: &Path, base: &Path) -> PathBuf {
    let t = std::path::absolute(target).unwrap_or_else(|_| target.to_path_buf());
    let b = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let tc: Vec<_> = t.components().collect();
    let bc: Vec<_> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut p = PathBuf::new();
    for _ in common..bc.len() {
        p.push("..");
    }
    for c in &tc[common..] {
        p.push(c);
    }
    p
}

/// The loss curve of log.jsonl (EMA-smoothed per stage) as a PNG.
pub fn write_loss_curve(log: &Path, png: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(log)?;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for stage in ["vision", "llm"] {
        let mut by_step = std::collections::BTreeMap::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["stage"] == stage {
                if let (Some(s), Some(l)) = (v["step"].as_u64(), v["loss"].as_f64()) {
                    by_step.insert(s, l); // a resumed run's repeat of a step replaces it
                }
            }
        }
        let mut ema: Option<f64> = None;
        let pts: Vec<(f64, f64)> = by_step
            .into_iter()
            .map(|(s, l)| {
                let e = ema.map_or(l, |e| 0.95 * e + 0.05 * l);
                ema = Some(e);
                (s as f64, e)
            })
            .collect();
        if !pts.is_empty() {
            series.push((stage.to_string(), pts));
        }
    }
    crate::eval::plots::loss_chart(png, &series)
}
