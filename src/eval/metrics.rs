//! Metric primitives: mask overlap (IoU, pixel F1), ranking (ROC AUC, EER, ROC and PR curves),
//! classification (accuracy, macro-F1, confusion) and set precision/recall.

use std::collections::BTreeMap;

use image::GrayImage;

/// Pixel counts of a predicted mask against a ground-truth mask (pixels > 127 are on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PixelCounts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl PixelCounts {
    /// Compare two masks of the same size. A predicted mask of another size is compared after a
    /// nearest-neighbour resize to the ground truth's size.
    pub fn of(pred: &GrayImage, gt: &GrayImage) -> Self {
        let resized;
        let pred = if pred.dimensions() != gt.dimensions() {
            resized = image::imageops::resize(
                pred,
                gt.width(),
                gt.height(),
                image::imageops::FilterType::Nearest,
            );
            &resized
        } else {
            pred
        };
        let mut c = PixelCounts::default();
        for (p, g) in pred.as_raw().iter().zip(gt.as_raw()) {
            match (*p > 127, *g > 127) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                _ => {}
            }
        }
        c
    }

    /// Intersection over union; 1 when both masks are empty (nothing to find, nothing found).
    pub fn iou(&self) -> f64 {
        let union = self.tp + self.fp + self.fn_;
        if union == 0 {
            1.0
        } else {
            self.tp as f64 / union as f64
        }
    }

    /// Pixel F1 (Dice); 1 when both masks are empty.
    pub fn f1(&self) -> f64 {
        let d = 2 * self.tp + self.fp + self.fn_;
        if d == 0 {
            1.0
        } else {
            2.0 * self.tp as f64 / d as f64
        }
    }
}

/// IoU of two masks (see [`PixelCounts::iou`]).
pub fn mask_iou(pred: &GrayImage, gt: &GrayImage) -> f64 {
    PixelCounts::of(pred, gt).iou()
}

/// Pixel-wise union of masks (all of `size`); an empty list gives an empty mask.
pub fn union_mask<'a>(
    masks: impl IntoIterator<Item = &'a GrayImage>,
    size: (u32, u32),
) -> GrayImage {
    let mut out = GrayImage::new(size.0, size.1);
    for m in masks {
        let resized;
        let m = if m.dimensions() != size {
            resized =
                image::imageops::resize(m, size.0, size.1, image::imageops::FilterType::Nearest);
            &resized
        } else {
            m
        };
        for (o, p) in out.as_mut().iter_mut().zip(m.as_raw()) {
            if *p > 127 {
                *o = 255;
            }
        }
    }
    out
}

/// True when any pixel is on.
pub fn any_on(mask: &GrayImage) -> bool {
    mask.as_raw().iter().any(|p| *p > 127)
}

/// Area under the ROC curve of `scores` for `labels` (true = positive, i.e. fake), by the
/// Mann-Whitney rank statistic (ties count one half). `None` without both classes.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    let pos = labels.iter().filter(|l| **l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let p = pos as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * neg as f64))
}

/// ROC points `(false-positive rate, true-positive rate)` from (0,0) to (1,1), one per distinct
/// score used as a threshold (`score >= t` is positive).
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64)> {
    let pos = labels.iter().filter(|l| **l).count().max(1) as f64;
    let neg = (labels.len() - labels.iter().filter(|l| **l).count()).max(1) as f64;
    let mut points = vec![(0.0, 0.0)];
    for (tp, fp, _) in threshold_counts(labels, scores) {
        points.push((fp as f64 / neg, tp as f64 / pos));
    }
    points
}

/// Precision-recall points `(recall, precision)`, one per distinct threshold.
pub fn pr_curve(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64)> {
    let pos = labels.iter().filter(|l| **l).count().max(1) as f64;
    threshold_counts(labels, scores)
        .into_iter()
        .map(|(tp, fp, _)| (tp as f64 / pos, tp as f64 / (tp + fp).max(1) as f64))
        .collect()
}

/// (true positives, false positives, threshold) for each distinct score, highest first.
fn threshold_counts(labels: &[bool], scores: &[f64]) -> Vec<(usize, usize, f64)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0, 0);
    let mut out = Vec::new();
    for (n, &k) in idx.iter().enumerate() {
        if labels[k] {
            tp += 1;
        } else {
            fp += 1;
        }
        if n + 1 == idx.len() || scores[idx[n + 1]] != scores[k] {
            out.push((tp, fp, scores[k]));
        }
    }
    out
}

/// Equal error rate: where the false-positive rate equals the false-negative rate, linearly
/// interpolated along the ROC curve. `None` without both classes.
pub fn eer(labels: &[bool], scores: &[f64]) -> Option<f64> {
    let pos = labels.iter().filter(|l| **l).count();
    if pos == 0 || pos == labels.len() {
        return None;
    }
    let roc = roc_curve(labels, scores);
    for w in roc.windows(2) {
        let ((f0, t0), (f1, t1)) = (w[0], w[1]);
        if f1 >= 1.0 - t1 {
            // On the segment, fpr = f0 + s (f1 - f0) and fnr = 1 - t0 - s (t1 - t0).
            let denom = (f1 - f0) + (t1 - t0);
            let s = if denom > 0.0 {
                ((1.0 - t0 - f0) / denom).clamp(0.0, 1.0)
            } else {
                0.0
            };
            return Some(f0 + s * (f1 - f0));
        }
    }
    Some(1.0)
}

/// Share of items where `pred == truth`.
pub fn accuracy<T: PartialEq>(pairs: &[(T, T)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    Some(pairs.iter().filter(|(t, p)| t == p).count() as f64 / pairs.len() as f64)
}

/// Confusion counts `truth -> predicted -> n` (a missing prediction is `"none"`).
pub fn confusion(pairs: &[(String, Option<String>)]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut m: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (t, p) in pairs {
        let p = p.clone().unwrap_or_else(|| "none".into());
        *m.entry(t.clone()).or_default().entry(p).or_default() += 1;
    }
    m
}

/// Macro-averaged F1 over `classes`, counting only classes that occur as truth or prediction
/// (as scikit-learn does with its default labels). A prediction outside `classes` (or none)
/// is a miss for the true class.
pub fn macro_f1(pairs: &[(String, Option<String>)], classes: &[&str]) -> Option<f64> {
    let mut f1s = Vec::new();
    for c in classes {
        let tp = pairs
            .iter()
            .filter(|(t, p)| t == c && p.as_deref() == Some(c))
            .count();
        let support = pairs.iter().filter(|(t, _)| t == c).count();
        let predicted = pairs
            .iter()
            .filter(|(_, p)| p.as_deref() == Some(c))
            .count();
        if support == 0 && predicted == 0 {
            continue;
        }
        f1s.push(2.0 * tp as f64 / (support + predicted) as f64);
    }
    if f1s.is_empty() {
        None
    } else {
        Some(f1s.iter().sum::<f64>() / f1s.len() as f64)
    }
}

/// Precision, recall and F1 from counts; each `None` when undefined.
pub fn prf(tp: usize, fp: usize, fn_: usize) -> (Option<f64>, Option<f64>, Option<f64>) {
    let p = (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64);
    let r = (tp + fn_ > 0).then(|| tp as f64 / (tp + fn_) as f64);
    let f = (2 * tp + fp + fn_ > 0).then(|| 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64);
    (p, r, f)
}

/// Mean of a slice; `None` when empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Verdict thresholds read off the reals' P(fake) (see `calibrate`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Calibration {
    /// The target share of reals called fake.
    pub rate: f64,
    /// `P(fake) >= fake` is called fake.
    pub fake: f64,
    /// `P(fake) <= real` is called real; in between is uncertain.
    pub real: f64,
}

/// Thresholds under which at most `rate` of these reals are called fake and at most `2 × rate`
/// are not called real (the rest of them uncertain). Each threshold sits halfway between the
/// real scores either side of its cut. `None` without reals.
pub fn calibrate(real_scores: &[f64], rate: f64) -> Option<Calibration> {
    if real_scores.is_empty() {
        return None;
    }
    let mut desc = real_scores.to_vec();
    desc.sort_by(|a, b| b.total_cmp(a));
    // `cut(k)`: a threshold with exactly the k highest reals at or above it (ties aside).
    let cut = |k: usize| -> f64 {
        match k {
            0 => (desc[0] + 1.0) / 2.0,
            k if k >= desc.len() => desc[desc.len() - 1] / 2.0,
            k => (desc[k - 1] + desc[k]) / 2.0,
        }
    };
    let n = desc.len() as f64;
    let fake = cut((rate * n).floor() as usize);
    let real = cut((2.0 * rate * n).floor() as usize).min(fake);
    Some(Calibration { rate, fake, real })
}

/// Platt scaling fit to (P(fake), is fake) pairs: `scale`, `bias` of
/// `sigmoid(scale · logit(p) + bias)` by Newton's method on the log loss, with Platt's smoothed
/// targets so that separable data still gives finite values. `None` without both classes.
pub fn platt_fit(scores: &[(f64, bool)]) -> Option<(f64, f64)> {
    let pos = scores.iter().filter(|s| s.1).count() as f64;
    let neg = scores.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    let (t_pos, t_neg) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
    let data: Vec<(f64, f64)> = scores
        .iter()
        .map(|&(p, fake)| {
            let p = p.clamp(1e-7, 1.0 - 1e-7);
            ((p / (1.0 - p)).ln(), if fake { t_pos } else { t_neg })
        })
        .collect();
    let loss = |a: f64, b: f64| -> f64 {
        data.iter()
            .map(|&(z, t)| {
                let s = a * z + b;
                // log(1 + e^s) - t·s, stable for both signs of s.
                s.max(0.0) + (-s.abs()).exp().ln_1p() - t * s
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for &(z, t) in &data {
            let q = 1.0 / (1.0 + (-(a * z + b)).exp());
            let w = (q * (1.0 - q)).max(1e-12);
            ga += (q - t) * z;
            gb += q - t;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        // Halve the step until the loss does not rise.
        let base = loss(a, b);
        let mut step = 1.0;
        while step > 1e-6 && loss(a - step * da, b - step * db) > base + 1e-12 {
            step /= 2.0;
        }
        a -= step * da;
        b -= step * db;
        if (step * da).abs() < 1e-9 && (step * db).abs() < 1e-9 {
            break;
        }
    }
    (a.is_finite() && b.is_finite()).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_fit_recovers_a_known_scaling() {
        // Scores whose true P(fake) is sigmoid(0.5 · logit(p) - 3): sample labels at that rate
        // deterministically (a fine grid of p, each with its exact share of fakes).
        let mut s = Vec::new();
        for i in 1..400 {
            let p = 0.9 + 0.0999 * i as f64 / 400.0;
            let z = 0.5 * (p / (1.0 - p)).ln() - 3.0;
            let q = 1.0 / (1.0 + (-z).exp());
            let fakes = (q * 100.0).round() as usize;
            for k in 0..100 {
                s.push((p, k < fakes));
            }
        }
        let (a, b) = platt_fit(&s).unwrap();
        assert!((a - 0.5).abs() < 0.05 && (b + 3.0).abs() < 0.2, "{a} {b}");
        assert_eq!(platt_fit(&[(0.9, true), (0.8, true)]), None);
        // Separable data: finite, increasing.
        let (a, _) = platt_fit(&[(0.2, false), (0.3, false), (0.8, true), (0.9, true)]).unwrap();
        assert!(a.is_finite() && a > 0.0);
    }

    fn rect(w: u32, h: u32, x0: u32, y0: u32, x1: u32, y1: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            image::Luma([if x >= x0 && x < x1 && y >= y0 && y < y1 {
                255
            } else {
                0
            }])
        })
    }

    #[test]
    fn iou_perfect_empty_disjoint_partial() {
        let a = rect(10, 10, 0, 0, 4, 4);
        assert_eq!(mask_iou(&a, &a), 1.0);
        let empty = GrayImage::new(10, 10);
        assert_eq!(mask_iou(&empty, &empty), 1.0);
        assert_eq!(mask_iou(&empty, &a), 0.0);
        assert_eq!(mask_iou(&a, &empty), 0.0);
        let far = rect(10, 10, 6, 6, 10, 10);
        assert_eq!(mask_iou(&a, &far), 0.0);
        // 4x4 at (0,0) vs 4x4 at (2,0): overlap 2x4 = 8, union 16 + 16 - 8 = 24.
        let shifted = rect(10, 10, 2, 0, 6, 4);
        let c = PixelCounts::of(&a, &shifted);
        assert_eq!((c.tp, c.fp, c.fn_), (8, 8, 8));
        assert!((c.iou() - 8.0 / 24.0).abs() < 1e-12);
        assert!((c.f1() - 16.0 / 32.0).abs() < 1e-12);
        // Predicted mask at half resolution is resized before comparing.
        let small = rect(5, 5, 0, 0, 2, 2);
        assert_eq!(mask_iou(&small, &a), 1.0);
    }

    #[test]
    fn union_of_masks() {
        let u = union_mask(
            [&rect(10, 10, 0, 0, 4, 4), &rect(10, 10, 2, 0, 6, 4)],
            (10, 10),
        );
        assert_eq!(u.as_raw().iter().filter(|p| **p == 255).count(), 24);
        assert!(!any_on(&union_mask([], (10, 10))));
    }

    #[test]
    fn auc_and_eer_on_a_known_ranking() {
        // Fakes score 0.9, 0.8, 0.4; reals 0.7, 0.3, 0.2. Of the 9 (fake, real) pairs the fake
        // ranks higher in 8: AUC = 8/9. ROC passes through (1/3, 2/3), where FPR = FNR = 1/3.
        let labels = [true, true, true, false, false, false];
        let scores = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2];
        assert!((roc_auc(&labels, &scores).unwrap() - 8.0 / 9.0).abs() < 1e-12);
        assert!((eer(&labels, &scores).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // Perfect separation, full inversion, all tied.
        let sep = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
        assert_eq!(roc_auc(&labels, &sep), Some(1.0));
        assert_eq!(eer(&labels, &sep), Some(0.0));
        let inv: Vec<f64> = sep.iter().map(|s| 1.0 - s).collect();
        assert_eq!(roc_auc(&labels, &inv), Some(0.0));
        assert_eq!(eer(&labels, &inv), Some(1.0));
        let tied = [0.5; 6];
        assert_eq!(roc_auc(&labels, &tied), Some(0.5));
        assert!((eer(&labels, &tied).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
        // PR curve at the first threshold: one fake found, precision 1.
        assert_eq!(pr_curve(&labels, &scores)[0], (1.0 / 3.0, 1.0));
    }

    #[test]
    fn classification_metrics() {
        let s = |x: &str| x.to_string();
        let pairs = vec![
            (s("a"), Some(s("a"))),
            (s("a"), Some(s("b"))),
            (s("b"), Some(s("b"))),
            (s("c"), None),
        ];
        // a: tp1 support2 pred1 -> 2/3; b: tp1 support1 pred2 -> 2/3; c: 0 -> mean 4/9.
        let f = macro_f1(&pairs, &["a", "b", "c", "d"]).unwrap();
        assert!((f - 4.0 / 9.0).abs() < 1e-12);
        let conf = confusion(&pairs);
        assert_eq!(conf["c"]["none"], 1);
        assert_eq!(accuracy(&[(1, 1), (1, 2)]), Some(0.5));
        assert_eq!(prf(2, 2, 0), (Some(0.5), Some(1.0), Some(4.0 / 6.0)));
    }

    #[test]
    fn calibration_keeps_the_false_fake_rate() {
        let reals: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let c = calibrate(&reals, 0.10).unwrap();
        let called_fake = reals.iter().filter(|p| **p >= c.fake).count();
        let not_real = reals.iter().filter(|p| **p > c.real).count();
        assert_eq!(called_fake, 10);
        assert_eq!(not_real, 20);
        assert!(c.real < c.fake);
        assert!(calibrate(&[], 0.1).is_none());
        // One real: nothing may be called fake at 10%.
        let one = calibrate(&[0.7], 0.10).unwrap();
        assert!(one.fake > 0.7);
    }
}
