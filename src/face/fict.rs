//! The Facial Image Concept Tree (FICT). STUB: the FICT helper replaces this file; the API below
//! is the contract other modules code against.

use std::collections::BTreeMap;

use image::GrayImage;

/// One concept of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    /// Canonical name, e.g. "left eye upper lid" (subject's anatomical left).
    pub name: String,
    pub parent: Option<String>,
    pub synonyms: Vec<String>,
    /// Names of direct children; empty for atomic concepts.
    pub children: Vec<String>,
}

impl Concept {
    pub fn is_atomic(&self) -> bool {
        self.children.is_empty()
    }
}

/// A name that is not in the tree, with the closest names.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("unknown region \"{query}\"; did you mean: {}? (`dfa regions --list` shows all)", suggestions.join(", "))]
pub struct UnknownConcept {
    pub query: String,
    pub suggestions: Vec<String>,
}

/// Per-concept masks of one face (atomic and parent concepts), image-sized, 0/255.
#[derive(Debug, Clone, Default)]
pub struct RegionMasks {
    pub masks: BTreeMap<String, GrayImage>,
}

#[derive(Debug, Default)]
pub struct Fict {
    pub concepts: Vec<Concept>,
}

impl Fict {
    /// The tree shipped with dfa.
    pub fn builtin() -> &'static Fict {
        static EMPTY: std::sync::OnceLock<Fict> = std::sync::OnceLock::new();
        EMPTY.get_or_init(Fict::default)
    }

    /// Find a concept by name or synonym (case-insensitive; "image-left ..." accepted).
    pub fn lookup(&self, query: &str) -> Result<&Concept, UnknownConcept> {
        let q = query.trim().to_lowercase();
        self.concepts
            .iter()
            .find(|c| c.name == q || c.synonyms.iter().any(|s| *s == q))
            .ok_or(UnknownConcept {
                query: query.to_string(),
                suggestions: Vec::new(),
            })
    }

    /// Rasterize every concept for a face given its 468 mesh landmarks (image pixels).
    pub fn rasterize(&self, _landmarks: &[[f32; 2]], _width: u32, _height: u32) -> RegionMasks {
        RegionMasks::default()
    }
}
