//! Writing results out: the report JSON (one batch line, `/export json`) and the Markdown
//! report with overlay and mask PNGs (`/save`, `batch --artifacts`).
//!
//! TEMPORARY: `report_json` and `markdown` below are minimal private stand-ins for
//! `crate::report::json::report_json` (schema "dfa.report/1") and `crate::report::markdown`,
//! which the lead is writing. Every caller goes through the two functions here, so swapping is
//! a two-line change.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde_json::{json, Value};

use crate::analysis::{AnalysisResult, Turn};
use crate::chat::palette::{draw_overlay, seg_colour};

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

/// The report JSON of a result. TEMPORARY minimal serializer (see module doc).
pub fn report_json(result: &AnalysisResult) -> Value {
    let faces: Vec<Value> = result
        .faces
        .iter()
        .map(|f| {
            let segments: Vec<Value> = f
                .segments
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id,
                        "phrase": s.phrase,
                        "region": s.region,
                        "bbox": s.bbox,
                        "area": s.area_px,
                        "rle": crate::report::rle::encode(&s.mask),
                        "consistent": s.consistent,
                    })
                })
                .collect();
            json!({
                "face_id": f.face_id,
                "bbox": f.bbox,
                "verdict": f.verdict,
                "p_fake": f.p_fake,
                "forgery_type": f.forgery_type,
                "type_probs": f.type_probs,
                "explanation": f.explanation,
                "explanation_raw": f.explanation_raw,
                "segments": segments,
            })
        })
        .collect();
    json!({
        "schema": "dfa.report/1",
        "image": result.image_path,
        "width": result.width,
        "height": result.height,
        "faces": faces,
        "warnings": result.warnings,
        "provenance": result.provenance,
    })
}

/// A Markdown report. TEMPORARY minimal stand-in for `crate::report::markdown`.
fn markdown(
    result: &AnalysisResult,
    history: &[Turn],
    overlay: &str,
    masks: &[(String, String)],
) -> String {
    let mut md = format!("# dfa report: {}\n\n", result.image_path);
    md.push_str(&format!("![overlay]({overlay})\n\n"));
    for f in &result.faces {
        md.push_str(&format!(
            "## Face {}\n\n**Verdict: {}** (p(fake) = {:.2}{})\n\n{}\n\n",
            f.face_id + 1,
            f.verdict.as_str(),
            f.p_fake,
            f.forgery_type
                .as_ref()
                .map(|t| format!(", type: {t}"))
                .unwrap_or_default(),
            f.explanation
        ));
        if !f.segments.is_empty() {
            md.push_str("| # | phrase | region | area (px) | mask |\n|---|---|---|---|---|\n");
            for s in &f.segments {
                let file = masks
                    .iter()
                    .find(|(k, _)| *k == mask_key(f.face_id, s.id))
                    .map(|(_, v)| format!("[png]({v})"))
                    .unwrap_or_default();
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    s.id,
                    s.phrase,
                    s.region.as_deref().unwrap_or("-"),
                    s.area_px,
                    file
                ));
            }
            md.push('\n');
        }
    }
    if !history.is_empty() {
        md.push_str("## Conversation\n\n");
        for t in history {
            md.push_str(&format!(
                "**You:** {}\n\n**dfa:** {}\n\n",
                t.user, t.assistant
            ));
        }
    }
    for w in &result.warnings {
        md.push_str(&format!("> warning: {w}\n\n"));
    }
    let p = &result.provenance;
    md.push_str(&format!(
        "---\nmodel {} ({}), adapter {}, {} on {}, seed {}, prompt {}, dfa {}{}\n",
        p.model,
        short(&p.model_sha256),
        p.adapter.as_deref().unwrap_or("none"),
        p.dtype,
        p.device,
        p.seed,
        p.prompt_id,
        p.dfa_version,
        if p.trained {
            ""
        } else {
            " — UNTRAINED heads: masks are not findings"
        }
    ));
    md
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
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
    std::fs::write(&md_path, markdown(result, history, "overlay.png", &masks))
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
