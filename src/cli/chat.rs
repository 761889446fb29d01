//! `dfa chat [IMG]`: talk about a face photo in a full-screen terminal UI, or in a line REPL
//! with `--plain` (automatic when stdin or stdout is not a terminal).

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use crate::analysis::Analyzer;
use crate::chat::engine::Engine;
use crate::chat::plain::run_plain;
use crate::chat::session::{AnalyzerLoader, Session};
use crate::tui::ImageProtocol;

/// Chat about a face photo: verdict, grounded explanation with coloured masks, follow-up
/// questions about regions. Type /help inside for the commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ChatArgs {
    /// Image to open at start (more with /image PATH).
    pub image: Option<PathBuf>,
    /// Line-by-line REPL for pipes and screen readers: prints the verdict line, then the
    /// explanation with [n] after each grounded phrase. Reads commands from stdin.
    #[arg(long)]
    pub plain: bool,
    /// Model directory or hub id (default: the embedded dfa-tiny).
    #[arg(long)]
    pub model: Option<String>,
    /// LoRA adapter directory or name (switch later with /adapter NAME).
    #[arg(long)]
    pub adapter: Option<String>,
    /// How to draw the image: halfblocks works everywhere (tmux too); auto asks the terminal.
    #[arg(long, value_enum, default_value_t = ImageProtocol::Halfblocks)]
    pub image_protocol: ImageProtocol,
    /// Sampling seed (change later with /seed N).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// With no face found, analyse the whole picture instead of failing.
    #[arg(long)]
    pub whole_image: bool,
}

/// Run `dfa chat`. `loader(model, adapter)` loads the engine (`crate::model::load_analyzer`);
/// it runs on a background thread and again for every `/adapter`.
pub fn run<L>(args: &ChatArgs, loader: L) -> anyhow::Result<()>
where
    L: Fn(Option<&str>, Option<&str>) -> anyhow::Result<Box<dyn Analyzer>> + Send + Sync + 'static,
{
    let loader: Arc<AnalyzerLoader> = Arc::new(loader);
    let mut session = Session {
        adapter: args.adapter.clone(),
        whole_image_fallback: args.whole_image,
        ..Default::default()
    };
    session.gen.seed = args.seed;
    let mut engine = Engine::start_loading(args.model.clone(), args.adapter.clone(), loader);
    let plain = args.plain || !io::stdin().is_terminal() || !io::stdout().is_terminal();

    if plain {
        let mut out = io::stdout().lock();
        let mut failures = 0;
        if let Some(path) = &args.image {
            match session.load_image(path) {
                Ok(msg) => println!("{msg}"),
                Err(e) => {
                    println!("error: {e}");
                    failures += 1;
                }
            }
        }
        let interactive = io::stdin().is_terminal();
        failures += run_plain(
            &mut session,
            &mut engine,
            io::stdin().lock(),
            &mut out,
            interactive,
        )?;
        if failures > 0 && !interactive {
            anyhow::bail!("{failures} line(s) of the chat script failed");
        }
        return Ok(());
    }

    // An image that cannot be opened is reported in the TUI's status line.
    let startup_error = args
        .image
        .as_ref()
        .and_then(|path| session.load_image(path).err())
        .map(|e| e.to_string());
    crate::tui::run(session, engine, args.image_protocol, startup_error)
}
