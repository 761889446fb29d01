//! Text similarity of an explanation to its reference answer: METEOR and ROUGE-L.
//!
//! - [`meteor`] follows NLTK's `single_meteor_score` (Lavie & Agarwal 2007 parameters
//!   α = 0.9, β = 3, γ = 0.5; exact matches, then Porter-stem matches; greedy alignment from the
//!   end of the hypothesis). The WordNet synonym stage is left out: no WordNet ships with dfa.
//! - [`rouge_l`] is the sentence-level ROUGE-L F-measure of Google's `rouge-score` package
//!   (LCS precision/recall, F1, no stemming) with its tokenizer.

use std::collections::HashMap;

use super::porter;

/// Remove grounding markup (`<p>`, `</p>`, `[SEG]`) and collapse whitespace.
pub fn strip_markup(text: &str) -> String {
    let cleaned = text
        .replace("</p>", " ")
        .replace("<p>", " ")
        .replace("[SEG]", " ");
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lower-case and split into runs of ASCII letters and digits (rouge-score's tokenizer; also
/// used to pre-tokenize METEOR's input).
pub fn tokenize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Greedy matching of NLTK's `_match_enums`: hypothesis words from last to first, each taking
/// the last still-free reference position holding the same word. Returns the matched
/// (hyp index, ref index) pairs and removes them from both lists.
fn match_words(
    hyp: &mut Vec<(usize, String)>,
    refs: &mut Vec<(usize, String)>,
) -> Vec<(usize, usize)> {
    let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, (_, w)) in refs.iter().enumerate() {
        positions.entry(w.as_str()).or_default().push(j);
    }
    let mut pairs = Vec::new();
    let mut used_hyp = vec![false; hyp.len()];
    let mut used_ref = vec![false; refs.len()];
    for i in (0..hyp.len()).rev() {
        if let Some(j) = positions.get_mut(hyp[i].1.as_str()).and_then(|p| p.pop()) {
            used_hyp[i] = true;
            used_ref[j] = true;
            pairs.push((hyp[i].0, refs[j].0));
        }
    }
    let mut k = 0;
    hyp.retain(|_| {
        k += 1;
        !used_hyp[k - 1]
    });
    let mut k = 0;
    refs.retain(|_| {
        k += 1;
        !used_ref[k - 1]
    });
    pairs
}

/// Number of chunks: runs of matches adjacent in both sentences (NLTK `_count_chunks`).
fn count_chunks(matches: &[(usize, usize)]) -> usize {
    1 + matches
        .windows(2)
        .filter(|w| !(w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 + 1))
        .count()
}

/// Sentence METEOR of pre-tokenized words (lower-cased here). 0 when nothing matches.
pub fn meteor_tokens(hypothesis: &[String], reference: &[String]) -> f64 {
    let (alpha, beta, gamma) = (0.9, 3.0, 0.5);
    let enumerate = |words: &[String]| -> Vec<(usize, String)> {
        words.iter().map(|w| w.to_lowercase()).enumerate().collect()
    };
    let (mut hyp, mut refs) = (enumerate(hypothesis), enumerate(reference));
    let mut matches = match_words(&mut hyp, &mut refs);
    let stemmed = |v: &[(usize, String)]| -> Vec<(usize, String)> {
        v.iter().map(|(i, w)| (*i, porter::stem(w))).collect()
    };
    let (mut hyp_s, mut refs_s) = (stemmed(&hyp), stemmed(&refs));
    matches.extend(match_words(&mut hyp_s, &mut refs_s));
    matches.sort_by_key(|m| m.0);
    let m = matches.len() as f64;
    if m == 0.0 || hypothesis.is_empty() || reference.is_empty() {
        return 0.0;
    }
    let precision = m / hypothesis.len() as f64;
    let recall = m / reference.len() as f64;
    let fmean = precision * recall / (alpha * precision + (1.0 - alpha) * recall);
    let frag = count_chunks(&matches) as f64 / m;
    (1.0 - gamma * frag.powf(beta)) * fmean
}

/// METEOR of two texts (markup stripped, [`tokenize`]d).
pub fn meteor(hypothesis: &str, reference: &str) -> f64 {
    meteor_tokens(
        &tokenize(&strip_markup(hypothesis)),
        &tokenize(&strip_markup(reference)),
    )
}

/// Length of the longest common subsequence.
fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// ROUGE-L F-measure of two texts (markup stripped). 0 when either is empty.
pub fn rouge_l(hypothesis: &str, reference: &str) -> f64 {
    let h = tokenize(&strip_markup(hypothesis));
    let r = tokenize(&strip_markup(reference));
    if h.is_empty() || r.is_empty() {
        return 0.0;
    }
    let l = lcs_len(&r, &h) as f64;
    let (p, rec) = (l / h.len() as f64, l / r.len() as f64);
    if p + rec > 0.0 {
        2.0 * p * rec / (p + rec)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values computed once with Python 3.11, nltk 3.10.4 and rouge-score 0.1.2
    /// (pip, dev-only, not a dependency):
    ///
    /// ```python
    /// import re
    /// from nltk.translate.meteor_score import single_meteor_score
    /// from nltk.stem.porter import PorterStemmer
    /// from rouge_score import rouge_scorer
    /// class NoWordNet:                       # WordNet synonym stage off, as in dfa
    ///     def synsets(self, w): return []
    /// def strip(s): return " ".join(s.replace("</p>", " ").replace("<p>", " ").replace("[SEG]", " ").split())
    /// def tok(s): return re.findall(r"[a-z0-9]+", strip(s).lower())
    /// stemmer = PorterStemmer(mode=PorterStemmer.ORIGINAL_ALGORITHM)
    /// meteor = single_meteor_score(tok(ref), tok(hyp), stemmer=stemmer, wordnet=NoWordNet())
    /// rouge_l = rouge_scorer.RougeScorer(["rougeL"]).score(strip(ref), strip(hyp))["rougeL"].fmeasure
    /// ```
    ///
    /// The first pair is the example of NLTK's `meteor_score` docstring (0.6944 there as well).
    const CASES: &[(&str, &str, f64, f64)] = &[
        (
            "It is a guide to action which ensures that the military always obeys the commands of the party",
            "It is a guide to action that ensures that the military will forever heed Party commands",
            0.6944444444444445,
            0.6470588235294118,
        ),
        (
            "The face is fake: <p> the left eye </p> [SEG] shows a blending seam.",
            "This image is manipulated. <p> The left eyes </p> [SEG] show blended seams around the lids.",
            0.5487060546875001,
            0.24999999999999994,
        ),
        (
            "the nose looks smoothed and blurred",
            "blurring and smoothing were applied to the nose",
            0.47692307692307695,
            0.28571428571428575,
        ),
        ("the cat sat on the mat", "the cat sat on the mat", 0.9976851851851852, 1.0),
        ("colour mismatch near the jaw line", "no manipulation was found", 0.0, 0.0),
    ];

    #[test]
    fn meteor_and_rouge_l_match_published_implementations() {
        for (hyp, reference, m, r) in CASES {
            let ours_m = meteor(hyp, reference);
            let ours_r = rouge_l(hyp, reference);
            assert!((ours_m - m).abs() < 1e-9, "METEOR {hyp:?}: {ours_m} vs {m}");
            assert!(
                (ours_r - r).abs() < 1e-9,
                "ROUGE-L {hyp:?}: {ours_r} vs {r}"
            );
        }
    }

    #[test]
    fn markup_and_empty_text() {
        assert_eq!(strip_markup("a <p> the nose </p> [SEG] b"), "a the nose b");
        assert_eq!(meteor("", "the nose"), 0.0);
        assert_eq!(rouge_l("the nose", ""), 0.0);
    }
}
