//! Region swap: a part (eye, brow, nose, lips) of another identity's face is aligned onto the
//! same part of this face (centroid + scale of the region boxes), optionally colour-matched,
//! and blended in.

use rand::Rng;

use super::{choose_targets, edit_weight, region_of, Params};
use crate::forge::raster::{blend, mask_bbox, mask_centroid, Rgbf};
use crate::forge::{ArtifactKind, Edit, FaceCrop, ForgeError};

const TARGETS: &[&str] = &[
    "left eye",
    "right eye",
    "left eyebrow",
    "right eyebrow",
    "nose",
    "lips",
];

pub fn apply(
    face: &FaceCrop,
    donor: &FaceCrop,
    rng: &mut impl Rng,
    p: &Params,
) -> Result<Edit, ForgeError> {
    let na = |reason: String| ForgeError::NotApplicable {
        recipe: "region_swap".into(),
        reason,
    };
    let targets = choose_targets("region_swap", face, TARGETS, p, rng, 2)?;
    let src = Rgbf::from_rgb(&donor.image);
    let mut alt = Rgbf::from_rgb(&face.image);
    let mut region_all = image::GrayImage::new(face.image.width(), face.image.height());
    let correct = rng.random_bool(0.6);
    for t in &targets {
        let dm = donor
            .regions
            .get(t)
            .ok_or_else(|| na(format!("the donor has no \"{t}\" region")))?;
        let tm = region_of(face, std::slice::from_ref(t));
        let (Some(tc), Some(dc), Some(tb), Some(db)) = (
            mask_centroid(&tm, 127),
            mask_centroid(dm, 127),
            mask_bbox(&tm, 127),
            mask_bbox(dm, 127),
        ) else {
            return Err(na(format!("empty \"{t}\" region")));
        };
        let k = (((tb[2] - tb[0]) / (db[2] - db[0]).max(1.0))
            + ((tb[3] - tb[1]) / (db[3] - db[1]).max(1.0)))
            / 2.0;
        // Colour statistics inside the regions (for optional matching).
        let stats = |img: &Rgbf, m: &image::GrayImage| {
            let (mut s, mut s2, mut n) = ([0f32; 3], [0f32; 3], 0f32);
            for (x, y, v) in m.enumerate_pixels() {
                if v.0[0] > 127 {
                    let px = img.px(x, y);
                    for c in 0..3 {
                        s[c] += px[c];
                        s2[c] += px[c] * px[c];
                    }
                    n += 1.0;
                }
            }
            let n = n.max(1.0);
            let mean = s.map(|v| v / n);
            let std = [0, 1, 2].map(|c| (s2[c] / n - mean[c] * mean[c]).max(1.0).sqrt());
            (mean, std)
        };
        let (tmean, tstd) = stats(&alt, &tm);
        let (dmean, dstd) = stats(&src, dm);
        let grown = crate::forge::raster::Plane::from_gray(&tm).dilate(6);
        for y in 0..alt.h {
            for x in 0..alt.w {
                if grown.get(x, y) == 0.0 {
                    continue;
                }
                let sx = dc[0] + (x as f32 + 0.5 - tc[0]) / k - 0.5;
                let sy = dc[1] + (y as f32 + 0.5 - tc[1]) / k - 0.5;
                let mut v = src.sample(sx, sy);
                if correct {
                    v = [0, 1, 2].map(|c| (v[c] - dmean[c]) / dstd[c] * tstd[c] + tmean[c]);
                }
                alt.put(x, y, v);
            }
        }
        region_all = crate::forge::raster::mask_union(&region_all, &tm);
    }
    let mask = edit_weight(&region_all, p, 1.0, rng);
    let fake = blend(&face.image, &alt, &mask);
    Ok(Edit {
        fake,
        edit_mask: mask,
        params: format!(
            "region_swap:{} donor={} {} colour_match={correct}",
            targets.join("+").replace(' ', "_"),
            donor.source,
            p.describe()
        ),
        concepts: targets,
        artifact_kind: if correct {
            ArtifactKind::BlendingSeam
        } else {
            ArtifactKind::ColourMismatch
        },
    })
}
