//! Phrase banks for the task records (prompts/phrases/*.txt, embedded at build time):
//! sectioned text files, `[section]` headers, one template per line, `#` comments.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use rand::Rng;

static QUESTIONS: &str = include_str!("../../prompts/phrases/questions.txt");
static ANSWERS: &str = include_str!("../../prompts/phrases/answers.txt");
static ARTIFACTS: &str = include_str!("../../prompts/phrases/artifacts.txt");
static CONCEPTS: &str = include_str!("../../prompts/phrases/concepts.txt");

/// All banks: `section → templates`, plus `name → phrases` maps for concepts and types.
#[derive(Debug, Default)]
pub struct Banks {
    pub sections: BTreeMap<String, Vec<String>>,
    pub concepts: BTreeMap<String, Vec<String>>,
    pub types: BTreeMap<String, Vec<String>>,
}

/// Parse `[section]`-headed text into `section → lines`.
pub fn parse_sections(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            cur = name.trim().to_string();
            continue;
        }
        out.entry(cur.clone()).or_default().push(line.to_string());
    }
    out
}

/// Parse `name = a | b` lines.
pub fn parse_map(lines: &[String]) -> BTreeMap<String, Vec<String>> {
    lines
        .iter()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let vs: Vec<String> = v
                .split('|')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            (!vs.is_empty()).then(|| (k.trim().to_string(), vs))
        })
        .collect()
}

impl Banks {
    /// The banks shipped with dfa.
    pub fn builtin() -> &'static Banks {
        static B: OnceLock<Banks> = OnceLock::new();
        B.get_or_init(|| {
            let mut sections = parse_sections(QUESTIONS);
            let answers = parse_sections(ANSWERS);
            let types = parse_map(answers.get("types").map(Vec::as_slice).unwrap_or(&[]));
            sections.extend(answers.into_iter().filter(|(k, _)| k != "types"));
            sections.extend(parse_sections(ARTIFACTS));
            let concept_lines: Vec<String> = CONCEPTS
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect();
            Banks {
                sections,
                concepts: parse_map(&concept_lines),
                types,
            }
        })
    }

    /// A random template of a section ("" if the section is missing).
    pub fn pick(&self, section: &str, rng: &mut impl Rng) -> String {
        match self.sections.get(section) {
            Some(v) if !v.is_empty() => v[rng.random_range(0..v.len())].clone(),
            _ => String::new(),
        }
    }

    /// A phrase for a FICT concept, e.g. "the left brow".
    pub fn concept_phrase(&self, concept: &str, rng: &mut impl Rng) -> String {
        match self.concepts.get(concept) {
            Some(v) => v[rng.random_range(0..v.len())].clone(),
            None => format!("the {concept}"),
        }
    }

    /// A phrase for a forgery type, e.g. "self-blending".
    pub fn type_phrase(&self, forgery_type: &str, rng: &mut impl Rng) -> String {
        match self.types.get(forgery_type) {
            Some(v) => v[rng.random_range(0..v.len())].clone(),
            None => forgery_type.replace('_', " "),
        }
    }
}

/// `<p> phrase </p> [SEG]`.
pub fn grounded(phrase: &str) -> String {
    format!("<p> {phrase} </p> [SEG]")
}

/// Upper-case the first letter (sentence start).
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// "a", "a and b", "a, b and c".
pub fn join_list(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// A conservative token estimate for SmolLM2's BPE: `<p>`, `</p>`, `[SEG]` count 1; a word
/// counts 1 per 6 letters (at least 1) plus 1 per punctuation mark.
pub fn estimate_tokens(text: &str) -> usize {
    text.split_whitespace()
        .map(|w| {
            if matches!(w, "<p>" | "</p>" | "[SEG]") {
                return 1;
            }
            let letters = w.chars().filter(|c| c.is_alphanumeric()).count();
            let punct = w.chars().filter(|c| !c.is_alphanumeric()).count();
            letters.div_ceil(6).max(1) + punct
        })
        .sum()
}
