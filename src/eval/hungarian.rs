//! Optimal one-to-one matching (Hungarian / Kuhn-Munkres with potentials, O(n² m)) of predicted
//! phrases to ground-truth segments, maximising the summed IoU. Rectangular matrices are fine:
//! with more rows than columns some rows stay unmatched, and vice versa.

/// For a `rows x cols` weight matrix (`weights[r][c]`, all rows the same length), returns for
/// each row the column it is matched to, maximising the total weight over a matching of size
/// `min(rows, cols)`. Non-finite weights are treated as 0.
pub fn max_weight_matching(weights: &[Vec<f64>]) -> Vec<Option<usize>> {
    let rows = weights.len();
    let cols = weights.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 {
        return vec![None; rows];
    }
    let w = |r: usize, c: usize| {
        let x = weights[r].get(c).copied().unwrap_or(0.0);
        if x.is_finite() {
            x
        } else {
            0.0
        }
    };
    // The solver needs n <= m; transpose when there are more rows than columns.
    let transposed = rows > cols;
    let (n, m) = if transposed {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let cost = |i: usize, j: usize| if transposed { -w(j, i) } else { -w(i, j) };
    let col_of_row = min_cost_assignment(n, m, cost);
    let mut out = vec![None; rows];
    for (i, j) in col_of_row.into_iter().enumerate() {
        if transposed {
            out[j] = Some(i);
        } else {
            out[i] = Some(j);
        }
    }
    out
}

/// Minimum-cost assignment of each of `n` rows to a distinct one of `m >= n` columns.
/// Returns the column of every row.
fn min_cost_assignment(n: usize, m: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    // 1-based internally; column 0 is a virtual start column.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut row_of_col = vec![0usize; m + 1];
    let mut back = vec![0usize; m + 1];
    for i in 1..=n {
        row_of_col[0] = i;
        let mut j0 = 0usize;
        let mut min_slack = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = row_of_col[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let slack = cost(i0 - 1, j - 1) - u[i0] - v[j];
                if slack < min_slack[j] {
                    min_slack[j] = slack;
                    back[j] = j0;
                }
                if min_slack[j] < delta {
                    delta = min_slack[j];
                    j1 = j;
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[row_of_col[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_slack[j] -= delta;
                }
            }
            j0 = j1;
            if row_of_col[j0] == 0 {
                break;
            }
        }
        // Flip the augmenting path back to the start column.
        while j0 != 0 {
            let prev = back[j0];
            row_of_col[j0] = row_of_col[prev];
            j0 = prev;
        }
    }
    let mut col_of_row = vec![0usize; n];
    for j in 1..=m {
        if row_of_col[j] != 0 {
            col_of_row[row_of_col[j] - 1] = j - 1;
        }
    }
    col_of_row
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn total(w: &[Vec<f64>], m: &[Option<usize>]) -> f64 {
        m.iter()
            .enumerate()
            .filter_map(|(r, c)| c.map(|c| w[r][c]))
            .sum()
    }

    /// Best total over every injective assignment of the smaller side (brute force).
    fn brute(w: &[Vec<f64>]) -> f64 {
        fn go(w: &[Vec<f64>], r: usize, used: &mut Vec<bool>, left: usize) -> f64 {
            if r == w.len() {
                return if left == 0 { 0.0 } else { f64::NEG_INFINITY };
            }
            let rows_after = w.len() - r - 1;
            // Leave this row unmatched (only if enough rows remain to fill the matching).
            let mut best = if rows_after >= left {
                go(w, r + 1, used, left)
            } else {
                f64::NEG_INFINITY
            };
            if left > 0 {
                for c in 0..used.len() {
                    if !used[c] {
                        used[c] = true;
                        best = best.max(w[r][c] + go(w, r + 1, used, left - 1));
                        used[c] = false;
                    }
                }
            }
            best
        }
        let cols = w[0].len();
        go(w, 0, &mut vec![false; cols], w.len().min(cols))
    }

    fn check(w: &[Vec<f64>]) {
        let m = max_weight_matching(w);
        let cols = w[0].len();
        let matched: Vec<usize> = m.iter().flatten().copied().collect();
        assert_eq!(matched.len(), w.len().min(cols));
        let mut dedup = matched.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), matched.len(), "a column used twice: {m:?}");
        assert!((total(w, &m) - brute(w)).abs() < 1e-9, "{w:?} -> {m:?}");
    }

    #[test]
    fn more_phrases_than_concepts_and_vice_versa() {
        // 3 phrases, 2 concepts: phrase 1 is the best for concept 0, phrase 2 for concept 1.
        let w = vec![vec![0.2, 0.1], vec![0.9, 0.0], vec![0.3, 0.8]];
        assert_eq!(max_weight_matching(&w), vec![None, Some(0), Some(1)]);
        // 2 phrases, 3 concepts: greedy would give phrase 0 concept 0 (0.9) and then 0.1;
        // optimal is 0.8 + 0.7.
        let w = vec![vec![0.9, 0.8, 0.0], vec![0.7, 0.1, 0.0]];
        assert_eq!(max_weight_matching(&w), vec![Some(1), Some(0)]);
        assert_eq!(max_weight_matching(&[]), Vec::<Option<usize>>::new());
        assert_eq!(max_weight_matching(&[vec![], vec![]]), vec![None, None]);
    }

    #[test]
    fn optimal_against_brute_force_on_random_matrices() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let rows = rng.random_range(1..=5);
            let cols = rng.random_range(1..=5);
            let w: Vec<Vec<f64>> = (0..rows)
                .map(|_| {
                    (0..cols)
                        .map(|_| {
                            // Some exact ties and zeros, like real IoU matrices.
                            if rng.random_bool(0.3) {
                                0.0
                            } else {
                                (rng.random_range(0..20) as f64) / 20.0
                            }
                        })
                        .collect()
                })
                .collect();
            check(&w);
        }
    }
}
