//! Several splits in one run (`--split test,test-id`): which splits, and a comparison row per
//! system and split with the headline numbers and the gap: each split's detection AUC minus the
//! first split's, e.g. `AUC(test-id) − AUC(test)` (unseen people of seen photo sources against
//! unseen photo sources).

use serde::Serialize;

use super::dataset::DatasetError;
use super::report::{cell, Report};
use super::summary::Stat;

/// The splits named by `--split` (comma-separated on the command line), in order, duplicates
/// dropped. With several, each becomes a folder name, so it must be a plain name.
pub fn names(asked: &[String]) -> Result<Vec<String>, DatasetError> {
    let mut out: Vec<String> = Vec::new();
    for s in asked.iter().map(|s| s.trim()) {
        if s.is_empty() {
            return Err(DatasetError::Split("--split names an empty split".into()));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    if out.is_empty() {
        return Err(DatasetError::Split("--split names no split".into()));
    }
    let plain = |s: &str| {
        !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if out.len() > 1 {
        if let Some(bad) = out.iter().find(|s| !plain(s)) {
            return Err(DatasetError::Split(format!(
                "--split \"{bad}\": with several splits each names a folder, so use letters, \
                 digits, '-', '_' and '.'"
            )));
        }
    }
    Ok(out)
}

/// One system on one split.
#[derive(Debug, Clone, Serialize)]
pub struct SplitRow {
    pub system: String,
    pub split: String,
    pub samples: usize,
    pub auc: Stat,
    pub accuracy: Stat,
    pub false_fake_rate: Stat,
    pub loc_miou: Stat,
    pub naming_f1: Stat,
    /// This split's AUC minus the first split's (none on the first split or without an AUC).
    pub auc_gap: Option<f64>,
}

/// `splits.json`: the comparison of one run's splits.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub dataset: String,
    /// In the order asked; gaps are taken against the first.
    pub splits: Vec<String>,
    pub rows: Vec<SplitRow>,
}

/// Compare the reports of one run (one per split, same systems): rows by system, then split.
pub fn compare(reports: &[Report]) -> Comparison {
    let mut rows = Vec::new();
    let first = reports.first();
    for (i, sys) in first.map_or(&[][..], |r| &r.systems).iter().enumerate() {
        let base = sys.det.auc.value;
        for (j, r) in reports.iter().enumerate() {
            let Some(s) = r.systems.get(i) else { continue };
            let gap = match (j, base, s.det.auc.value) {
                (1.., Some(b), Some(a)) => Some(a - b),
                _ => None,
            };
            rows.push(SplitRow {
                system: s.system.clone(),
                split: r.split.clone(),
                samples: r.samples,
                auc: s.det.auc.clone(),
                accuracy: s.det.accuracy.clone(),
                false_fake_rate: s.det.false_fake_rate.clone(),
                loc_miou: s.loc.miou.clone(),
                naming_f1: s.region_naming.f1.clone(),
                auc_gap: gap,
            });
        }
    }
    Comparison {
        dataset: first.map_or(String::new(), |r| r.dataset.clone()),
        splits: reports.iter().map(|r| r.split.clone()).collect(),
        rows,
    }
}

fn signed(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:+.3}"))
}

/// `splits.md`: the table and one gap line per later split.
pub fn markdown(c: &Comparison) -> String {
    let first = c.splits.first().map_or("", String::as_str);
    let mut out = format!(
        "# dfa eval: splits compared\n\nDataset `{}`, splits {}. Brackets: 95% bootstrap \
         interval. Gap: a split's Det AUC minus that of `{first}`.\n\n\
         | system | split | samples | Det AUC | Det acc | false-fake (reals) | Loc mIoU \
         | naming F1 | AUC gap |\n|---|---|---|---|---|---|---|---|---|\n",
        c.dataset,
        c.splits
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for r in &c.rows {
        let gap = if r.split == first {
            "–".into()
        } else {
            signed(r.auc_gap)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {gap} |\n",
            r.system,
            r.split,
            r.samples,
            cell(&r.auc),
            cell(&r.accuracy),
            cell(&r.false_fake_rate),
            cell(&r.loc_miou),
            cell(&r.naming_f1),
        ));
    }
    out.push('\n');
    for split in c.splits.iter().skip(1) {
        let gaps: Vec<String> = c
            .rows
            .iter()
            .filter(|r| &r.split == split)
            .map(|r| format!("{} {}", r.system, signed(r.auc_gap)))
            .collect();
        out.push_str(&format!(
            "AUC({split}) − AUC({first}): {}\n",
            gaps.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_are_deduplicated_and_checked() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&v(&["test", "test-id", "test"])).ok(),
            Some(v(&["test", "test-id"]))
        );
        assert_eq!(names(&v(&["my split"])).ok(), Some(v(&["my split"])));
        assert!(names(&v(&["test", "../x"])).is_err());
        assert!(names(&v(&["test", ""])).is_err());
        assert!(names(&[]).is_err());
    }

    #[test]
    fn the_gap_is_each_splits_auc_minus_the_firsts() {
        use crate::analysis::Verdict;
        use crate::eval::score::{DetItem, SampleScores};
        let report = |split: &str, p_real: f64| {
            // One real scored `p_real`, one fake scored 0.5: AUC 1, 1/2 or 0.
            let scores: Vec<SampleScores> = [(false, p_real), (true, 0.5)]
                .iter()
                .map(|&(fake, p_fake)| SampleScores {
                    family: if fake { "warp" } else { "real" }.into(),
                    det: vec![DetItem {
                        fake,
                        p_fake,
                        verdict: Verdict::Fake,
                        recipe: String::new(),
                    }],
                    ..Default::default()
                })
                .collect();
            Report {
                dfa_version: String::new(),
                dataset: "d.jsonl".into(),
                split: split.into(),
                limit: None,
                tasks: vec![],
                seed: 0,
                bootstrap_resamples: 0,
                samples: 2,
                reals: 1,
                fakes: 1,
                skipped: crate::eval::report::SkipCounts::of(&[]),
                systems: vec![crate::eval::summary::summarize("m", "f", &scores, 0)],
            }
        };
        let c = compare(&[
            report("test", 0.5),
            report("test-id", 0.1),
            report("val", 0.9),
        ]);
        let gaps: Vec<Option<f64>> = c.rows.iter().map(|r| r.auc_gap).collect();
        assert_eq!(gaps, [None, Some(0.5), Some(-0.5)]);
        let md = markdown(&c);
        assert!(md.contains("AUC(test-id) − AUC(test): m +0.500\n"), "{md}");
        assert!(md.contains("AUC(val) − AUC(test): m -0.500\n"), "{md}");
        assert!(md.contains("| m | test-id | 2 | 1.000 ["), "{md}");
    }
}
