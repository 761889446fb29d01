//! Per photo source (`Sample::collection`: `lfw`, `utkface`, ...) breakdown of one system's
//! scores, so that a source training never saw shows up as its own row. Samples without a
//! collection (old datasets) count as [`UNKNOWN`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::metrics::{self, PixelCounts};
use super::report::cell;
use super::score::{DetItem, SampleScores};
use super::summary::{det_correct, share, Stat, SystemMetrics};
use crate::analysis::Verdict;

/// The source of samples without a `collection`.
pub const UNKNOWN: &str = "unknown";

/// One system on one photo source.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceMetrics {
    /// Real and fake samples of the source that were evaluated.
    pub reals: usize,
    pub fakes: usize,
    /// Detection accuracy over the source's reals and fakes.
    pub accuracy: Stat,
    /// AUC of the source's fakes against the source's reals (with its bootstrap interval);
    /// no value when the source lacks one of the classes.
    pub auc: Stat,
    /// Share of the source's reals called fake.
    pub false_fake_rate: Stat,
    /// Share of the source's reals whose answers carried a non-empty mask.
    pub masks_on_real: Stat,
    /// Mean Loc IoU over the source's fakes.
    pub loc_miou: Stat,
}

/// The source a sample is counted under.
pub fn source_of(s: &SampleScores) -> &str {
    s.collection
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(UNKNOWN)
}

/// Group `scores` by photo source and aggregate each group. `seed` seeds the AUC intervals.
pub fn per_source(scores: &[SampleScores], seed: u64) -> BTreeMap<String, SourceMetrics> {
    let mut by: BTreeMap<&str, Vec<&SampleScores>> = BTreeMap::new();
    for s in scores {
        by.entry(source_of(s)).or_default().push(s);
    }
    by.into_iter()
        .map(|(k, v)| (k.to_string(), source_metrics(&v, seed)))
        .collect()
}

fn source_metrics(scores: &[&SampleScores], seed: u64) -> SourceMetrics {
    let det: Vec<&DetItem> = scores.iter().flat_map(|s| &s.det).collect();
    let reals: Vec<&DetItem> = det.iter().copied().filter(|d| !d.fake).collect();
    let masks: Vec<bool> = scores.iter().filter_map(|s| s.masks_on_real).collect();
    let ious: Vec<f64> = scores
        .iter()
        .flat_map(|s| s.loc.iter().map(PixelCounts::iou))
        .collect();
    let fakes = scores.iter().filter(|s| s.family != "real").count();
    let auc = |x: &[&&DetItem]| {
        let (l, p): (Vec<bool>, Vec<f64>) = x.iter().map(|d| (d.fake, d.p_fake)).unzip();
        metrics::roc_auc(&l, &p)
    };
    SourceMetrics {
        reals: scores.len() - fakes,
        fakes,
        accuracy: Stat::plain(share(&det, |d| det_correct(d)), det.len()),
        auc: Stat::boot(&det, auc, seed),
        false_fake_rate: Stat::plain(share(&reals, |d| d.verdict == Verdict::Fake), reals.len()),
        masks_on_real: Stat::plain(
            share(&masks.iter().collect::<Vec<_>>(), |b| *b),
            masks.len(),
        ),
        loc_miou: Stat::plain(metrics::mean(&ious), ious.len()),
    }
}

/// The `metrics.md` section: a row per system and source. Empty when no sample names its
/// source (an old dataset), so old reports read as before.
pub fn markdown(systems: &[SystemMetrics]) -> String {
    let known = systems
        .iter()
        .flat_map(|s| s.per_source.keys())
        .any(|k| k != UNKNOWN);
    if !known {
        return String::new();
    }
    let mut out = String::from(
        "\n## Per photo source\n\nAUC: the source's fakes against the source's own reals \
         (– when it lacks one class). false-fake: share of its reals called fake.\n\n\
         | system | source | reals | fakes | Det acc | AUC | false-fake (reals) | masks on reals \
         | Loc mIoU |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in systems {
        for (src, m) in &s.per_source {
            out.push_str(&format!(
                "| {} | {src} | {} | {} | {} | {} | {} | {} | {} |\n",
                s.system,
                m.reals,
                m.fakes,
                cell(&m.accuracy),
                cell(&m.auc),
                cell(&m.false_fake_rate),
                cell(&m.masks_on_real),
                cell(&m.loc_miou),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample of `collection` with one detection answer.
    fn sample(collection: Option<&str>, fake: bool, p_fake: f64, verdict: Verdict) -> SampleScores {
        SampleScores {
            family: if fake { "warp" } else { "real" }.into(),
            collection: collection.map(str::to_string),
            det: vec![DetItem {
                fake,
                p_fake,
                verdict,
                recipe: String::new(),
            }],
            masks_on_real: (!fake).then_some(verdict == Verdict::Fake),
            ..Default::default()
        }
    }

    #[test]
    fn per_source_accuracy_auc_and_false_fake() {
        use Verdict::{Fake, Real};
        let scores = vec![
            // lfw: 2 reals (one called fake), 2 fakes (one missed).
            sample(Some("lfw"), false, 0.2, Real),
            sample(Some("lfw"), false, 0.7, Fake),
            sample(Some("lfw"), true, 0.9, Fake),
            sample(Some("lfw"), true, 0.3, Real),
            // solvay: 1 real, 2 fakes, all right and perfectly ranked.
            sample(Some("solvay"), false, 0.1, Real),
            sample(Some("solvay"), true, 0.8, Fake),
            sample(Some("solvay"), true, 0.6, Fake),
            // utkface: fakes only -> no AUC, no false-fake rate.
            sample(Some("utkface"), true, 0.9, Fake),
            // no collection -> "unknown".
            sample(None, false, 0.4, Real),
        ];
        let mut scores = scores;
        // Loc on solvay's fakes: IoU 1/2 and 1/4 -> mIoU 3/8.
        scores[5].loc = vec![PixelCounts {
            tp: 1,
            fp: 1,
            fn_: 0,
        }];
        scores[6].loc = vec![PixelCounts {
            tp: 1,
            fp: 2,
            fn_: 1,
        }];
        let m = per_source(&scores, 0);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["lfw", "solvay", "unknown", "utkface"]);

        let lfw = &m["lfw"];
        assert_eq!((lfw.reals, lfw.fakes), (2, 2));
        assert_eq!(lfw.accuracy.value, Some(0.5));
        // Pairs (fake, real): (0.9, 0.2) (0.9, 0.7) (0.3, 0.2) won, (0.3, 0.7) lost: 3/4.
        assert_eq!(lfw.auc.value, Some(0.75));
        assert!(lfw.auc.ci95.is_some());
        assert_eq!(
            (lfw.false_fake_rate.value, lfw.false_fake_rate.n),
            (Some(0.5), 2)
        );
        assert_eq!(lfw.masks_on_real.value, Some(0.5));

        let solvay = &m["solvay"];
        assert_eq!((solvay.reals, solvay.fakes), (1, 2));
        assert_eq!(solvay.accuracy.value, Some(1.0));
        assert_eq!(solvay.auc.value, Some(1.0));
        assert_eq!(solvay.false_fake_rate.value, Some(0.0));
        assert_eq!((solvay.loc_miou.value, solvay.loc_miou.n), (Some(0.375), 2));

        let utk = &m["utkface"];
        assert_eq!((utk.reals, utk.fakes), (0, 1));
        assert_eq!(utk.accuracy.value, Some(1.0));
        assert_eq!((utk.auc.value, utk.auc.ci95), (None, None));
        assert_eq!(
            (utk.false_fake_rate.value, utk.false_fake_rate.n),
            (None, 0)
        );
        assert_eq!(utk.loc_miou.value, None);
        assert_eq!(m["unknown"].reals, 1);
    }

    #[test]
    fn an_old_dataset_has_no_per_source_section() {
        let scores = vec![sample(None, false, 0.1, Verdict::Real)];
        let mut sys = crate::eval::summary::summarize("s", "f", &scores, 0);
        assert!(sys.per_source.contains_key(UNKNOWN));
        assert_eq!(markdown(std::slice::from_ref(&sys)), "");
        sys.per_source = per_source(&[sample(Some("lfw"), true, 0.9, Verdict::Fake)], 0);
        let md = markdown(&[sys]);
        assert!(
            md.contains("| s | lfw | 0 | 1 | 1.000 | – | – | – | – |"),
            "{md}"
        );
    }
}
