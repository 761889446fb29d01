//! `dfa eval`: score a model (and baselines) on a labelled dataset JSONL.

use std::path::PathBuf;

use super::{usage, ModelLoadError};
use crate::eval::dataset::DatasetError;
use crate::eval::runner::SystemLoadError;
use crate::eval::{Baseline, RunOptions, SystemSpec, Task};

/// Evaluate on a labelled dataset: detection, forgery type, localisation, grounded explanation
/// (AGE), text and region questions. Writes OUT/predictions.jsonl (a resumable cache),
/// OUT/metrics.json, OUT/metrics.md and PNG plots (per split in OUT/<split>/ when several).
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// The dataset JSONL (one sample per line; paths relative to its folder).
    pub data: PathBuf,
    /// Model directory, `org/repo`, or `default` for the embedded dfa-tiny. Evaluated when given,
    /// or when no --baseline is given.
    #[arg(long)]
    pub model: Option<String>,
    /// LoRA adapter directory for the model.
    #[arg(long)]
    pub adapter: Option<String>,
    /// Tasks to score, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Task::ALL.to_vec())]
    pub tasks: Vec<Task>,
    /// A baseline to score alongside (repeatable).
    #[arg(long = "baseline", value_enum)]
    pub baselines: Vec<Baseline>,
    /// Output folder.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Evaluate only the first N samples of the split.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Requests run in parallel.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Which split(s) to evaluate, comma-separated (`all` for every sample). Several, e.g.
    /// `test,test-id`, give OUT/<split>/ each, and OUT/splits.md comparing them (AUC gap
    /// against the first).
    #[arg(long, value_delimiter = ',', default_value = "test")]
    pub split: Vec<String>,
    /// Seed of the bootstrap intervals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl EvalArgs {
    /// The systems to evaluate, in report order: the model (if asked for), then each baseline.
    pub fn systems(&self) -> Vec<SystemSpec> {
        let model = self.model.clone().filter(|m| m != "default");
        let mut out = Vec::new();
        if self.model.is_some() || self.baselines.is_empty() {
            out.push(SystemSpec::Model {
                model: model.clone(),
                adapter: self.adapter.clone(),
            });
        }
        let mut seen = Vec::new();
        for &b in &self.baselines {
            if !seen.contains(&b) {
                seen.push(b);
                out.push(SystemSpec::Baseline {
                    baseline: b,
                    model: model.clone(),
                });
            }
        }
        out
    }
}

/// Give errors the kind the exit code is chosen by (see `crate::cli::exit_code`).
fn exit_kind(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<SystemLoadError>().is_some() {
        return anyhow::Error::new(ModelLoadError(format!("{e:#}")));
    }
    if e.downcast_ref::<DatasetError>().is_some() {
        return usage(format!("{e:#}"));
    }
    e
}

/// Run `dfa eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    if args.tasks.is_empty() {
        return Err(usage(
            "--tasks is empty: name at least one of det,cls,loc,age,toe,region,box".into(),
        ));
    }
    let opts = RunOptions {
        dataset: args.data.clone(),
        out: args.out.clone(),
        tasks: args.tasks.clone(),
        splits: args.split.clone(),
        limit: args.limit,
        jobs: args.jobs.max(1),
        seed: args.seed,
    };
    let reports = crate::eval::run(&opts, &args.systems()).map_err(exit_kind)?;
    for r in &reports {
        print!("{}", crate::eval::report::markdown(r));
    }
    let out = args.out.display();
    if reports.len() > 1 {
        let c = crate::eval::splits::compare(&reports);
        print!("\n{}", crate::eval::splits::markdown(&c));
        let dirs: Vec<String> = reports.iter().map(|r| format!("{}/", r.split)).collect();
        println!(
            "\nwrote {out} (splits.md, splits.json, predictions.jsonl; metrics.json, metrics.md \
             and plots in {})",
            dirs.join(", ")
        );
    } else {
        println!("\nwrote {out} (metrics.json, metrics.md, predictions.jsonl, plots)");
    }
    Ok(())
}
