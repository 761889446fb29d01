//! Command-line front end: one file per subcommand, each with its clap `Args` and a `run`.
//!
//! Exit codes: 0 success; 1 unexpected error; 2 bad arguments or input (unreadable image,
//! unknown region, malformed file); 3 no face found; 4 the model or adapter could not be loaded.

pub mod batch;
pub mod chat;
pub mod eval;
pub mod explain;
pub mod forge;
pub mod regions;
pub mod train;

use crate::analysis::{AnalysisError, GenOptions};
use crate::model::engine::{Engine, LoadOptions};

/// `--model`, `--adapter`, `--merge`: shared by every command that runs the model.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model directory or hf-hub `org/repo` (from the local cache). Default: the embedded dfa-tiny.
    #[arg(long)]
    pub model: Option<String>,
    /// PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    pub adapter: Option<String>,
    /// Merge the LoRA adapter into the base weights at load.
    #[arg(long)]
    pub merge: bool,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<Engine> {
        Engine::load(&LoadOptions {
            model: self.model.clone(),
            adapter: self.adapter.clone(),
            merge_lora: self.merge,
        })
        .map_err(|e| anyhow::Error::new(ModelLoadError(format!("{e:#}"))))
    }
}

/// Sampling flags.
#[derive(Debug, Clone, clap::Args)]
pub struct GenArgs {
    /// Random seed (sampling only; greedy decoding ignores it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
}

impl GenArgs {
    pub fn options(&self) -> GenOptions {
        GenOptions {
            seed: self.seed,
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
        }
    }
}

/// The model could not be loaded (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error("cannot load model: {0}")]
pub struct ModelLoadError(pub String);

/// Bad arguments or input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(msg: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg))
}

/// The exit code for an error (see the module docs).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<ModelLoadError>().is_some() {
        return 4;
    }
    if let Some(a) = err.downcast_ref::<AnalysisError>() {
        return match a {
            AnalysisError::NoFace(_) => 3,
            AnalysisError::NoSuchFace { .. } | AnalysisError::BadRegion(_) => 2,
            AnalysisError::Model(_) => 1,
        };
    }
    if err.downcast_ref::<UsageError>().is_some()
        || err
            .downcast_ref::<crate::imageio::ImageLoadError>()
            .is_some()
    {
        return 2;
    }
    1
}
