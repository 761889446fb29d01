//! `dfa regions`: show the facial concept tree (FICT) on each face of a photo.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context};
use image::GrayImage;
use serde::Serialize;

use crate::face::fict::{Concept, Fict};
use crate::face::regions::{regions, FaceRegions, LandmarkSource};
use crate::report::overlay::{overlay_with_legend, PALETTE};

/// Show the facial concept tree on each face: overlay images and per-concept areas.
#[derive(Debug, Clone, clap::Args)]
pub struct RegionsArgs {
    /// Face photo (PNG, JPEG, WebP or BMP).
    #[arg(value_name = "IMG", required_unless_present = "list")]
    pub image: Option<PathBuf>,
    /// Folder for the overlay PNGs (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Print one JSON object (faces, concepts, areas, boxes, written files) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print the concept tree (names, synonyms) and exit; IMG is not needed.
    #[arg(long)]
    pub list: bool,
}

/// Run `dfa regions`.
pub fn run(args: &RegionsArgs) -> anyhow::Result<()> {
    let fict = Fict::builtin();
    if args.list {
        print!("{}", tree_text(fict));
        return Ok(());
    }
    let Some(path) = &args.image else {
        bail!("give an image, or --list to print the concept tree");
    };
    let img = crate::imageio::load_rgb(path)?;
    let faces = regions(&img);
    if faces.is_empty() {
        bail!(
            "no face found in {} (the detector finds frontal faces of at least 20 px)",
            path.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let mut report = Vec::new();
    for (k, face) in faces.iter().enumerate() {
        let mut files = Vec::new();
        for (kind, layers) in overlay_sets(fict, face) {
            let file = args.out.join(format!("{stem}.face{}.{kind}.png", k + 1));
            overlay_with_legend(&img, &layers, 0.45)
                .save(&file)
                .with_context(|| format!("cannot write {}", file.display()))?;
            files.push(file);
        }
        report.push(face_report(fict, k + 1, face, files));
    }
    if args.json {
        let out = serde_json::json!({"image": path.display().to_string(), "faces": report});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for r in &report {
            print!("{}", face_text(fict, r));
        }
    }
    Ok(())
}

/// The overlay images of one face: top-level face parts, every atomic part, the boundary band.
fn overlay_sets(fict: &Fict, face: &FaceRegions) -> Vec<(&'static str, Vec<Layer>)> {
    let layer = |names: Vec<&str>| -> Vec<Layer> {
        names
            .into_iter()
            .filter_map(|n| face.masks.get(n).map(|m| (n, m)))
            .enumerate()
            .map(|(i, (n, m))| (m.clone(), PALETTE[i % PALETTE.len()], n.to_string()))
            .collect()
    };
    let mut parts: Vec<&str> = Vec::new();
    for root in ["face", "ears", "hair"] {
        if let Some(c) = fict.concept(root) {
            parts.extend(c.children.iter().map(String::as_str));
        }
    }
    parts.push("neck");
    let atoms: Vec<&str> = fict
        .atomic_names()
        .into_iter()
        .filter(|n| fict.layer(n) == Some("parts") && *n != "background")
        .collect();
    let boundary = fict.atomic_descendants("face boundary");
    vec![
        ("parts", layer(parts)),
        ("atoms", layer(atoms)),
        ("boundary", layer(boundary)),
    ]
}

type Layer = (GrayImage, [u8; 3], String);

#[derive(Serialize)]
struct ConceptReport {
    name: String,
    parent: Option<String>,
    atomic: bool,
    area: u64,
    /// Share of the face-box area.
    fraction_of_box: f64,
    bbox: Option<[u32; 4]>,
}

#[derive(Serialize)]
struct FaceReport {
    face: usize,
    bbox: [f32; 4],
    score: f32,
    landmark_source: LandmarkSource,
    overlays: Vec<String>,
    concepts: Vec<ConceptReport>,
}

fn face_report(fict: &Fict, n: usize, face: &FaceRegions, files: Vec<PathBuf>) -> FaceReport {
    let box_area = ((face.bbox[2] - face.bbox[0]) * (face.bbox[3] - face.bbox[1])).max(1.0) as f64;
    let concepts = walk(fict)
        .into_iter()
        .map(|(c, _)| {
            let s = face.stats.get(&c.name);
            let area = s.map(|s| s.area).unwrap_or(0);
            ConceptReport {
                name: c.name.clone(),
                parent: c.parent.clone(),
                atomic: c.is_atomic(),
                area,
                fraction_of_box: area as f64 / box_area,
                bbox: s.and_then(|s| s.bbox),
            }
        })
        .collect();
    FaceReport {
        face: n,
        bbox: face.bbox,
        score: face.score,
        landmark_source: face.landmark_source,
        overlays: files.iter().map(|p| p.display().to_string()).collect(),
        concepts,
    }
}

/// Every concept in tree order with its depth.
fn walk(fict: &Fict) -> Vec<(&Concept, usize)> {
    fn rec<'a>(fict: &'a Fict, c: &'a Concept, d: usize, out: &mut Vec<(&'a Concept, usize)>) {
        out.push((c, d));
        for child in &c.children {
            if let Some(cc) = fict.concept(child) {
                rec(fict, cc, d + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    for r in fict.roots() {
        rec(fict, r, 0, &mut out);
    }
    out
}

/// The tree as indented text with synonyms and layers (`--list`).
pub fn tree_text(fict: &Fict) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Facial concept tree: {} atomic concepts; left/right = the subject's own side \
         (\"image-left X\" = the subject's right X).",
        fict.atomic_names().len()
    );
    for (c, d) in walk(fict) {
        let tag = match fict.layer(&c.name) {
            Some("parts") | None => String::new(),
            Some(l) => format!(" [{l} layer]"),
        };
        let syn = if c.synonyms.is_empty() {
            String::new()
        } else {
            format!("  ({})", c.synonyms.join(", "))
        };
        let _ = writeln!(s, "{}{}{tag}{syn}", "  ".repeat(d), c.name);
    }
    s
}

fn face_text(fict: &Fict, r: &FaceReport) -> String {
    let mut s = String::new();
    let b = r.bbox;
    let source = match r.landmark_source {
        LandmarkSource::Mesh => "FaceMesh",
        LandmarkSource::CanonicalFallback => "canonical frontal face placed in the box (fallback)",
    };
    let _ = writeln!(
        s,
        "face {}: box [{:.0}, {:.0}, {:.0}, {:.0}], score {:.1}, landmarks: {source}",
        r.face, b[0], b[1], b[2], b[3], r.score
    );
    let depth: std::collections::HashMap<&str, usize> = walk(fict)
        .into_iter()
        .map(|(c, d)| (c.name.as_str(), d))
        .collect();
    for c in &r.concepts {
        let d = depth.get(c.name.as_str()).copied().unwrap_or(0);
        let name = format!("{}{}", "  ".repeat(d + 1), c.name);
        let _ = writeln!(
            s,
            "{name:<34} {:>9} px {:>6.1}% of box",
            c.area,
            100.0 * c.fraction_of_box
        );
    }
    for f in &r.overlays {
        let _ = writeln!(s, "  wrote {f}");
    }
    s
}
