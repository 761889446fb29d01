//! `metrics.json` (everything) and `metrics.md` (one table, a row per model or baseline).

use std::collections::BTreeMap;

use serde::Serialize;

use super::dataset::{SkipKind, Skipped};
use super::summary::{Stat, SystemMetrics};

/// Counts of what was left out of the dataset.
#[derive(Debug, Clone, Serialize)]
pub struct SkipCounts {
    /// Lines or samples skipped in all.
    pub total: usize,
    pub by_kind: BTreeMap<SkipKind, usize>,
    pub details: Vec<Skipped>,
}

impl SkipCounts {
    pub fn of(skipped: &[Skipped]) -> Self {
        let mut by_kind = BTreeMap::new();
        for s in skipped {
            *by_kind.entry(s.kind).or_insert(0) += 1;
        }
        Self {
            total: skipped.len(),
            by_kind,
            details: skipped.to_vec(),
        }
    }
}

/// The whole of `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dfa_version: String,
    pub dataset: String,
    pub split: String,
    pub limit: Option<usize>,
    pub tasks: Vec<String>,
    /// Seed of every bootstrap interval.
    pub seed: u64,
    pub bootstrap_resamples: usize,
    /// Samples evaluated.
    pub samples: usize,
    pub reals: usize,
    pub fakes: usize,
    pub skipped: SkipCounts,
    pub systems: Vec<SystemMetrics>,
}

pub(super) fn cell(s: &Stat) -> String {
    match (s.value, s.ci95) {
        (Some(v), Some(ci)) => format!("{v:.3} [{:.3}, {:.3}]", ci.lo, ci.hi),
        (Some(v), None) => format!("{v:.3}"),
        (None, _) => "–".to_string(),
    }
}

/// The Markdown table: one row per system.
pub fn markdown(r: &Report) -> String {
    let mut out = format!(
        "# dfa eval\n\nDataset `{}`, split `{}`: {} samples ({} real, {} fake), {} skipped. \
         Brackets: 95% bootstrap interval ({} resamples, seed {}).\n\n",
        r.dataset,
        r.split,
        r.samples,
        r.reals,
        r.fakes,
        r.skipped.total,
        r.bootstrap_resamples,
        r.seed
    );
    let head = [
        "system",
        "Det acc",
        "AUC",
        "EER",
        "false-fake (reals)",
        "Cls acc",
        "macro-F1",
        "Loc mIoU",
        "pixel F1",
        "AGE mIoU",
        "unmatched phrases",
        "missed concepts",
        "naming P",
        "naming R",
        "naming F1",
        "METEOR",
        "ROUGE-L",
        "consistency",
        "masks on reals",
        "errors",
    ];
    out.push_str(&format!("| {} |\n", head.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
    for s in &r.systems {
        let empty = Stat {
            value: None,
            n: 0,
            ci95: None,
        };
        let text = s.text.get("all");
        let row = [
            s.system.clone(),
            cell(&s.det.accuracy),
            cell(&s.det.auc),
            cell(&s.det.eer),
            cell(&s.det.false_fake_rate),
            cell(&s.cls.accuracy),
            cell(&s.cls.macro_f1),
            cell(&s.loc.miou),
            cell(&s.loc.pixel_f1),
            cell(&s.age.miou),
            s.age.unmatched_phrases.to_string(),
            s.age.missed_concepts.to_string(),
            cell(&s.region_naming.precision),
            cell(&s.region_naming.recall),
            cell(&s.region_naming.f1),
            cell(text.map_or(&empty, |t| &t.meteor)),
            cell(text.map_or(&empty, |t| &t.rouge_l)),
            cell(&s.consistency),
            cell(&s.masks_on_real),
            s.analysis_errors.to_string(),
        ];
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out.push_str(&per_recipe_table(r));
    out.push_str(&super::sources::markdown(&r.systems));
    out.push_str(&thresholds_table(r));
    out
}

/// Per recipe family: detection accuracy, AUC of its fakes against every real, and Loc mIoU.
fn per_recipe_table(r: &Report) -> String {
    let families: std::collections::BTreeSet<&String> = r
        .systems
        .iter()
        .flat_map(|s| s.det.per_recipe.keys())
        .collect();
    if families.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Per recipe family: Det accuracy / AUC against all reals / Loc mIoU\n\n| family | n |",
    );
    for s in &r.systems {
        out.push_str(&format!(" {} |", s.system));
    }
    out.push_str(&format!("\n|---|---|{}\n", "---|".repeat(r.systems.len())));
    for f in families {
        let n = r
            .systems
            .iter()
            .find_map(|s| s.det.per_recipe.get(f))
            .map_or(0, |x| x.n);
        out.push_str(&format!("| {f} | {n} |"));
        for s in &r.systems {
            let acc = s.det.per_recipe.get(f).and_then(|x| x.value);
            let auc = s.det.per_recipe_auc.get(f).and_then(|x| x.value);
            let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
            let loc = s.loc.per_recipe.get(f).and_then(|x| x.value);
            if f == "real" {
                out.push_str(&format!(" {} |", fmt(acc)));
            } else {
                out.push_str(&format!(" {} / {} / {} |", fmt(acc), fmt(auc), fmt(loc)));
            }
        }
        out.push('\n');
    }
    out
}

/// Thresholds read off this split's reals (meaningful on `--split val`).
fn thresholds_table(r: &Report) -> String {
    let mut out = String::new();
    for s in r.systems.iter().filter(|s| !s.det.thresholds.is_empty()) {
        if out.is_empty() {
            out.push_str(
                "\n## Verdict thresholds from this split's reals\n\n\
                 At most `rate` of these reals called fake, at most 2×rate not called real. \
                 Read them off `--split val` and copy into the model's config.json.\n\n\
                 | system | rate | fake | real |\n|---|---|---|---|\n",
            );
        }
        for c in &s.det.thresholds {
            out.push_str(&format!(
                "| {} | {:.2} | {:.4} | {:.4} |\n",
                s.system, c.rate, c.fake, c.real
            ));
        }
    }
    let fits: Vec<_> = r
        .systems
        .iter()
        .filter_map(|s| s.det.platt.map(|p| (s, p)))
        .collect();
    if !fits.is_empty() {
        out.push_str(
            "\n## P(fake) calibration fit on this split\n\n\
             Platt scaling `sigmoid(scale · logit(p) + bias)` of the P(fake) this run saw (fit \
             it on a model whose config.json has no `calibration` yet), and the thresholds on \
             the calibrated scale. Copy `\"calibration\": {\"scale\", \"bias\"}` and one row's \
             thresholds into config.json together.\n\n\
             | system | scale | bias | rate | fake | real |\n|---|---|---|---|---|---|\n",
        );
        for (s, p) in fits {
            for c in &s.det.platt_thresholds {
                out.push_str(&format!(
                    "| {} | {:.4} | {:.4} | {:.2} | {:.4} | {:.4} |\n",
                    s.system, p.scale, p.bias, c.rate, c.fake, c.real
                ));
            }
        }
    }
    out
}
