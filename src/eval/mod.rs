//! `dfa eval`: metrics of a model (and of baselines) on a labelled dataset.
//!
//! The pieces: [`dataset`] reads the JSONL (bad lines skipped and counted), [`tasks`] turns each
//! sample's task records into requests, [`runner`] asks every system through the
//! [`crate::analysis::Analyzer`] trait and caches the answers ([`cache`]), [`score`] compares one
//! sample's answers with its labels, [`summary`] aggregates with bootstrap intervals
//! ([`bootstrap`]) and per photo source ([`sources`]), [`report`] / [`plots`] write the results,
//! and [`splits`] compares several splits of one run (the generalisation gap). The metric
//! primitives live in [`metrics`], [`hungarian`] (phrase-to-segment matching), [`text`]
//! (METEOR, ROUGE-L) and [`porter`] (the stemmer METEOR uses). See docs/eval.md.

pub mod baselines;
pub mod bootstrap;
pub mod cache;
pub mod dataset;
pub mod hungarian;
pub mod metrics;
pub mod plots;
pub mod porter;
pub mod report;
pub mod runner;
pub mod score;
pub mod sources;
pub mod splits;
pub mod summary;
pub mod tasks;
pub mod text;

pub use baselines::Baseline;
pub use runner::{run, RunOptions, SystemSpec};
pub use tasks::Task;
