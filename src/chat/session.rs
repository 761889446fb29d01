//! The state of one conversation, shared by the TUI and the plain REPL: the image (decoded once
//! and kept), the region and face asked about, settings, history, the last result; commands that
//! change it; and turns that run the analyzer on a worker thread.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use image::RgbImage;

use crate::analysis::{AnalysisResult, Analyzer, Event, GenOptions, RegionQuery, Request, Turn};
use crate::chat::command::{self, Command, CommandError, MaskArg, RegionArg};
use crate::chat::export::{self, ExportError};
use crate::face::fict::{Fict, UnknownConcept};
use crate::imageio::{self, ImageLoadError};

/// Loads the engine: `(model, adapter)`, as `crate::model::load_analyzer`.
pub type AnalyzerLoader =
    dyn Fn(Option<&str>, Option<&str>) -> anyhow::Result<Box<dyn Analyzer>> + Send + Sync;

/// The image of the conversation, decoded once.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub path: PathBuf,
    pub rgb: Arc<RgbImage>,
}

/// The region the next questions are about, with the text shown for it.
#[derive(Debug, Clone)]
pub struct RegionChoice {
    pub label: String,
    pub query: RegionQuery,
}

/// Which masks are drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskDisplay {
    pub on: bool,
    /// Mask numbers switched off one by one.
    pub hidden: BTreeSet<usize>,
}

impl Default for MaskDisplay {
    fn default() -> Self {
        Self {
            on: true,
            hidden: BTreeSet::new(),
        }
    }
}

impl MaskDisplay {
    /// Is mask `seg_id` drawn?
    pub fn visible(&self, seg_id: usize) -> bool {
        self.on && !self.hidden.contains(&seg_id)
    }
}

/// What a front end must do after a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Show this line.
    Info(String),
    /// Start a turn with this prompt (`None` = the default analysis).
    Run(Option<String>),
    Help,
    Quit,
    /// The conversation was cleared: drop the transcript.
    Cleared,
    /// Reload the engine with this adapter (`None` = none).
    SwitchAdapter(Option<String>),
}

/// Why a command could not be done; one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Image(#[from] ImageLoadError),
    #[error(transparent)]
    Region(#[from] UnknownConcept),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("no image loaded: use /image PATH first")]
    NoImage,
    #[error("nothing to {0} yet: ask a question first")]
    NoResult(&'static str),
    #[error("{0}")]
    Invalid(String),
}

/// One conversation.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub image: Option<LoadedImage>,
    /// Bumped every time the image changes (front ends cache on it).
    pub image_generation: u64,
    pub region: Option<RegionChoice>,
    /// 0-based face to analyse; `None` = every face.
    pub face: Option<usize>,
    pub adapter: Option<String>,
    pub gen: GenOptions,
    pub whole_image_fallback: bool,
    pub history: Vec<Turn>,
    pub last: Option<AnalysisResult>,
    pub masks: MaskDisplay,
}

/// A message from a running turn's worker thread.
#[derive(Debug)]
pub enum TurnMsg {
    Event(Event),
    /// The turn ended (its last message). `Err` is one line.
    Finished(Result<AnalysisResult, String>),
}

/// A turn running on a worker thread.
pub struct RunningTurn {
    /// What the user asked (shown in the transcript and kept in the history).
    pub user: String,
    pub rx: Receiver<TurnMsg>,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl RunningTurn {
    /// Ask the analyzer to stop; what it said so far is kept.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

impl Drop for RunningTurn {
    fn drop(&mut self) {
        self.cancel();
        // The worker ends at its next event; do not block the front end on it.
        drop(self.handle.take());
    }
}

/// The name of worker threads (front ends silence panics on them: they come back as errors).
pub const TURN_THREAD: &str = "dfa-turn";

impl Session {
    /// Parse and apply one input line.
    pub fn handle_line(&mut self, line: &str) -> Result<Outcome, SessionError> {
        self.apply(command::parse(line)?)
    }

    /// Apply one command.
    pub fn apply(&mut self, cmd: Command) -> Result<Outcome, SessionError> {
        match cmd {
            Command::Ask(prompt) => {
                self.image.as_ref().ok_or(SessionError::NoImage)?;
                Ok(Outcome::Run(prompt))
            }
            Command::Image(path) => self.load_image(&path).map(Outcome::Info),
            Command::Region(arg) => self.set_region(arg).map(Outcome::Info),
            Command::Masks(arg) => self.set_masks(arg).map(Outcome::Info),
            Command::Faces => self.faces_text().map(Outcome::Info),
            Command::Face(n) => self.set_face(n).map(Outcome::Info),
            Command::Save(dir) => self.save(dir.as_deref()).map(Outcome::Info),
            Command::ExportJson(path) => self.export(path.as_deref()).map(Outcome::Info),
            Command::Clear => {
                self.history.clear();
                self.last = None;
                self.masks = MaskDisplay::default();
                Ok(Outcome::Cleared)
            }
            Command::Adapter(name) => {
                self.adapter = name.clone();
                Ok(Outcome::SwitchAdapter(name))
            }
            Command::Seed(seed) => {
                self.gen.seed = seed;
                Ok(Outcome::Info(format!("seed set to {seed}")))
            }
            Command::Help => Ok(Outcome::Help),
            Command::Quit => Ok(Outcome::Quit),
        }
    }

    /// Decode an image and make it the conversation's image (history, region, face reset).
    pub fn load_image(&mut self, path: &Path) -> Result<String, SessionError> {
        let rgb = imageio::load_rgb(path)?;
        let (w, h) = rgb.dimensions();
        self.image = Some(LoadedImage {
            path: path.to_path_buf(),
            rgb: Arc::new(rgb),
        });
        self.image_generation += 1;
        self.history.clear();
        self.last = None;
        self.region = None;
        self.face = None;
        self.masks = MaskDisplay::default();
        Ok(format!(
            "loaded {} ({w}x{h}); ask a question, or /ask for the default analysis",
            path.display()
        ))
    }

    fn set_region(&mut self, arg: RegionArg) -> Result<String, SessionError> {
        let dims = self.image.as_ref().map(|i| i.rgb.dimensions());
        let outside = |x: f32, y: f32| dims.is_some_and(|(w, h)| x >= w as f32 || y >= h as f32);
        let choice = match arg {
            RegionArg::Off => {
                self.region = None;
                return Ok("region cleared: questions are about the whole face".into());
            }
            RegionArg::Concept(name) => RegionChoice {
                label: check_concept(&name)?,
                query: RegionQuery::Concept(name),
            },
            RegionArg::Box(b) => {
                if outside(b[0], b[1]) {
                    return Err(SessionError::Invalid(format!(
                        "the box starts outside the image ({}x{})",
                        dims.unwrap_or_default().0,
                        dims.unwrap_or_default().1
                    )));
                }
                RegionChoice {
                    label: format!("box {},{},{},{}", b[0], b[1], b[2], b[3]),
                    query: RegionQuery::Box(b),
                }
            }
            RegionArg::Point(p) => {
                if outside(p[0], p[1]) {
                    return Err(SessionError::Invalid(format!(
                        "the point is outside the image ({}x{})",
                        dims.unwrap_or_default().0,
                        dims.unwrap_or_default().1
                    )));
                }
                RegionChoice {
                    label: format!("point {},{}", p[0], p[1]),
                    query: RegionQuery::Point(p),
                }
            }
        };
        let msg = format!("region set to {}; ask about it", choice.label);
        self.region = Some(choice);
        Ok(msg)
    }

    fn set_masks(&mut self, arg: MaskArg) -> Result<String, SessionError> {
        match arg {
            MaskArg::On => {
                self.masks.on = true;
                self.masks.hidden.clear();
                Ok("masks shown".into())
            }
            MaskArg::Off => {
                self.masks.on = false;
                Ok("masks hidden".into())
            }
            MaskArg::Toggle(n) => {
                let known = self
                    .last
                    .iter()
                    .flat_map(|r| r.faces.iter())
                    .flat_map(|f| f.segments.iter())
                    .any(|s| s.id == n);
                if !known {
                    return Err(SessionError::Invalid(format!("there is no mask [{n}]")));
                }
                self.masks.on = true;
                if !self.masks.hidden.remove(&n) {
                    self.masks.hidden.insert(n);
                    return Ok(format!("mask [{n}] hidden"));
                }
                Ok(format!("mask [{n}] shown"))
            }
        }
    }

    fn faces_text(&self) -> Result<String, SessionError> {
        let last = self.last.as_ref().ok_or(SessionError::NoResult("list"))?;
        if last.faces.is_empty() {
            return Ok("no faces in the last result".into());
        }
        let faces: Vec<String> = last
            .faces
            .iter()
            .map(|f| {
                format!(
                    "face {} at ({:.0},{:.0})-({:.0},{:.0}): {} {:.2}",
                    f.face_id + 1,
                    f.bbox[0],
                    f.bbox[1],
                    f.bbox[2],
                    f.bbox[3],
                    f.verdict.as_str(),
                    f.p_fake
                )
            })
            .collect();
        Ok(faces.join("; "))
    }

    fn set_face(&mut self, n: Option<usize>) -> Result<String, SessionError> {
        self.image.as_ref().ok_or(SessionError::NoImage)?;
        let Some(n) = n else {
            self.face = None;
            return Ok("analysing every face".into());
        };
        if let Some(last) = &self.last {
            // The last result lists every face only when it was asked about every face.
            if self.face.is_none() && n > last.faces.len() {
                return Err(SessionError::Invalid(format!(
                    "face {n} does not exist: the image has {} face(s)",
                    last.faces.len()
                )));
            }
        }
        self.face = Some(n - 1);
        Ok(format!("analysing face {n} only"))
    }

    fn save(&self, dir: Option<&Path>) -> Result<String, SessionError> {
        let (img, last) = self.image_and_result("save")?;
        let dir = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(format!("dfa-{}", stem(&img.path))));
        let md = export::save_report(&dir, &img.rgb, last, &self.history)?;
        Ok(format!(
            "saved {} (with overlay and mask PNGs)",
            md.display()
        ))
    }

    fn export(&self, path: Option<&Path>) -> Result<String, SessionError> {
        let (img, last) = self.image_and_result("export")?;
        let path = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(format!("{}.dfa.json", stem(&img.path))));
        export::export_json(&path, last, &self.history)?;
        Ok(format!("wrote {}", path.display()))
    }

    fn image_and_result(
        &self,
        what: &'static str,
    ) -> Result<(&LoadedImage, &AnalysisResult), SessionError> {
        let img = self.image.as_ref().ok_or(SessionError::NoImage)?;
        let last = self.last.as_ref().ok_or(SessionError::NoResult(what))?;
        Ok((img, last))
    }

    /// The request for the next turn.
    pub fn request(&self, prompt: Option<String>) -> Result<Request, SessionError> {
        let img = self.image.as_ref().ok_or(SessionError::NoImage)?;
        let mut req = Request::new(img.rgb.clone(), img.path.display().to_string());
        req.prompt = prompt;
        req.region = self.region.as_ref().map(|r| r.query.clone());
        req.face = self.face;
        req.whole_image_fallback = self.whole_image_fallback;
        req.gen = self.gen.clone();
        req.history = self.history.clone();
        Ok(req)
    }

    /// Start a turn on a worker thread; its events and end come over `rx`.
    pub fn start_turn(
        &self,
        analyzer: Arc<dyn Analyzer>,
        prompt: Option<String>,
    ) -> Result<RunningTurn, SessionError> {
        let user = prompt
            .clone()
            .unwrap_or_else(|| "(default analysis)".into());
        let req = self.request(prompt)?;
        let (tx, rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let handle = std::thread::Builder::new()
            .name(TURN_THREAD.into())
            .spawn(move || {
                let events = tx.clone();
                let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    analyzer.analyze(&req, &mut |ev| {
                        let _ = events.send(TurnMsg::Event(ev));
                        !stop.load(Ordering::SeqCst)
                    })
                }));
                let end = match run {
                    Ok(Ok(result)) => Ok(result),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(panic) => Err(format!("the engine crashed: {}", panic_text(&panic))),
                };
                let _ = tx.send(TurnMsg::Finished(end));
            })
            .map_err(|e| SessionError::Invalid(format!("cannot start a worker thread: {e}")))?;
        Ok(RunningTurn {
            user,
            rx,
            cancel,
            handle: Some(handle),
        })
    }

    /// Record the end of a turn: a result goes into the history and becomes the last result.
    pub fn finish_turn(&mut self, user: &str, end: &Result<AnalysisResult, String>) {
        if let Ok(result) = end {
            let assistant: Vec<&str> = result
                .faces
                .iter()
                .map(|f| f.explanation_raw.as_str())
                .collect();
            self.history.push(Turn {
                user: user.to_string(),
                assistant: assistant.join("\n"),
            });
            self.masks.hidden.clear();
            self.last = Some(result.clone());
        }
    }
}

/// Check a region name against the concept tree; returns the canonical name. An empty tree
/// (not built into this binary) cannot judge names: then the engine checks them.
pub fn check_concept(name: &str) -> Result<String, UnknownConcept> {
    let fict = Fict::builtin();
    if fict.concepts.is_empty() {
        return Ok(name.trim().to_lowercase());
    }
    fict.lookup(name).map(|c| c.name.clone())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
