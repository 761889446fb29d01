//! Writing results out: the report JSON (one batch line, `/export json`) and the Markdown
//! report with overlay and mask PNGs (`/save`, `batch --artifacts`).
//!
//! The report itself comes from `crate::report::{json, markdown, overlay}`.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde_json::{json, Value};

use crate::analysis::{AnalysisResult, Turn};
use crate::chat::palette::seg_colour;
use crate::report::overlay::draw_overlay;

/// Errors while writing a report; one line each.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> ExportError {
    ExportError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The report JSON of a result (schema "dfa.report/1").
pub fn report_json(result: &AnalysisResult) -> Value {
    crate::report::json::report_json(result)
}

/// The Markdown report, the conversation appended.
fn markdown(result: &AnalysisResult, history: &[Turn], masks: &[(String, String)]) -> String {
    let mask_file = |face_id: usize, seg_id: usize| {
        let key = mask_key(face_id, seg_id);
        masks
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    let mut md = crate::report::markdown::report_markdown(result, &mask_file);
    md.push_str("\n![overlay](overlay.png)\n");
    if !history.is_empty() {
        md.push_str("\n## Conversation\n\n");
        for t in history {
            md.push_str(&format!(
                "**You:** {}\n\n**dfa:** {}\n\n",
                t.user, t.assistant
            ));
        }
    }
    md
}

fn mask_key(face_id: usize, seg_id: usize) -> String {
    format!("face{}-mask{}", face_id + 1, seg_id)
}

/// The overlay of every mask of a result on its image.
pub fn overlay_image(image: &RgbImage, result: &AnalysisResult) -> RgbImage {
    let layers: Vec<_> = result
        .faces
        .iter()
        .flat_map(|f| f.segments.iter())
        .map(|s| {
            (
                s.mask.clone(),
                seg_colour(s.id),
                format!("[{}] {}", s.id, s.phrase),
            )
        })
        .collect();
    draw_overlay(image, &layers, 0.45)
}

/// Write `overlay.png` and one `faceF-maskN.png` per segment into `dir`; returns the mask
/// files as (key, file name).
pub fn write_pngs(
    dir: &Path,
    image: &RgbImage,
    result: &AnalysisResult,
) -> Result<Vec<(String, String)>, ExportError> {
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let overlay = dir.join("overlay.png");
    overlay_image(image, result)
        .save(&overlay)
        .map_err(|e| write_err(&overlay, e))?;
    let mut files = Vec::new();
    for f in &result.faces {
        for s in &f.segments {
            let key = mask_key(f.face_id, s.id);
            let name = format!("{key}.png");
            let path = dir.join(&name);
            s.mask.save(&path).map_err(|e| write_err(&path, e))?;
            files.push((key, name));
        }
    }
    Ok(files)
}

/// `/save`: `report.md`, `overlay.png` and the mask PNGs into `dir`; returns the report path.
pub fn save_report(
    dir: &Path,
    image: &RgbImage,
    result: &AnalysisResult,
    history: &[Turn],
) -> Result<PathBuf, ExportError> {
    let masks = write_pngs(dir, image, result)?;
    let md_path = dir.join("report.md");
    std::fs::write(&md_path, markdown(result, history, &masks))
        .map_err(|e| write_err(&md_path, e))?;
    Ok(md_path)
}

/// `/export json`: the report JSON plus the conversation, pretty-printed.
pub fn export_json(
    path: &Path,
    result: &AnalysisResult,
    history: &[Turn],
) -> Result<(), ExportError> {
    let mut value = report_json(result);
    if let Value::Object(map) = &mut value {
        map.insert("conversation".into(), json!(history));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| write_err(parent, e))?;
    }
    let text = serde_json::to_string_pretty(&value).map_err(|e| write_err(path, e))?;
    std::fs::write(path, text + "\n").map_err(|e| write_err(path, e))
}
