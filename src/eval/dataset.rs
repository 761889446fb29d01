//! Reading an evaluation dataset (JSONL of [`Sample`]s): bad lines and samples whose image is
//! missing are reported with their line number, skipped, and counted.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::forge::record::Sample;

/// Why a dataset line or sample was left out.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// Not valid JSON, not a sample, or an invalid field (label, duplicate id).
    Malformed,
    /// The image file does not exist.
    MissingImage,
    /// The image exists but could not be decoded.
    UnreadableImage,
}

/// One skipped line or sample.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Skipped {
    /// 1-based line number in the JSONL.
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub kind: SkipKind,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: skipped: {}", self.line, self.reason)
    }
}

/// One usable sample and where it came from.
#[derive(Debug, Clone)]
pub struct Entry {
    pub line: usize,
    pub sample: Sample,
}

/// The samples of one split, with what was skipped on the way.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The JSONL's folder: sample paths are relative to it.
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
}

impl Dataset {
    /// Resolve a path of the dataset (relative to its folder).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// Errors that stop reading altogether (a bad line only skips that line).
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read dataset {path}: {reason}")]
    Open { path: String, reason: String },
    /// A bad `--split` list.
    #[error("{0}")]
    Split(String),
}

/// Read `path`, keeping samples of `split` (`"all"` keeps every split) until `limit` samples
/// are kept. Lines after the limit are not read.
pub fn load(path: &Path, split: &str, limit: Option<usize>) -> Result<Dataset, DatasetError> {
    let open_err = |e: std::io::Error| DatasetError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(open_err)?;
    let root = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut ds = Dataset {
        root,
        entries: Vec::new(),
        skipped: Vec::new(),
    };
    let mut seen = HashSet::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        if limit.is_some_and(|n| ds.entries.len() >= n) {
            break;
        }
        let line_no = i + 1;
        let text = line.map_err(open_err)?;
        if text.trim().is_empty() {
            continue;
        }
        let malformed = |id: Option<String>, reason: String| Skipped {
            line: line_no,
            id,
            kind: SkipKind::Malformed,
            reason,
        };
        let sample: Sample = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                ds.skipped
                    .push(malformed(None, format!("not a dataset record: {e}")));
                continue;
            }
        };
        if split != "all" && sample.split != split {
            continue;
        }
        let id = Some(sample.id.clone());
        if sample.label != "real" && sample.label != "fake" {
            let reason = format!(
                "label must be \"real\" or \"fake\", not \"{}\"",
                sample.label
            );
            ds.skipped.push(malformed(id, reason));
            continue;
        }
        if !seen.insert(sample.id.clone()) {
            let reason = format!("duplicate sample id \"{}\"", sample.id);
            ds.skipped.push(malformed(id, reason));
            continue;
        }
        let image = ds.path(&sample.image);
        if !image.is_file() {
            ds.skipped.push(Skipped {
                line: line_no,
                id,
                kind: SkipKind::MissingImage,
                reason: format!("image {} not found", image.display()),
            });
            continue;
        }
        ds.entries.push(Entry {
            line: line_no,
            sample,
        });
    }
    Ok(ds)
}
