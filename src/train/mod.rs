//! `dfa train`: stage 1 trains the vision encoder with its vision-only heads; stage 2 trains the
//! projectors, added-token rows, LoRA, seg projector, mask decoder and verdict head through the
//! LLM, with the encoder frozen and its features cached.

pub mod data;
pub mod llm_stage;
pub mod losses;
pub mod progress;
pub mod run;
pub mod vision_stage;
