//! Naming from masks: the face's concept masks in the crop frame, and the rule
//! that renames a phrase whose mask shows a different concept than the words name.
//!
//! Why the mask wins: on held-out faces the masks find the edited region far more often than
//! the text names it (adapters/dfa-tiny/README.md, "Names from masks"), and a phrase whose mask lies
//! elsewhere tells the reader two different things.

use image::{GrayImage, Luma, RgbImage};

use super::vision::FaceCrop;
use crate::face::fict::{swap_sides, within, Fict};
use crate::face::hits::{concepts_hit, Hit};

/// The FICT concept a phrase names ("the left eye" → "left eye"), if any.
pub fn concept_of_phrase(phrase: &str) -> Option<String> {
    let p = phrase.trim().to_lowercase();
    let p = p.strip_prefix("the ").unwrap_or(&p);
    Fict::builtin().lookup(p).ok().map(|c| c.name.clone())
}

/// The concept a phrase should name given its mask: `None` keeps the words (the mask hits the
/// named concept, a part of it or a whole containing it, or hits nothing); otherwise the new
/// phrase and concept, the concept the mask overlaps most. A mirror concept keeps the phrase's
/// own words with the side swapped ("the left brow" → "the right brow").
pub fn name_from_mask(
    phrase: &str,
    concept: &str,
    mask: &GrayImage,
    regions: &CropRegions,
) -> Option<(String, String)> {
    let hits = regions.concepts_hit(mask);
    let top = hits.first()?;
    if hits
        .iter()
        .any(|h| within(&h.concept, concept) || within(concept, &h.concept))
    {
        return None;
    }
    let new = top.concept.clone();
    // A mirror ("left cheek" → "right cheek") keeps the phrase's own words.
    let swapped = if swap_sides(concept) == new {
        let side = concept.split_whitespace().next().unwrap_or_default();
        let other = if side == "left" { "right" } else { "left" };
        swap_side_word(phrase, side, other)
    } else {
        None
    };
    let phrase = swapped.unwrap_or_else(|| {
        let article = if phrase.trim_start().starts_with('T') {
            "The"
        } else {
            "the"
        };
        format!("{article} {new}")
    });
    Some((phrase, new))
}

/// `phrase` with its first whole word `from` (any case) replaced by `to` in the same case.
fn swap_side_word(phrase: &str, from: &str, to: &str) -> Option<String> {
    let lower = phrase.to_lowercase();
    let mut start = 0;
    while let Some(i) = lower[start..].find(from).map(|i| i + start) {
        let end = i + from.len();
        let before = lower[..i]
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric());
        let after = lower[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        if before && after && phrase.is_char_boundary(i) && phrase.is_char_boundary(end) {
            let capital = phrase[i..].starts_with(|c: char| c.is_uppercase());
            let word = if capital {
                let mut w = to.to_string();
                w[..1].make_ascii_uppercase();
                w
            } else {
                to.to_string()
            };
            return Some(format!("{}{word}{}", &phrase[..i], &phrase[end..]));
        }
        start = end;
    }
    None
}

/// FICT masks of one face rasterised in its crop (`side`² pixels) — not over the whole photo,
/// where a group picture would need gigabytes.
pub struct CropRegions {
    pub masks: crate::face::fict::RegionMasks,
    /// Crop origin in the image: `[x0, y0, side_in_image]`.
    pub origin: [f32; 3],
    pub side: u32,
}

impl CropRegions {
    pub const SIDE: u32 = 256;

    pub fn new(img: &RgbImage, bbox: [f32; 4], crop: &FaceCrop) -> Option<Self> {
        let lm = crate::face::face_landmarks(img, bbox)?;
        let [x0, y0, s] = crop.origin;
        let k = Self::SIDE as f32 / s;
        let local: Vec<[f32; 2]> = lm
            .iter()
            .map(|p| [(p[0] - x0) * k, (p[1] - y0) * k])
            .collect();
        let masks = Fict::builtin().rasterize(&local, Self::SIDE, Self::SIDE);
        Some(Self {
            masks,
            origin: crop.origin,
            side: Self::SIDE,
        })
    }

    /// `mask` (image-sized) resampled into the crop frame, where the concept masks live.
    pub fn to_crop(&self, mask: &GrayImage) -> GrayImage {
        let [x0, y0, s] = self.origin;
        let k = s / self.side as f32;
        let (w, h) = mask.dimensions();
        GrayImage::from_fn(self.side, self.side, |u, v| {
            let x = (x0 + (u as f32 + 0.5) * k).floor();
            let y = (y0 + (v as f32 + 0.5) * k).floor();
            let inside = x >= 0.0 && y >= 0.0 && (x as u32) < w && (y as u32) < h;
            Luma([if inside {
                mask.get_pixel(x as u32, y as u32).0[0]
            } else {
                0
            }])
        })
    }

    /// The concepts `mask` (image-sized) hits, by the rule forge labels its data with.
    pub fn concepts_hit(&self, mask: &GrayImage) -> Vec<Hit> {
        concepts_hit(&self.to_crop(mask), &self.masks.masks)
    }

    /// Whether at least half of `mask` (image-sized) lies in (the 3-px-grown) concept `name`.
    pub fn mask_inside(&self, mask: &GrayImage, name: &str) -> Option<bool> {
        self.inside_fraction(mask, name).map(|f| f >= 0.5)
    }

    /// The fraction of `mask` (image-sized) in (the 3-px-grown) concept `name`; 1 for an empty mask.
    pub fn inside_fraction(&self, mask: &GrayImage, name: &str) -> Option<f32> {
        let region = self.masks.masks.get(name)?;
        let (mut on, mut inside) = (0u64, 0u64);
        for (x, y, p) in mask.enumerate_pixels() {
            if p.0[0] <= 127 {
                continue;
            }
            on += 1;
            if self.near(region, x, y) {
                inside += 1;
            }
        }
        Some(if on == 0 {
            1.0
        } else {
            inside as f32 / on as f32
        })
    }

    /// Whether image pixel (x, y) lies within 3 crop pixels of `region` (a crop-frame mask).
    fn near(&self, region: &GrayImage, x: u32, y: u32) -> bool {
        let [x0, y0, s] = self.origin;
        let k = self.side as f32 / s;
        let (cx, cy) = (
            ((x as f32 + 0.5 - x0) * k) as i64,
            ((y as f32 + 0.5 - y0) * k) as i64,
        );
        (-3..=3).any(|dy| {
            (-3..=3).any(|dx| {
                let (u, v) = (cx + dx, cy + dy);
                u >= 0
                    && v >= 0
                    && u < self.side as i64
                    && v < self.side as i64
                    && region.get_pixel(u as u32, v as u32).0[0] > 127
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::canonical::landmarks_from_box;

    /// The canonical face filling a 256² photo whose crop is the whole photo.
    fn regions() -> CropRegions {
        let side = CropRegions::SIDE;
        let lm = landmarks_from_box([0.0, 0.0, side as f32, side as f32]);
        CropRegions {
            masks: Fict::builtin().rasterize(&lm, side, side),
            origin: [0.0, 0.0, side as f32],
            side,
        }
    }

    #[test]
    fn a_phrase_is_renamed_to_the_concept_its_mask_shows() {
        let r = regions();
        let nose = r.masks.get("nose").unwrap().clone();
        let cheek = r.masks.get("left cheek").unwrap().clone();
        let right_cheek = r.masks.get("right cheek").unwrap().clone();
        assert_eq!(
            name_from_mask("the left cheek", "left cheek", &nose, &r),
            Some(("the nose".to_string(), "nose".to_string()))
        );
        assert_eq!(
            name_from_mask("The left cheek", "left cheek", &nose, &r)
                .unwrap()
                .0,
            "The nose"
        );
        // Same concept, or a whole containing it: the words stay.
        assert_eq!(
            name_from_mask("the left cheek", "left cheek", &cheek, &r),
            None
        );
        assert_eq!(name_from_mask("the face", "face", &nose, &r), None);
        // The mirror keeps the phrase's own words.
        assert_eq!(
            name_from_mask("the left cheek area", "left cheek", &right_cheek, &r),
            Some((
                "the right cheek area".to_string(),
                "right cheek".to_string()
            ))
        );
        // An empty mask hits nothing: the words stay.
        let empty = GrayImage::new(256, 256);
        assert_eq!(
            name_from_mask("the left cheek", "left cheek", &empty, &r),
            None
        );
    }

    #[test]
    fn a_mask_is_resampled_into_the_crop_frame() {
        let mut r = regions();
        r.origin = [100.0, 50.0, 128.0];
        let mut m = GrayImage::new(400, 300);
        m.put_pixel(164, 114, Luma([255]));
        let c = r.to_crop(&m);
        // Image pixel (164, 114) is crop (128..130, 128..130) at 2 crop px per image px.
        assert_eq!(c.get_pixel(128, 128).0[0], 255);
        assert_eq!(c.get_pixel(129, 129).0[0], 255);
        assert_eq!(c.get_pixel(130, 128).0[0], 0);
        assert_eq!(c.get_pixel(0, 0).0[0], 0);
    }

    #[test]
    fn side_word_swaps_whole_words_in_their_case() {
        assert_eq!(
            swap_side_word("the left eye", "left", "right").as_deref(),
            Some("the right eye")
        );
        assert_eq!(
            swap_side_word("Left cheek", "left", "right").as_deref(),
            Some("Right cheek")
        );
        // Not inside another word; the first whole word only.
        assert_eq!(
            swap_side_word("cleft left left", "left", "right").as_deref(),
            Some("cleft right left")
        );
        assert_eq!(swap_side_word("the nose", "left", "right"), None);
    }
}
