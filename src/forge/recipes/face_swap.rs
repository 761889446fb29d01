//! Face swap: the inner face of another identity (brows, eyes, nose, lips, cheeks and the skin
//! between them: the convex hull of those concept masks, clipped to their neighbourhood and to
//! the face oval; forehead, jaw line and hair stay this face's) replaces this one's.
//!
//! * Alignment: a least-squares similarity transform (scale, rotation, translation) fitted on
//!   corresponding landmarks when both crops carry the same number (>= 3); otherwise, or when
//!   the fit is degenerate, the centroid and box scale of the inner regions (as `region_swap`).
//! * Colour: Reinhard-style transfer, the warped donor's per-channel RGB mean and std inside
//!   the region matched to the target's (`matched`, 3 in 4), or left as is (`raw`, the colour
//!   mismatch is then the trace).
//! * Blend: hard edges, or a Gaussian feather (sigma 2..4 px) placed inside the region's edge,
//!   so the weight never leaves the region grown by 2 px.

use rand::Rng;

use super::{choose_op, choose_targets, region_of, Params};
use crate::forge::raster::{
    blend, blur_channels, mask_area, mask_bbox, mask_centroid, Plane, Rgbf,
};
use crate::forge::{ArtifactKind, Edit, FaceCrop, ForgeError};

/// The inner-face concepts (the irises and the upper and lower lip lie inside these).
const INNER: &[&str] = &[
    "left eyebrow",
    "right eyebrow",
    "left eye",
    "right eye",
    "nose",
    "lips",
    "left cheek",
    "right cheek",
];
const OPS: &[&str] = &["matched", "raw"];

fn has(face: &FaceCrop, name: &str) -> bool {
    face.regions
        .get(name)
        .is_some_and(|m| mask_area(m, 127) > 8)
}

/// Binary dilation of a 0/1 mask by a square of half-size `r` (pixels outside count as 0):
/// sliding-window counts along rows, then columns, O(w·h) whatever `r`.
fn dilate_bin(m: &[u8], w: usize, h: usize, r: usize) -> Vec<u8> {
    let pass = |src: &[u8], lines: usize, len: usize, at: &dyn Fn(usize, usize) -> usize| {
        let mut dst = vec![0u8; src.len()];
        for l in 0..lines {
            let mut cnt: usize = (0..r.min(len)).map(|i| src[at(l, i)] as usize).sum();
            for i in 0..len {
                if i + r < len {
                    cnt += src[at(l, i + r)] as usize;
                }
                if i > r {
                    cnt -= src[at(l, i - r - 1)] as usize;
                }
                dst[at(l, i)] = (cnt > 0) as u8;
            }
        }
        dst
    };
    let rows = pass(m, h, w, &|y, x| y * w + x);
    pass(&rows, w, h, &|x, y| y * w + x)
}

/// Binary erosion (pixels outside count as 1): `1 - dilate(1 - m)`.
fn erode_bin(m: &[u8], w: usize, h: usize, r: usize) -> Vec<u8> {
    let inv: Vec<u8> = m.iter().map(|v| 1 - v).collect();
    dilate_bin(&inv, w, h, r).iter().map(|v| 1 - v).collect()
}

fn bin(m: &image::GrayImage) -> Vec<u8> {
    m.as_raw().iter().map(|&v| (v > 127) as u8).collect()
}

fn count(m: &[u8]) -> usize {
    m.iter().map(|&v| v as usize).sum()
}

/// The convex hull of a 0/1 mask's pixel centres, filled (0/1).
fn hull_fill(m: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut pts: Vec<[f32; 2]> = Vec::new();
    for y in 0..h {
        let row = &m[y * w..(y + 1) * w];
        if let (Some(a), Some(b)) = (
            row.iter().position(|&v| v > 0),
            row.iter().rposition(|&v| v > 0),
        ) {
            pts.push([a as f32 + 0.5, y as f32 + 0.5]);
            pts.push([b as f32 + 0.5, y as f32 + 0.5]);
        }
    }
    let mut out = vec![0u8; m.len()];
    if pts.is_empty() {
        return out;
    }
    // Andrew's monotone chain.
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let cross = |o: [f32; 2], a: [f32; 2], b: [f32; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f32; 2]> = Vec::with_capacity(pts.len() + 1);
    for pass in 0..2 {
        let start = hull.len();
        let it: Box<dyn Iterator<Item = &[f32; 2]>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in it {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    // Fill row by row: the span of the hull's edges at the row's centre line.
    let (y0, y1) = (
        pts.iter().map(|p| p[1]).fold(f32::MAX, f32::min),
        pts.iter().map(|p| p[1]).fold(0.0, f32::max),
    );
    for y in (y0 as usize)..=(y1 as usize).min(h - 1) {
        let yc = y as f32 + 0.5;
        let (mut lo, mut hi) = (f32::MAX, f32::MIN);
        for i in 0..hull.len().max(1) {
            let (p, q) = (hull[i], hull[(i + 1) % hull.len()]);
            if (p[1] - yc) * (q[1] - yc) > 0.0 {
                continue;
            }
            let xs = if (q[1] - p[1]).abs() < 1e-6 {
                [p[0], q[0]]
            } else {
                let x = p[0] + (yc - p[1]) * (q[0] - p[0]) / (q[1] - p[1]);
                [x, x]
            };
            lo = lo.min(xs[0].min(xs[1]));
            hi = hi.max(xs[0].max(xs[1]));
        }
        for x in 0..w {
            let xc = x as f32 + 0.5;
            if xc >= lo - 1e-3 && xc <= hi + 1e-3 {
                out[y * w + x] = 1;
            }
        }
    }
    out
}

/// Least-squares similarity `to ≈ (a·x − b·y + tx, b·x + a·y + ty)` of point pairs, as
/// `[a, b, tx, ty]`; `None` for fewer than 3 pairs or (near-)coincident points.
pub(crate) fn similarity(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<[f32; 4]> {
    let n = from.len();
    if n < 3 || to.len() != n {
        return None;
    }
    let mean = |p: &[[f32; 2]]| {
        let s = p
            .iter()
            .fold([0f64; 2], |a, q| [a[0] + q[0] as f64, a[1] + q[1] as f64]);
        [s[0] / n as f64, s[1] / n as f64]
    };
    let (mf, mt) = (mean(from), mean(to));
    let (mut sxx, mut sa, mut sb) = (0f64, 0f64, 0f64);
    for (p, q) in from.iter().zip(to) {
        let (x, y) = (p[0] as f64 - mf[0], p[1] as f64 - mf[1]);
        let (u, v) = (q[0] as f64 - mt[0], q[1] as f64 - mt[1]);
        sxx += x * x + y * y;
        sa += x * u + y * v;
        sb += x * v - y * u;
    }
    if sxx < 1e-3 * n as f64 {
        return None;
    }
    let (a, b) = (sa / sxx, sb / sxx);
    let (tx, ty) = (mt[0] - a * mf[0] + b * mf[1], mt[1] - b * mf[0] - a * mf[1]);
    Some([a as f32, b as f32, tx as f32, ty as f32])
}

/// Per-channel mean and std (std at least 1) of `n` samples.
fn stats(s: &[f64; 3], s2: &[f64; 3], n: f64) -> ([f32; 3], [f32; 3]) {
    let n = n.max(1.0);
    let mean = s.map(|v| v / n);
    let std = [0, 1, 2].map(|c| (s2[c] / n - mean[c] * mean[c]).max(1.0).sqrt() as f32);
    (mean.map(|v| v as f32), std)
}

pub fn apply(
    face: &FaceCrop,
    donor: &FaceCrop,
    rng: &mut impl Rng,
    p: &Params,
) -> Result<Edit, ForgeError> {
    let na = |reason: String| ForgeError::NotApplicable {
        recipe: "face_swap".into(),
        reason,
    };
    let targets: Vec<String> = match &p.target {
        Some(_) => choose_targets("face_swap", face, INNER, p, rng, INNER.len())?,
        None => INNER
            .iter()
            .filter(|n| has(face, n))
            .map(|n| n.to_string())
            .collect(),
    };
    if targets.is_empty() {
        return Err(na(format!("the face has none of the regions {INNER:?}")));
    }
    if let Some(t) = targets.iter().find(|t| !has(donor, t)) {
        return Err(na(format!("the donor has no \"{t}\" region")));
    }
    let op = match p.op {
        Some(_) => choose_op("face_swap", OPS, p, rng)?,
        None => OPS[rng.random_bool(0.25) as usize],
    };
    let matched = op == "matched";
    let (w, h) = face.image.dimensions();

    // The region: the convex hull of the inner concepts, kept within ~6.5% of the face width
    // (at most 10 px) of them, so gaps fill but nothing reaches into the forehead or the jaw,
    // and inside the face oval less 3 px.
    let (wu, hu) = (w as usize, h as usize);
    let union = region_of(face, &targets);
    let r = (((face.face_bbox[2] - face.face_bbox[0]) * 0.065).round() as usize).clamp(2, 10);
    let ub = bin(&union);
    let near = dilate_bin(&ub, wu, hu, r);
    let mut region = hull_fill(&ub, wu, hu);
    region.iter_mut().zip(&near).for_each(|(v, n)| *v &= n);
    if let Some(f) = face.regions.get("face").filter(|_| has(face, "face")) {
        let oval = erode_bin(&bin(f), wu, hu, 3);
        region.iter_mut().zip(&oval).for_each(|(v, o)| *v &= o);
    }
    let support = dilate_bin(&region, wu, hu, 2);

    // Alignment: target pixel centre → donor position.
    let fit = (face.landmarks.len() == donor.landmarks.len())
        .then(|| similarity(&face.landmarks, &donor.landmarks))
        .flatten()
        .filter(|t| (0.3..3.3).contains(&t[0].hypot(t[1])));
    let (tf, align) = match fit {
        Some(t) => (t, "landmarks"),
        None => {
            let dm = region_of(donor, &targets);
            let (Some(tc), Some(dc), Some(tb), Some(db)) = (
                mask_centroid(&union, 127),
                mask_centroid(&dm, 127),
                mask_bbox(&union, 127),
                mask_bbox(&dm, 127),
            ) else {
                return Err(na("empty inner-face region".into()));
            };
            let k = ((tb[2] - tb[0]) / (db[2] - db[0]).max(1.0)
                + (tb[3] - tb[1]) / (db[3] - db[1]).max(1.0))
                / 2.0;
            let a = 1.0 / k.max(1e-3);
            ([a, 0.0, dc[0] - a * tc[0], dc[1] - a * tc[1]], "boxes")
        }
    };

    // Warp the donor into the support, gathering colour statistics inside the region.
    let src = Rgbf::from_rgb(&donor.image);
    let mut alt = Rgbf::from_rgb(&face.image);
    let idx: Vec<u32> = (0..w * h).filter(|&i| support[i as usize] > 0).collect();
    let mut warped: Vec<[f32; 3]> = Vec::with_capacity(idx.len());
    let (mut ts, mut ts2, mut ds, mut ds2, mut n) =
        ([0f64; 3], [0f64; 3], [0f64; 3], [0f64; 3], 0f64);
    for &i in &idx {
        let (x, y) = (i % w, i / w);
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        let v = src.sample(
            tf[0] * px - tf[1] * py + tf[2] - 0.5,
            tf[1] * px + tf[0] * py + tf[3] - 0.5,
        );
        if region[i as usize] > 0 {
            let t = alt.px(x, y);
            for c in 0..3 {
                ts[c] += t[c] as f64;
                ts2[c] += (t[c] * t[c]) as f64;
                ds[c] += v[c] as f64;
                ds2[c] += (v[c] * v[c]) as f64;
            }
            n += 1.0;
        }
        warped.push(v);
    }
    if n < 16.0 {
        return Err(na(
            "the inner-face region is empty inside the face oval".into()
        ));
    }
    let ((tmean, tstd), (dmean, dstd)) = (stats(&ts, &ts2, n), stats(&ds, &ds2, n));
    let gain = [0, 1, 2].map(|c| (tstd[c] / dstd[c]).clamp(0.5, 2.0));
    for (&i, v) in idx.iter().zip(&warped) {
        let v = if matched {
            [0, 1, 2].map(|c| (v[c] - dmean[c]) * gain[c] + tmean[c])
        } else {
            *v
        };
        alt.put(i % w, i / w, v);
    }

    // Blend weight: hard = the region; soft = the region eroded by 1.5 sigma, then feathered.
    let opacity = 0.85 + 0.15 * p.strength.clamp(0.0, 1.0);
    let sigma = if p.hard_edge {
        0.0
    } else {
        rng.random_range(2.0..4.0f32)
    };
    let base = if p.hard_edge {
        region
    } else {
        let core = erode_bin(&region, wu, hu, (1.5 * sigma).ceil() as usize);
        if count(&core) * 4 >= count(&region) {
            core
        } else {
            erode_bin(&region, wu, hu, 1) // a thin forced target: feather at its edge
        }
    };
    let mut weight = Plane {
        w,
        h,
        data: base.iter().map(|&v| v as f32).collect(),
    };
    if !p.hard_edge {
        // Blur only the window that can reach the support (same result as a full blur).
        let m = (3.0 * sigma).ceil() as usize + 1;
        let xs = idx.iter().map(|&i| i as usize % wu);
        let (x0, x1) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
        let (y0, y1) = (idx[0] as usize / wu, idx[idx.len() - 1] as usize / wu);
        let (x0, y0) = (x0.saturating_sub(m), y0.saturating_sub(m));
        let (x1, y1) = ((x1 + m + 1).min(wu), (y1 + m + 1).min(hu));
        let (ww, wh) = (x1 - x0, y1 - y0);
        let mut win: Vec<f32> = (y0..y1)
            .flat_map(|y| weight.data[y * wu + x0..y * wu + x1].iter().copied())
            .collect();
        blur_channels(&mut win, ww as u32, wh as u32, 1, sigma);
        for (j, y) in (y0..y1).enumerate() {
            weight.data[y * wu + x0..y * wu + x1].copy_from_slice(&win[j * ww..(j + 1) * ww]);
        }
    }
    for (v, &s) in weight.data.iter_mut().zip(&support) {
        *v = if s > 0 { (*v * opacity).min(1.0) } else { 0.0 };
    }
    let mask = weight.to_gray();
    let fake = blend(&face.image, &alt, &mask);
    Ok(Edit {
        fake,
        edit_mask: mask,
        params: format!(
            "face_swap:{op} donor={} align={align} {} feather={sigma:.2}",
            donor.source,
            p.describe()
        ),
        concepts: targets,
        artifact_kind: if matched {
            ArtifactKind::BlendingSeam
        } else {
            ArtifactKind::ColourMismatch
        },
    })
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};
    use rand::SeedableRng;

    use super::*;
    use crate::forge::layout;
    use crate::forge::recipes::{self, Family};

    /// A synthetic face: textured skin in the face oval, dark brows and eyes, red lips.
    fn synth(identity: &str, skin: [f32; 3], bbox: [f32; 4], freq: f32) -> FaceCrop {
        let blank = RgbImage::new(256, 256);
        let (landmarks, regions) = layout::regions_from_box(&blank, bbox);
        let on = |n: &str, x: u32, y: u32| regions[n].get_pixel(x, y).0[0] > 127;
        let image = RgbImage::from_fn(256, 256, |x, y| {
            let t = ((x as f32 * freq).sin() * (y as f32 * freq * 0.7).cos()) * 12.0;
            let c = if on("left eye", x, y) || on("right eye", x, y) {
                [40.0, 35.0, 30.0]
            } else if on("left eyebrow", x, y) || on("right eyebrow", x, y) {
                [70.0, 50.0, 35.0]
            } else if on("lips", x, y) {
                [skin[0] * 0.9, skin[1] * 0.45, skin[2] * 0.5]
            } else if on("face", x, y) {
                skin
            } else {
                [60.0 + x as f32 * 0.3, 90.0, 120.0 + y as f32 * 0.2]
            };
            Rgb(c.map(|v| (v + t).clamp(0.0, 255.0) as u8))
        });
        FaceCrop {
            image,
            identity: identity.into(),
            source: format!("{identity}.png#0"),
            face_bbox: bbox,
            landmarks,
            regions,
        }
    }

    fn pair() -> (FaceCrop, FaceCrop) {
        (
            synth(
                "alice",
                [215.0, 170.0, 140.0],
                [51.0, 51.0, 205.0, 205.0],
                0.31,
            ),
            synth("bob", [120.0, 85.0, 65.0], [62.0, 44.0, 196.0, 212.0], 0.17),
        )
    }

    fn params(hard: bool, op: &str) -> Params {
        Params {
            strength: 0.7,
            hard_edge: hard,
            target: None,
            op: Some(op.into()),
        }
    }

    fn mean_in(img: &RgbImage, m: &image::GrayImage, thr: u8) -> [f32; 3] {
        let (mut s, mut n) = ([0f32; 3], 0f32);
        for (x, y, v) in m.enumerate_pixels() {
            if v.0[0] > thr {
                let p = img.get_pixel(x, y).0;
                (0..3).for_each(|c| s[c] += p[c] as f32);
                n += 1.0;
            }
        }
        s.map(|v| v / n.max(1.0))
    }

    #[test]
    fn swap_changes_only_the_inner_face_inside_the_box() {
        let (face, donor) = pair();
        for seed in 0..6u64 {
            let run = || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let p = Params::random(&mut rng);
                recipes::apply(Family::FaceSwap, &face, Some(&donor), &mut rng, &p).unwrap()
            };
            let e = run();
            assert_eq!(e.fake.as_raw(), run().fake.as_raw(), "not deterministic");
            assert!(e.params.starts_with("face_swap:"), "{}", e.params);
            assert!(e.concepts.contains(&"nose".to_string()));
            assert!(!e.concepts.iter().any(|c| c == "face" || c == "chin"));
            let [x0, y0, x1, y1] = face.face_bbox;
            let near = region_of(&face, &e.concepts);
            let near = Plane::from_gray(&near).dilate(12);
            let (mut diff, mut n) = (0f32, 0f32);
            for (x, y, m) in e.edit_mask.enumerate_pixels() {
                let (a, b) = (face.image.get_pixel(x, y).0, e.fake.get_pixel(x, y).0);
                if m.0[0] == 0 {
                    assert_eq!(a, b, "changed outside the mask at ({x},{y})");
                    continue;
                }
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                assert!(
                    fx > x0 && fx < x1 && fy > y0 && fy < y1,
                    "outside box ({x},{y})"
                );
                assert!(near.get(x, y) > 0.0, "far from the concepts at ({x},{y})");
                if m.0[0] > 127 {
                    diff += (0..3)
                        .map(|c| (a[c] as f32 - b[c] as f32).abs())
                        .sum::<f32>()
                        / 3.0;
                    n += 1.0;
                }
            }
            // The inner face is a large part of the box, and visibly different.
            assert!(
                n > 0.2 * (x1 - x0) * (y1 - y0),
                "{seed}: only {n} px swapped"
            );
            assert!(diff / n > 8.0, "{seed}: mean change {}", diff / n);
        }
    }

    #[test]
    fn hard_edges_are_binary_and_soft_edges_feathered() {
        let (face, donor) = pair();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let hard = apply(&face, &donor, &mut rng, &params(true, "matched")).unwrap();
        let top = (255.0 * (0.85 + 0.15 * 0.7f32)).round() as u8;
        assert!(hard
            .edit_mask
            .pixels()
            .all(|v| v.0[0] == 0 || v.0[0] == top));
        let soft = apply(&face, &donor, &mut rng, &params(false, "matched")).unwrap();
        let mid = soft
            .edit_mask
            .pixels()
            .filter(|v| v.0[0] > 0 && v.0[0] < 200)
            .count();
        assert!(mid > 200, "only {mid} feathered pixels");
        assert!(soft.params.contains("edge=soft"), "{}", soft.params);
    }

    #[test]
    fn colour_transfer_moves_the_mean_towards_the_target() {
        let (face, donor) = pair();
        let run = |op: &str| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(11);
            apply(&face, &donor, &mut rng, &params(false, op)).unwrap()
        };
        let (m, r) = (run("matched"), run("raw"));
        assert_eq!(m.edit_mask, r.edit_mask);
        assert_eq!(m.artifact_kind, ArtifactKind::BlendingSeam);
        assert_eq!(r.artifact_kind, ArtifactKind::ColourMismatch);
        let target = mean_in(&face.image, &m.edit_mask, 230);
        let dist = |a: [f32; 3]| {
            (0..3)
                .map(|c| (a[c] - target[c]).powi(2))
                .sum::<f32>()
                .sqrt()
        };
        let (dm, dr) = (
            dist(mean_in(&m.fake, &m.edit_mask, 230)),
            dist(mean_in(&r.fake, &r.edit_mask, 230)),
        );
        assert!(dr > 40.0, "the donor should differ in colour: {dr}");
        assert!(dm < 0.25 * dr, "matched {dm} vs raw {dr}");
    }

    #[test]
    fn similarity_fit_recovers_a_known_transform_and_falls_back_to_boxes() {
        let from = [
            [10.0, 20.0],
            [50.0, 22.0],
            [30.0, 45.0],
            [15.0, 60.0],
            [47.0, 61.0],
        ];
        let (s, th) = (1.2f32, 0.1f32);
        let (a, b) = (s * th.cos(), s * th.sin());
        let to: Vec<[f32; 2]> = from
            .iter()
            .map(|p| [a * p[0] - b * p[1] + 5.0, b * p[0] + a * p[1] - 3.0])
            .collect();
        let t = similarity(&from, &to).unwrap();
        for (u, v) in t.iter().zip([a, b, 5.0, -3.0]) {
            assert!((u - v).abs() < 1e-3, "{t:?}");
        }
        assert!(similarity(&from[..2], &to[..2]).is_none());
        assert!(similarity(&[[1.0, 1.0]; 4], &[[2.0, 2.0]; 4]).is_none());

        let (face, mut donor) = pair();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let e = apply(&face, &donor, &mut rng, &params(false, "matched")).unwrap();
        assert!(e.params.contains("align=landmarks"), "{}", e.params);
        donor.landmarks.truncate(2);
        let e = apply(&face, &donor, &mut rng, &params(false, "matched")).unwrap();
        assert!(e.params.contains("align=boxes"), "{}", e.params);
    }

    #[test]
    fn not_applicable_without_donor_or_regions() {
        let (face, mut donor) = pair();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let p = params(false, "matched");
        let na = |r: Result<Edit, ForgeError>| matches!(r, Err(ForgeError::NotApplicable { .. }));
        assert!(na(recipes::apply(
            Family::FaceSwap,
            &face,
            None,
            &mut rng,
            &p
        )));
        assert!(na(apply(&donor, &face, &mut rng, &params(false, "nope"))));
        let mut bare = face.clone();
        bare.regions.clear();
        assert!(na(apply(&bare, &donor, &mut rng, &p)));
        donor.regions.clear();
        assert!(na(apply(&face, &donor, &mut rng, &p)));
        assert!(Family::FaceSwap.needs_donor());
        assert_eq!(Family::from_name("face_swap").unwrap(), Family::FaceSwap);
        assert_eq!(
            crate::forge::record::FORGERY_TYPES.last(),
            Some(&Family::FaceSwap.name())
        );
    }

    #[test]
    fn one_call_is_fast() {
        let (face, donor) = pair();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let t = std::time::Instant::now();
        for _ in 0..5 {
            apply(&face, &donor, &mut rng, &params(false, "matched")).unwrap();
        }
        let ms = t.elapsed().as_secs_f32() * 1000.0 / 5.0;
        println!("face_swap: {ms:.1} ms per call at 256x256");
        assert!(ms < 100.0, "{ms:.1} ms per call");
    }
}
