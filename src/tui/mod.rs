//! The full-screen `dfa chat` (ratatui + crossterm): app state in [`app`], drawing in [`ui`],
//! and the event loop here. Inference runs on the session's worker thread; this loop only polls
//! the terminal (with a timeout) and drains the turn's channel, so the UI stays responsive.

pub mod app;
pub mod image_pane;
pub mod input;
pub mod ui;
pub mod wrap;

use std::io::{self, IsTerminal};
use std::time::Duration;

use crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent,
};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use ratatui_image::picker::{Picker, ProtocolType};

use crate::chat::engine::Engine;
use crate::chat::session::{Session, TURN_THREAD};
use app::App;
use image_pane::ImagePane;

/// How the image pane talks to the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ImageProtocol {
    /// Ask the terminal (only on a TTY outside tmux; half-blocks otherwise).
    Auto,
    /// Unicode half-blocks: works everywhere, including tmux.
    #[default]
    Halfblocks,
    Sixel,
    Kitty,
    Iterm2,
}

/// The picker for a protocol choice. Only queries the terminal when asked to (auto or a forced
/// graphics protocol) and stdout is a terminal; auto also stays off the query inside tmux,
/// where it blocks.
pub fn make_picker(choice: ImageProtocol) -> Picker {
    let tty = io::stdout().is_terminal() && io::stdin().is_terminal();
    let in_tmux = std::env::var_os("TMUX").is_some();
    let query = || Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks());
    let forced = |p: ProtocolType| {
        let mut picker = if tty { query() } else { Picker::halfblocks() };
        picker.set_protocol_type(p);
        picker
    };
    match choice {
        ImageProtocol::Halfblocks => Picker::halfblocks(),
        ImageProtocol::Auto if tty && !in_tmux => query(),
        ImageProtocol::Auto => Picker::halfblocks(),
        ImageProtocol::Sixel => forced(ProtocolType::Sixel),
        ImageProtocol::Kitty => forced(ProtocolType::Kitty),
        ImageProtocol::Iterm2 => forced(ProtocolType::Iterm2),
    }
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Run the full-screen chat until the user quits; `startup_error` is shown in the status line.
pub fn run(
    session: Session,
    engine: Engine,
    protocol: ImageProtocol,
    startup_error: Option<String>,
) -> anyhow::Result<()> {
    if !io::stdout().is_terminal() {
        anyhow::bail!("dfa chat needs a terminal; use --plain for pipes");
    }
    // Panics on the turn worker come back as error lines: keep them off the screen. Any other
    // panic restores the terminal first so that its message is readable.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(TURN_THREAD) {
            return;
        }
        restore_terminal();
        previous(info);
    }));

    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    let result = (|| {
        let picker = make_picker(protocol);
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        let mut app = App::new(session, Some(engine), ImagePane::new(picker));
        if let Some(e) = startup_error {
            app.error(e);
        }
        event_loop(&mut terminal, &mut app)
    })();
    restore_terminal();
    let _ = std::panic::take_hook();
    result
}

fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    app: &mut App,
) -> anyhow::Result<()> {
    let mut dirty = true;
    while !app.quit {
        if dirty {
            terminal.draw(|f| ui::draw(f, app))?;
            dirty = false;
        }
        let waiting = app.busy() || app.engine.as_ref().is_some_and(Engine::is_loading);
        let timeout = Duration::from_millis(if waiting { 30 } else { 250 });
        if event::poll(timeout)? {
            // Take everything that is queued before drawing again (fast typing, pastes).
            loop {
                match event::read()? {
                    TermEvent::Key(k) => app.on_key(k),
                    TermEvent::Mouse(m) => app.on_mouse(m),
                    TermEvent::Paste(text) => {
                        for c in text.chars() {
                            app.input
                                .insert(if c == '\n' || c == '\r' { ' ' } else { c });
                        }
                    }
                    TermEvent::Resize(..) => terminal.autoresize()?,
                    _ => {}
                }
                if app.quit || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
            dirty = true;
        }
        dirty |= app.pump();
    }
    Ok(())
}
