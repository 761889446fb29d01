//! Bring-your-own photo collections for the forge (`dfa forge --sources DIR`, repeatable).
//!
//! A collection is a folder of real, unedited photos. Who is in a photo comes from the layout:
//! a photo in a sub-folder belongs to the person the sub-folder names (LFW's `<Name>/<Name>_0001.jpg`);
//! a photo directly in the folder is its own person, or, with `"identity": "prefix:_"` in the
//! folder's optional `source.json`, the person named by the file stem up to the first `_`
//! (`001_03.jpg` and `001_08.jpg` are one person). `source.json` may also give `name` (the photo
//! source's name; default: the folder's name) and `free` (may appear in committed images).
//!
//! Filters, each counted: no face found, face smaller than `min_face` px, an ambiguous photo
//! (a second face at least half the area of the largest), a blurred face (variance of the
//! Laplacian of the face, resampled to 96², below `min_sharpness`), and an exact duplicate
//! (same 64-bit difference hash of the face as an earlier photo of the collection).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::imageops::FilterType;
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::sources::{detect_in_photo, FaceSource};
use super::ForgeError;

/// What `source.json` may say about a collection.
#[derive(Debug, Clone, Default, Deserialize)]
struct SourceFile {
    name: Option<String>,
    identity: Option<String>,
    #[serde(default)]
    free: bool,
}

/// Face-level filters of a collection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Filters {
    /// Smallest face box side, in photo pixels.
    pub min_face: f32,
    /// Smallest variance of the Laplacian of the face at 96² (grey levels²).
    pub min_sharpness: f32,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            min_face: 64.0,
            min_sharpness: 25.0,
        }
    }
}

/// Counts of one photo source: files seen, faces kept, and what was dropped, by reason.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CollectionStats {
    pub name: String,
    pub photos: usize,
    pub kept: usize,
    pub identities: usize,
    pub dropped: BTreeMap<String, usize>,
}

/// How a photo's identity is read from its path.
#[derive(Debug, Clone, PartialEq)]
enum IdentityRule {
    /// Sub-folder = person; a loose file = its own person.
    Folder,
    /// File stem up to the first occurrence of the separator.
    Prefix(String),
}

fn identity_of(rule: &IdentityRule, rel: &Path) -> String {
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    match (rule, rel.parent().filter(|p| !p.as_os_str().is_empty())) {
        (_, Some(parent)) => parent.to_string_lossy().replace('\\', "/"),
        (IdentityRule::Folder, None) => stem,
        (IdentityRule::Prefix(sep), None) => stem.split(sep.as_str()).next().unwrap_or("").into(),
    }
}

/// Image files under `dir` (one level of sub-folders), sorted, skipping `._*` and hidden files.
fn photo_files(dir: &Path) -> Result<Vec<PathBuf>, ForgeError> {
    let is_photo = |p: &Path| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        !name.starts_with('.')
            && p.extension().is_some_and(|e| {
                let e = e.to_string_lossy().to_ascii_lowercase();
                ["jpg", "jpeg", "png", "webp", "bmp"].contains(&e.as_str())
            })
    };
    let mut out = Vec::new();
    let read = |d: &Path| std::fs::read_dir(d).map_err(|e| ForgeError::io(d, e));
    for entry in read(dir)? {
        let p = entry.map_err(|e| ForgeError::io(dir, e))?.path();
        if p.is_dir() {
            for sub in read(&p)? {
                let q = sub.map_err(|e| ForgeError::io(&p, e))?.path();
                if q.is_file() && is_photo(&q) {
                    out.push(q);
                }
            }
        } else if is_photo(&p) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Variance of the 4-neighbour Laplacian of the face box, resampled to 96² grey.
pub fn sharpness(photo: &RgbImage, bbox: [f32; 4]) -> f32 {
    let face = face_grey(photo, bbox, 96);
    let v = |x: u32, y: u32| face.get_pixel(x, y).0[0] as f32;
    let (mut s, mut s2, mut n) = (0f64, 0f64, 0f64);
    for y in 1..95 {
        for x in 1..95 {
            let l = (4.0 * v(x, y) - v(x - 1, y) - v(x + 1, y) - v(x, y - 1) - v(x, y + 1)) as f64;
            s += l;
            s2 += l * l;
            n += 1.0;
        }
    }
    (s2 / n - (s / n).powi(2)) as f32
}

/// 64-bit difference hash of the face box (9×8 grey, left < right per bit).
pub fn face_hash(photo: &RgbImage, bbox: [f32; 4]) -> u64 {
    let g = image::imageops::resize(&face_grey(photo, bbox, 32), 9, 8, FilterType::Triangle);
    let mut h = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            h = (h << 1) | (g.get_pixel(x, y).0[0] < g.get_pixel(x + 1, y).0[0]) as u64;
        }
    }
    h
}

fn face_grey(photo: &RgbImage, bbox: [f32; 4], side: u32) -> image::GrayImage {
    let (w, h) = photo.dimensions();
    let x0 = (bbox[0].max(0.0) as u32).min(w - 1);
    let y0 = (bbox[1].max(0.0) as u32).min(h - 1);
    let x1 = (bbox[2].ceil() as u32).clamp(x0 + 1, w);
    let y1 = (bbox[3].ceil() as u32).clamp(y0 + 1, h);
    let face = image::imageops::crop_imm(photo, x0, y0, x1 - x0, y1 - y0).to_image();
    let grey = image::DynamicImage::ImageRgb8(face).to_luma8();
    image::imageops::resize(&grey, side, side, FilterType::Triangle)
}

/// Photos are kept at most this many pixels of face box side (memory; crops are 256² with the
/// face at 60 %).
const MAX_STORED_FACE: f32 = 320.0;

/// One photo: load, detect, filter. `Err(reason)` names why it was dropped.
fn read_photo(path: &Path, f: &Filters) -> Result<(Arc<RgbImage>, [f32; 4], u64), &'static str> {
    let photo = crate::imageio::load_rgb(path).map_err(|_| "unreadable")?;
    let faces = detect_in_photo(&photo);
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let mut by_area: Vec<[f32; 4]> = faces.iter().map(|f| f.0).collect();
    by_area.sort_by(|a, b| area(b).total_cmp(&area(a)));
    let Some(&bbox) = by_area.first() else {
        return Err("no face");
    };
    if (bbox[2] - bbox[0]).min(bbox[3] - bbox[1]) < f.min_face {
        return Err("face too small");
    }
    if by_area.get(1).is_some_and(|b| area(b) >= 0.5 * area(&bbox)) {
        return Err("several faces");
    }
    if sharpness(&photo, bbox) < f.min_sharpness {
        return Err("blurred");
    }
    let hash = face_hash(&photo, bbox);
    let side = bbox[2] - bbox[0];
    if side > MAX_STORED_FACE {
        let s = MAX_STORED_FACE / side;
        let (w, h) = photo.dimensions();
        let small = image::imageops::resize(
            &photo,
            ((w as f32 * s).round() as u32).max(1),
            ((h as f32 * s).round() as u32).max(1),
            FilterType::Triangle,
        );
        return Ok((Arc::new(small), bbox.map(|v| v * s), hash));
    }
    Ok((Arc::new(photo), bbox, hash))
}

/// Read one collection folder: its faces (split unassigned: `""`) and its counts.
pub fn read_collection(
    dir: &Path,
    filters: &Filters,
) -> Result<(Vec<FaceSource>, CollectionStats), ForgeError> {
    if !dir.is_dir() {
        return Err(ForgeError::io(dir, "not a folder of photos"));
    }
    let meta: SourceFile = match std::fs::read_to_string(dir.join("source.json")) {
        Ok(t) => {
            serde_json::from_str(&t).map_err(|e| ForgeError::io(&dir.join("source.json"), e))?
        }
        Err(_) => SourceFile::default(),
    };
    let name = meta.name.clone().unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "photos".into())
    });
    let rule = match meta.identity.as_deref() {
        None | Some("folder") | Some("file") => IdentityRule::Folder,
        Some(r) => match r.strip_prefix("prefix:") {
            Some(sep) if !sep.is_empty() => IdentityRule::Prefix(sep.into()),
            _ => {
                return Err(ForgeError::io(
                    &dir.join("source.json"),
                    format!("identity rule \"{r}\": use \"folder\", \"file\" or \"prefix:SEP\""),
                ))
            }
        },
    };
    let files = photo_files(dir)?;
    let results: Vec<_> = files.par_iter().map(|p| read_photo(p, filters)).collect();
    let mut stats = CollectionStats {
        name: name.clone(),
        photos: files.len(),
        ..Default::default()
    };
    let mut seen = HashSet::new();
    let mut faces = Vec::new();
    for (path, r) in files.iter().zip(results) {
        let why = match r {
            Ok((photo, bbox, hash)) if seen.insert(hash) => {
                let rel = path.strip_prefix(dir).unwrap_or(path);
                faces.push(FaceSource {
                    identity: format!("{name}:{}", identity_of(&rule, rel)),
                    source: format!("{name}/{}", rel.display()),
                    collection: name.clone(),
                    split: String::new(),
                    free: meta.free,
                    photo,
                    bbox,
                });
                continue;
            }
            Ok(_) => "duplicate",
            Err(why) => why,
        };
        *stats.dropped.entry(why.to_string()).or_default() += 1;
    }
    stats.kept = faces.len();
    stats.identities = faces
        .iter()
        .map(|f| f.identity.as_str())
        .collect::<HashSet<_>>()
        .len();
    Ok((faces, stats))
}

/// Every face for the forge: the package catalogue under `packages` (when given; missing files
/// are listed, not fatal) plus each `--sources` folder, with splits assigned
/// ([`super::sources::assign_splits`]). A held-out collection that nothing provides is an error.
pub fn collect_all(
    packages: Option<&Path>,
    dirs: &[PathBuf],
    filters: &Filters,
    holdout: &BTreeMap<String, String>,
) -> Result<super::sources::SourceReport, ForgeError> {
    let mut rep = match packages {
        Some(root) => super::sources::collect(root),
        None => Default::default(),
    };
    for dir in dirs {
        let (faces, stats) = read_collection(dir, filters)?;
        if rep.collections.iter().any(|c| c.name == stats.name) {
            return Err(ForgeError::io(
                dir,
                format!("a second source named \"{}\"", stats.name),
            ));
        }
        rep.faces.extend(faces);
        rep.collections.push(stats);
    }
    for name in holdout.keys() {
        if !rep
            .collections
            .iter()
            .any(|c| &c.name == name && c.kept > 0)
        {
            let known: Vec<&str> = rep.collections.iter().map(|c| c.name.as_str()).collect();
            return Err(ForgeError::io(
                Path::new(name),
                format!(
                    "held-out source has no faces (sources: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    super::sources::assign_splits(&mut rep.faces, holdout);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_rules_read_folders_files_and_prefixes() {
        let f = IdentityRule::Folder;
        let p = IdentityRule::Prefix("_".into());
        assert_eq!(
            identity_of(&f, Path::new("AJ_Cook/AJ_Cook_0001.jpg")),
            "AJ_Cook"
        );
        assert_eq!(identity_of(&f, Path::new("26_1_0_2017.jpg")), "26_1_0_2017");
        assert_eq!(identity_of(&p, Path::new("001_03.jpg")), "001");
        assert_eq!(identity_of(&p, Path::new("001_08.jpg")), "001");
        assert_eq!(identity_of(&p, Path::new("bob/001_08.jpg")), "bob");
    }

    #[test]
    fn sharpness_separates_a_blurred_face_and_hash_finds_copies() {
        let sharp = RgbImage::from_fn(128, 128, |x, y| {
            let v = if (x / 4 + y / 4) % 2 == 0 { 30 } else { 220 };
            image::Rgb([v, v, v])
        });
        let blurred = image::imageops::blur(&sharp, 4.0);
        let b = [16.0, 16.0, 112.0, 112.0];
        assert!(sharpness(&sharp, b) > 10.0 * sharpness(&blurred, b));
        assert_eq!(face_hash(&sharp, b), face_hash(&sharp.clone(), b));
        assert_ne!(
            face_hash(&sharp, b),
            face_hash(&blurred, [0.0, 0.0, 60.0, 128.0])
        );
    }
}
