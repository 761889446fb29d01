//! `dfa chat --plain`: a line REPL with the same commands as the TUI, for pipes and screen
//! readers. Each answer prints its verdict line, then the explanation with `[n]` after every
//! grounded phrase, then (with masks on) one line per mask.

use std::io::{self, BufRead, Write};

use crate::analysis::Event;
use crate::chat::command::COMMANDS;
use crate::chat::engine::Engine;
use crate::chat::session::{Outcome, Session, TurnMsg};
use crate::chat::transcript::{verdict_line, FaceVerdict};

/// Run the REPL until `/quit` or the end of `input`. With `interactive`, a `> ` prompt is shown.
/// Returns how many lines ended in an error.
pub fn run_plain(
    session: &mut Session,
    engine: &mut Engine,
    input: impl BufRead,
    out: &mut impl Write,
    interactive: bool,
) -> io::Result<usize> {
    let mut errors = 0;
    if interactive {
        writeln!(
            out,
            "dfa chat (plain) — /help lists the commands, /quit leaves"
        )?;
        prompt(out)?;
    }
    for line in input.lines() {
        let line = line?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            if interactive {
                prompt(out)?;
            }
            continue;
        }
        match session.handle_line(trimmed) {
            Ok(Outcome::Quit) => return Ok(errors),
            Ok(outcome) => {
                if !handle_outcome(session, engine, outcome, out)? {
                    errors += 1;
                }
            }
            Err(e) => {
                writeln!(out, "error: {e}")?;
                errors += 1;
            }
        }
        if interactive {
            prompt(out)?;
        }
    }
    Ok(errors)
}

fn prompt(out: &mut impl Write) -> io::Result<()> {
    write!(out, "> ")?;
    out.flush()
}

/// Carry out one outcome; false when it ended in an error.
fn handle_outcome(
    session: &mut Session,
    engine: &mut Engine,
    outcome: Outcome,
    out: &mut impl Write,
) -> io::Result<bool> {
    match outcome {
        Outcome::Info(s) => writeln!(out, "{s}")?,
        Outcome::Help => {
            for (usage, what) in COMMANDS {
                writeln!(out, "  {usage:<34} {what}")?;
            }
        }
        Outcome::Cleared => writeln!(out, "conversation cleared")?,
        Outcome::Quit => {}
        Outcome::SwitchAdapter(name) => {
            engine.reload(name);
            engine.wait();
            match engine.analyzer() {
                Ok(_) => writeln!(out, "{}", engine.describe())?,
                Err(e) => {
                    writeln!(out, "error: {e}")?;
                    return Ok(false);
                }
            }
        }
        Outcome::Run(prompt) => return run_turn(session, engine, prompt, out),
    }
    Ok(true)
}

fn run_turn(
    session: &mut Session,
    engine: &mut Engine,
    prompt: Option<String>,
    out: &mut impl Write,
) -> io::Result<bool> {
    engine.wait();
    let analyzer = match engine.analyzer() {
        Ok(a) => a,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(false);
        }
    };
    let turn = match session.start_turn(analyzer, prompt) {
        Ok(t) => t,
        Err(e) => {
            writeln!(out, "error: {e}")?;
            return Ok(false);
        }
    };
    let mut printer = Printer {
        out,
        at_line_start: true,
    };
    let mut end = Err("the engine stopped without an answer".to_string());
    for msg in turn.rx.iter() {
        match msg {
            TurnMsg::Event(ev) => printer.event(&ev)?,
            TurnMsg::Finished(e) => {
                end = e;
                break;
            }
        }
    }
    printer.end_line()?;
    let out = printer.out;
    session.finish_turn(&turn.user, &end);
    match &end {
        Ok(result) => {
            if session.masks.on {
                for f in &result.faces {
                    for s in f.segments.iter().filter(|s| session.masks.visible(s.id)) {
                        let [x0, y0, x1, y1] = s.bbox;
                        writeln!(
                            out,
                            "  [{}] {} — region {}, {} px, box {x0},{y0},{x1},{y1}{}",
                            s.id,
                            s.phrase,
                            s.region.as_deref().unwrap_or("-"),
                            s.area_px,
                            if s.consistent == Some(false) {
                                " (mask misses the named region)"
                            } else {
                                ""
                            }
                        )?;
                    }
                }
            }
            out.flush()?;
            Ok(true)
        }
        Err(e) => {
            writeln!(out, "error: {e}")?;
            Ok(false)
        }
    }
}

/// Prints events as they stream, keeping track of line starts.
struct Printer<'a, W: Write> {
    out: &'a mut W,
    at_line_start: bool,
}

impl<W: Write> Printer<'_, W> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        match ev {
            Event::Verdict {
                face_id,
                verdict,
                p_fake,
                forgery_type,
            } => {
                self.end_line()?;
                let v = FaceVerdict {
                    verdict: *verdict,
                    p_fake: *p_fake,
                    forgery_type: forgery_type.clone(),
                };
                writeln!(self.out, "verdict: {}", verdict_line(*face_id, &v))?;
            }
            Event::TextDelta { text, .. } => self.text(text)?,
            Event::PhraseClose { seg_id, .. } => self.text(&format!(" [{seg_id}]"))?,
            Event::Warning(w) => {
                self.end_line()?;
                writeln!(self.out, "warning: {w}")?;
            }
            Event::Done { stopped: true } => {
                self.end_line()?;
                writeln!(self.out, "(stopped)")?;
            }
            Event::FaceStart { .. }
            | Event::PhraseOpen { .. }
            | Event::MaskReady { .. }
            | Event::Done { stopped: false } => {}
        }
        self.out.flush()
    }

    fn text(&mut self, t: &str) -> io::Result<()> {
        if t.is_empty() {
            return Ok(());
        }
        let t = if self.at_line_start {
            t.trim_start()
        } else {
            t
        };
        if t.is_empty() {
            return Ok(());
        }
        write!(self.out, "{t}")?;
        self.at_line_start = t.ends_with('\n');
        Ok(())
    }

    fn end_line(&mut self) -> io::Result<()> {
        if !self.at_line_start {
            writeln!(self.out)?;
            self.at_line_start = true;
        }
        Ok(())
    }
}
