//! End-to-end checks of `dfa forge` on the embedded Solvay photo (always available; cached
//! package photos are not used here so results do not depend on the machine).

use std::path::Path;
use std::sync::OnceLock;

use clap::Parser;
use dfa::forge::annotate::{artifact_mask, difference, MAX_AGE_TOKENS};
use dfa::forge::phrases::estimate_tokens;
use dfa::forge::raster::{mask_area, mask_iou, Plane};
use dfa::forge::recipes::{self, Family, Params};
use dfa::forge::record::{Sample, FORGERY_TYPES};
use dfa::forge::sources::{self, CropJitter, SourceReport};
use dfa::forge::writer::{self, ForgeConfig};
use dfa::forge::{layout, FaceCrop};
use rand::SeedableRng;

fn report() -> &'static SourceReport {
    static R: OnceLock<SourceReport> = OnceLock::new();
    R.get_or_init(|| sources::collect(Path::new("/nonexistent-sources-dir")))
}

fn crops() -> &'static Vec<FaceCrop> {
    static C: OnceLock<Vec<FaceCrop>> = OnceLock::new();
    C.get_or_init(|| {
        report()
            .faces
            .iter()
            .take(8)
            .map(|f| sources::make_crop(f, 256, CropJitter::NONE, &layout::regions_from_box))
            .collect()
    })
}

#[test]
fn family_names_are_the_forgery_types() {
    let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(names, FORGERY_TYPES);
    assert!(Family::from_name("nope").is_err());
}

#[test]
fn embedded_solvay_gives_many_identities_and_a_clean_split() {
    let rep = report();
    assert!(
        rep.faces.len() >= 20,
        "only {} Solvay faces",
        rep.faces.len()
    );
    assert!(
        rep.missing.len() >= 5,
        "cache files should be reported missing here"
    );
    let mut split_of = std::collections::BTreeMap::new();
    for f in &rep.faces {
        let prev = split_of.insert(f.identity.clone(), f.split.clone());
        assert!(
            prev.is_none() || prev.as_ref() == Some(&f.split),
            "{} in two splits",
            f.identity
        );
        assert_eq!(f.split, sources::split_of(&f.identity));
    }
    let counts = rep.split_counts();
    for s in ["train", "val", "test"] {
        assert!(
            counts.get(s).copied().unwrap_or(0) > 0,
            "no {s} faces: {counts:?}"
        );
    }
    // The red boxes drawn on the photo are gone.
    let red = rep.faces[0]
        .photo
        .pixels()
        .filter(|p| p.0[0] as i32 - p.0[1] as i32 > 40)
        .count();
    assert_eq!(red, 0);
}

#[test]
fn ppm_decoder_reads_p6() {
    let mut b = b"P6\n# c\n2 1\n255\n".to_vec();
    b.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    let img = sources::decode_ppm(&b).unwrap();
    assert_eq!(img.get_pixel(1, 0).0, [4, 5, 6]);
    assert!(sources::decode_ppm(b"P5\n1 1\n255\n\0").is_none());
}

/// Per recipe: mask non-empty and within 12 px (warp: 18) of the targeted concepts; pixels
/// outside the mask unchanged; same seed, same bytes; visible edits found by the top-5% mask
/// (IoU >= 0.5; face_swap, larger than 5% of the image: >= 50% of that mask inside the edit).
#[test]
fn every_recipe_edits_only_its_target_and_is_deterministic() {
    let faces = crops();
    let mut report_lines = Vec::new();
    for fam in Family::ALL {
        let (mut visible, mut good) = (0, 0);
        for k in 0..12usize {
            let face = &faces[k % faces.len()];
            let donor = &faces[(k + 3) % faces.len()];
            let run = || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + k as u64);
                let p = Params::random(&mut rng);
                recipes::apply(fam, face, Some(donor), &mut rng, &p).unwrap()
            };
            let e = run();
            let again = run();
            assert_eq!(
                e.fake.as_raw(),
                again.fake.as_raw(),
                "{} not deterministic",
                fam.name()
            );
            assert_eq!(e.edit_mask.as_raw(), again.edit_mask.as_raw());
            assert!(mask_area(&e.edit_mask, 0) > 0, "{}: empty mask", fam.name());
            assert!(!e.concepts.is_empty());
            let target = e.concepts.iter().fold(Plane::new(256, 256), |acc, c| {
                let m = Plane::from_gray(&face.regions[c]);
                Plane {
                    data: acc
                        .data
                        .iter()
                        .zip(&m.data)
                        .map(|(a, b)| a.max(*b))
                        .collect(),
                    ..acc
                }
            });
            let tol = if fam == Family::Warp { 18 } else { 12 };
            let allowed = target.dilate(tol);
            for (x, y, m) in e.edit_mask.enumerate_pixels() {
                if m.0[0] > 0 {
                    assert!(
                        allowed.get(x, y) > 0.0,
                        "{} {}: mask outside target at ({x},{y})",
                        fam.name(),
                        e.params
                    );
                } else {
                    assert_eq!(
                        face.image.get_pixel(x, y),
                        e.fake.get_pixel(x, y),
                        "{}: changed outside mask",
                        fam.name()
                    );
                }
            }
            // Visible = mean difference inside the (binarised) edit mask of at least 8 levels.
            let d = difference(&face.image, &e.fake);
            let (mut s, mut n) = (0f32, 0f32);
            for (x, y, m) in e.edit_mask.enumerate_pixels() {
                if m.0[0] > 127 {
                    s += d.get(x, y);
                    n += 1.0;
                }
            }
            if n > 0.0 && s / n >= 8.0 {
                visible += 1;
                let art = artifact_mask(&face.image, &e.fake, 0.05);
                let score = if fam == Family::FaceSwap {
                    // The inner face is larger than the top-5% budget: ask that the artifact
                    // mask lies in the edit instead (its precision).
                    let inside = art
                        .as_raw()
                        .iter()
                        .zip(e.edit_mask.as_raw())
                        .filter(|(a, m)| **a > 127 && **m > 127)
                        .count();
                    inside as f32 / mask_area(&art, 127).max(1) as f32
                } else {
                    mask_iou(&art, &e.edit_mask, 127)
                };
                good += (score >= 0.5) as usize;
            }
        }
        report_lines.push(format!(
            "{}: {good}/{visible} visible edits with IoU>=0.5",
            fam.name()
        ));
        assert!(
            visible >= 4,
            "{}: only {visible}/12 visible edits",
            fam.name()
        );
        assert!(
            good * 10 >= visible * 7,
            "{}: {good}/{visible} visible edits reach IoU 0.5",
            fam.name()
        );
    }
    println!("{}", report_lines.join("\n"));
}

fn cfg(n: usize) -> ForgeConfig {
    ForgeConfig {
        n,
        seed: 7,
        ..Default::default()
    }
}

fn lines(p: &Path) -> Vec<Sample> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn writer_is_deterministic_and_resumes_after_a_torn_line() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let s = writer::forge(
        a.path(),
        &cfg(8),
        report(),
        &layout::regions_from_box,
        false,
    )
    .unwrap();
    assert_eq!((s.real, s.fake), (8, 8));
    // B: stop early, then tear the last line as a kill mid-write would.
    writer::forge(
        b.path(),
        &cfg(3),
        report(),
        &layout::regions_from_box,
        false,
    )
    .unwrap();
    let data_b = b.path().join("data.jsonl");
    let bytes = std::fs::read(&data_b).unwrap();
    std::fs::write(&data_b, &bytes[..bytes.len() - 40]).unwrap();
    let s2 = writer::forge(
        b.path(),
        &cfg(8),
        report(),
        &layout::regions_from_box,
        false,
    )
    .unwrap();
    assert_eq!(s2.samples, 16);
    assert_eq!(
        std::fs::read(a.path().join("data.jsonl")).unwrap(),
        std::fs::read(&data_b).unwrap(),
        "resumed run differs from a straight run"
    );
    let recs = lines(&data_b);
    let ids: std::collections::BTreeSet<_> = recs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), recs.len(), "duplicate ids");
    for name in ["s7-000005-fake", "s7-000005-real"] {
        let p = |d: &Path| std::fs::read(d.join("images").join(format!("{name}.png"))).unwrap();
        assert_eq!(p(a.path()), p(b.path()));
    }
    // Other settings into the same directory are refused.
    let other = ForgeConfig { seed: 8, ..cfg(8) };
    assert!(writer::forge(b.path(), &other, report(), &layout::regions_from_box, false).is_err());
}

#[test]
fn records_are_complete_grounded_and_short() {
    let dir = tempfile::tempdir().unwrap();
    writer::forge(
        dir.path(),
        &cfg(14),
        report(),
        &layout::regions_from_box,
        false,
    )
    .unwrap();
    let recs = lines(&dir.path().join("data.jsonl"));
    let whole_face = recs.iter().filter(|r| r.concepts == ["face"]).count();
    assert!(
        whole_face * 5 <= recs.len() / 2,
        "{whole_face} fakes name only the whole face"
    );
    for r in &recs {
        assert!(dir.path().join(&r.image).exists());
        let tasks: Vec<&str> = r.tasks.iter().map(|t| t.task.as_str()).collect();
        for t in ["det", "cls", "age", "toe", "loc"] {
            assert!(tasks.contains(&t), "{}: no {t} task", r.id);
        }
        let age = &r.tasks.iter().find(|t| t.task == "age").unwrap().answer;
        assert!(estimate_tokens(age) <= MAX_AGE_TOKENS + 12, "{age}");
        if r.label == "real" {
            assert!(r.segments.is_empty() && r.artifact_mask.is_none());
            assert!(!age.contains("[SEG]"));
            assert!(r
                .tasks
                .iter()
                .filter(|t| t.positive.is_some())
                .all(|t| t.positive == Some(false)));
        } else {
            assert!(FORGERY_TYPES.contains(&r.forgery_type.as_deref().unwrap()));
            assert!(!r.segments.is_empty(), "{} has no segments", r.id);
            for seg in &r.segments {
                let m = image::open(dir.path().join(&seg.mask)).unwrap().to_luma8();
                assert_eq!(mask_area(&m, 127), seg.area_px);
            }
            // Every grounded phrase is one of the sample's segment phrases.
            for t in &r.tasks {
                for part in t.answer.split("<p> ").skip(1) {
                    let phrase = part.split(" </p>").next().unwrap();
                    assert!(
                        r.segments.iter().any(|s| s.phrase == phrase),
                        "{phrase:?} not a segment of {}",
                        r.id
                    );
                }
            }
            assert!(age.matches("[SEG]").count() >= 1);
            assert!(r
                .tasks
                .iter()
                .any(|t| t.task == "region" && t.positive == Some(true)));
        }
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    forge: dfa::cli::forge::ForgeArgs,
}

#[test]
fn cli_makes_data_and_a_contact_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let args = Cli::parse_from([
        "forge",
        "--out",
        out.to_str().unwrap(),
        "--n",
        "4",
        "--recipes",
        "warp,colour",
        "--packages",
        "/nonexistent",
        "--quiet",
    ]);
    dfa::cli::forge::run(&args.forge).unwrap();
    let recs = lines(&out.join("data.jsonl"));
    assert!(recs
        .iter()
        .filter_map(|r| r.forgery_type.as_deref())
        .all(|t| t == "warp" || t == "colour"));
    let sheet = dir.path().join("sheet.png");
    let args = Cli::parse_from([
        "forge",
        "show",
        out.join("data.jsonl").to_str().unwrap(),
        "--out",
        sheet.to_str().unwrap(),
        "--n",
        "4",
    ]);
    dfa::cli::forge::run(&args.forge).unwrap();
    assert!(image::open(&sheet).unwrap().width() > 300);
    let bad = Cli::parse_from([
        "forge",
        "--out",
        out.to_str().unwrap(),
        "--recipes",
        "teleport",
    ]);
    assert!(dfa::cli::forge::run(&bad.forge)
        .unwrap_err()
        .to_string()
        .contains("unknown recipe"));
}

/// Benchmark, not a test: `cargo test --release --test forge -- --ignored bench --nocapture`.
#[test]
#[ignore]
fn bench_forge_throughput_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let s = pool.install(|| {
        writer::forge(
            dir.path(),
            &cfg(200),
            report(),
            &layout::regions_from_box,
            false,
        )
        .unwrap()
    });
    println!(
        "forge: {} samples ({} pairs) in {:.2} s = {:.1} samples/s at 256x256 on 2 threads",
        s.made_this_run,
        s.made_this_run / 2,
        s.seconds,
        s.samples_per_second
    );
}

/// A small photo collection made from the (public-domain) Solvay photo: faces cut out and
/// enlarged 3×, one person with two photos (`prefix:_` rule), a person in a sub-folder, an
/// exact copy, a blurred face, a tiny face, a picture without a face and a macOS `._` file.
fn mini_collection(dir: &Path) -> Vec<[u32; 4]> {
    let photo = image::open("tests/data/solvay-1927.png").unwrap().to_rgb8();
    let boxes: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("tests/data/solvay-1927-boxes.json").unwrap(),
    )
    .unwrap();
    let face = |k: usize, pad: f32, scale: f32| {
        let b: Vec<f32> = boxes["faces"][k]["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let side = (b[2] - b[0]).max(b[3] - b[1]) * pad;
        let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
        let (x0, y0) = ((cx - side / 2.0) as u32, (cy - side / 2.0) as u32);
        let c = image::imageops::crop_imm(&photo, x0, y0, side as u32, side as u32).to_image();
        let s = (side * scale) as u32;
        image::imageops::resize(&c, s, s, image::imageops::FilterType::CatmullRom)
    };
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("source.json"),
        r#"{"name": "mini", "identity": "prefix:_"}"#,
    )
    .unwrap();
    face(0, 2.2, 3.0).save(dir.join("p1_a.png")).unwrap();
    face(0, 2.6, 2.6).save(dir.join("p1_b.png")).unwrap();
    face(1, 2.2, 3.0).save(dir.join("p2_a.png")).unwrap();
    face(1, 2.2, 3.0).save(dir.join("p2copy_a.png")).unwrap();
    face(2, 2.2, 3.0).save(dir.join("sub/photo.png")).unwrap();
    image::imageops::blur(&face(3, 2.2, 3.0), 5.0)
        .save(dir.join("blurred_a.png"))
        .unwrap();
    face(4, 2.2, 0.9).save(dir.join("tiny_a.png")).unwrap();
    image::RgbImage::from_pixel(200, 200, image::Rgb([128, 128, 128]))
        .save(dir.join("grey_a.png"))
        .unwrap();
    std::fs::write(dir.join("._p1_a.png"), b"AppleDouble").unwrap();
    Vec::new()
}

#[test]
fn a_photo_folder_is_imported_with_identities_and_filters_counted() {
    let dir = tempfile::tempdir().unwrap();
    let coll = dir.path().join("mini-photos");
    mini_collection(&coll);
    let (faces, stats) =
        dfa::forge::collections::read_collection(&coll, &Default::default()).unwrap();
    eprintln!("{stats:?}");
    for f in &faces {
        eprintln!(
            "{} {} {:?} sharp {}",
            f.identity,
            f.source,
            f.bbox,
            dfa::forge::collections::sharpness(&f.photo, f.bbox)
        );
    }
    assert_eq!(stats.name, "mini");
    assert_eq!(stats.photos, 8, "the ._ file is not a photo");
    let ids: std::collections::BTreeSet<&str> = faces.iter().map(|f| f.identity.as_str()).collect();
    assert_eq!(
        ids,
        ["mini:p1", "mini:p2", "mini:sub"].into_iter().collect()
    );
    assert_eq!(faces.iter().filter(|f| f.identity == "mini:p1").count(), 2);
    assert_eq!(stats.kept, 4);
    assert_eq!(stats.identities, 3);
    assert_eq!(stats.dropped.get("duplicate"), Some(&1));
    assert_eq!(stats.dropped.get("blurred"), Some(&1));
    assert_eq!(
        stats.dropped.get("no face").copied().unwrap_or(0)
            + stats.dropped.get("face too small").copied().unwrap_or(0),
        2,
        "{stats:?}"
    );
    assert!(faces
        .iter()
        .all(|f| f.collection == "mini" && f.split.is_empty()));
}

#[test]
fn held_out_sources_get_whole_splits_and_the_rest_split_by_person() {
    let dir = tempfile::tempdir().unwrap();
    let coll = dir.path().join("mini-photos");
    mini_collection(&coll);
    let holdout = [("solvay".to_string(), "test".to_string())]
        .into_iter()
        .collect();
    let rep = dfa::forge::collections::collect_all(
        Some(Path::new("/nonexistent-sources-dir")),
        &[coll.clone()],
        &Default::default(),
        &holdout,
    )
    .unwrap();
    assert!(rep
        .faces
        .iter()
        .filter(|f| f.collection == "solvay")
        .all(|f| f.split == "test"));
    for f in rep.faces.iter().filter(|f| f.collection == "mini") {
        assert!(f.split == "train" || f.split == "test-id", "{}", f.split);
    }
    // One person's photos share a split.
    let p1: Vec<&str> = rep
        .faces
        .iter()
        .filter(|f| f.identity == "mini:p1")
        .map(|f| f.split.as_str())
        .collect();
    assert!(p1.windows(2).all(|w| w[0] == w[1]));
    // A held-out source that nothing provides is an error, not an empty split.
    let bad = [("webmorph".to_string(), "val".to_string())]
        .into_iter()
        .collect();
    let err = dfa::forge::collections::collect_all(None, &[coll], &Default::default(), &bad)
        .err()
        .unwrap();
    assert!(err.to_string().contains("webmorph"), "{err}");

    // The forge writes the collection into every line and gives each share's split pairs.
    let cfg = ForgeConfig {
        n: 12,
        seed: 5,
        recipes: vec!["colour".into(), "noise".into()],
        shares: [("train".to_string(), 0.5), ("test".to_string(), 0.5)]
            .into_iter()
            .collect(),
        holdout: holdout_map(),
        ..Default::default()
    };
    let out = dir.path().join("ds");
    writer::forge(&out, &cfg, &rep, &layout::regions_from_box, false).unwrap();
    let recs = lines(&out.join("data.jsonl"));
    assert_eq!(recs.len(), 24);
    assert!(recs.iter().all(|s| s.collection.is_some()));
    let splits: std::collections::BTreeSet<&str> = recs.iter().map(|s| s.split.as_str()).collect();
    assert!(
        splits.contains("test") && splits.iter().any(|s| *s == "train" || *s == "test-id"),
        "{splits:?}"
    );
    for s in &recs {
        if s.split == "test" {
            assert_eq!(s.collection.as_deref(), Some("solvay"));
        }
    }
}

fn holdout_map() -> std::collections::BTreeMap<String, String> {
    [("solvay".to_string(), "test".to_string())]
        .into_iter()
        .collect()
}

#[test]
fn malformed_holdout_and_shares_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    for bad in [
        ["--holdout", "foo"],
        ["--holdout", "train=lfw"],
        ["--shares", "train=abc"],
    ] {
        let args = Cli::parse_from(
            ["forge", "--out", out.to_str().unwrap(), "--quiet"]
                .into_iter()
                .chain(bad),
        );
        let err = dfa::cli::forge::run(&args.forge).unwrap_err();
        assert_eq!(dfa::cli::exit_code(&err), 2, "{bad:?}: {err}");
        assert!(!out.exists(), "{bad:?} wrote {}", out.display());
    }
}
