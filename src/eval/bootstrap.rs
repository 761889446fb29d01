//! Seeded percentile bootstrap: resample the evaluated items with replacement, recompute the
//! statistic, and take the 2.5th and 97.5th percentiles.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// A 95% interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

/// Number of resamples used for the reported intervals.
pub const RESAMPLES: usize = 1000;

/// 95% percentile interval of `stat` over `resamples` bootstrap resamples of `items`, drawn
/// from a generator seeded with `seed`. Resamples where the statistic is undefined (`None`)
/// are dropped; `None` when the items are empty or no resample is defined.
pub fn interval<T>(
    items: &[T],
    stat: impl Fn(&[&T]) -> Option<f64>,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    if items.is_empty() {
        return None;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(resamples);
    let mut draw: Vec<&T> = Vec::with_capacity(items.len());
    for _ in 0..resamples {
        draw.clear();
        for _ in 0..items.len() {
            draw.push(&items[rng.random_range(0..items.len())]);
        }
        if let Some(v) = stat(&draw) {
            if v.is_finite() {
                values.push(v);
            }
        }
    }
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(Interval {
        lo: percentile(&values, 2.5),
        hi: percentile(&values, 97.5),
    })
}

/// Linear-interpolated percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() {
        sorted[i] * (1.0 - frac) + sorted[i + 1] * frac
    } else {
        sorted[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(xs: &[&f64]) -> Option<f64> {
        Some(xs.iter().copied().sum::<f64>() / xs.len() as f64)
    }

    #[test]
    fn interval_is_seeded_and_brackets_the_mean() {
        let xs: Vec<f64> = (0..200).map(|i| (i % 10) as f64).collect();
        let a = interval(&xs, mean, 500, 1).unwrap();
        let b = interval(&xs, mean, 500, 1).unwrap();
        assert_eq!(a, b);
        assert!(a.lo < 4.5 && a.hi > 4.5 && a.hi - a.lo < 2.0, "{a:?}");
        // Constant data: a zero-width interval.
        let c = interval(&[0.7; 20], mean, 100, 3).unwrap();
        assert!((c.lo - 0.7).abs() < 1e-12 && (c.hi - 0.7).abs() < 1e-12);
        assert_eq!(interval::<f64>(&[], mean, 100, 3), None);
    }
}
