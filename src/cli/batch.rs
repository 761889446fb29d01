//! `dfa batch SCRIPT.jsonl --out DIR`: scripted prompt batches, one result line per input line,
//! resumable after a kill.

use std::path::PathBuf;
use std::sync::Arc;

use crate::analysis::Analyzer;
use crate::chat::batch::{execute, plan, BatchOptions};

/// Run a JSONL script of requests: each line {"id", "image", "prompt"?, "region"?, "box"?,
/// "task"?, "face"?}. Writes DIR/results.jsonl (one line per input: the report JSON plus "id",
/// or {"id", "error"}). Relative image paths resolve against the script's folder.
#[derive(clap::Args, Debug, Clone)]
pub struct BatchArgs {
    /// The script: one JSON object per line.
    pub script: PathBuf,
    /// Output folder (results.jsonl, artifacts/).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write artifacts/<id>/overlay.png and one PNG per mask.
    #[arg(long)]
    pub artifacts: bool,
    /// Continue an interrupted run: skip ids already in results.jsonl (a torn last line is
    /// dropped and redone).
    #[arg(long)]
    pub resume: bool,
    /// Start over when results.jsonl already exists.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Worker threads sharing one loaded model.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Model directory or hub id (default: the embedded dfa-tiny).
    #[arg(long)]
    pub model: Option<String>,
    /// LoRA adapter directory or name.
    #[arg(long)]
    pub adapter: Option<String>,
    /// With no face found, analyse the whole picture instead of an error record.
    #[arg(long)]
    pub whole_image: bool,
}

/// Run `dfa batch`; prints the summary table on stdout. `loader(model, adapter)` loads the
/// engine (`crate::model::load_analyzer`) once, after the script was read.
pub fn run<L>(args: &BatchArgs, loader: L) -> anyhow::Result<()>
where
    L: Fn(Option<&str>, Option<&str>) -> anyhow::Result<Box<dyn Analyzer>>,
{
    if args.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    let opts = BatchOptions {
        script: args.script.clone(),
        out: args.out.clone(),
        artifacts: args.artifacts,
        resume: args.resume,
        force: args.force,
        jobs: args.jobs,
        progress: true,
        whole_image_fallback: args.whole_image,
    };
    let plan = plan(&opts)?;
    let analyzer: Arc<dyn Analyzer> = if plan.todo.is_empty() {
        Arc::new(NothingToDo)
    } else {
        Arc::from(loader(args.model.as_deref(), args.adapter.as_deref())?)
    };
    let summary = execute(plan, &opts, analyzer)?;
    print!("{}", summary.table());
    println!("results: {}", opts.out.join("results.jsonl").display());
    Ok(())
}

/// Stands in for the engine when every line is already done or rejected (no model load).
struct NothingToDo;

impl Analyzer for NothingToDo {
    fn analyze(
        &self,
        _req: &crate::analysis::Request,
        _sink: &mut dyn FnMut(crate::analysis::Event) -> bool,
    ) -> Result<crate::analysis::AnalysisResult, crate::analysis::AnalysisError> {
        Err(crate::analysis::AnalysisError::Model(
            "no model loaded".into(),
        ))
    }
}
