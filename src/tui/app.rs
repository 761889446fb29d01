//! The TUI's state, apart from drawing: transcript entries, the input line, the status line,
//! the running turn. Keys, mouse and analysis events change it; `ui::draw` only reads it (and
//! caches the encoded image).

use std::sync::mpsc::TryRecvError;

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::analysis::{AnalysisResult, Event, SegmentResult};
use crate::chat::command::{Command, RegionArg};
use crate::chat::engine::Engine;
use crate::chat::session::{Outcome, RunningTurn, Session, TurnMsg};
use crate::chat::transcript::{Answer, FaceAnswer, FaceVerdict, Piece};
use crate::tui::image_pane::ImagePane;
use crate::tui::input::{complete_image_path, Input};

/// One block of the transcript.
#[derive(Debug, Clone)]
pub enum Entry {
    User(String),
    Answer(Answer),
    Info(String),
    /// Another image was loaded (answers before it are about the old one).
    Image(String),
}

/// The one-line status under the verdict line.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Info(String),
    Error(String),
}

/// The whole state of `dfa chat`.
pub struct App {
    pub session: Session,
    /// `None` only in tests that feed events by hand.
    pub engine: Option<Engine>,
    pub entries: Vec<Entry>,
    pub input: Input,
    pub status: Option<Status>,
    pub show_help: bool,
    /// Transcript lines scrolled up from the bottom.
    pub scroll: usize,
    pub turn: Option<RunningTurn>,
    pub quit: bool,
    pub image_pane: ImagePane,
    /// Where a mouse drag on the image started (image pixels).
    drag_start: Option<[f32; 2]>,
}

impl App {
    pub fn new(session: Session, engine: Option<Engine>, image_pane: ImagePane) -> Self {
        Self {
            session,
            engine,
            entries: Vec::new(),
            input: Input::default(),
            status: None,
            show_help: false,
            scroll: 0,
            turn: None,
            quit: false,
            image_pane,
            drag_start: None,
        }
    }

    pub fn busy(&self) -> bool {
        self.turn.is_some()
    }

    pub fn info(&mut self, s: impl Into<String>) {
        self.status = Some(Status::Info(s.into()));
    }

    pub fn error(&mut self, s: impl Into<String>) {
        self.status = Some(Status::Error(s.into()));
    }

    /// Submit the input line.
    pub fn submit(&mut self) {
        let line = self.input.take();
        let trimmed = line.trim();
        if trimmed.is_empty() && self.session.image.is_none() {
            return;
        }
        self.submit_line(trimmed);
    }

    /// Run one line as if typed (an empty line asks for the default analysis).
    pub fn submit_line(&mut self, line: &str) {
        self.status = None;
        let cmd = match crate::chat::command::parse(line) {
            Ok(c) => c,
            Err(e) => return self.error(e.to_string()),
        };
        let blocked = matches!(
            cmd,
            Command::Ask(_) | Command::Image(_) | Command::Clear | Command::Adapter(_)
        );
        if self.busy() && blocked {
            return self.error("an answer is still coming: Esc stops it");
        }
        let generation = self.session.image_generation;
        match self.session.apply(cmd) {
            Ok(Outcome::Info(s)) if self.session.image_generation != generation => {
                self.entries.push(Entry::Image(s.clone()));
                self.scroll = 0;
                self.info(s);
            }
            Ok(outcome) => self.handle_outcome(outcome),
            Err(e) => self.error(e.to_string()),
        }
    }

    fn handle_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Info(s) => {
                self.entries.push(Entry::Info(s.clone()));
                self.scroll = 0;
                self.info(s);
            }
            Outcome::Run(prompt) => self.start_turn(prompt),
            Outcome::Help => self.show_help = !self.show_help,
            Outcome::Quit => self.quit = true,
            Outcome::Cleared => {
                self.entries.clear();
                self.scroll = 0;
                self.info("conversation cleared");
            }
            Outcome::SwitchAdapter(name) => match &mut self.engine {
                Some(engine) => {
                    engine.reload(name);
                    let msg = format!("loading: {}", engine.describe());
                    self.info(msg);
                }
                None => self.error("no engine to switch"),
            },
        }
    }

    fn start_turn(&mut self, prompt: Option<String>) {
        let analyzer = match self.engine.as_ref().map(Engine::analyzer) {
            Some(Ok(a)) => a,
            Some(Err(e)) => return self.error(e),
            None => return self.error("no engine"),
        };
        match self.session.start_turn(analyzer, prompt) {
            Ok(turn) => {
                self.begin_answer(&turn.user);
                self.turn = Some(turn);
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    /// Open a new question/answer pair in the transcript.
    pub fn begin_answer(&mut self, user: &str) {
        self.entries.push(Entry::User(user.to_string()));
        self.entries.push(Entry::Answer(Answer::default()));
        self.scroll = 0;
    }

    /// The answer being written (or the last one), if it is about the current image.
    pub fn current_answer(&self) -> Option<&Answer> {
        self.answers_about_this_image().next()
    }

    /// The answers about the current image, newest first.
    pub fn answers_about_this_image(&self) -> impl Iterator<Item = &Answer> {
        self.entries
            .iter()
            .rev()
            .take_while(|e| !matches!(e, Entry::Image(_)))
            .filter_map(|e| match e {
                Entry::Answer(a) => Some(a),
                _ => None,
            })
    }

    fn current_answer_mut(&mut self) -> Option<&mut Answer> {
        self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Answer(a) => Some(a),
            _ => None,
        })
    }

    /// Fold one analysis event into the answer being written.
    pub fn on_event(&mut self, ev: &Event) {
        if let Some(a) = self.current_answer_mut() {
            a.apply(ev);
        }
    }

    /// The turn ended: keep its result (or show its error).
    pub fn on_finished(&mut self, user: &str, end: Result<AnalysisResult, String>) {
        if let Some(answer) = self.current_answer_mut() {
            match &end {
                Ok(result) => reconcile(answer, result),
                Err(e) => answer.error = Some(e.clone()),
            }
        }
        match &end {
            Err(e) => self.error(e.clone()),
            Ok(_) if self.turn.as_ref().is_some_and(RunningTurn::is_cancelled) => {
                self.info("stopped; what was said so far is kept")
            }
            Ok(_) => {}
        }
        self.session.finish_turn(user, &end);
        self.turn = None;
    }

    /// Take what arrived from the worker and the engine loader; true when anything changed.
    pub fn pump(&mut self) -> bool {
        let mut changed = false;
        if let Some(engine) = &mut self.engine {
            if engine.poll() {
                changed = true;
                let msg = engine.describe();
                match engine.analyzer() {
                    Ok(_) => self.info(msg),
                    Err(e) => self.error(e),
                }
            }
        }
        let mut finished = None;
        if let Some(turn) = &self.turn {
            let mut events = Vec::new();
            loop {
                match turn.rx.try_recv() {
                    Ok(TurnMsg::Event(ev)) => events.push(ev),
                    Ok(TurnMsg::Finished(end)) => {
                        finished = Some((turn.user.clone(), end));
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        finished = Some((
                            turn.user.clone(),
                            Err("the engine stopped unexpectedly".into()),
                        ));
                        break;
                    }
                }
            }
            changed |= !events.is_empty();
            for ev in &events {
                self.on_event(ev);
            }
        }
        if let Some((user, end)) = finished {
            self.on_finished(&user, end);
            changed = true;
        }
        changed
    }

    /// Stop the running turn, if any; true when there was one.
    pub fn cancel_turn(&mut self) -> bool {
        match &self.turn {
            Some(t) => {
                t.cancel();
                self.info("stopping…");
                true
            }
            None => false,
        }
    }

    /// Handle one key press.
    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl && !self.cancel_turn() => self.quit = true,
            KeyCode::Char('c') if ctrl => {}
            KeyCode::Char('d') if ctrl && self.input.text.is_empty() => self.quit = true,
            KeyCode::Char('u') if ctrl => self.input.clear(),
            KeyCode::Char('l') if ctrl => self.status = None,
            KeyCode::Esc => {
                if self.show_help {
                    self.show_help = false;
                } else if !self.cancel_turn() {
                    self.input.clear();
                    self.status = None;
                }
            }
            KeyCode::F(1) => self.show_help = !self.show_help,
            KeyCode::Enter => {
                self.show_help = false;
                self.submit();
            }
            KeyCode::Tab => self.complete(),
            KeyCode::Up => self.input.older(),
            KeyCode::Down => self.input.newer(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::PageUp => self.scroll += 5,
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(5),
            KeyCode::Char(c) if !ctrl => {
                if c == '?' && self.input.text.is_empty() {
                    self.show_help = !self.show_help;
                } else {
                    self.input.insert(c);
                }
            }
            _ => {}
        }
    }

    fn complete(&mut self) {
        let cwd = std::env::current_dir().unwrap_or_default();
        match complete_image_path(&self.input.text, &cwd) {
            Some((line, candidates)) => {
                self.input.set(line);
                if candidates.is_empty() {
                    self.status = None;
                } else {
                    self.info(candidates.join("  "));
                }
            }
            None if self.input.text.starts_with("/image") => {
                self.error("no matching image or folder")
            }
            None => {}
        }
    }

    /// Mouse on the image: a click asks about a point, a drag about a box.
    pub fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollUp => self.scroll += 2,
            MouseEventKind::ScrollDown => self.scroll = self.scroll.saturating_sub(2),
            MouseEventKind::Down(MouseButton::Left) => {
                self.drag_start = self
                    .image_pane
                    .placement
                    .and_then(|p| p.image_point(m.column, m.row));
            }
            MouseEventKind::Up(MouseButton::Left) => {
                let Some(start) = self.drag_start.take() else {
                    return;
                };
                let Some(end) = self
                    .image_pane
                    .placement
                    .and_then(|p| p.image_point(m.column, m.row))
                else {
                    return;
                };
                let region = if start == end {
                    RegionArg::Point(start)
                } else {
                    RegionArg::Box([
                        start[0].min(end[0]),
                        start[1].min(end[1]),
                        start[0].max(end[0]) + 1.0,
                        start[1].max(end[1]) + 1.0,
                    ])
                };
                match self.session.apply(Command::Region(region)) {
                    Ok(o) => self.handle_outcome(o),
                    Err(e) => self.error(e.to_string()),
                }
            }
            _ => {}
        }
    }

    /// The masks of the current answer that are switched on.
    pub fn visible_segments(&self) -> Vec<&SegmentResult> {
        self.current_answer()
            .map(|a| {
                a.segments()
                    .map(|(_, s)| s)
                    .filter(|s| self.session.masks.visible(s.id))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Make the streamed answer agree with the final result: verdicts and masks from the result;
/// text from the result only where nothing streamed.
fn reconcile(answer: &mut Answer, result: &AnalysisResult) {
    for f in &result.faces {
        let face = match answer.faces.iter().position(|a| a.face_id == f.face_id) {
            Some(i) => &mut answer.faces[i],
            None => {
                answer.faces.push(FaceAnswer {
                    face_id: f.face_id,
                    ..Default::default()
                });
                answer.faces.last_mut().expect("just pushed")
            }
        };
        face.bbox = Some(f.bbox);
        face.verdict = Some(FaceVerdict {
            verdict: f.verdict,
            p_fake: f.p_fake,
            forgery_type: f.forgery_type.clone(),
        });
        if face.pieces.is_empty() && !f.explanation.is_empty() {
            face.pieces.push(Piece::Text(f.explanation.clone()));
        }
        face.segments = f.segments.clone();
    }
    answer.faces.sort_by_key(|f| f.face_id);
    for w in &result.warnings {
        if !answer.warnings.contains(w) {
            answer.warnings.push(w.clone());
        }
    }
    if answer.done.is_none() {
        answer.done = Some(false);
    }
}
