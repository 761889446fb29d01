//! FICT invariants on a frontal face (canonical landmarks placed in a box), name lookup, and
//! overlay drawing.

use dfa::face::canonical::landmarks_from_box;
use dfa::face::fict::Fict;
use dfa::face::raster;
use dfa::face::regions::{regions_for_landmarks, FaceRegions, LandmarkSource};

const W: u32 = 480;
const H: u32 = 560;
const BOX: [f32; 4] = [130.0, 170.0, 350.0, 390.0];

fn frontal() -> FaceRegions {
    frontal_scaled(1.0)
}

/// The canonical face in a box, everything scaled by `s`.
fn frontal_scaled(s: f32) -> FaceRegions {
    let b = BOX.map(|v| v * s);
    let (w, h) = ((W as f32 * s) as u32, (H as f32 * s) as u32);
    regions_for_landmarks(
        b,
        1.0,
        landmarks_from_box(b),
        LandmarkSource::CanonicalFallback,
        w,
        h,
    )
}

/// Siblings under each parent whose masks share more than this share of the smaller one.
const OVERLAP_TOLERANCE: f64 = 0.01;

#[test]
fn tree_is_large_and_well_formed() {
    let fict = Fict::builtin();
    let atoms = fict.atomic_names();
    assert!(atoms.len() >= 60, "{} atomic concepts", atoms.len());
    for c in &fict.concepts {
        for child in &c.children {
            let cc = fict.concept(child).expect("child exists");
            assert_eq!(cc.parent.as_deref(), Some(c.name.as_str()));
        }
    }
    // Every left concept has a right twin and vice versa.
    for c in &fict.concepts {
        if c.name.contains("left") || c.name.contains("right") {
            let twin = dfa::face::fict::swap_sides(&c.name);
            assert!(
                fict.concept(&twin).is_some(),
                "{} has no twin {twin}",
                c.name
            );
        }
    }
}

#[test]
fn atomic_siblings_do_not_overlap() {
    let f = frontal();
    let fict = Fict::builtin();
    for parent in fict.concepts.iter().filter(|c| !c.is_atomic()) {
        let kids: Vec<&str> = parent
            .children
            .iter()
            .map(String::as_str)
            .filter(|n| fict.concept(n).is_some_and(|c| c.is_atomic()))
            .collect();
        for (i, a) in kids.iter().enumerate() {
            for b in &kids[i + 1..] {
                let (ma, mb) = (f.masks.get(a).unwrap(), f.masks.get(b).unwrap());
                let o = raster::overlap(ma, mb) as f64;
                let small = raster::area(ma).min(raster::area(mb)).max(1) as f64;
                assert!(
                    o / small <= OVERLAP_TOLERANCE,
                    "{a} and {b} overlap by {o} px"
                );
            }
        }
    }
    // The whole parts layer is a partition: no two atomic parts share a pixel, and together
    // they cover the image.
    let parts: Vec<&str> = fict
        .atomic_names()
        .into_iter()
        .filter(|n| fict.layer(n) == Some("parts"))
        .collect();
    let mut count = vec![0u8; (W * H) as usize];
    for n in &parts {
        for (c, v) in count.iter_mut().zip(f.masks.get(n).unwrap().iter()) {
            *c += u8::from(*v > 0);
        }
    }
    assert!(
        count.iter().all(|&c| c == 1),
        "parts layer is not a partition"
    );
}

#[test]
fn parents_are_unions_of_children() {
    let f = frontal();
    let fict = Fict::builtin();
    for parent in fict.concepts.iter().filter(|c| !c.is_atomic()) {
        let mut union = raster::empty(W, H);
        for child in &parent.children {
            raster::union_in_place(&mut union, f.masks.get(child).unwrap());
        }
        assert_eq!(
            &union,
            f.masks.get(&parent.name).unwrap(),
            "{}",
            parent.name
        );
        // And equal to the union of all atomic descendants.
        let mut atoms = raster::empty(W, H);
        for a in fict.atomic_descendants(&parent.name) {
            raster::union_in_place(&mut atoms, f.masks.get(a).unwrap());
        }
        assert_eq!(
            &atoms,
            f.masks.get(&parent.name).unwrap(),
            "{}",
            parent.name
        );
    }
}

#[test]
fn every_atomic_concept_is_present() {
    let f = frontal();
    for name in Fict::builtin().atomic_names() {
        assert!(f.area(name) > 0, "{name} is empty");
    }
    // Named anatomy lands where it should on an upright frontal face.
    let cy = |n: &str| {
        let b = f.stats[n].bbox.unwrap();
        (b[1] + b[3]) as f32 / 2.0
    };
    let cx = |n: &str| {
        let b = f.stats[n].bbox.unwrap();
        (b[0] + b[2]) as f32 / 2.0
    };
    let top = |n: &str| f.stats[n].bbox.unwrap()[1];
    assert!(top("hair mass") < top("hairline") && top("hairline") < top("central forehead"));
    assert!(cy("central forehead") < cy("glabella"));
    assert!(cy("right eyebrow") < cy("right iris"));
    assert!(cy("right iris") < cy("nose tip"));
    assert!(cy("nose tip") < cy("upper lip"));
    assert!(cy("upper lip") < cy("lower lip"));
    assert!(cy("lower lip") < cy("chin"));
    assert!(cy("chin") < cy("neck"));
    // Subject's left is on the image right.
    assert!(cx("left iris") > cx("right iris"));
    assert!(cx("left ear") > cx("nose tip") && cx("nose tip") > cx("right ear"));
}

#[test]
fn face_interior_is_covered_by_face_parts() {
    // Pixels inside the FaceMesh outline should belong to named face parts, not to
    // background, neck, ears or hair.
    let f = frontal();
    let oval = [
        10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
        152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
    ];
    let poly: Vec<[f32; 2]> = oval.iter().map(|&i| f.landmarks[i]).collect();
    let mut inside = raster::empty(W, H);
    raster::fill_polygon(&mut inside, &poly, raster::ON);
    let mut eroded = raster::erode(&inside, 2.0);
    let total = raster::area(&eroded) as f64;
    raster::subtract_in_place(&mut eroded, f.masks.get("face").unwrap());
    let missed = raster::area(&eroded) as f64;
    assert!(
        missed / total < 0.005,
        "{missed} of {total} face pixels are in no face part"
    );
}

#[test]
fn left_and_right_twins_have_similar_areas() {
    let f = frontal();
    for c in &Fict::builtin().concepts {
        if c.name.split(' ').any(|w| w == "left") {
            let twin = dfa::face::fict::swap_sides(&c.name);
            let (a, b) = (f.area(&c.name) as f64, f.area(&twin) as f64);
            let ratio = a.min(b) / a.max(b);
            assert!(ratio > 0.7, "{} {a} vs {twin} {b}", c.name);
        }
    }
}

#[test]
fn boundary_band_follows_the_face_outline() {
    let f = frontal();
    let band = f.masks.get("face boundary").unwrap();
    // The outline points lie inside the band; the nose tip and the eyes do not.
    for i in [10, 234, 454, 152, 58, 288] {
        let [x, y] = f.landmarks[i];
        assert!(
            band.get_pixel(x as u32, y as u32)[0] > 0,
            "landmark {i} not in the band"
        );
    }
    for i in [1, 159, 386] {
        let [x, y] = f.landmarks[i];
        assert_eq!(
            band.get_pixel(x as u32, y as u32)[0],
            0,
            "landmark {i} in the band"
        );
    }
}

#[test]
fn lookup_names_synonyms_and_viewer_sides() {
    let fict = Fict::builtin();
    let name = |q: &str| fict.lookup(q).map(|c| c.name.clone());
    assert_eq!(name("lips").unwrap(), "lips");
    assert_eq!(name("Mouth").unwrap(), "mouth");
    assert_eq!(name("brow").unwrap(), "eyebrows");
    assert_eq!(name("left eyebrow").unwrap(), "left eyebrow");
    assert_eq!(name("the Left Brow").unwrap(), "left eyebrow");
    assert_eq!(name("subject's left eye").unwrap(), "left eye");
    assert_eq!(name("top lip").unwrap(), "upper lip");
    // The viewer's left is the subject's right.
    assert_eq!(name("image-left eye").unwrap(), "right eye");
    assert_eq!(name("image left eyebrow").unwrap(), "right eyebrow");
    assert_eq!(
        name("image-right upper eyelid").unwrap(),
        "left upper eyelid"
    );
    let err = fict.lookup("left eyebrw").unwrap_err();
    assert_eq!(
        err.suggestions.first().map(String::as_str),
        Some("left eyebrow")
    );
    assert!(
        err.to_string().contains("did you mean: left eyebrow"),
        "{err}"
    );
    assert!(fict.lookup("elbow").is_err());
}

#[test]
fn overlay_colours_land_on_their_masks() {
    use dfa::report::overlay::{draw_legend, draw_overlay, PALETTE};
    let f = frontal();
    let img = image::RgbImage::from_pixel(W, H, image::Rgb([128, 128, 128]));
    let names = ["right iris", "nose tip", "chin"];
    let layers: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (f.masks.get(n).unwrap().clone(), PALETTE[i], n.to_string()))
        .collect();
    let out = draw_overlay(&img, &layers, 0.5);
    assert_eq!(out.dimensions(), img.dimensions());
    let blend = |c: [u8; 3]| c.map(|v| ((v as f32 + 128.0) / 2.0).round() as u8);
    for (mask, colour, name) in &layers {
        let (mut tinted, mut total) = (0, 0);
        for (x, y, p) in mask.enumerate_pixels() {
            if p[0] > 0 {
                total += 1;
                let o = out.get_pixel(x, y).0;
                // Tint, outline (solid colour) or label (colour box, black/white digits).
                if o == blend(*colour) || o == *colour {
                    tinted += 1;
                }
            }
        }
        assert!(
            tinted as f32 > 0.8 * total as f32,
            "{name}: {tinted}/{total}"
        );
    }
    // Outside every mask the image is untouched (labels stay inside their masks' boxes).
    let mut any = raster::empty(W, H);
    for (m, _, _) in &layers {
        raster::union_in_place(&mut any, &raster::dilate(m, 12.0));
    }
    for (x, y, p) in out.enumerate_pixels() {
        if any.get_pixel(x, y)[0] == 0 {
            assert_eq!(p.0, [128, 128, 128], "pixel {x},{y} changed");
        }
    }
    // The legend shows each colour as a swatch.
    let legend = draw_legend(W, &layers, 1);
    for (_, colour, _) in &layers {
        assert!(legend.pixels().filter(|p| p.0 == *colour).count() >= 64);
    }
}

/// Dev aid: `DFA_PREVIEW_DIR=/tmp/x cargo test --release --test fict -- --ignored preview`
/// writes the overlays of the synthetic frontal face.
#[test]
#[ignore]
fn preview() {
    use dfa::report::overlay::{overlay_with_legend, PALETTE};
    let dir = std::env::var("DFA_PREVIEW_DIR").unwrap_or_else(|_| "/tmp".into());
    let f = frontal_scaled(2.5);
    let fict = Fict::builtin();
    let (w, h) = f.masks.get("background").unwrap().dimensions();
    let mut img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 200, 200]));
    for p in &f.landmarks {
        let (x, y) = (p[0].round() as i64, p[1].round() as i64);
        if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
            img.put_pixel(x as u32, y as u32, image::Rgb([0, 0, 0]));
        }
    }
    for (kind, names) in [
        ("atoms", fict.atomic_names()),
        ("boundary", fict.atomic_descendants("face boundary")),
    ] {
        let layers: Vec<_> = names
            .iter()
            .filter(|n| kind != "atoms" || fict.layer(n) == Some("parts"))
            .enumerate()
            .map(|(i, n)| {
                (
                    f.masks.get(n).unwrap().clone(),
                    PALETTE[i % 12],
                    n.to_string(),
                )
            })
            .collect();
        overlay_with_legend(&img, &layers, 0.6)
            .save(format!("{dir}/preview_{kind}.png"))
            .unwrap();
        // Flat colour map without labels, for close inspection.
        let mut flat = img.clone();
        for (k, (m, _, _)) in layers.iter().enumerate() {
            let c = [
                (k * 67 % 200 + 40) as u8,
                (k * 131 % 200 + 40) as u8,
                (k * 29 % 200 + 40) as u8,
            ];
            for (p, v) in flat.pixels_mut().zip(m.iter()) {
                if *v > 0 {
                    *p = image::Rgb(c);
                }
            }
        }
        for p in &f.landmarks {
            let (x, y) = (p[0].round() as u32, p[1].round() as u32);
            if x < w && y < h {
                flat.put_pixel(x, y, image::Rgb([0, 0, 0]));
            }
        }
        flat.save(format!("{dir}/flat_{kind}.png")).unwrap();
    }
}

/// Timing, not a pass/fail check:
/// `cargo test --release --test fict -- --ignored bench --nocapture`.
#[test]
#[ignore]
fn bench_regions() {
    use std::time::Instant;
    for side in [512u32, 1024, 2048] {
        let b = [
            side as f32 * 0.3,
            side as f32 * 0.3,
            side as f32 * 0.7,
            side as f32 * 0.7,
        ];
        let lm = landmarks_from_box(b);
        let t = Instant::now();
        let n = 3;
        for _ in 0..n {
            std::hint::black_box(Fict::builtin().rasterize(&lm, side, side));
        }
        println!(
            "rasterize {side}x{side}: {:.1} ms per face",
            t.elapsed().as_secs_f64() * 1000.0 / n as f64
        );
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/solvay-1927.png");
    let img = dfa::imageio::load_rgb(std::path::Path::new(path)).unwrap();
    let t = Instant::now();
    let faces = dfa::face::detect_faces(&img, Default::default());
    println!(
        "detect {}x{}: {} faces in {:.0} ms",
        img.width(),
        img.height(),
        faces.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
}
