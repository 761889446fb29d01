//! The FiFa-style MLLM: vision encoder, projector, LLM with LoRA, grounding (seg projector,
//! mask decoder), verdict head; and the engine that runs them as an [`crate::analysis::Analyzer`].

pub mod clip;
pub mod cnn;
pub mod config;
pub mod engine;
pub mod extras;
pub mod grounding;
pub mod llm;
mod llm_frozen;
mod llm_layers;
pub mod llm_load;
#[cfg(test)]
mod llm_tests;
pub mod lora;
pub mod prompt;
pub mod sampling;
pub mod tokenizer;
pub mod vision;
pub mod vision_only;

use crate::analysis::Analyzer;

/// Load a model directory (or `org/repo` from the hf-hub cache) and an optional adapter as an
/// analyzer. `None` for `model` = the embedded default (dfa-tiny).
pub fn load_analyzer(
    model: Option<&str>,
    adapter: Option<&str>,
) -> anyhow::Result<Box<dyn Analyzer>> {
    let opts = engine::LoadOptions {
        model: model.map(String::from),
        adapter: adapter.map(String::from),
        merge_lora: false,
    };
    Ok(Box::new(engine::Engine::load(&opts)?))
}

/// The `vision-only` baseline of a model (its encoder and auxiliary heads, no LLM).
pub fn load_vision_only(model: Option<&str>) -> anyhow::Result<Box<dyn Analyzer>> {
    Ok(Box::new(vision_only::VisionOnly::load(model)?))
}
