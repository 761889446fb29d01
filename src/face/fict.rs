//! The Facial Image Concept Tree (FICT): named face regions, from parents ("eyes", "mouth")
//! down to atomic concepts ("left upper eyelid", "nose tip"), each rasterized from the 468
//! FaceMesh landmarks. The tree is data: `assets/fict.json` (documented in `docs/fict.md`).
//!
//! * **Sides** are the SUBJECT's anatomical sides: "left eye" is the person's left eye, which
//!   appears on the image right in a non-mirrored photo (MediaPipe's `LEFT_EYE` indices).
//!   "image-left eye" / "viewer's left eye" are accepted and mean the subject's right eye.
//! * **Atomic concepts** carry a shape over landmark indices; a **parent** is the union of its
//!   children. Atomic concepts of one layer never overlap: where their shapes do, the one
//!   earlier in the file's `priority` list wins. Layer `parts` tiles the image (face parts,
//!   ears, hair, neck, background); layer `boundary` is the band along the face outline where
//!   swaps and blends leave seams, and overlaps the parts on purpose.
//! * **Offsets**: a vertex `{"at": [i, j], "dx": a, "dy": b}` is the mean of landmarks i, j
//!   moved by `a` face widths toward the subject's left (landmark 234 → 454) and `b` face
//!   heights up (landmark 152 → 10). Mirrored concepts negate `dx` and swap indices.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use image::GrayImage;
use serde::Deserialize;

use super::canonical;
use super::raster;

static FICT_JSON: &str = include_str!("../../assets/fict.json");

/// Landmarks a mesh must provide (the 468 FaceMesh points; 478 with refined irises).
pub const MIN_LANDMARKS: usize = 468;

/// One concept of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    /// Canonical name, e.g. "left upper eyelid" (subject's anatomical left).
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

/// A tree definition that cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum FictError {
    #[error("FICT definition is not valid JSON: {0}")]
    Json(String),
    #[error("FICT definition is inconsistent: {0}")]
    Invalid(String),
    #[error("need at least {MIN_LANDMARKS} landmarks, got {0}")]
    TooFewLandmarks(usize),
    #[error("landmark {0} is not a finite number")]
    NonFinite(usize),
}

/// Per-concept masks of one face (atomic and parent concepts), image-sized, 0/255.
#[derive(Debug, Clone, Default)]
pub struct RegionMasks {
    pub masks: BTreeMap<String, GrayImage>,
}

impl RegionMasks {
    /// The mask of a concept by canonical name.
    pub fn get(&self, name: &str) -> Option<&GrayImage> {
        self.masks.get(name)
    }

    /// Pixel count of a concept's mask (0 when absent).
    pub fn area(&self, name: &str) -> u64 {
        self.masks.get(name).map(raster::area).unwrap_or(0)
    }

    /// Tight box `[x0, y0, x1, y1]` (exclusive end) of a concept's mask.
    pub fn bbox(&self, name: &str) -> Option<[u32; 4]> {
        self.masks.get(name).and_then(raster::bbox)
    }
}

/// The concept tree with the shapes of its atomic concepts.
#[derive(Debug, Default)]
pub struct Fict {
    pub concepts: Vec<Concept>,
    atoms: Vec<Atom>,
    helpers: BTreeMap<String, Shape>,
    index: HashMap<String, usize>,
}

/// An atomic concept's geometry.
#[derive(Debug, Clone)]
struct Atom {
    concept: usize,
    layer: String,
    /// Position in the priority list (0 = wins every overlap).
    rank: usize,
    shape: Shape,
}

// ----- file format -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FictFile {
    #[allow(dead_code)]
    version: u32,
    #[serde(default)]
    #[allow(dead_code)]
    notes: Vec<String>,
    priority: Vec<String>,
    #[serde(default)]
    helpers: BTreeMap<String, Shape>,
    concepts: Vec<ConceptDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConceptDef {
    name: String,
    #[serde(default)]
    synonyms: Option<Vec<String>>,
    #[serde(default)]
    children: Option<Vec<String>>,
    #[serde(default)]
    shape: Option<Shape>,
    /// Build this concept as the left/right mirror image of the named one.
    #[serde(default)]
    mirror: Option<String>,
    #[serde(default)]
    layer: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

/// A region over landmarks; see the module docs for units.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Shape {
    /// Polygon through the vertices (even-odd fill).
    Poly(Vec<Vertex>),
    /// Points within `width / 2` face widths of the polyline.
    Band {
        path: Vec<Vertex>,
        width: f32,
        #[serde(default)]
        closed: bool,
    },
    /// Ellipse aligned with the face axes; radii in face widths.
    Ellipse {
        center: Vertex,
        rx: f32,
        ry: f32,
    },
    /// Iris disc: centre = mean of `center`, radius = `radius` × distance of the two `corners`;
    /// with refined iris landmarks (478 points) the `refined` centre and rim are used instead.
    Iris {
        center: Vec<usize>,
        corners: [usize; 2],
        radius: f32,
        refined: Vec<usize>,
    },
    Union(Vec<Shape>),
    Intersect(Vec<Shape>),
    /// The first shape without the second.
    Minus(Box<Shape>, Box<Shape>),
    /// A named shape from `helpers`.
    Helper(String),
    /// The whole image.
    All {},
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Vertex {
    Index(usize),
    Offset {
        at: OneOrMany,
        #[serde(default)]
        dx: f32,
        #[serde(default)]
        dy: f32,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(usize),
    Many(Vec<usize>),
}

impl OneOrMany {
    fn indices(&self) -> Vec<usize> {
        match self {
            OneOrMany::One(i) => vec![*i],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// True when concept `inner` is `outer` or one of its descendants in the FICT.
pub fn within(inner: &str, outer: &str) -> bool {
    let fict = Fict::builtin();
    let mut cur = Some(inner.to_string());
    for _ in 0..64 {
        match cur {
            Some(c) if c == outer => return true,
            Some(c) => cur = fict.concept(&c).and_then(|k| k.parent.clone()),
            None => return false,
        }
    }
    false
}

/// Swap the words "left" and "right" (subject's sides) in a name.
pub fn swap_sides(name: &str) -> String {
    name.split(' ')
        .map(|w| match w {
            "left" => "right",
            "right" => "left",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Vertex {
    fn mirrored(&self) -> Vertex {
        match self {
            Vertex::Index(i) => Vertex::Index(canonical::mirror_index(*i)),
            Vertex::Offset { at, dx, dy } => Vertex::Offset {
                at: OneOrMany::Many(
                    at.indices()
                        .into_iter()
                        .map(canonical::mirror_index)
                        .collect(),
                ),
                dx: -dx,
                dy: *dy,
            },
        }
    }

    fn indices(&self) -> Vec<usize> {
        match self {
            Vertex::Index(i) => vec![*i],
            Vertex::Offset { at, .. } => at.indices(),
        }
    }
}

impl Shape {
    fn mirrored(&self) -> Shape {
        let mv = |v: &Vec<Vertex>| v.iter().map(Vertex::mirrored).collect::<Vec<_>>();
        let mi = |v: &Vec<usize>| v.iter().map(|&i| canonical::mirror_index(i)).collect();
        match self {
            Shape::Poly(v) => Shape::Poly(mv(v)),
            Shape::Band {
                path,
                width,
                closed,
            } => Shape::Band {
                path: mv(path),
                width: *width,
                closed: *closed,
            },
            Shape::Ellipse { center, rx, ry } => Shape::Ellipse {
                center: center.mirrored(),
                rx: *rx,
                ry: *ry,
            },
            Shape::Iris {
                center,
                corners,
                radius,
                refined,
            } => Shape::Iris {
                center: mi(center),
                corners: corners.map(canonical::mirror_index),
                radius: *radius,
                refined: mi(refined),
            },
            Shape::Union(v) => Shape::Union(v.iter().map(Shape::mirrored).collect()),
            Shape::Intersect(v) => Shape::Intersect(v.iter().map(Shape::mirrored).collect()),
            Shape::Minus(a, b) => Shape::Minus(Box::new(a.mirrored()), Box::new(b.mirrored())),
            Shape::Helper(n) => Shape::Helper(swap_sides(n)),
            Shape::All {} => Shape::All {},
        }
    }

    /// Landmark indices and helper names used, for validation.
    fn visit(&self, idx: &mut Vec<usize>, helpers: &mut Vec<String>) {
        match self {
            Shape::Poly(v) => v.iter().for_each(|x| idx.extend(x.indices())),
            Shape::Band { path, .. } => path.iter().for_each(|x| idx.extend(x.indices())),
            Shape::Ellipse { center, .. } => idx.extend(center.indices()),
            Shape::Iris {
                center, corners, ..
            } => {
                idx.extend(center);
                idx.extend(corners);
            }
            Shape::Union(v) | Shape::Intersect(v) => v.iter().for_each(|s| s.visit(idx, helpers)),
            Shape::Minus(a, b) => {
                a.visit(idx, helpers);
                b.visit(idx, helpers);
            }
            Shape::Helper(n) => helpers.push(n.clone()),
            Shape::All {} => {}
        }
    }
}

/// Lower-case, single spaces, hyphens/underscores as spaces, no leading "the ".
fn normalize(s: &str) -> String {
    let s = s.trim().to_lowercase().replace(['-', '_'], " ");
    let s = s.replace("subject's ", "").replace("subjects ", "");
    let words: Vec<&str> = s.split_whitespace().collect();
    let words = match words.first() {
        Some(&"the") => &words[1..],
        _ => &words[..],
    };
    words.join(" ")
}

/// Edit distance (insertions, deletions, substitutions) between two strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn invalid(msg: impl Into<String>) -> FictError {
    FictError::Invalid(msg.into())
}

impl Fict {
    /// The tree shipped with dfa (`assets/fict.json`).
    pub fn builtin() -> &'static Fict {
        static TREE: OnceLock<Fict> = OnceLock::new();
        // The embedded file is validated by the tests; failing here is a build defect.
        TREE.get_or_init(|| Fict::from_json(FICT_JSON).expect("embedded assets/fict.json is valid"))
    }

    /// Parse and validate a tree definition (the format of `assets/fict.json`).
    pub fn from_json(text: &str) -> Result<Fict, FictError> {
        let file: FictFile =
            serde_json::from_str(text).map_err(|e| FictError::Json(e.to_string()))?;
        let defs: HashMap<&str, &ConceptDef> =
            file.concepts.iter().map(|d| (d.name.as_str(), d)).collect();
        if defs.len() != file.concepts.len() {
            return Err(invalid("duplicate concept name"));
        }
        let mut concepts = Vec::new();
        let mut shapes: Vec<Option<(Shape, String)>> = Vec::new();
        for def in &file.concepts {
            let source = match &def.mirror {
                Some(m) => *defs
                    .get(m.as_str())
                    .ok_or_else(|| invalid(format!("{}: mirror of unknown {m}", def.name)))?,
                None => def,
            };
            if source.mirror.is_some() && def.mirror.is_some() {
                return Err(invalid(format!("{}: mirror of a mirror", def.name)));
            }
            let side = |v: &Vec<String>| -> Vec<String> {
                if def.mirror.is_some() {
                    v.iter().map(|s| swap_sides(s)).collect()
                } else {
                    v.clone()
                }
            };
            let synonyms = def
                .synonyms
                .clone()
                .unwrap_or_else(|| side(&source.synonyms.clone().unwrap_or_default()));
            let children = side(&source.children.clone().unwrap_or_default());
            let shape = source.shape.as_ref().map(|s| {
                if def.mirror.is_some() {
                    s.mirrored()
                } else {
                    s.clone()
                }
            });
            let layer = source.layer.clone().unwrap_or_else(|| "parts".into());
            match (&shape, children.is_empty()) {
                (Some(_), false) => {
                    return Err(invalid(format!(
                        "{}: has both shape and children",
                        def.name
                    )))
                }
                (None, true) => {
                    return Err(invalid(format!("{}: neither shape nor children", def.name)))
                }
                _ => {}
            }
            concepts.push(Concept {
                name: def.name.clone(),
                parent: None,
                synonyms,
                children,
            });
            shapes.push(shape.map(|s| (s, layer)));
        }
        // Parents and children.
        let pos: HashMap<String, usize> = concepts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        for i in 0..concepts.len() {
            for child in concepts[i].children.clone() {
                let &c = pos.get(&child).ok_or_else(|| {
                    invalid(format!("{}: unknown child {child}", concepts[i].name))
                })?;
                if let Some(p) = &concepts[c].parent {
                    return Err(invalid(format!(
                        "{child} has two parents: {p}, {}",
                        concepts[i].name
                    )));
                }
                concepts[c].parent = Some(concepts[i].name.clone());
            }
        }
        for c in &concepts {
            let mut seen = 0;
            let mut p = c.parent.clone();
            while let Some(name) = p {
                seen += 1;
                if seen > concepts.len() {
                    return Err(invalid(format!("{}: cycle in the tree", c.name)));
                }
                p = concepts[pos[&name]].parent.clone();
            }
        }
        // Names and synonyms, normalized, must be unique.
        let mut index = HashMap::new();
        for (i, c) in concepts.iter().enumerate() {
            for key in std::iter::once(&c.name).chain(c.synonyms.iter()) {
                if let Some(j) = index.insert(normalize(key), i) {
                    if j != i {
                        return Err(invalid(format!(
                            "\"{key}\" names both {} and {}",
                            concepts[j].name, c.name
                        )));
                    }
                }
            }
        }
        // Helpers may be mirrored versions of each other; add missing mirror partners.
        let mut helpers = file.helpers.clone();
        for (name, shape) in &file.helpers {
            let other = swap_sides(name);
            if other != *name && !helpers.contains_key(&other) {
                helpers.insert(other, shape.mirrored());
            }
        }
        // Atoms and priority.
        let mut atoms = Vec::new();
        for (i, s) in shapes.into_iter().enumerate() {
            if let Some((shape, layer)) = s {
                let name = &concepts[i].name;
                let rank = file
                    .priority
                    .iter()
                    .position(|p| p == name)
                    .ok_or_else(|| invalid(format!("{name}: not in the priority list")))?;
                let (mut idx, mut used) = (Vec::new(), Vec::new());
                shape.visit(&mut idx, &mut used);
                if let Some(bad) = idx.iter().find(|&&k| k >= MIN_LANDMARKS) {
                    return Err(invalid(format!("{name}: landmark {bad} out of range")));
                }
                if let Some(h) = used.iter().find(|h| !helpers.contains_key(*h)) {
                    return Err(invalid(format!("{name}: unknown helper {h}")));
                }
                atoms.push(Atom {
                    concept: i,
                    layer,
                    rank,
                    shape,
                });
            }
        }
        if file.priority.len() != atoms.len() {
            return Err(invalid(format!(
                "priority lists {} names for {} atomic concepts",
                file.priority.len(),
                atoms.len()
            )));
        }
        Ok(Fict {
            concepts,
            atoms,
            helpers,
            index,
        })
    }

    /// Find a concept by name or synonym (case-insensitive; "image-left ..." accepted).
    pub fn lookup(&self, query: &str) -> Result<&Concept, UnknownConcept> {
        let q = normalize(query);
        if let Some(&i) = self.index.get(&q) {
            return Ok(&self.concepts[i]);
        }
        // The viewer's sides are the subject's opposite sides.
        for prefix in [
            "image left ",
            "viewer left ",
            "viewer's left ",
            "viewers left ",
        ] {
            if let Some(rest) = q.strip_prefix(prefix) {
                if let Some(&i) = self.index.get(&normalize(&format!("right {rest}"))) {
                    return Ok(&self.concepts[i]);
                }
            }
        }
        for prefix in [
            "image right ",
            "viewer right ",
            "viewer's right ",
            "viewers right ",
        ] {
            if let Some(rest) = q.strip_prefix(prefix) {
                if let Some(&i) = self.index.get(&normalize(&format!("left {rest}"))) {
                    return Ok(&self.concepts[i]);
                }
            }
        }
        Err(UnknownConcept {
            query: query.to_string(),
            suggestions: self.suggest(&q, 3),
        })
    }

    /// Up to `n` concept names closest to a (normalized) query by edit distance.
    fn suggest(&self, q: &str, n: usize) -> Vec<String> {
        let mut best: BTreeMap<usize, usize> = BTreeMap::new(); // concept -> distance
        for (key, &i) in &self.index {
            let d = edit_distance(q, key);
            let e = best.entry(i).or_insert(d);
            *e = (*e).min(d);
        }
        let mut ranked: Vec<(usize, usize)> = best.into_iter().map(|(i, d)| (d, i)).collect();
        ranked.sort();
        ranked
            .into_iter()
            .take(n)
            .map(|(_, i)| self.concepts[i].name.clone())
            .collect()
    }

    /// A concept by exact canonical name.
    pub fn concept(&self, name: &str) -> Option<&Concept> {
        self.concepts.iter().find(|c| c.name == name)
    }

    /// Concepts without a parent, in file order.
    pub fn roots(&self) -> impl Iterator<Item = &Concept> {
        self.concepts.iter().filter(|c| c.parent.is_none())
    }

    /// Canonical names of the atomic concepts.
    pub fn atomic_names(&self) -> Vec<&str> {
        self.atoms
            .iter()
            .map(|a| self.concepts[a.concept].name.as_str())
            .collect()
    }

    /// The layer of an atomic concept ("parts" or "boundary"); `None` for parents.
    pub fn layer(&self, name: &str) -> Option<&str> {
        self.atoms
            .iter()
            .find(|a| self.concepts[a.concept].name == name)
            .map(|a| a.layer.as_str())
    }

    /// Atomic concepts in priority order, highest first (the order that resolves overlaps).
    pub fn priority(&self) -> Vec<&str> {
        let mut a: Vec<&Atom> = self.atoms.iter().collect();
        a.sort_by_key(|a| a.rank);
        a.iter()
            .map(|a| self.concepts[a.concept].name.as_str())
            .collect()
    }

    /// All atomic concepts under (or equal to) a concept.
    pub fn atomic_descendants(&self, name: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut stack = vec![name];
        while let Some(n) = stack.pop() {
            if let Some(c) = self.concept(n) {
                if c.is_atomic() {
                    out.push(c.name.as_str());
                } else {
                    stack.extend(c.children.iter().rev().map(String::as_str));
                }
            }
        }
        out
    }

    /// Rasterize every concept for a face given its 468 mesh landmarks (image pixels).
    /// Bad landmarks (too few, not finite) give empty masks; see [`Fict::try_rasterize`].
    pub fn rasterize(&self, landmarks: &[[f32; 2]], width: u32, height: u32) -> RegionMasks {
        self.try_rasterize(landmarks, width, height)
            .unwrap_or_default()
    }

    /// Rasterize every concept, or say why the landmarks cannot be used.
    pub fn try_rasterize(
        &self,
        landmarks: &[[f32; 2]],
        width: u32,
        height: u32,
    ) -> Result<RegionMasks, FictError> {
        if landmarks.len() < MIN_LANDMARKS {
            return Err(FictError::TooFewLandmarks(landmarks.len()));
        }
        if let Some(i) = landmarks
            .iter()
            .position(|p| !(p[0].is_finite() && p[1].is_finite()))
        {
            return Err(FictError::NonFinite(i));
        }
        let geo = Geometry::new(landmarks, &self.helpers, width, height);
        let mut masks = BTreeMap::new();
        // Each layer is a label map: lowest priority painted first, highest last.
        let mut layers: Vec<&str> = self.atoms.iter().map(|a| a.layer.as_str()).collect();
        layers.sort();
        layers.dedup();
        for layer in layers {
            let mut order: Vec<(usize, &Atom)> = self
                .atoms
                .iter()
                .enumerate()
                .filter(|(_, a)| a.layer == layer)
                .collect();
            order.sort_by_key(|(_, a)| std::cmp::Reverse(a.rank));
            let mut label = vec![u16::MAX; (width as usize) * (height as usize)];
            for (k, atom) in &order {
                let m = geo.eval(&atom.shape);
                for (l, v) in label.iter_mut().zip(m.iter()) {
                    if *v > 0 {
                        *l = *k as u16;
                    }
                }
            }
            for (k, atom) in &order {
                let mut m = GrayImage::new(width, height);
                for (p, l) in m.iter_mut().zip(label.iter()) {
                    if *l == *k as u16 {
                        *p = raster::ON;
                    }
                }
                masks.insert(self.concepts[atom.concept].name.clone(), m);
            }
        }
        // Parents: union of children, deepest first.
        let depth = |c: &Concept| {
            let mut d = 0;
            let mut p = c.parent.as_deref();
            while let Some(n) = p {
                d += 1;
                p = self.concept(n).and_then(|c| c.parent.as_deref());
            }
            d
        };
        let mut parents: Vec<&Concept> = self.concepts.iter().filter(|c| !c.is_atomic()).collect();
        parents.sort_by_key(|c| std::cmp::Reverse(depth(c)));
        for p in parents {
            let mut m = GrayImage::new(width, height);
            for child in &p.children {
                if let Some(cm) = masks.get(child) {
                    raster::union_in_place(&mut m, cm);
                }
            }
            masks.insert(p.name.clone(), m);
        }
        Ok(RegionMasks { masks })
    }
}

/// Landmarks plus the face frame that turns shapes into pixels.
struct Geometry<'a> {
    lm: &'a [[f32; 2]],
    helpers: &'a BTreeMap<String, Shape>,
    /// Face width vector (landmark 234 → 454) and height vector (152 → 10), in pixels.
    wv: [f32; 2],
    hv: [f32; 2],
    width: u32,
    height: u32,
}

impl<'a> Geometry<'a> {
    fn new(
        lm: &'a [[f32; 2]],
        helpers: &'a BTreeMap<String, Shape>,
        width: u32,
        height: u32,
    ) -> Self {
        let wv = [lm[454][0] - lm[234][0], lm[454][1] - lm[234][1]];
        let hv = [lm[10][0] - lm[152][0], lm[10][1] - lm[152][1]];
        Geometry {
            lm,
            helpers,
            wv,
            hv,
            width,
            height,
        }
    }

    fn face_width(&self) -> f32 {
        (self.wv[0] * self.wv[0] + self.wv[1] * self.wv[1]).sqrt()
    }

    fn mean(&self, idx: &[usize]) -> [f32; 2] {
        let n = idx.len().max(1) as f32;
        let (mut x, mut y) = (0.0, 0.0);
        for &i in idx {
            x += self.lm[i][0];
            y += self.lm[i][1];
        }
        [x / n, y / n]
    }

    fn point(&self, v: &Vertex) -> [f32; 2] {
        match v {
            Vertex::Index(i) => self.lm[*i],
            Vertex::Offset { at, dx, dy } => {
                let p = self.mean(&at.indices());
                [
                    p[0] + dx * self.wv[0] + dy * self.hv[0],
                    p[1] + dx * self.wv[1] + dy * self.hv[1],
                ]
            }
        }
    }

    fn eval(&self, shape: &Shape) -> GrayImage {
        let mut m = raster::empty(self.width, self.height);
        match shape {
            Shape::Poly(v) => {
                let pts: Vec<[f32; 2]> = v.iter().map(|x| self.point(x)).collect();
                raster::fill_polygon(&mut m, &pts, raster::ON);
            }
            Shape::Band {
                path,
                width,
                closed,
            } => {
                let pts: Vec<[f32; 2]> = path.iter().map(|x| self.point(x)).collect();
                raster::fill_band(&mut m, &pts, width * self.face_width() / 2.0, *closed);
            }
            Shape::Ellipse { center, rx, ry } => {
                let w = self.face_width();
                let axis = [self.wv[0] / w.max(1e-6), self.wv[1] / w.max(1e-6)];
                raster::fill_ellipse(&mut m, self.point(center), rx * w, ry * w, axis);
            }
            Shape::Iris {
                center,
                corners,
                radius,
                refined,
            } => {
                let (c, r) = if self.lm.len() >= 478 && refined.len() >= 2 {
                    let c = self.lm[refined[0]];
                    let rim = &refined[1..];
                    let r = rim
                        .iter()
                        .map(|&i| {
                            ((self.lm[i][0] - c[0]).powi(2) + (self.lm[i][1] - c[1]).powi(2)).sqrt()
                        })
                        .sum::<f32>()
                        / rim.len() as f32;
                    (c, r)
                } else {
                    let (a, b) = (self.lm[corners[0]], self.lm[corners[1]]);
                    let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
                    (self.mean(center), radius * d)
                };
                raster::fill_ellipse(&mut m, c, r, r, [1.0, 0.0]);
            }
            Shape::Union(v) => {
                for s in v {
                    raster::union_in_place(&mut m, &self.eval(s));
                }
            }
            Shape::Intersect(v) => {
                if let Some((first, rest)) = v.split_first() {
                    m = self.eval(first);
                    for s in rest {
                        raster::intersect_in_place(&mut m, &self.eval(s));
                    }
                }
            }
            Shape::Minus(a, b) => {
                m = self.eval(a);
                raster::subtract_in_place(&mut m, &self.eval(b));
            }
            Shape::Helper(name) => {
                if let Some(s) = self.helpers.get(name) {
                    m = self.eval(s);
                }
            }
            Shape::All {} => m = raster::full(self.width, self.height),
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tree_loads() {
        let f = Fict::builtin();
        assert!(f.atomic_names().len() >= 60);
    }

    #[test]
    fn normalize_and_distance() {
        assert_eq!(normalize("  The Left-Eye "), "left eye");
        assert_eq!(normalize("subject's left eye"), "left eye");
        assert_eq!(edit_distance("left eyebrw", "left eyebrow"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(swap_sides("left upper eyelid"), "right upper eyelid");
    }

    #[test]
    fn bad_definitions_are_rejected() {
        let bad = r#"{"version":1,"priority":["a"],"concepts":[{"name":"a","children":["b"]}]}"#;
        assert!(matches!(Fict::from_json(bad), Err(FictError::Invalid(_))));
        let bad =
            r#"{"version":1,"priority":[],"concepts":[{"name":"a","shape":{"poly":[1,2,3]}}]}"#;
        assert!(matches!(Fict::from_json(bad), Err(FictError::Invalid(_))));
        let bad = r#"{"version":1,"priority":["a"],"concepts":[{"name":"a","shape":{"poly":[1,2,999]}}]}"#;
        assert!(matches!(Fict::from_json(bad), Err(FictError::Invalid(_))));
        assert!(matches!(Fict::from_json("{"), Err(FictError::Json(_))));
    }

    #[test]
    fn bad_landmarks_give_an_error() {
        let f = Fict::builtin();
        assert_eq!(
            f.try_rasterize(&[[0.0, 0.0]; 10], 8, 8).err(),
            Some(FictError::TooFewLandmarks(10))
        );
        let mut lm = vec![[1.0, 1.0]; 468];
        lm[7] = [f32::NAN, 0.0];
        assert_eq!(
            f.try_rasterize(&lm, 8, 8).err(),
            Some(FictError::NonFinite(7))
        );
        assert!(f.rasterize(&lm, 8, 8).masks.is_empty());
    }
}
