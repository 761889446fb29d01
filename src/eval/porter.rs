//! The Porter (1980) suffix-stripping stemmer, original algorithm
//! (M. F. Porter, "An algorithm for suffix stripping", Program 14(3)). Used by METEOR's stem
//! matching stage. Behaves like NLTK's `PorterStemmer(mode=ORIGINAL_ALGORITHM)`, which is what
//! the METEOR reference values in the tests were computed with.

/// Stem one lower-case ASCII word. Words with other characters are returned unchanged.
pub fn stem(word: &str) -> String {
    if !word
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return word.to_string();
    }
    let mut w = word.as_bytes().to_vec();
    step1a(&mut w);
    step1b(&mut w);
    step1c(&mut w);
    apply_rules(&mut w, STEP2, |s| measure(s) > 0);
    apply_rules(&mut w, STEP3, |s| measure(s) > 0);
    step4(&mut w);
    step5(&mut w);
    String::from_utf8(w).unwrap_or_else(|_| word.to_string())
}

/// Consonant flags: a, e, i, o, u are vowels; y is a vowel after a consonant.
fn consonants(w: &[u8]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(w.len());
    for (i, &c) in w.iter().enumerate() {
        let cons = match c {
            b'a' | b'e' | b'i' | b'o' | b'u' => false,
            b'y' => i == 0 || !flags[i - 1],
            _ => true,
        };
        flags.push(cons);
    }
    flags
}

/// m in `[C](VC)^m[V]`.
fn measure(w: &[u8]) -> usize {
    let f = consonants(w);
    f.windows(2).filter(|p| !p[0] && p[1]).count()
}

fn has_vowel(w: &[u8]) -> bool {
    consonants(w).iter().any(|c| !c)
}

fn ends_double_consonant(w: &[u8]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && consonants(w)[n - 1]
}

/// `*o`: ends consonant-vowel-consonant, the last not w, x or y.
fn ends_cvc(w: &[u8]) -> bool {
    let n = w.len();
    if n < 3 {
        return false;
    }
    let f = consonants(w);
    f[n - 3] && !f[n - 2] && f[n - 1] && !matches!(w[n - 1], b'w' | b'x' | b'y')
}

/// Try the rules in order; the first whose suffix matches decides (applied only when the
/// condition on the remaining stem holds), as in the paper.
fn apply_rules(w: &mut Vec<u8>, rules: &[(&str, &str)], cond: impl Fn(&[u8]) -> bool) {
    for (suffix, repl) in rules {
        if w.ends_with(suffix.as_bytes()) {
            let stem_len = w.len() - suffix.len();
            if cond(&w[..stem_len]) {
                w.truncate(stem_len);
                w.extend_from_slice(repl.as_bytes());
            }
            return;
        }
    }
}

fn step1a(w: &mut Vec<u8>) {
    apply_rules(
        w,
        &[("sses", "ss"), ("ies", "i"), ("ss", "ss"), ("s", "")],
        |_| true,
    );
}

fn step1b(w: &mut Vec<u8>) {
    if w.ends_with(b"eed") {
        if measure(&w[..w.len() - 3]) > 0 {
            w.pop();
        }
        return;
    }
    let mut removed = false;
    for suffix in [&b"ed"[..], &b"ing"[..]] {
        if w.ends_with(suffix) && has_vowel(&w[..w.len() - suffix.len()]) {
            w.truncate(w.len() - suffix.len());
            removed = true;
            break;
        }
    }
    if !removed {
        return;
    }
    if w.ends_with(b"at") || w.ends_with(b"bl") || w.ends_with(b"iz") {
        w.push(b'e');
    } else if ends_double_consonant(w) {
        if !matches!(w[w.len() - 1], b'l' | b's' | b'z') {
            w.pop();
        }
    } else if measure(w) == 1 && ends_cvc(w) {
        w.push(b'e');
    }
}

fn step1c(w: &mut [u8]) {
    let n = w.len();
    if n > 0 && w[n - 1] == b'y' && has_vowel(&w[..n - 1]) {
        w[n - 1] = b'i';
    }
}

const STEP2: &[(&str, &str)] = &[
    ("ational", "ate"),
    ("tional", "tion"),
    ("enci", "ence"),
    ("anci", "ance"),
    ("izer", "ize"),
    ("abli", "able"),
    ("alli", "al"),
    ("entli", "ent"),
    ("eli", "e"),
    ("ousli", "ous"),
    ("ization", "ize"),
    ("ation", "ate"),
    ("ator", "ate"),
    ("alism", "al"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("aliti", "al"),
    ("iviti", "ive"),
    ("biliti", "ble"),
];

const STEP3: &[(&str, &str)] = &[
    ("icate", "ic"),
    ("ative", ""),
    ("alize", "al"),
    ("iciti", "ic"),
    ("ical", "ic"),
    ("ful", ""),
    ("ness", ""),
];

const STEP4: &[&str] = &[
    "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou",
    "ism", "ate", "iti", "ous", "ive", "ize",
];

fn step4(w: &mut Vec<u8>) {
    for suffix in STEP4 {
        if w.ends_with(suffix.as_bytes()) {
            let stem = &w[..w.len() - suffix.len()];
            let ok =
                measure(stem) > 1 && (*suffix != "ion" || matches!(stem.last(), Some(b's' | b't')));
            if ok {
                w.truncate(stem.len());
            }
            return;
        }
    }
}

fn step5(w: &mut Vec<u8>) {
    if w.ends_with(b"e") {
        let stem = &w[..w.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            w.pop();
        }
    }
    if w.ends_with(b"ll") && measure(&w[..w.len() - 1]) > 1 {
        w.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::stem;

    /// Pairs from the examples in Porter's paper (also NLTK ORIGINAL_ALGORITHM output).
    #[test]
    fn paper_examples() {
        let cases = [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("conflated", "conflat"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("conditional", "condit"),
            ("generalization", "gener"),
            ("electrical", "electr"),
            ("adoption", "adopt"),
            ("controlling", "control"),
            ("roll", "roll"),
            ("blurred", "blur"),
            ("eyes", "ey"),
        ];
        for (w, s) in cases {
            assert_eq!(stem(w), s, "stem({w})");
        }
    }
}

/// Compare with a `word<TAB>stem` file made by NLTK (`PorterStemmer(mode=ORIGINAL_ALGORITHM)`),
/// named by `DFA_PORTER_VOCAB`. Ignored by default (the file is not committed):
/// `DFA_PORTER_VOCAB=vocab.tsv cargo test --release --lib porter -- --ignored`.
#[cfg(test)]
#[test]
#[ignore]
fn matches_nltk_on_a_vocabulary_file() {
    let Ok(path) = std::env::var("DFA_PORTER_VOCAB") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let mut bad = Vec::new();
    let mut n = 0;
    for line in text.lines() {
        if let Some((w, s)) = line.split_once('\t') {
            n += 1;
            if stem(w) != s {
                bad.push(format!("{w}: ours {} nltk {s}", stem(w)));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {n} differ: {:?}",
        bad.len(),
        &bad[..bad.len().min(20)]
    );
    eprintln!("{n} words agree");
}
