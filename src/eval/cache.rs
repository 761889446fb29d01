//! The prediction cache `OUT/predictions.jsonl`: one [`Prediction`] per line, appended whole and
//! flushed, so that an interrupted run resumes where it stopped. A prediction is keyed by the
//! system's fingerprint, the sample id and the request (task and its index in the sample).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisResult, Verdict};
use crate::report::rle::{self, Rle};

/// One predicted grounded segment, mask as COCO RLE.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PredSegment {
    pub phrase: String,
    pub region: Option<String>,
    pub bbox: [u32; 4],
    pub area_px: u64,
    pub rle: Rle,
    pub consistent: Option<bool>,
}

/// What one system answered to one request about one sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Prediction {
    pub fingerprint: String,
    pub sample_id: String,
    /// The request key: the task name and the index of its record in the sample
    /// (`"age#0"`), or `"default#0"` for the default prompt.
    pub request: String,
    pub verdict: Verdict,
    pub p_fake: f32,
    pub forgery_type: Option<String>,
    pub explanation_raw: String,
    pub segments: Vec<PredSegment>,
    pub width: u32,
    pub height: u32,
}

impl Prediction {
    /// The cache key.
    pub fn key(&self) -> String {
        cache_key(&self.fingerprint, &self.sample_id, &self.request)
    }

    /// Take the first face of a result (eval requests carry exactly one face box).
    pub fn from_result(
        fingerprint: &str,
        sample_id: &str,
        request: &str,
        result: &AnalysisResult,
    ) -> Result<Self, String> {
        let face = result
            .faces
            .first()
            .ok_or_else(|| "the analyzer returned no face".to_string())?;
        Ok(Self {
            fingerprint: fingerprint.to_string(),
            sample_id: sample_id.to_string(),
            request: request.to_string(),
            verdict: face.verdict,
            p_fake: face.p_fake,
            forgery_type: face.forgery_type.clone(),
            explanation_raw: face.explanation_raw.clone(),
            segments: face
                .segments
                .iter()
                .map(|s| PredSegment {
                    phrase: s.phrase.clone(),
                    region: s.region.clone(),
                    bbox: s.bbox,
                    area_px: s.area_px,
                    rle: rle::encode(&s.mask),
                    consistent: s.consistent,
                })
                .collect(),
            width: result.width,
            height: result.height,
        })
    }
}

/// `fingerprint/sample id/request`.
pub fn cache_key(fingerprint: &str, sample_id: &str, request: &str) -> String {
    format!("{fingerprint}/{sample_id}/{request}")
}

/// The cache file: what it held when opened, and an append handle.
pub struct Cache {
    pub entries: HashMap<String, Prediction>,
    /// Lines that did not parse (e.g. cut off by a crash); they are ignored.
    pub bad_lines: usize,
    file: Mutex<std::fs::File>,
}

impl Cache {
    /// Open (or create) the cache and read what it holds.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut entries = HashMap::new();
        let mut bad_lines = 0;
        let mut last_byte = None;
        {
            let mut reader = std::io::BufReader::new(&mut file);
            let mut line = String::new();
            while reader.read_line(&mut line)? > 0 {
                last_byte = line.as_bytes().last().copied();
                match serde_json::from_str::<Prediction>(line.trim_end()) {
                    Ok(p) => {
                        entries.insert(p.key(), p);
                    }
                    Err(_) if line.trim().is_empty() => {}
                    Err(_) => bad_lines += 1,
                }
                line.clear();
            }
        }
        // A crash may have left a partial last line: start the next record on a fresh line.
        if last_byte.is_some_and(|b| b != b'\n') {
            file.write_all(b"\n")?;
        }
        Ok(Self {
            entries,
            bad_lines,
            file: Mutex::new(file),
        })
    }

    /// Append one prediction as a whole line and flush it.
    pub fn append(&self, p: &Prediction) -> std::io::Result<()> {
        let mut line = serde_json::to_string(p).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut f = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("prediction cache lock poisoned"))?;
        f.write_all(line.as_bytes())?;
        f.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(id: &str) -> Prediction {
        Prediction {
            fingerprint: "fp".into(),
            sample_id: id.into(),
            request: "default#0".into(),
            verdict: Verdict::Real,
            p_fake: 0.25,
            forgery_type: None,
            explanation_raw: "fine".into(),
            segments: vec![],
            width: 4,
            height: 4,
        }
    }

    #[test]
    fn survives_a_cut_off_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let c = Cache::open(&path).unwrap();
        c.append(&pred("a")).unwrap();
        drop(c);
        // Simulate a crash in the middle of writing the next line.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"fingerprint\": \"fp\", \"sample_");
        std::fs::write(&path, text).unwrap();
        let c = Cache::open(&path).unwrap();
        assert_eq!((c.entries.len(), c.bad_lines), (1, 1));
        c.append(&pred("b")).unwrap();
        drop(c);
        let c = Cache::open(&path).unwrap();
        assert_eq!((c.entries.len(), c.bad_lines), (2, 1));
        assert_eq!(c.entries[&cache_key("fp", "b", "default#0")], pred("b"));
    }
}
