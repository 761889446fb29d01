//! The FiFa-style MLLM: vision encoder, projector, LLM with LoRA, grounding (seg projector,
//! mask decoder), verdict head; and the engine that runs them as an [`crate::analysis::Analyzer`].

pub mod clip;
pub mod cnn;
pub mod config;
pub mod depthwise;
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
pub mod mobilenet;
pub mod naming;
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

/// The compute device named on the command line: `cpu`, `cuda` or `cuda:N`. CUDA needs a build
/// with `--features cuda`; without it the error says so.
pub fn parse_device(name: &str) -> anyhow::Result<candle_core::Device> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" {
        return Ok(candle_core::Device::Cpu);
    }
    let ordinal = match name.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| anyhow::anyhow!("bad device {name:?}: use cpu, cuda or cuda:N"))?,
        None => anyhow::bail!("bad device {name:?}: use cpu, cuda or cuda:N"),
    };
    if !cfg!(feature = "cuda") {
        anyhow::bail!(
            "device {name:?} needs a build with CUDA: cargo build --release --features cuda"
        );
    }
    Ok(candle_core::Device::new_cuda(ordinal)?)
}

#[cfg(test)]
mod device_tests {
    #[test]
    fn device_names() {
        assert!(super::parse_device("cpu").unwrap().is_cpu());
        assert!(super::parse_device("gpu").is_err());
        assert!(super::parse_device("cuda:x").is_err());
        if !cfg!(feature = "cuda") {
            let e = super::parse_device("cuda:0").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
