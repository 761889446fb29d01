//! Writing a dataset: `DIR/data.jsonl` (one `record::Sample` per line), `DIR/images/`,
//! `DIR/masks/`, `DIR/forge.json` (the settings) and `DIR/summary.json`.
//!
//! Deterministic: sample `i` depends only on the seed, `i` and the sources, never on threads
//! or on earlier runs. Resumable: images and masks are written to a temporary name and
//! renamed; each JSONL line is appended whole, then flushed and synced. A rerun drops a torn
//! last line, keeps every complete one and makes only the missing samples.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{GrayImage, RgbImage};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::annotate::{fake_labels, real_tasks};
use super::post::PostProcess;
use super::recipes::{self, Family, Params};
use super::record::{GtSegment, Sample};
use super::sources::{make_crop, CropJitter, FaceSource, RegionProvider, SourceReport};
use super::ForgeError;

/// What to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForgeConfig {
    /// Number of fakes; each comes with its real twin (2 lines per index).
    pub n: usize,
    pub seed: u64,
    /// Recipe families, used in turn.
    pub recipes: Vec<String>,
    /// "train" | "val" | "test" | "all".
    pub split: String,
    /// Crop side in pixels.
    pub size: u32,
    /// Use only faces whose licence allows redistribution.
    pub free_only: bool,
    /// With split "all": the share of pairs each split gets (e.g. train 0.8, val 0.06, ...);
    /// empty: faces are used in one shuffled order, so splits get pairs in proportion to faces.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shares: BTreeMap<String, f64>,
    /// Held-out photo sources: collection name → split (recorded so a rerun must match).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holdout: BTreeMap<String, String>,
}

/// The splits a dataset may have.
pub const SPLITS: &[&str] = &["train", "val", "test", "test-id"];

impl Default for ForgeConfig {
    fn default() -> Self {
        ForgeConfig {
            n: 100,
            seed: 0,
            recipes: Family::ALL.iter().map(|f| f.name().to_string()).collect(),
            split: "all".into(),
            size: 256,
            free_only: false,
            shares: BTreeMap::new(),
            holdout: BTreeMap::new(),
        }
    }
}

/// Counts of a whole dataset directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub samples: usize,
    pub real: usize,
    pub fake: usize,
    pub per_recipe: BTreeMap<String, usize>,
    pub per_split: BTreeMap<String, usize>,
    pub per_artifact_kind: BTreeMap<String, usize>,
    /// Identities per split.
    pub identities: BTreeMap<String, usize>,
    /// Images per split and photo source.
    #[serde(default)]
    pub split_sources: BTreeMap<String, BTreeMap<String, usize>>,
    /// Per photo source: photos read, faces kept, dropped and why (this run's collection).
    #[serde(default)]
    pub collections: Vec<super::collections::CollectionStats>,
    /// Indices that could not be made, with the reason (this run).
    pub skipped: Vec<String>,
    /// Fakes whose edit vanished under post-processing and were redone without it (this run).
    pub post_dropped: usize,
    pub sources_missing: Vec<String>,
    pub sources_corrupt: Vec<String>,
    pub sources_without_face: Vec<String>,
    /// Made this run, and how fast (samples = lines).
    pub made_this_run: usize,
    pub seconds: f64,
    pub samples_per_second: f64,
}

/// Encoded outputs of one index.
struct PairOut {
    files: Vec<(String, Vec<u8>)>,
    real: Sample,
    fake: Sample,
    post_dropped: bool,
}

fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut buf = Vec::new();
    let enc = image::codecs::png::PngEncoder::new_with_quality(
        &mut buf,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    // Encoding an in-memory buffer of the right size cannot fail.
    let _ = img.write_with_encoder(enc);
    buf
}
fn png_rgb(i: &RgbImage) -> Vec<u8> {
    png(&image::DynamicImage::ImageRgb8(i.clone()))
}
fn png_gray(i: &GrayImage) -> Vec<u8> {
    png(&image::DynamicImage::ImageLuma8(i.clone()))
}

/// A per-index generator independent of every other index.
fn index_rng(seed: u64, i: usize, salt: u64) -> StdRng {
    let mut z = seed
        ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// The faces a config uses, in a seeded order.
pub fn faces_for<'a>(cfg: &ForgeConfig, rep: &'a SourceReport) -> Vec<&'a FaceSource> {
    let mut v: Vec<&FaceSource> = rep
        .faces
        .iter()
        .filter(|f| cfg.split == "all" || f.split == cfg.split)
        .filter(|f| !cfg.free_only || f.free)
        .collect();
    v.shuffle(&mut index_rng(cfg.seed, 0, 1));
    v
}

/// Ids of the two lines of index `i`.
pub fn pair_ids(seed: u64, i: usize) -> (String, String) {
    (
        format!("s{seed}-{i:06}-real"),
        format!("s{seed}-{i:06}-fake"),
    )
}

/// The face and recipe family of every index `0..n` (pure: depends on the seed, the faces and
/// the families). Without `shares`: face `i mod faces`, family `i mod families`. With them:
/// each index draws its split by the shares, and the `k`-th index of a split takes that
/// split's face `k mod m` and family `(k + k / m) mod families`, so a face seen again gets
/// another recipe and every family reaches every split.
pub fn plan(cfg: &ForgeConfig, faces: &[&FaceSource], families: &[Family]) -> Vec<(usize, Family)> {
    if cfg.shares.is_empty() {
        return (0..cfg.n)
            .map(|i| (i % faces.len(), families[i % families.len()]))
            .collect();
    }
    let mut by_split: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (j, f) in faces.iter().enumerate() {
        by_split.entry(f.split.as_str()).or_default().push(j);
    }
    let weighted: Vec<(&str, f64)> = cfg
        .shares
        .iter()
        .filter(|(s, w)| **w > 0.0 && by_split.contains_key(s.as_str()))
        .map(|(s, w)| (s.as_str(), *w))
        .collect();
    let total: f64 = weighted.iter().map(|w| w.1).sum();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    (0..cfg.n)
        .map(|i| {
            let mut u = index_rng(cfg.seed, i, 5).random_range(0.0..total.max(1e-12));
            let split = weighted
                .iter()
                .find(|(_, w)| {
                    u -= w;
                    u < 0.0
                })
                .or(weighted.last())
                .map(|w| w.0)
                .unwrap_or("");
            let Some(list) = by_split.get(split) else {
                return (i % faces.len(), families[i % families.len()]);
            };
            let k = count.entry(split).or_default();
            let (m, nf) = (list.len(), families.len());
            let out = (list[*k % m], families[(*k + *k / m) % nf]);
            *k += 1;
            out
        })
        .collect()
}

/// Make index `i` (pure: same inputs, same bytes).
fn make_pair(
    cfg: &ForgeConfig,
    faces: &[&FaceSource],
    families: &[Family],
    regions: &RegionProvider,
    i: usize,
    (face_index, family): (usize, Family),
) -> Result<PairOut, String> {
    let mut rng = index_rng(cfg.seed, i, 2);
    let src = faces[face_index];
    let mut family = family;
    let donors: Vec<&&FaceSource> = faces
        .iter()
        .filter(|d| d.split == src.split && d.identity != src.identity)
        .collect();
    if family.needs_donor() && donors.is_empty() {
        family = families
            .iter()
            .copied()
            .find(|f| !f.needs_donor())
            .ok_or("no donor of another identity in this split")?;
    }
    let crop = make_crop(src, cfg.size, CropJitter::random(&mut rng), regions);
    let donor = if family.needs_donor() {
        let d = donors[rng.random_range(0..donors.len())];
        Some(make_crop(
            d,
            cfg.size,
            CropJitter::random(&mut rng),
            regions,
        ))
    } else {
        None
    };
    let params = Params::random(&mut rng);
    let edit = recipes::apply(family, &crop, donor.as_ref(), &mut rng, &params)
        .map_err(|e| e.to_string())?;
    let mut pp = PostProcess::random(&mut rng);
    let mut label_rng = index_rng(cfg.seed, i, 3);
    let (mut real_img, mut fake_img) = (pp.apply(&crop.image), pp.apply(&edit.fake));
    let mut labels = fake_labels(
        &real_img,
        &fake_img,
        &edit.edit_mask,
        &edit.concepts,
        edit.artifact_kind,
        family.name(),
        &crop.regions,
        &mut label_rng,
    );
    let mut post_dropped = false;
    if labels.fell_back_to_targets && pp != PostProcess::NONE {
        pp = PostProcess::NONE;
        post_dropped = true;
        real_img = crop.image.clone();
        fake_img = edit.fake.clone();
        let mut label_rng = index_rng(cfg.seed, i, 3);
        labels = fake_labels(
            &real_img,
            &fake_img,
            &edit.edit_mask,
            &edit.concepts,
            edit.artifact_kind,
            family.name(),
            &crop.regions,
            &mut label_rng,
        );
    }
    let (rid, fid) = pair_ids(cfg.seed, i);
    let mut files = vec![
        (format!("images/{rid}.png"), png_rgb(&real_img)),
        (format!("images/{fid}.png"), png_rgb(&fake_img)),
        (
            format!("masks/{fid}-artifact.png"),
            png_gray(&labels.artifact_mask),
        ),
        (format!("masks/{fid}-edit.png"), png_gray(&edit.edit_mask)),
    ];
    let mut segments = Vec::new();
    for (k, (concept, phrase, m)) in labels.segments.iter().enumerate() {
        let path = format!("masks/{fid}-seg{k}.png");
        files.push((path.clone(), png_gray(m)));
        segments.push(GtSegment {
            concept: concept.clone(),
            phrase: phrase.clone(),
            mask: path,
            area_px: super::raster::mask_area(m, 127),
        });
    }
    let mut real_rng = index_rng(cfg.seed, i, 4);
    let real = Sample {
        id: rid.clone(),
        split: src.split.clone(),
        identity: src.identity.clone(),
        collection: Some(src.collection.clone()),
        image: format!("images/{rid}.png"),
        real_image: None,
        label: "real".into(),
        forgery_type: None,
        recipe: Some(format!("real source={} {}", src.source, pp.describe())),
        artifact_kind: None,
        face_bbox: crop.face_bbox,
        artifact_mask: None,
        edit_mask: None,
        bbox: None,
        concepts: Vec::new(),
        segments: Vec::new(),
        tasks: real_tasks(&crop.regions, &mut real_rng),
    };
    let fake = Sample {
        id: fid.clone(),
        split: src.split.clone(),
        identity: src.identity.clone(),
        collection: Some(src.collection.clone()),
        image: format!("images/{fid}.png"),
        real_image: Some(format!("images/{rid}.png")),
        label: "fake".into(),
        forgery_type: Some(family.name().to_string()),
        recipe: Some(format!(
            "{} source={} {}",
            edit.params,
            src.source,
            pp.describe()
        )),
        artifact_kind: Some(edit.artifact_kind.as_str().to_string()),
        face_bbox: crop.face_bbox,
        artifact_mask: Some(format!("masks/{fid}-artifact.png")),
        edit_mask: Some(format!("masks/{fid}-edit.png")),
        bbox: labels.bbox,
        concepts: labels.segments.iter().map(|s| s.0.clone()).collect(),
        segments,
        tasks: labels.tasks,
    };
    Ok(PairOut {
        files,
        real,
        fake,
        post_dropped,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ForgeError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| ForgeError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ForgeError::io(path, e))
}

/// Read the complete lines of a data.jsonl, cutting off a torn last line (a killed run).
pub fn read_existing(path: &Path) -> Result<Vec<Sample>, ForgeError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = std::fs::read(path).map_err(|e| ForgeError::io(path, e))?;
    let keep = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(p) => p + 1,
        None => 0,
    };
    if keep < bytes.len() {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| ForgeError::io(path, e))?;
        f.set_len(keep as u64)
            .map_err(|e| ForgeError::io(path, e))?;
        f.sync_all().map_err(|e| ForgeError::io(path, e))?;
    }
    let text = String::from_utf8_lossy(&bytes[..keep]);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(line).map_err(|e| ForgeError::BadLine {
            path: path.display().to_string(),
            line: n + 1,
            reason: e.to_string(),
        })?);
    }
    Ok(out)
}

/// Make (or continue) a dataset in `out`. `rep` are the collected faces; `regions` turns a crop
/// into concept masks; `progress` shows a bar on a terminal.
pub fn forge(
    out: &Path,
    cfg: &ForgeConfig,
    rep: &SourceReport,
    regions: &RegionProvider,
    progress: bool,
) -> Result<Summary, ForgeError> {
    let start = Instant::now();
    let families: Vec<Family> = cfg
        .recipes
        .iter()
        .map(|r| Family::from_name(r))
        .collect::<Result<_, _>>()?;
    if families.is_empty() {
        return Err(ForgeError::UnknownRecipe(String::new()));
    }
    if cfg.split != "all" && !SPLITS.contains(&cfg.split.as_str()) {
        return Err(ForgeError::UnknownSplit(cfg.split.clone()));
    }
    if let Some(bad) = cfg.shares.keys().find(|k| !SPLITS.contains(&k.as_str())) {
        return Err(ForgeError::UnknownSplit(bad.clone()));
    }
    let faces = faces_for(cfg, rep);
    if faces.is_empty() {
        return Err(ForgeError::NoFaces(format!(
            "split {}, {} faces collected",
            cfg.split,
            rep.faces.len()
        )));
    }
    let plan = plan(cfg, &faces, &families);
    for d in ["images", "masks"] {
        std::fs::create_dir_all(out.join(d)).map_err(|e| ForgeError::io(&out.join(d), e))?;
    }
    // Settings must match an existing directory's (only n may grow).
    let manifest = out.join("forge.json");
    let mut stored = cfg.clone();
    stored.n = 0;
    if manifest.exists() {
        let old: ForgeConfig = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| ForgeError::io(&manifest, "unreadable forge.json"))?;
        if old != stored {
            return Err(ForgeError::io(
                &manifest,
                format!(
                    "this directory was made with other settings ({}); use another --out",
                    serde_json::to_string(&old).unwrap_or_default()
                ),
            ));
        }
    } else {
        write_atomic(
            &manifest,
            serde_json::to_string_pretty(&stored)
                .unwrap_or_default()
                .as_bytes(),
        )?;
    }
    let data = out.join("data.jsonl");
    let mut samples = read_existing(&data)?;
    let done: BTreeSet<String> = samples.iter().map(|s| s.id.clone()).collect();
    let todo: Vec<usize> = (0..cfg.n)
        .filter(|&i| {
            let (r, f) = pair_ids(cfg.seed, i);
            !(done.contains(&r) && done.contains(&f))
        })
        .collect();
    let bar = if progress {
        indicatif::ProgressBar::new(cfg.n as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "forge {bar:40} {pos}/{len} pairs  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position((cfg.n - todo.len()) as u64);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&data)
        .map_err(|e| ForgeError::io(&data, e))?;
    let mut summary = Summary {
        sources_missing: rep.missing.clone(),
        sources_corrupt: rep.corrupt.clone(),
        sources_without_face: rep.no_face.clone(),
        collections: rep.collections.clone(),
        ..Default::default()
    };
    let mut made = 0usize;
    for chunk in todo.chunks(16) {
        let results: Vec<(usize, Result<PairOut, String>)> = chunk
            .par_iter()
            .map(|&i| (i, make_pair(cfg, &faces, &families, regions, i, plan[i])))
            .collect();
        for (i, r) in results {
            match r {
                Err(why) => summary.skipped.push(format!("index {i}: {why}")),
                Ok(p) => {
                    for (rel, bytes) in &p.files {
                        write_atomic(&out.join(rel), bytes)?;
                    }
                    let mut lines = String::new();
                    for s in [&p.real, &p.fake] {
                        if !done.contains(&s.id) {
                            lines.push_str(
                                &serde_json::to_string(s).map_err(|e| ForgeError::io(&data, e))?,
                            );
                            lines.push('\n');
                            made += 1;
                        }
                    }
                    file.write_all(lines.as_bytes())
                        .map_err(|e| ForgeError::io(&data, e))?;
                    file.flush().map_err(|e| ForgeError::io(&data, e))?;
                    file.sync_data().map_err(|e| ForgeError::io(&data, e))?;
                    summary.post_dropped += p.post_dropped as usize;
                    for s in [p.real, p.fake] {
                        if !done.contains(&s.id) {
                            samples.push(s);
                        }
                    }
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &samples {
        summary.samples += 1;
        if s.label == "fake" {
            summary.fake += 1;
        } else {
            summary.real += 1;
        }
        *summary
            .per_recipe
            .entry(s.forgery_type.clone().unwrap_or_else(|| "real".into()))
            .or_default() += 1;
        *summary.per_split.entry(s.split.clone()).or_default() += 1;
        *summary
            .split_sources
            .entry(s.split.clone())
            .or_default()
            .entry(s.collection.clone().unwrap_or_else(|| "?".into()))
            .or_default() += 1;
        if let Some(k) = &s.artifact_kind {
            *summary.per_artifact_kind.entry(k.clone()).or_default() += 1;
        }
        ids.entry(s.split.clone())
            .or_default()
            .insert(s.identity.clone());
    }
    summary.identities = ids.into_iter().map(|(k, v)| (k, v.len())).collect();
    summary.made_this_run = made;
    summary.seconds = start.elapsed().as_secs_f64();
    summary.samples_per_second = made as f64 / summary.seconds.max(1e-9);
    write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(summary)
}

/// Default output layout paths, for tools.
pub fn data_path(out: &Path) -> PathBuf {
    out.join("data.jsonl")
}
