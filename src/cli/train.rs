//! `dfa train`: train dfa-tiny (or a variant) from a forge dataset; resumable.

use std::path::PathBuf;

use crate::train::run::{run as train_run, Backbone, TrainConfig};

/// Train the vision encoder, projectors, LoRA, seg projector, mask decoder and heads from a
/// dataset (docs/dataset-format.md), writing a model directory (docs/model-format.md).
/// Rerunning the same command after a kill resumes from the last checkpoint in --work.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Dataset JSONL (its train split is used).
    #[arg(long)]
    pub data: PathBuf,
    /// Model directory to write.
    #[arg(long, default_value = "adapters/dfa-tiny")]
    pub out: PathBuf,
    /// Checkpoints, log.jsonl and state.json (git-ignored).
    #[arg(long, default_value = "runs/dfa-tiny")]
    pub work: PathBuf,
    /// The base LLM (GGUF).
    #[arg(long, default_value = "assets/llm/SmolLM2-135M-Instruct.Q4_1.gguf")]
    pub gguf: PathBuf,
    /// Stage-1 (vision) steps.
    #[arg(long, default_value_t = 1500)]
    pub vision_steps: usize,
    #[arg(long, default_value_t = 16)]
    pub vision_batch: usize,
    /// Stage-2 (LLM side) steps.
    #[arg(long, default_value_t = 600)]
    pub llm_steps: usize,
    #[arg(long, default_value_t = 4)]
    pub llm_batch: usize,
    /// Stage 2 trains on at most this many train samples (a seeded draw): it caches the
    /// frozen encoder's features (~0.4 MB each) and fits FaceMesh for every region question.
    #[arg(long, default_value_t = 4000)]
    pub llm_items: usize,
    /// LoRA rank (on q_proj and v_proj of every layer).
    #[arg(long, default_value_t = 8)]
    pub lora_rank: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Forgery types to leave out of training (comma-separated), for generalisation runs.
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Compute device: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Vision encoder: dfa-cnn (from scratch) or mobilenet-v2 (ImageNet-pretrained).
    #[arg(long, default_value = "dfa-cnn", value_parser = ["dfa-cnn", "mobilenet-v2"])]
    pub backbone: String,
    /// The converted ImageNet weights a mobilenet-v2 run starts from (tools/fetch-sources.sh).
    #[arg(long, default_value = "cache/mobilenet_v2.safetensors")]
    pub init_backbone: PathBuf,
    /// The MLLM's verdict and [SEG] masks add the vision-only heads' logits (stage 2 learns a
    /// correction to them); false trains them alone, as dfa-tiny v1 did.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub vision_prior: bool,
    /// Minutes between checkpoints.
    #[arg(long, default_value_t = 3.0)]
    pub checkpoint_minutes: f64,
    /// The question `dfa explain` asks by default (should be one the AGE data uses).
    #[arg(
        long,
        default_value = "Is this face manipulated? Explain with the regions."
    )]
    pub default_prompt: String,
}

pub fn run(a: &TrainArgs) -> anyhow::Result<()> {
    let device =
        crate::model::parse_device(&a.device).map_err(|e| super::usage(format!("{e:#}")))?;
    let backbone = match a.backbone.as_str() {
        "mobilenet-v2" => Backbone::MobileNetV2 {
            init: a.init_backbone.clone(),
        },
        _ => Backbone::DfaCnn,
    };
    train_run(&TrainConfig {
        device,
        backbone,
        vision_prior: a.vision_prior,
        data: a.data.clone(),
        out: a.out.clone(),
        work: a.work.clone(),
        gguf: a.gguf.clone(),
        vision_steps: a.vision_steps,
        vision_batch: a.vision_batch,
        llm_steps: a.llm_steps,
        llm_batch: a.llm_batch,
        llm_items: a.llm_items,
        lora_rank: a.lora_rank,
        seed: a.seed,
        exclude: a.exclude.clone(),
        checkpoint_minutes: a.checkpoint_minutes,
        default_prompt: a.default_prompt.clone(),
    })
}
