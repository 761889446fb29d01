//! dfa — explainable deepfake analysis: a FiFa-style MLLM (vision encoder → LLM with LoRA,
//! `[SEG]` tokens decoded into masks) in candle, with its data forge, training and evaluation.

pub mod analysis;
pub mod chat;
pub mod cli;
pub mod eval;
pub mod face;
pub mod forge;
pub mod imageio;
pub mod model;
pub mod report;
pub mod train;
pub mod tui;
