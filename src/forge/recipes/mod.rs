//! Edit recipes: eight families (the names of `record::FORGERY_TYPES`), each aimed at FICT
//! concept regions. Every recipe returns an [`Edit`] whose fake equals the input exactly where
//! the edit mask is 0; global post-processing happens later, identically for the real twin.

pub mod colour;
pub mod copy_move;
pub mod face_swap;
pub mod noise;
pub mod region_swap;
pub mod self_blend;
pub mod smoothing;
pub mod warp;

use image::GrayImage;
use rand::Rng;

use super::raster::{mask_area, mask_union, Plane};
use super::{Edit, FaceCrop, ForgeError};

/// A recipe family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    SelfBlend,
    RegionSwap,
    Warp,
    Smoothing,
    Colour,
    Noise,
    CopyMove,
    FaceSwap,
}

impl Family {
    /// In the order of `record::FORGERY_TYPES` (new families go last: indices are class ids).
    pub const ALL: [Family; 8] = [
        Family::SelfBlend,
        Family::RegionSwap,
        Family::Warp,
        Family::Smoothing,
        Family::Colour,
        Family::Noise,
        Family::CopyMove,
        Family::FaceSwap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::SelfBlend => "self_blend",
            Family::RegionSwap => "region_swap",
            Family::Warp => "warp",
            Family::Smoothing => "smoothing",
            Family::Colour => "colour",
            Family::Noise => "noise",
            Family::CopyMove => "copy_move",
            Family::FaceSwap => "face_swap",
        }
    }

    pub fn from_name(s: &str) -> Result<Family, ForgeError> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s.trim())
            .ok_or_else(|| ForgeError::UnknownRecipe(s.to_string()))
    }

    /// Does it need a face of another identity?
    pub fn needs_donor(self) -> bool {
        matches!(self, Family::RegionSwap | Family::FaceSwap)
    }
}

/// Knobs shared by all recipes.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// 0..1: how strong the change is.
    pub strength: f32,
    /// Hard (binary) or soft (feathered) mask edges.
    pub hard_edge: bool,
    /// Force the target concepts (tests, user requests); random when `None`.
    pub target: Option<Vec<String>>,
    /// Force a sub-operation (e.g. `bigger_eyes` for warp); random when `None`.
    pub op: Option<String>,
}

impl Params {
    /// Strength 0.35..1, hard edges one time in four.
    pub fn random(rng: &mut impl Rng) -> Self {
        Params {
            strength: rng.random_range(0.35..1.0),
            hard_edge: rng.random_bool(0.25),
            target: None,
            op: None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "strength={:.2} edge={}",
            self.strength,
            if self.hard_edge { "hard" } else { "soft" }
        )
    }
}

/// Apply one recipe. `donor` (a face of another identity) is needed by `region_swap` and
/// `face_swap` only.
pub fn apply(
    family: Family,
    face: &FaceCrop,
    donor: Option<&FaceCrop>,
    rng: &mut impl Rng,
    params: &Params,
) -> Result<Edit, ForgeError> {
    match family {
        Family::SelfBlend => self_blend::apply(face, rng, params),
        Family::RegionSwap => match donor {
            Some(d) => region_swap::apply(face, d, rng, params),
            None => Err(ForgeError::NotApplicable {
                recipe: "region_swap".into(),
                reason: "needs a donor face of another identity in the same split".into(),
            }),
        },
        Family::Warp => warp::apply(face, rng, params),
        Family::Smoothing => smoothing::apply(face, rng, params),
        Family::Colour => colour::apply(face, rng, params),
        Family::Noise => noise::apply(face, rng, params),
        Family::CopyMove => copy_move::apply(face, rng, params),
        Family::FaceSwap => match donor {
            Some(d) => face_swap::apply(face, d, rng, params),
            None => Err(ForgeError::NotApplicable {
                recipe: "face_swap".into(),
                reason: "needs a donor face of another identity in the same split".into(),
            }),
        },
    }
}

/// Pick `1..=max` target concepts among `candidates` that the face has (non-empty masks),
/// or the forced ones.
pub(crate) fn choose_targets(
    recipe: &str,
    face: &FaceCrop,
    candidates: &[&str],
    params: &Params,
    rng: &mut impl Rng,
    max: usize,
) -> Result<Vec<String>, ForgeError> {
    let has = |n: &str| face.regions.get(n).is_some_and(|m| mask_area(m, 127) > 8);
    if let Some(t) = &params.target {
        if let Some(bad) = t.iter().find(|n| !has(n)) {
            return Err(ForgeError::NotApplicable {
                recipe: recipe.into(),
                reason: format!("the face has no \"{bad}\" region"),
            });
        }
        return Ok(t.clone());
    }
    let mut avail: Vec<&str> = candidates.iter().copied().filter(|n| has(n)).collect();
    if avail.is_empty() {
        return Err(ForgeError::NotApplicable {
            recipe: recipe.into(),
            reason: format!("the face has none of the regions {candidates:?}"),
        });
    }
    let k = if max > 1 && avail.len() > 1 && rng.random_bool(0.3) {
        rng.random_range(2..=max.min(avail.len()))
    } else {
        1
    };
    let mut out = Vec::new();
    for _ in 0..k {
        let i = rng.random_range(0..avail.len());
        out.push(avail.remove(i).to_string());
    }
    Ok(out)
}

/// Pick one sub-operation name (or the forced one).
pub(crate) fn choose_op<'a>(
    recipe: &str,
    ops: &[&'a str],
    params: &Params,
    rng: &mut impl Rng,
) -> Result<&'a str, ForgeError> {
    match &params.op {
        Some(o) => ops
            .iter()
            .copied()
            .find(|x| x == o)
            .ok_or_else(|| ForgeError::NotApplicable {
                recipe: recipe.into(),
                reason: format!("unknown operation \"{o}\"; known: {ops:?}"),
            }),
        None => Ok(ops[rng.random_range(0..ops.len())]),
    }
}

/// Union of the named region masks.
pub(crate) fn region_of(face: &FaceCrop, names: &[String]) -> GrayImage {
    let (w, h) = face.image.dimensions();
    names
        .iter()
        .fold(GrayImage::new(w, h), |acc, n| match face.regions.get(n) {
            Some(m) => mask_union(&acc, m),
            None => acc,
        })
}

/// Largest feather sigma (px); with the 2 px grow, soft masks stay within 11 px of the region.
pub const MAX_FEATHER: f32 = 3.0;

/// The blend weight for a region: hard = the region grown by 1 px at full `opacity`;
/// soft = grown by 2 px and feathered with a Gaussian (sigma 1.5..3).
pub(crate) fn edit_weight(
    region: &GrayImage,
    params: &Params,
    opacity: f32,
    rng: &mut impl Rng,
) -> GrayImage {
    let p = Plane::from_gray(region);
    let w = if params.hard_edge {
        let mut d = p.dilate(1);
        d.data
            .iter_mut()
            .for_each(|v| *v = if *v > 0.5 { opacity } else { 0.0 });
        d
    } else {
        let sigma = rng.random_range(1.5..MAX_FEATHER);
        let mut d = p.dilate(2).blur(sigma);
        d.data
            .iter_mut()
            .for_each(|v| *v = (*v * 1.25).min(1.0) * opacity);
        d
    };
    w.to_gray()
}

/// A smooth 0..1 support (the region grown by 3 px and blurred, peak 1) for warps.
pub(crate) fn smooth_support(region: &GrayImage, sigma: f32) -> Plane {
    let mut p = Plane::from_gray(region).dilate(3).blur(sigma);
    let m = p.max().max(1e-6);
    p.data.iter_mut().for_each(|v| *v /= m);
    p
}
