//! Labels in the manner of FiFa-Annotator: the artifact mask (top 5% of the real-vs-fake pixel
//! difference), the FICT concepts it hits, per-concept ground-truth segments, and the task
//! records (det, cls, age, toe, loc, region, box) with phrases from the banks.
//!
//! Grounding rule for every answer: each `[SEG]` follows `<p> phrase </p>`, and `phrase` equals
//! the `phrase` of one of the sample's `segments`; that segment's mask is the target.

use std::collections::BTreeMap;

use image::{GrayImage, Luma, RgbImage};
use rand::Rng;

use crate::face::hits::{concepts_hit, overlap, Hit, BROAD};

use super::phrases::{capitalise, estimate_tokens, grounded, join_list, Banks};
use super::raster::{mask_bbox, Plane};
use super::record::TaskRecord;
use super::ArtifactKind;

/// Fraction of pixels the artifact mask keeps (FiFa: 5%).
pub const TOP_FRACTION: f32 = 0.05;
/// Differences below this (0..255, after a 3×3 mean) are never artifacts: it keeps
/// compression noise around a small edit out of the mask.
pub const DIFF_FLOOR: f32 = 6.0;
/// Most concepts named in one AGE answer, and the token budget of an AGE answer.
pub const MAX_AGE_CONCEPTS: usize = 3;
pub const MAX_AGE_TOKENS: usize = 40;

/// Per-pixel max-channel |real − fake| smoothed by a 3×3 mean.
pub fn difference(real: &RgbImage, fake: &RgbImage) -> Plane {
    let (w, h) = real.dimensions();
    let mut d = Plane::new(w, h);
    for (x, y, p) in real.enumerate_pixels() {
        let q = fake.get_pixel(x, y);
        let m = (0..3)
            .map(|c| (p.0[c] as i32 - q.0[c] as i32).abs())
            .max()
            .unwrap_or(0);
        d.set(x, y, m as f32);
    }
    let mut s = Plane::new(w, h);
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let (mut acc, mut n) = (0.0, 0.0);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (xx, yy) = (x + dx, y + dy);
                    if xx >= 0 && yy >= 0 && xx < w as i64 && yy < h as i64 {
                        acc += d.get(xx as u32, yy as u32);
                        n += 1.0;
                    }
                }
            }
            s.set(x as u32, y as u32, acc / n);
        }
    }
    s
}

/// The FiFa artifact mask: pixels whose difference is in the top `fraction` of the image and
/// above [`DIFF_FLOOR`] (0/255).
pub fn artifact_mask(real: &RgbImage, fake: &RgbImage, fraction: f32) -> GrayImage {
    let d = difference(real, fake);
    let mut sorted = d.data.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let k = ((sorted.len() as f32 * fraction) as usize).min(sorted.len().saturating_sub(1));
    let thr = sorted.get(k).copied().unwrap_or(0.0).max(DIFF_FLOOR);
    GrayImage::from_fn(d.w, d.h, |x, y| {
        Luma([if d.get(x, y) >= thr { 255 } else { 0 }])
    })
}

/// The artifact within one concept (the concept grown by 3 px so the seam just outside counts).
pub fn segment_mask(artifact: &GrayImage, concept: &GrayImage) -> GrayImage {
    let grown = Plane::from_gray(concept).dilate(3);
    GrayImage::from_fn(artifact.width(), artifact.height(), |x, y| {
        Luma([
            if artifact.get_pixel(x, y).0[0] > 127 && grown.get(x, y) > 0.5 {
                255
            } else {
                0
            },
        ])
    })
}

fn task(task: &str, prompt: String, answer: String) -> TaskRecord {
    TaskRecord {
        task: task.into(),
        prompt,
        answer,
        region: None,
        bbox: None,
        positive: None,
    }
}

fn box_text(b: [f32; 4]) -> String {
    format!(
        "[{}, {}, {}, {}]",
        b[0].round(),
        b[1].round(),
        b[2].round(),
        b[3].round()
    )
}

/// A concept (not broad) whose region does not touch `avoid`, with its box.
fn negative_concept(
    regions: &BTreeMap<String, GrayImage>,
    avoid: &GrayImage,
    rng: &mut impl Rng,
) -> Option<(String, [f32; 4])> {
    let grown = Plane::from_gray(avoid).dilate(4).to_gray();
    let cands: Vec<(&String, [f32; 4])> = regions
        .iter()
        .filter(|(n, m)| !BROAD.contains(&n.as_str()) && overlap(m, &grown) == 0)
        .filter_map(|(n, m)| mask_bbox(m, 127).map(|b| (n, b)))
        .collect();
    (!cands.is_empty()).then(|| {
        let (n, b) = cands[rng.random_range(0..cands.len())];
        (n.clone(), b)
    })
}

/// Task records for a real face: det, cls, age, toe, loc, one negative region and box question.
pub fn real_tasks(regions: &BTreeMap<String, GrayImage>, rng: &mut impl Rng) -> Vec<TaskRecord> {
    let b = Banks::builtin();
    let mut t = vec![
        task("det", b.pick("det", rng), b.pick("det_real", rng)),
        task("cls", b.pick("cls", rng), b.pick("cls_real", rng)),
        task("age", b.pick("age", rng), b.pick("age_real", rng)),
        task("toe", b.pick("toe", rng), b.pick("toe_real", rng)),
        task("loc", b.pick("loc", rng), b.pick("loc_real", rng)),
    ];
    let empty = GrayImage::new(1, 1);
    let empty = if let Some(m) = regions.values().next() {
        GrayImage::new(m.width(), m.height())
    } else {
        empty
    };
    if let Some((c, bx)) = negative_concept(regions, &empty, rng) {
        let r = b.concept_phrase(&c, rng);
        t.push(region_task(b, &c, &r, false, rng));
        t.push(box_task(b, bx, None, rng));
    }
    t
}

fn region_task(
    b: &Banks,
    concept: &str,
    phrase: &str,
    positive: bool,
    rng: &mut impl Rng,
) -> TaskRecord {
    let prompt = capitalise(&b.pick("region", rng).replace("{region}", phrase));
    let answer = if positive {
        b.pick("region_yes", rng).replace("{p}", &grounded(phrase))
    } else {
        capitalise(&b.pick("region_no", rng).replace("{r}", phrase))
    };
    TaskRecord {
        region: Some(concept.to_string()),
        positive: Some(positive),
        ..task("region", prompt, answer)
    }
}

fn box_task(b: &Banks, bx: [f32; 4], inside: Option<&[String]>, rng: &mut impl Rng) -> TaskRecord {
    let prompt = b.pick("box", rng).replace("{box}", &box_text(bx));
    let answer = match inside {
        Some(phrases) => {
            let g: Vec<String> = phrases.iter().map(|p| grounded(p)).collect();
            b.pick("box_yes", rng).replace("{list}", &join_list(&g))
        }
        None => b.pick("box_no", rng),
    };
    TaskRecord {
        bbox: Some(bx),
        positive: Some(inside.is_some()),
        ..task("box", prompt, answer)
    }
}

/// Everything derived for a fake.
#[derive(Debug, Clone)]
pub struct FakeLabels {
    pub artifact_mask: GrayImage,
    pub bbox: Option<[f32; 4]>,
    /// `(concept, phrase, segment mask)`, most overlap first.
    pub segments: Vec<(String, String, GrayImage)>,
    pub tasks: Vec<TaskRecord>,
    /// True when the artifact mask hit no concept and the recipe's own targets were used.
    pub fell_back_to_targets: bool,
}

/// Label a fake from its (post-processed) real twin.
pub fn fake_labels(
    real: &RgbImage,
    fake: &RgbImage,
    edit_mask: &GrayImage,
    targets: &[String],
    kind: ArtifactKind,
    forgery_type: &str,
    regions: &BTreeMap<String, GrayImage>,
    rng: &mut impl Rng,
) -> FakeLabels {
    let b = Banks::builtin();
    let mut artifact = artifact_mask(real, fake, TOP_FRACTION);
    let mut hits = concepts_hit(&artifact, regions);
    let mut fell_back = false;
    if hits.is_empty() {
        // Invisible after post-processing: fall back to the exact edit mask and the targets.
        fell_back = true;
        artifact = GrayImage::from_fn(edit_mask.width(), edit_mask.height(), |x, y| {
            Luma([if edit_mask.get_pixel(x, y).0[0] >= 128 {
                255
            } else {
                0
            }])
        });
        hits = concepts_hit(&artifact, regions);
        if hits.is_empty() {
            hits = targets
                .iter()
                .map(|t| Hit {
                    concept: t.clone(),
                    overlap: 0,
                })
                .collect();
        }
    }
    hits.truncate(4);
    let segments: Vec<(String, String, GrayImage)> = hits
        .iter()
        .filter_map(|h| {
            let m = regions.get(&h.concept)?;
            Some((
                h.concept.clone(),
                b.concept_phrase(&h.concept, rng),
                segment_mask(&artifact, m),
            ))
        })
        .collect();
    let phrases: Vec<String> = segments.iter().map(|s| s.1.clone()).collect();
    let kind_name = kind.as_str();
    // AGE: opener + one sentence per concept, as many as fit the token budget.
    let open = b.pick("age_fake_open", rng);
    let mut age = open.clone();
    let mut toe = b.pick("toe_fake_open", rng);
    let mut used: Vec<String> = Vec::new();
    for (i, ph) in phrases.iter().take(MAX_AGE_CONCEPTS).enumerate() {
        // Vary the sentence: avoid a template already used in this answer when possible.
        let mut tpl = b.pick(kind_name, rng);
        for _ in 0..4 {
            if !used.contains(&tpl) {
                break;
            }
            tpl = b.pick(kind_name, rng);
        }
        used.push(tpl.clone());
        let cand = format!("{age} {}", tpl.replace("{p}", &grounded(ph)));
        if i > 0 && estimate_tokens(&cand) > MAX_AGE_TOKENS {
            break;
        }
        age = cand;
        toe = format!("{toe} {}", capitalise(&tpl.replace("{p}", ph)));
    }
    let type_phrase = b.type_phrase(forgery_type, rng);
    let grounded_all: Vec<String> = phrases
        .iter()
        .take(MAX_AGE_CONCEPTS)
        .map(|p| grounded(p))
        .collect();
    let mut tasks = vec![
        task("det", b.pick("det", rng), b.pick("det_fake", rng)),
        task(
            "cls",
            b.pick("cls", rng),
            b.pick("cls_fake", rng).replace("{type}", &type_phrase),
        ),
        task("age", b.pick("age", rng), age),
        task("toe", b.pick("toe", rng), toe),
        task(
            "loc",
            b.pick("loc", rng),
            b.pick("loc_fake", rng)
                .replace("{list}", &join_list(&grounded_all)),
        ),
    ];
    if let Some((c, ph, _)) = segments.first() {
        tasks.push(region_task(b, c, ph, true, rng));
    }
    if let Some((c, bx)) = negative_concept(regions, &artifact, rng) {
        let ph = b.concept_phrase(&c, rng);
        tasks.push(region_task(b, &c, &ph, false, rng));
        tasks.push(box_task(b, bx, None, rng));
    }
    let bbox = mask_bbox(&artifact, 127);
    if let (Some(bx), false) = (bbox, phrases.is_empty()) {
        let (w, h) = (artifact.width() as f32, artifact.height() as f32);
        let mut j = |v: f32, lim: f32| (v + rng.random_range(-3.0..3.0)).clamp(0.0, lim);
        let jb = [j(bx[0], w), j(bx[1], h), j(bx[2], w), j(bx[3], h)];
        tasks.push(box_task(b, jb, Some(&phrases[..phrases.len().min(2)]), rng));
    }
    FakeLabels {
        artifact_mask: artifact,
        bbox,
        segments,
        tasks,
        fell_back_to_targets: fell_back,
    }
}
