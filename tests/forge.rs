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
/// outside the mask unchanged; same seed, same bytes; visible edits found by the top-5% mask.
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
                let iou = mask_iou(
                    &artifact_mask(&face.image, &e.fake, 0.05),
                    &e.edit_mask,
                    127,
                );
                good += (iou >= 0.5) as usize;
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
        "--sources",
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
