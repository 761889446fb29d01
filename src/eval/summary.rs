//! One system's metrics over the whole dataset, with seeded bootstrap intervals on the headline
//! numbers (resampling samples).

use std::collections::BTreeMap;

use serde::Serialize;

use super::bootstrap::{self, Interval};
use super::metrics::{self, PixelCounts};
use super::score::{AgeItem, DetItem, Naming, SampleScores};
use super::sources::{per_source, SourceMetrics};
use super::tasks::Task;
use crate::analysis::Verdict;
use crate::forge::record::FORGERY_TYPES;
use crate::model::config::Platt;

/// A number with its sample count and (for headline numbers) a 95% bootstrap interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stat {
    pub value: Option<f64>,
    pub n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci95: Option<Interval>,
}

impl Stat {
    pub(crate) fn plain(value: Option<f64>, n: usize) -> Self {
        Self {
            value,
            n,
            ci95: None,
        }
    }

    /// `value` of `items` and its bootstrap interval (seeded).
    pub(crate) fn boot<T>(items: &[T], stat: impl Fn(&[&T]) -> Option<f64>, seed: u64) -> Self {
        let all: Vec<&T> = items.iter().collect();
        Self {
            value: stat(&all),
            n: items.len(),
            ci95: bootstrap::interval(items, stat, bootstrap::RESAMPLES, seed),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DetMetrics {
    pub accuracy: Stat,
    pub auc: Stat,
    pub eer: Stat,
    /// Share of reals called fake.
    pub false_fake_rate: Stat,
    /// Share of answers that were "uncertain" (counted wrong in accuracy).
    pub uncertain_rate: Stat,
    /// Detection accuracy per recipe family ("real" for the reals).
    pub per_recipe: BTreeMap<String, Stat>,
    /// AUC per recipe family: that family's fakes against every real.
    pub per_recipe_auc: BTreeMap<String, Stat>,
    /// Verdict thresholds read off this split's reals (run it on `val`, then copy one into
    /// the model's config.json): at most `rate` of reals called fake.
    pub thresholds: Vec<metrics::Calibration>,
    /// Platt scaling fit to this split's P(fake) (`scale`, `bias`), and the thresholds above
    /// read off the reals' scores after it: copy both into config.json together.
    pub platt: Option<Platt>,
    pub platt_thresholds: Vec<metrics::Calibration>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClsMetrics {
    pub accuracy: Stat,
    pub macro_f1: Stat,
    /// truth -> predicted -> count.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocMetrics {
    /// Mean over fakes of the IoU of the union of predicted masks with the artifact mask.
    pub miou: Stat,
    /// The same per recipe family.
    pub per_recipe: BTreeMap<String, Stat>,
    /// Mean over fakes of the pixel F1.
    pub pixel_f1: Stat,
    /// The per-fake IoUs (for the histogram).
    #[serde(skip)]
    pub ious: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgeMetrics {
    /// Mean over fakes of the mean IoU per ground-truth concept (unmatched concepts score 0).
    pub miou: Stat,
    /// Mean IoU over matched phrase/segment pairs only.
    pub matched_miou: Stat,
    pub phrases: usize,
    pub unmatched_phrases: usize,
    pub missed_concepts: usize,
    /// Mean IoU reached per ground-truth concept.
    pub per_concept: BTreeMap<String, Stat>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamingMetrics {
    pub precision: Stat,
    pub recall: Stat,
    pub f1: Stat,
}

#[derive(Debug, Clone, Serialize)]
pub struct TextMetrics {
    pub meteor: Stat,
    pub rouge_l: Stat,
}

/// Everything measured for one system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemMetrics {
    pub system: String,
    pub fingerprint: String,
    pub samples: usize,
    /// Requests with no prediction (the analysis failed).
    pub analysis_errors: usize,
    /// Ground-truth masks that could not be read.
    pub gt_mask_errors: usize,
    pub det: DetMetrics,
    pub cls: ClsMetrics,
    pub loc: LocMetrics,
    pub age: AgeMetrics,
    pub region_naming: NamingMetrics,
    /// METEOR / ROUGE-L per task, over answers with a reference; "all" pools every task.
    pub text: BTreeMap<String, TextMetrics>,
    /// Share of predicted AGE segments not flagged inconsistent.
    pub consistency: Stat,
    /// Share of reals whose answers carried any non-empty mask.
    pub masks_on_real: Stat,
    /// Accuracy on region and box questions ("is this region manipulated?").
    pub region_questions: BTreeMap<String, Stat>,
    /// Detection and Loc per photo source (`collection`; "unknown" without one).
    pub per_source: BTreeMap<String, SourceMetrics>,
    /// ROC and PR points for the plots.
    #[serde(skip)]
    pub roc: Vec<(f64, f64)>,
    #[serde(skip)]
    pub pr: Vec<(f64, f64)>,
}

fn det_auc(items: &[&DetItem]) -> Option<f64> {
    let (l, s): (Vec<bool>, Vec<f64>) = items.iter().map(|d| (d.fake, d.p_fake)).unzip();
    metrics::roc_auc(&l, &s)
}

fn det_eer(items: &[&DetItem]) -> Option<f64> {
    let (l, s): (Vec<bool>, Vec<f64>) = items.iter().map(|d| (d.fake, d.p_fake)).unzip();
    metrics::eer(&l, &s)
}

pub(crate) fn det_correct(d: &DetItem) -> bool {
    d.verdict == if d.fake { Verdict::Fake } else { Verdict::Real }
}

pub(crate) fn share<T>(items: &[&T], f: impl Fn(&T) -> bool) -> Option<f64> {
    (!items.is_empty()).then(|| items.iter().filter(|x| f(x)).count() as f64 / items.len() as f64)
}

fn mean_of<T>(items: &[&T], f: impl Fn(&T) -> f64) -> Option<f64> {
    (!items.is_empty()).then(|| items.iter().map(|x| f(x)).sum::<f64>() / items.len() as f64)
}

fn naming_prf(items: &[&Naming]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let sum = |f: fn(&Naming) -> usize| items.iter().map(|n| f(n)).sum::<usize>();
    let (named, right) = (sum(|n| n.named), sum(|n| n.named_right));
    let (truth, found) = (sum(|n| n.truth), sum(|n| n.truth_found));
    let p = (named > 0).then(|| right as f64 / named as f64);
    let r = (truth > 0).then(|| found as f64 / truth as f64);
    let f = match (p, r) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (None, None) => None,
        _ => Some(0.0),
    };
    (p, r, f)
}

/// Verdict thresholds at 5% and 10% of these reals called fake.
fn thresholds_at(real_p: impl Iterator<Item = f64>) -> Vec<metrics::Calibration> {
    let real_p: Vec<f64> = real_p.collect();
    [0.05, 0.10]
        .iter()
        .filter_map(|&rate| metrics::calibrate(&real_p, rate))
        .collect()
}

/// Aggregate one system's per-sample scores. `seed` seeds every bootstrap.
pub fn summarize(
    system: &str,
    fingerprint: &str,
    scores: &[SampleScores],
    seed: u64,
) -> SystemMetrics {
    let det: Vec<DetItem> = scores.iter().flat_map(|s| s.det.clone()).collect();
    let reals: Vec<DetItem> = det.iter().filter(|d| !d.fake).cloned().collect();
    let platt = metrics::platt_fit(&det.iter().map(|d| (d.p_fake, d.fake)).collect::<Vec<_>>())
        .map(|(a, b)| Platt {
            scale: a as f32,
            bias: b as f32,
        });
    let mut per_recipe: BTreeMap<String, Vec<&DetItem>> = BTreeMap::new();
    for d in &det {
        per_recipe.entry(d.recipe.clone()).or_default().push(d);
    }
    let (labels, probs): (Vec<bool>, Vec<f64>) = det.iter().map(|d| (d.fake, d.p_fake)).unzip();

    let cls: Vec<(String, Option<String>)> = scores.iter().flat_map(|s| s.cls.clone()).collect();
    let loc: Vec<PixelCounts> = scores.iter().flat_map(|s| s.loc.clone()).collect();
    let age: Vec<AgeItem> = scores.iter().flat_map(|s| s.age.clone()).collect();
    let naming: Vec<Naming> = scores.iter().flat_map(|s| s.naming.clone()).collect();
    let mut per_concept: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for a in &age {
        for (c, iou) in &a.per_concept {
            per_concept.entry(c.clone()).or_default().push(*iou);
        }
    }
    let matched: Vec<f64> = age.iter().flat_map(|a| a.matched.clone()).collect();
    let consistency: (usize, usize) = scores.iter().fold((0, 0), |a, s| {
        (a.0 + s.consistency.0, a.1 + s.consistency.1)
    });
    let real_masks: Vec<bool> = scores.iter().filter_map(|s| s.masks_on_real).collect();

    let mut text: BTreeMap<String, TextMetrics> = BTreeMap::new();
    let all_text: Vec<(Task, f64, f64)> = scores.iter().flat_map(|s| s.text.clone()).collect();
    let mut keys: Vec<Option<Task>> = vec![None];
    keys.extend(Task::ALL.iter().map(|t| Some(*t)));
    for key in keys {
        let items: Vec<(f64, f64)> = all_text
            .iter()
            .filter(|(t, _, _)| key.is_none_or(|k| k == *t))
            .map(|(_, m, r)| (*m, *r))
            .collect();
        if items.is_empty() {
            continue;
        }
        let name = key.map_or("all", Task::name).to_string();
        text.insert(
            name,
            TextMetrics {
                meteor: Stat::boot(&items, |x| mean_of(x, |p| p.0), seed + 20),
                rouge_l: Stat::boot(&items, |x| mean_of(x, |p| p.1), seed + 21),
            },
        );
    }
    let rq: Vec<(Task, bool, bool)> = scores
        .iter()
        .flat_map(|s| s.region_questions.clone())
        .collect();
    let mut region_questions = BTreeMap::new();
    for t in [Task::Region, Task::Box] {
        let items: Vec<&(Task, bool, bool)> = rq.iter().filter(|q| q.0 == t).collect();
        if !items.is_empty() {
            region_questions.insert(
                t.name().to_string(),
                Stat::plain(share(&items, |q| q.1 == q.2), items.len()),
            );
        }
    }

    SystemMetrics {
        system: system.to_string(),
        fingerprint: fingerprint.to_string(),
        samples: scores.len(),
        analysis_errors: scores.iter().map(|s| s.missing_predictions).sum(),
        gt_mask_errors: scores.iter().map(|s| s.gt_errors.len()).sum(),
        det: DetMetrics {
            accuracy: Stat::boot(&det, |x| share(x, det_correct), seed),
            auc: Stat::boot(&det, det_auc, seed + 1),
            eer: Stat::boot(&det, det_eer, seed + 2),
            false_fake_rate: Stat::boot(
                &reals,
                |x| share(x, |d| d.verdict == Verdict::Fake),
                seed + 3,
            ),
            uncertain_rate: Stat::plain(
                share(&det.iter().collect::<Vec<_>>(), |d| {
                    d.verdict == Verdict::Uncertain
                }),
                det.len(),
            ),
            per_recipe_auc: per_recipe
                .iter()
                .filter(|(k, _)| k.as_str() != "real")
                .map(|(k, v)| {
                    let mut both: Vec<&DetItem> = reals.iter().collect();
                    both.extend(v.iter().copied());
                    (k.clone(), Stat::plain(det_auc(&both), v.len()))
                })
                .collect(),
            per_recipe: per_recipe
                .into_iter()
                .map(|(k, v)| {
                    let n = v.len();
                    (k, Stat::plain(share(&v, det_correct), n))
                })
                .collect(),
            thresholds: thresholds_at(reals.iter().map(|d| d.p_fake)),
            platt,
            platt_thresholds: platt.map_or(vec![], |c| {
                thresholds_at(reals.iter().map(|d| c.apply(d.p_fake as f32) as f64))
            }),
        },
        cls: ClsMetrics {
            accuracy: Stat::boot(
                &cls,
                |x| share(x, |(t, p)| p.as_deref() == Some(t)),
                seed + 4,
            ),
            macro_f1: Stat::boot(
                &cls,
                |x| {
                    let owned: Vec<_> = x.iter().map(|p| (*p).clone()).collect();
                    metrics::macro_f1(&owned, FORGERY_TYPES)
                },
                seed + 5,
            ),
            confusion: metrics::confusion(&cls),
        },
        loc: LocMetrics {
            miou: Stat::boot(&loc, |x| mean_of(x, PixelCounts::iou), seed + 6),
            per_recipe: {
                let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for sc in scores {
                    by.entry(sc.family.clone())
                        .or_default()
                        .extend(sc.loc.iter().map(PixelCounts::iou));
                }
                by.into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| {
                        let n = v.len();
                        (k, Stat::plain(metrics::mean(&v), n))
                    })
                    .collect()
            },
            pixel_f1: Stat::boot(&loc, |x| mean_of(x, PixelCounts::f1), seed + 7),
            ious: loc.iter().map(PixelCounts::iou).collect(),
        },
        age: AgeMetrics {
            miou: Stat::boot(&age, |x| mean_of(x, AgeItem::miou), seed + 8),
            matched_miou: Stat::plain(metrics::mean(&matched), matched.len()),
            phrases: age.iter().map(|a| a.phrases).sum(),
            unmatched_phrases: age.iter().map(|a| a.unmatched_phrases).sum(),
            missed_concepts: age.iter().map(|a| a.missed_concepts).sum(),
            per_concept: per_concept
                .into_iter()
                .map(|(k, v)| {
                    let n = v.len();
                    (k, Stat::plain(metrics::mean(&v), n))
                })
                .collect(),
        },
        region_naming: NamingMetrics {
            precision: Stat::boot(&naming, |x| naming_prf(x).0, seed + 9),
            recall: Stat::boot(&naming, |x| naming_prf(x).1, seed + 10),
            f1: Stat::boot(&naming, |x| naming_prf(x).2, seed + 11),
        },
        text,
        consistency: Stat::plain(
            (consistency.1 > 0).then(|| consistency.0 as f64 / consistency.1 as f64),
            consistency.1,
        ),
        masks_on_real: Stat::boot(&real_masks, |x| share(x, |b| *b), seed + 12),
        region_questions,
        per_source: per_source(scores, seed + 13),
        roc: if labels.is_empty() {
            Vec::new()
        } else {
            metrics::roc_curve(&labels, &probs)
        },
        pr: if labels.is_empty() {
            Vec::new()
        } else {
            metrics::pr_curve(&labels, &probs)
        },
    }
}
