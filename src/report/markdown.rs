//! A human-readable Markdown report (`report.md`, `/save` in chat).

use std::fmt::Write;

use crate::analysis::AnalysisResult;

/// `mask_file(face_id, segment_id)` names the PNG written for a segment (relative link), if any.
pub fn report_markdown(
    r: &AnalysisResult,
    mask_file: &dyn Fn(usize, usize) -> Option<String>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# dfa report: {}\n", r.image_path);
    let _ = writeln!(
        s,
        "Image {}×{}, {} face(s).\n",
        r.width,
        r.height,
        r.faces.len()
    );
    for w in &r.warnings {
        let _ = writeln!(s, "> **Warning:** {w}\n");
    }
    for f in &r.faces {
        let b = f.bbox;
        let _ = writeln!(
            s,
            "## Face {} — {} (P(fake) = {:.2})\n",
            f.face_id,
            f.verdict.as_str(),
            f.p_fake
        );
        let _ = writeln!(
            s,
            "Box: [{:.0}, {:.0}, {:.0}, {:.0}]",
            b[0], b[1], b[2], b[3]
        );
        if let Some(t) = &f.forgery_type {
            let _ = writeln!(s, "Forgery type: {t}");
        }
        let _ = writeln!(s, "\n{}\n", f.explanation);
        if !f.segments.is_empty() {
            let _ = writeln!(s, "| # | phrase | region | area (px) | box | consistent | mask |\n|---|---|---|---|---|---|---|");
            for g in &f.segments {
                let link = mask_file(f.face_id, g.id)
                    .map(|p| format!("[png]({p})"))
                    .unwrap_or_default();
                let consistent = match g.consistent {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "–",
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {:?} | {} | {} |",
                    g.id,
                    g.phrase,
                    g.region.as_deref().unwrap_or("–"),
                    g.area_px,
                    g.bbox,
                    consistent,
                    link
                );
            }
            s.push('\n');
        }
    }
    let p = &r.provenance;
    let _ = writeln!(
        s,
        "---\nModel {} (sha256 {}), adapter {}, {} on {}, seed {}, prompt {}, dfa {}{}.",
        p.model,
        &p.model_sha256.get(..12).unwrap_or(&p.model_sha256),
        p.adapter.as_deref().unwrap_or("none"),
        p.dtype,
        p.device,
        p.seed,
        p.prompt_id,
        p.dfa_version,
        if p.trained {
            ""
        } else {
            " — HEADS UNTRAINED: no finding in this report is meaningful"
        }
    );
    s
}
