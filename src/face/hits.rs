//! Which FICT concepts a mask hits: the one rule that labels forge's training data (the
//! artifact mask) and names the engine's predicted masks, so both speak the same way.

use std::collections::BTreeMap;

use image::GrayImage;

use super::raster::mask_area as area;

/// A concept is hit when the artifact covers this fraction of it, or when this concept holds
/// `HIT_OF_ARTIFACT` of the artifact (and at least `HIT_MIN_PX` pixels either way).
pub const HIT_OF_CONCEPT: f32 = 0.10;
pub const HIT_OF_ARTIFACT: f32 = 0.20;
pub const HIT_MIN_PX: u64 = 20;
/// Concepts too broad to name when a part is hit.
pub const BROAD: &[&str] = &["face", "skin", "head"];

/// One concept hit by an artifact: its name and the overlap in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub concept: String,
    pub overlap: u64,
}

/// Pixels on in both masks.
pub fn overlap(a: &GrayImage, b: &GrayImage) -> u64 {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .filter(|(p, q)| **p > 127 && **q > 127)
        .count() as u64
}

/// Concepts the artifact hits, most overlap first; a concept that contains another hit concept
/// is dropped when the smaller one explains most of its overlap (the lips vs the upper lip), and
/// broad ones ("face") are kept only when nothing else is hit.
pub fn concepts_hit(artifact: &GrayImage, regions: &BTreeMap<String, GrayImage>) -> Vec<Hit> {
    let art = area(artifact, 127).max(1);
    let mut hits: Vec<(Hit, u64)> = regions
        .iter()
        .filter_map(|(name, m)| {
            let area = area(m, 127);
            let ov = overlap(artifact, m);
            let ok = ov >= HIT_MIN_PX
                && (ov as f32 >= HIT_OF_CONCEPT * area as f32
                    || ov as f32 >= HIT_OF_ARTIFACT * art as f32);
            ok.then(|| {
                (
                    Hit {
                        concept: name.clone(),
                        overlap: ov,
                    },
                    area,
                )
            })
        })
        .collect();
    let contains = |big: &GrayImage, small: &GrayImage| {
        let s = area(small, 127).max(1);
        overlap(big, small) as f32 >= 0.9 * s as f32
    };
    // Nested pairs (iris in eye, upper lip in lips): keep one — the smaller when it explains
    // 70% of the larger one's overlap, else the larger.
    let names: Vec<(String, u64, u64)> = hits
        .iter()
        .map(|(h, a)| (h.concept.clone(), h.overlap, *a))
        .collect();
    let mut drop = BTreeMap::new();
    for (big, bov, barea) in &names {
        for (small, sov, sarea) in &names {
            let broad = BROAD.contains(&big.as_str()) || BROAD.contains(&small.as_str());
            if !broad && big != small && sarea < barea && contains(&regions[big], &regions[small]) {
                let loser = if *sov as f32 >= 0.7 * *bov as f32 {
                    big
                } else {
                    small
                };
                drop.insert(loser.clone(), ());
            }
        }
    }
    hits.retain(|(h, _)| !drop.contains_key(&h.concept));
    let narrow: Vec<Hit> = hits
        .iter()
        .filter(|(h, _)| !BROAD.contains(&h.concept.as_str()))
        .map(|(h, _)| h.clone())
        .collect();
    let mut out = if narrow.is_empty() {
        hits.into_iter().map(|(h, _)| h).collect()
    } else {
        narrow
    };
    out.sort_by(|a, b| b.overlap.cmp(&a.overlap).then(a.concept.cmp(&b.concept)));
    out
}
