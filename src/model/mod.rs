//! The FiFa-style MLLM: vision encoder, projector, LLM with LoRA, grounding (seg projector,
//! mask decoder), verdict head; and the engine that runs them as an [`crate::analysis::Analyzer`].

use crate::analysis::Analyzer;

/// Load a model directory (or `org/repo` via hf-hub) and an optional adapter as an analyzer.
/// `None` for `model` = the embedded default (dfa-tiny).
pub fn load_analyzer(
    model: Option<&str>,
    adapter: Option<&str>,
) -> anyhow::Result<Box<dyn Analyzer>> {
    let _ = (model, adapter);
    anyhow::bail!("the engine is not built yet")
}

pub mod llm;
mod llm_frozen;
mod llm_layers;
pub mod llm_load;
#[cfg(test)]
mod llm_tests;
pub mod lora;
pub mod sampling;
pub mod tokenizer;
