//! The evaluation run: read the dataset's splits, ask every system for the requests it has not
//! answered yet (cached in `predictions.jsonl`), score each split, and write `metrics.json`,
//! `metrics.md` and plots per split (and `splits.md` comparing them).

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::baselines::Baseline;
use super::cache::{cache_key, Cache, Prediction};
use super::dataset::{self, Dataset, SkipKind, Skipped};
use super::report::{self, Report, SkipCounts};
use super::score::{score_sample, SampleScores};
use super::splits;
use super::summary::{summarize, SystemMetrics};
use super::tasks::{plan, Planned, Task};
use crate::analysis::{Analyzer, Request};
use crate::face::fict::Fict;

/// A system to evaluate: the model (with an optional adapter) or a baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemSpec {
    /// `None` = the embedded default model.
    Model {
        model: Option<String>,
        adapter: Option<String>,
    },
    Baseline {
        baseline: Baseline,
        model: Option<String>,
    },
}

impl SystemSpec {
    /// The row name in reports.
    pub fn name(&self) -> String {
        match self {
            SystemSpec::Model { model, adapter } => {
                let m = model.as_deref().unwrap_or("dfa-tiny");
                match adapter {
                    Some(a) => format!("{m} + {a}"),
                    None => m.to_string(),
                }
            }
            SystemSpec::Baseline { baseline, .. } => baseline.name().to_string(),
        }
    }

    /// Identifies the predictions of this system in the cache: the spec, the dfa version and
    /// the size and modification time of local model files (so a retrained model is re-run).
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"dfa-eval-v1\n");
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        let mut paths = Vec::new();
        match self {
            SystemSpec::Model { model, adapter } => {
                h.update(format!("\nmodel {model:?} adapter {adapter:?}\n").as_bytes());
                paths.extend(model_files(model.as_deref()));
                paths.extend(adapter.iter().cloned());
            }
            SystemSpec::Baseline { baseline, model } => {
                h.update(format!("\nbaseline {}\n", baseline.name()).as_bytes());
                match baseline {
                    Baseline::VisionOnly => {
                        h.update(format!("model {model:?}\n").as_bytes());
                        paths.extend(model_files(model.as_deref()));
                    }
                    // The always-fake answer lists the concept tree.
                    _ => {
                        for c in &Fict::builtin().concepts {
                            h.update(c.name.as_bytes());
                            h.update(b"\n");
                        }
                    }
                }
            }
        }
        // The program itself: a rebuilt engine (naming, decoding) must not reuse old answers.
        if let Ok(exe) = std::env::current_exe() {
            paths.push(exe.display().to_string());
        }
        for p in paths {
            h.update(file_stamp(Path::new(&p)).as_bytes());
        }
        let d = h.finalize();
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    fn load(&self) -> anyhow::Result<Box<dyn Analyzer>> {
        match self {
            SystemSpec::Model { model, adapter } => {
                crate::model::load_analyzer(model.as_deref(), adapter.as_deref())
            }
            SystemSpec::Baseline { baseline, model } => baseline.load(model.as_deref()),
        }
    }
}

/// The model directory whose files stamp a fingerprint: the one named, or the embedded default
/// (so that retraining the default invalidates cached predictions).
fn model_files(model: Option<&str>) -> Option<String> {
    match model {
        Some(m) => Some(m.to_string()),
        None => crate::model::config::default_model_dir().map(|d| d.display().to_string()),
    }
}

/// Size and modification time of a file, or of each file directly inside a directory.
fn file_stamp(p: &Path) -> String {
    let stamp = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{} {} {t}\n", p.display(), m.len())
        })
    };
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        entries.iter().filter_map(|e| stamp(e)).collect()
    } else {
        stamp(p).unwrap_or_default()
    }
}

/// A model or baseline could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load {system}: {reason}")]
pub struct SystemLoadError {
    pub system: String,
    pub reason: String,
}

/// What to evaluate and where to write.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub dataset: PathBuf,
    pub out: PathBuf,
    pub tasks: Vec<Task>,
    /// The splits to evaluate (`all` = every sample). With one, the results go to `out`; with
    /// several, to `out/<split>/`, plus `out/splits.md` and `splits.json` comparing them.
    pub splits: Vec<String>,
    /// At most this many samples per split.
    pub limit: Option<usize>,
    pub jobs: usize,
    pub seed: u64,
}

/// Run the whole evaluation; returns one report per split (each also written to its
/// `metrics.json`). Every system answers each sample once, whatever the splits share, into
/// one cache `out/predictions.jsonl`.
pub fn run(opts: &RunOptions, systems: &[SystemSpec]) -> anyhow::Result<Vec<Report>> {
    let names = splits::names(&opts.splits)?;
    // The union of the splits' samples (by line), and each split's part of it.
    let mut work = Dataset {
        root: PathBuf::new(),
        entries: Vec::new(),
        skipped: Vec::new(),
    };
    let mut parts: Vec<(String, Vec<usize>, Vec<Skipped>)> = Vec::new();
    let mut at_line: HashMap<usize, usize> = HashMap::new();
    let mut id_line: HashMap<String, usize> = HashMap::new();
    let mut warned = HashSet::new();
    for name in &names {
        let ds = dataset::load(&opts.dataset, name, opts.limit)?;
        for s in ds.skipped.iter().filter(|s| warned.insert(s.line)) {
            eprintln!("warning: {}: {s}", opts.dataset.display());
        }
        if ds.entries.is_empty() {
            eprintln!(
                "warning: {}: no usable sample in split `{name}`",
                opts.dataset.display()
            );
        }
        work.root = ds.root;
        let mut idx = Vec::new();
        for e in ds.entries {
            if let Some(&i) = at_line.get(&e.line) {
                idx.push(i);
                continue;
            }
            // Answers are cached by sample id: two lines with one id would share them.
            if let Some(first) = id_line.insert(e.sample.id.clone(), e.line) {
                eprintln!(
                    "warning: {}: line {}: sample id \"{}\" also on line {first}, in another \
                     split: the two share cached answers",
                    opts.dataset.display(),
                    e.line,
                    e.sample.id
                );
            }
            at_line.insert(e.line, work.entries.len());
            idx.push(work.entries.len());
            work.entries.push(e);
        }
        parts.push((name.clone(), idx, ds.skipped));
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create output folder {}", opts.out.display()))?;
    let cache_path = opts.out.join("predictions.jsonl");
    let cache = Cache::open(&cache_path)
        .with_context(|| format!("cannot open prediction cache {}", cache_path.display()))?;
    if cache.bad_lines > 0 {
        eprintln!(
            "warning: {}: ignored {} unreadable line(s)",
            cache_path.display(),
            cache.bad_lines
        );
    }
    let plans: Vec<Vec<Planned>> = work
        .entries
        .iter()
        .map(|e| plan(&e.sample, &opts.tasks))
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .context("cannot start worker threads")?;
    let unreadable: Mutex<Vec<Skipped>> = Mutex::new(Vec::new());
    let mut fresh: HashMap<String, Prediction> = HashMap::new();
    let fingerprints: Vec<String> = systems.iter().map(SystemSpec::fingerprint).collect();
    for (spec, fp) in systems.iter().zip(&fingerprints) {
        let new = predict(spec, fp, &work, &plans, &cache, opts.jobs, &unreadable)?;
        fresh.extend(new.into_iter().map(|p| (p.key(), p)));
    }
    let mut unreadable = unreadable.into_inner().unwrap_or_default();
    unreadable.sort_by_key(|s| s.line);
    unreadable.dedup_by_key(|s| s.line);
    let ctx = Scoring {
        opts,
        systems,
        fingerprints: &fingerprints,
        work: &work,
        plans: &plans,
        lookup: &|k: &str| fresh.get(k).or_else(|| cache.entries.get(k)),
        bad_lines: unreadable.iter().map(|s| s.line).collect(),
        pool: &pool,
    };
    let mut reports = Vec::new();
    for (name, idx, mut skipped) in parts {
        let lines: HashSet<usize> = idx.iter().map(|&i| work.entries[i].line).collect();
        skipped.extend(
            unreadable
                .iter()
                .filter(|s| lines.contains(&s.line))
                .cloned(),
        );
        skipped.sort_by_key(|s| s.line);
        let dir = match names.len() {
            1 => opts.out.clone(),
            _ => opts.out.join(&name),
        };
        reports.push(ctx.report(&name, &idx, &skipped, &dir)?);
    }
    if reports.len() > 1 {
        let c = splits::compare(&reports);
        write(&opts.out.join("splits.md"), splits::markdown(&c).as_bytes())?;
        let json = serde_json::to_string_pretty(&c)?;
        write(&opts.out.join("splits.json"), json.as_bytes())?;
    }
    Ok(reports)
}

/// What scoring a split needs: the run's samples, plans and answers.
struct Scoring<'a> {
    opts: &'a RunOptions,
    systems: &'a [SystemSpec],
    fingerprints: &'a [String],
    work: &'a Dataset,
    plans: &'a [Vec<Planned>],
    lookup: &'a (dyn Fn(&str) -> Option<&'a Prediction> + Sync),
    /// Lines whose image could not be decoded.
    bad_lines: HashSet<usize>,
    pool: &'a rayon::ThreadPool,
}

impl Scoring<'_> {
    /// Score the samples `idx` of `work` (split `split`) and write its report into `dir`.
    fn report(
        &self,
        split: &str,
        idx: &[usize],
        skipped: &[Skipped],
        dir: &Path,
    ) -> anyhow::Result<Report> {
        let idx: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| !self.bad_lines.contains(&self.work.entries[i].line))
            .collect();
        let mut results: Vec<SystemMetrics> = Vec::new();
        for (spec, fp) in self.systems.iter().zip(self.fingerprints) {
            let scores: Vec<SampleScores> = self.pool.install(|| {
                idx.par_iter()
                    .map(|&i| {
                        let (e, planned) = (&self.work.entries[i], &self.plans[i]);
                        let preds: HashMap<String, Prediction> = planned
                            .iter()
                            .filter_map(|p| {
                                (self.lookup)(&cache_key(fp, &e.sample.id, &p.key))
                                    .map(|x| (p.key.clone(), x.clone()))
                            })
                            .collect();
                        score_sample(&e.sample, &self.work.root, planned, &preds)
                    })
                    .collect()
            });
            for s in &scores {
                for e in &s.gt_errors {
                    eprintln!("warning: {e}");
                }
            }
            results.push(summarize(&spec.name(), fp, &scores, self.opts.seed));
        }
        let fakes = idx
            .iter()
            .filter(|&&i| self.work.entries[i].sample.label == "fake")
            .count();
        let opts = self.opts;
        let rep = Report {
            dfa_version: env!("CARGO_PKG_VERSION").to_string(),
            dataset: opts.dataset.display().to_string(),
            split: split.to_string(),
            limit: opts.limit,
            tasks: opts.tasks.iter().map(|t| t.name().to_string()).collect(),
            seed: opts.seed,
            bootstrap_resamples: super::bootstrap::RESAMPLES,
            samples: idx.len(),
            reals: idx.len() - fakes,
            fakes,
            skipped: SkipCounts::of(skipped),
            systems: results,
        };
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        let json = serde_json::to_string_pretty(&rep)?;
        write(&dir.join("metrics.json"), json.as_bytes())?;
        write(&dir.join("metrics.md"), report::markdown(&rep).as_bytes())?;
        super::plots::write_all(dir, &rep.systems)?;
        Ok(rep)
    }
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Ask `spec` every request it has no cached answer for; returns the new predictions.
fn predict(
    spec: &SystemSpec,
    fp: &str,
    ds: &Dataset,
    plans: &[Vec<Planned>],
    cache: &Cache,
    jobs: usize,
    unreadable: &Mutex<Vec<Skipped>>,
) -> anyhow::Result<Vec<Prediction>> {
    let todo: Vec<(usize, Vec<&Planned>)> = plans
        .iter()
        .enumerate()
        .map(|(i, planned)| {
            let id = &ds.entries[i].sample.id;
            let left = planned
                .iter()
                .filter(|p| !cache.entries.contains_key(&cache_key(fp, id, &p.key)))
                .collect::<Vec<_>>();
            (i, left)
        })
        .filter(|(_, left)| !left.is_empty())
        .collect();
    let total: usize = todo.iter().map(|t| t.1.len()).sum();
    if total == 0 {
        return Ok(Vec::new());
    }
    let name = spec.name();
    let analyzer: Arc<dyn Analyzer> = Arc::from(spec.load().map_err(|e| SystemLoadError {
        system: name.clone(),
        reason: format!("{e:#}"),
    })?);
    let bar = progress_bar(total as u64, &name);
    let fresh = Mutex::new(Vec::new());
    let write_error: Mutex<Option<std::io::Error>> = Mutex::new(None);
    for_each_parallel(&todo, jobs, |(i, left)| {
        let entry = &ds.entries[*i];
        let path = ds.path(&entry.sample.image);
        let image = match crate::imageio::load_rgb(&path) {
            Ok(img) => Arc::new(img),
            Err(e) => {
                bar.inc(left.len() as u64);
                if let Ok(mut u) = unreadable.lock() {
                    u.push(Skipped {
                        line: entry.line,
                        id: Some(entry.sample.id.clone()),
                        kind: SkipKind::UnreadableImage,
                        reason: e.to_string(),
                    });
                }
                return;
            }
        };
        for p in left {
            let mut req = Request::new(image.clone(), path.display().to_string());
            req.prompt = p.prompt.clone();
            req.region = p.region.clone();
            req.face = Some(0);
            req.face_boxes = Some(vec![entry.sample.face_bbox]);
            let result = analyzer
                .analyze(&req, &mut |_| true)
                .map_err(|e| e.to_string())
                .and_then(|r| Prediction::from_result(fp, &entry.sample.id, &p.key, &r));
            match result {
                Ok(pred) => {
                    if let Err(e) = cache.append(&pred) {
                        if let Ok(mut w) = write_error.lock() {
                            w.get_or_insert(e);
                        }
                    }
                    if let Ok(mut f) = fresh.lock() {
                        f.push(pred);
                    }
                }
                Err(e) => bar.suspend(|| {
                    eprintln!(
                        "warning: line {} ({}), {name}, {}: {e}",
                        entry.line, entry.sample.id, p.key
                    )
                }),
            }
            bar.inc(1);
        }
    });
    bar.finish_and_clear();
    if let Some(e) = write_error.into_inner().ok().flatten() {
        return Err(anyhow::anyhow!(
            "cannot append to the prediction cache: {e}"
        ));
    }
    Ok(fresh.into_inner().unwrap_or_default())
}

/// Run `f` on every item with `jobs` threads of our own (not rayon's pool, so that the
/// engine's own parallelism is left alone); with one job, on the calling thread.
fn for_each_parallel<T: Sync>(items: &[T], jobs: usize, f: impl Fn(&T) + Sync) {
    if jobs <= 1 {
        items.iter().for_each(f);
        return;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(items.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match items.get(i) {
                    Some(item) => f(item),
                    None => break,
                }
            });
        }
    });
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(total: u64, name: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} requests, {eta} left")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    bar
}
