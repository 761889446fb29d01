//! The `dfa` binary. See `dfa --help` and README.md.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dfa::cli;

/// dfa — explainable deepfake analysis of face photos: verdict, grounded explanation, masks.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse one image: verdict, explanation with numbered phrases, one mask per phrase.
    Explain(cli::explain::ExplainArgs),
    /// Show the facial concept tree (FICT) on each face: overlay PNG, areas, or the tree itself.
    Regions(cli::regions::RegionsArgs),
    /// Make grounded forgery data from real faces (pixel-aligned edits, masks, annotations).
    Forge(cli::forge::ForgeArgs),
    /// Train dfa-tiny from forge data on the CPU; resumable.
    Train(cli::train::TrainArgs),
    /// Score a model (and baselines) on a labelled dataset: metrics.json, metrics.md, plots.
    Eval(cli::eval::EvalArgs),
    /// Terminal chat about an image: its masks beside the transcript; `--plain` for a line REPL.
    Chat(cli::chat::ChatArgs),
    /// Run a JSONL script of prompts: one result line per input line; resumable.
    Batch(cli::batch::BatchArgs),
}

fn main() -> ExitCode {
    // candle re-reads /proc/cpuinfo on every op when RAYON_NUM_THREADS is unset (STACK.md).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Explain(a) => cli::explain::run(a),
        Command::Regions(a) => cli::regions::run(a),
        Command::Forge(a) => cli::forge::run(a),
        Command::Train(a) => cli::train::run(a),
        Command::Eval(a) => cli::eval::run(a),
        Command::Chat(a) => cli::chat::run(a, dfa::model::load_analyzer),
        Command::Batch(a) => cli::batch::run(a, dfa::model::load_analyzer),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: drop any backtrace candle attached to its error text.
            let full = format!("{e:#}");
            let msg = full
                .lines()
                .take_while(|l| !l.trim_start().starts_with("0: "))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("error: {msg}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
