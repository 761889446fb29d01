//! `dfa batch`: run a JSONL script of requests, one result line per input line, resumable.
//!
//! Script lines: `{"id", "image", "prompt"?, "region"?, "box"?, "task"?, "face"?}`. Relative
//! image paths resolve against the script's folder. `OUT/results.jsonl` gets one line per input:
//! the report JSON plus `"id"`, or `{"id", "error", "line"}`. Each line is appended whole and
//! flushed, so a killed run loses at most the items in flight; `--resume` drops a torn last line
//! and skips the ids already written. Results come in completion order (input order with one job).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::analysis::{Analyzer, RegionQuery, Request};
use crate::chat::export::{report_json, write_pngs};
use crate::chat::session::check_concept;

/// The task families a script line may name (as in the dataset format).
pub const TASKS: &[&str] = &["det", "cls", "age", "toe", "loc", "region", "box"];

/// How to run a batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub script: PathBuf,
    pub out: PathBuf,
    /// Write `OUT/artifacts/<id>/overlay.png` and mask PNGs per item.
    pub artifacts: bool,
    /// Continue an earlier run: skip ids already in `results.jsonl`.
    pub resume: bool,
    /// Start over when `results.jsonl` exists.
    pub force: bool,
    /// Worker threads sharing one analyzer.
    pub jobs: usize,
    /// Show a progress bar on stderr (it is hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// With no face found, analyse the whole image.
    pub whole_image_fallback: bool,
}

/// Why a batch could not run at all (item errors go into results.jsonl instead).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("cannot read script {path}: {reason}")]
    Script { path: String, reason: String },
    #[error("{path} already exists: use --resume to continue it or --force to start over")]
    Exists { path: String },
    #[error("cannot write {path}: {reason}")]
    Output { path: String, reason: String },
}

/// One script line ready to run.
#[derive(Debug, Clone)]
pub struct Item {
    pub line: usize,
    pub id: String,
    pub image: PathBuf,
    pub prompt: Option<String>,
    pub region: Option<RegionQuery>,
    pub task: Option<String>,
    pub face: Option<usize>,
}

/// What a script turned into: items to run and error records for lines that cannot run.
#[derive(Debug)]
pub struct Plan {
    pub todo: Vec<Item>,
    /// (line, record) for lines that failed before running.
    pub rejected: Vec<(usize, Value)>,
    /// Ids skipped because `results.jsonl` already has them.
    pub skipped: usize,
    /// Torn or unreadable lines dropped from `results.jsonl`.
    pub dropped: usize,
    pub results: PathBuf,
}

/// Counts, verdicts and time of a finished batch.
#[derive(Debug, Clone, Default)]
pub struct BatchSummary {
    pub items: usize,
    pub ok: usize,
    pub errors: usize,
    pub skipped: usize,
    pub dropped: usize,
    /// Verdict name → number of faces.
    pub verdicts: BTreeMap<String, usize>,
    pub elapsed: Duration,
}

impl BatchSummary {
    /// Items analysed per minute (errors included).
    pub fn per_minute(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            (self.ok + self.errors) as f64 * 60.0 / s
        } else {
            0.0
        }
    }

    /// The summary as a small text table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("items in script".to_string(), self.items.to_string()),
            ("analysed".into(), self.ok.to_string()),
            ("errors".into(), self.errors.to_string()),
            ("skipped (resume)".into(), self.skipped.to_string()),
        ];
        if self.dropped > 0 {
            rows.push(("torn lines dropped".into(), self.dropped.to_string()));
        }
        for (v, n) in &self.verdicts {
            rows.push((format!("faces {v}"), n.to_string()));
        }
        rows.push((
            "time".into(),
            format!("{:.1} s", self.elapsed.as_secs_f64()),
        ));
        rows.push(("images/minute".into(), format!("{:.1}", self.per_minute())));
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<w$}  {v:>8}\n"))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptLine {
    #[serde(default)]
    #[allow(dead_code)]
    id: Value,
    image: Option<String>,
    prompt: Option<String>,
    region: Option<String>,
    #[serde(rename = "box")]
    bbox: Option<Vec<f32>>,
    task: Option<String>,
    face: Option<usize>,
}

/// Read the script and `results.jsonl` and decide what to run.
pub fn plan(opts: &BatchOptions) -> Result<Plan, BatchError> {
    let text = std::fs::read_to_string(&opts.script).map_err(|e| BatchError::Script {
        path: opts.script.display().to_string(),
        reason: e.to_string(),
    })?;
    let base = opts
        .script
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::fs::create_dir_all(&opts.out).map_err(|e| out_err(&opts.out, e))?;
    let results = opts.out.join("results.jsonl");
    let (done, dropped) = if opts.resume {
        read_done(&results)?
    } else {
        if !opts.force && std::fs::metadata(&results).is_ok_and(|m| m.len() > 0) {
            return Err(BatchError::Exists {
                path: results.display().to_string(),
            });
        }
        File::create(&results).map_err(|e| out_err(&results, e))?;
        (HashSet::new(), 0)
    };

    let mut plan = Plan {
        todo: Vec::new(),
        rejected: Vec::new(),
        skipped: 0,
        dropped,
        results,
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let parsed: Result<Value, _> = serde_json::from_str(raw);
        let id = parsed
            .as_ref()
            .ok()
            .and_then(usable_id)
            .unwrap_or_else(|| format!("line-{line}"));
        let id = match seen.get(&id) {
            Some(first) => {
                let dup = format!("line-{line}");
                let rec = error_record(
                    &dup,
                    line,
                    &format!("duplicate id \"{id}\" (first on line {first})"),
                );
                push_rejected(&mut plan, &done, dup, line, rec);
                continue;
            }
            None => id,
        };
        seen.insert(id.clone(), line);
        if done.contains(&id) {
            plan.skipped += 1;
            continue;
        }
        match parsed
            .map_err(|e| format!("bad JSON: {e}"))
            .and_then(|v| item_from(v, line, id.clone(), &base))
        {
            Ok(item) => plan.todo.push(item),
            Err(msg) => {
                let rec = error_record(&id, line, &msg);
                plan.rejected.push((line, rec));
            }
        }
    }
    Ok(plan)
}

fn push_rejected(plan: &mut Plan, done: &HashSet<String>, id: String, line: usize, rec: Value) {
    if done.contains(&id) {
        plan.skipped += 1;
    } else {
        plan.rejected.push((line, rec));
    }
}

fn usable_id(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn item_from(v: Value, line: usize, id: String, base: &Path) -> Result<Item, String> {
    if !v.is_object() {
        return Err("a script line must be a JSON object".into());
    }
    let s: ScriptLine = serde_json::from_value(v).map_err(|e| format!("bad script line: {e}"))?;
    let image = s
        .image
        .filter(|p| !p.trim().is_empty())
        .ok_or("missing \"image\"")?;
    let image = PathBuf::from(image);
    let image = if image.is_relative() {
        base.join(image)
    } else {
        image
    };
    if let Some(t) = &s.task {
        if !TASKS.contains(&t.as_str()) {
            return Err(format!(
                "unknown task \"{t}\" (one of {})",
                TASKS.join(", ")
            ));
        }
    }
    let region = match (s.region, s.bbox) {
        (Some(_), Some(_)) => return Err("give \"region\" or \"box\", not both".into()),
        (Some(name), None) => Some(RegionQuery::Concept(
            check_concept(&name).map_err(|e| e.to_string())?,
        )),
        (None, Some(b)) => {
            let [x0, y0, x1, y1] = b[..] else {
                return Err(format!(
                    "\"box\" needs 4 numbers [x0, y0, x1, y1], got {}",
                    b.len()
                ));
            };
            if b.iter().any(|v| !v.is_finite() || *v < 0.0) || x1 <= x0 || y1 <= y0 {
                return Err(format!(
                    "\"box\" [{x0}, {y0}, {x1}, {y1}] is empty or negative"
                ));
            }
            Some(RegionQuery::Box([x0, y0, x1, y1]))
        }
        (None, None) => None,
    };
    match (s.task.as_deref(), &region) {
        (Some("region"), r) if !matches!(r, Some(RegionQuery::Concept(_))) => {
            return Err("task \"region\" needs a \"region\"".into())
        }
        (Some("box"), r) if !matches!(r, Some(RegionQuery::Box(_))) => {
            return Err("task \"box\" needs a \"box\"".into())
        }
        _ => {}
    }
    let face = match s.face {
        Some(0) => return Err("\"face\" is 1-based".into()),
        f => f.map(|f| f - 1),
    };
    Ok(Item {
        line,
        id,
        image,
        prompt: s.prompt.filter(|p| !p.trim().is_empty()),
        region,
        task: s.task,
        face,
    })
}

fn error_record(id: &str, line: usize, msg: &str) -> Value {
    json!({"id": id, "error": msg, "line": line})
}

fn out_err(path: &Path, e: impl std::fmt::Display) -> BatchError {
    BatchError::Output {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The ids in an existing `results.jsonl`. A torn last line (no newline: the process was killed
/// while writing it) is cut off the file; unreadable whole lines are counted and ignored.
pub fn read_done(results: &Path) -> Result<(HashSet<String>, usize), BatchError> {
    let bytes = match std::fs::read(results) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((HashSet::new(), 0)),
        Err(e) => return Err(out_err(results, e)),
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut dropped = 0;
    if whole < bytes.len() {
        let f = OpenOptions::new()
            .write(true)
            .open(results)
            .map_err(|e| out_err(results, e))?;
        f.set_len(whole as u64).map_err(|e| out_err(results, e))?;
        dropped += 1;
    }
    let mut done = HashSet::new();
    for line in String::from_utf8_lossy(&bytes[..whole]).lines() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line)
            .ok()
            .as_ref()
            .and_then(usable_id)
        {
            Some(id) => {
                done.insert(id);
            }
            None => dropped += 1,
        }
    }
    Ok((done, dropped))
}

/// Run a plan with `opts.jobs` threads sharing `analyzer`.
pub fn execute(
    plan: Plan,
    opts: &BatchOptions,
    analyzer: Arc<dyn Analyzer>,
) -> Result<BatchSummary, BatchError> {
    let start = Instant::now();
    let mut out = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&plan.results)
        .map_err(|e| out_err(&plan.results, e))?;
    let mut summary = BatchSummary {
        items: plan.todo.len() + plan.rejected.len() + plan.skipped,
        skipped: plan.skipped,
        dropped: plan.dropped,
        ..Default::default()
    };
    let bar = progress_bar(
        opts.progress,
        (plan.todo.len() + plan.rejected.len()) as u64,
    );
    for (_, rec) in &plan.rejected {
        append(&mut out, &plan.results, rec)?;
        summary.errors += 1;
        bar.inc(1);
    }

    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Value>();
    let jobs = opts.jobs.clamp(1, plan.todo.len().max(1));
    let written = std::thread::scope(|scope| -> Result<(), BatchError> {
        for _ in 0..jobs {
            let (tx, next, todo, analyzer) = (tx.clone(), &next, &plan.todo, analyzer.clone());
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = todo.get(i) else { break };
                let rec = run_item(item, opts, analyzer.as_ref());
                if tx.send(rec).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for rec in rx {
            if rec.get("error").is_some() {
                summary.errors += 1;
            } else {
                summary.ok += 1;
                for v in rec["faces"].as_array().into_iter().flatten() {
                    if let Some(v) = v["verdict"].as_str() {
                        *summary.verdicts.entry(v.to_string()).or_default() += 1;
                    }
                }
            }
            if let Some(id) = rec["id"].as_str() {
                bar.set_message(id.to_string());
            }
            bar.inc(1);
            // Stop the workers (after their current item) if the output cannot be written.
            if let Err(e) = append(&mut out, &plan.results, &rec) {
                next.store(usize::MAX / 2, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
    });
    bar.finish_and_clear();
    written?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// `plan` then `execute`.
pub fn run_batch(
    opts: &BatchOptions,
    analyzer: Arc<dyn Analyzer>,
) -> Result<BatchSummary, BatchError> {
    execute(plan(opts)?, opts, analyzer)
}

fn progress_bar(show: bool, len: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} [{elapsed_precise} < {eta}] {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// One whole line, written with a single call and flushed.
fn append(out: &mut File, path: &Path, rec: &Value) -> Result<(), BatchError> {
    let mut line = serde_json::to_string(rec).map_err(|e| out_err(path, e))?;
    line.push('\n');
    out.write_all(line.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| out_err(path, e))
}

/// Analyse one item into its result record (never fails: errors become error records).
fn run_item(item: &Item, opts: &BatchOptions, analyzer: &dyn Analyzer) -> Value {
    let image = match crate::imageio::load_rgb(&item.image) {
        Ok(i) => Arc::new(i),
        Err(e) => return error_record(&item.id, item.line, &e.to_string()),
    };
    let mut req = Request::new(image.clone(), item.image.display().to_string());
    req.prompt = item.prompt.clone();
    req.region = item.region.clone();
    req.face = item.face;
    req.whole_image_fallback = opts.whole_image_fallback;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        analyzer.analyze(&req, &mut |_| true)
    }));
    let result = match run {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return error_record(&item.id, item.line, &e.to_string()),
        Err(_) => return error_record(&item.id, item.line, "the engine crashed on this item"),
    };
    let mut rec = report_json(&result);
    if let Value::Object(map) = &mut rec {
        map.insert("id".into(), json!(item.id));
        map.insert("line".into(), json!(item.line));
        if let Some(t) = &item.task {
            map.insert("task".into(), json!(t));
        }
        if opts.artifacts {
            let dir = opts.out.join("artifacts").join(file_safe(&item.id));
            if let Err(e) = write_pngs(&dir, &image, &result) {
                map.insert("artifact_error".into(), json!(e.to_string()));
            }
        }
    }
    rec
}

/// An id made safe as a folder name.
fn file_safe(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.trim_matches('.') {
        "" => "_".into(),
        t => t.to_string(),
    }
}
