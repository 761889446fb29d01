//! `dfa eval` end to end on a tiny dataset written here: 2 reals, 2 fakes, a malformed line and
//! a sample whose image is missing, scored with the always-fake baseline. The arguments go
//! through the real clap parser of `EvalArgs`.

use std::path::Path;

use clap::Parser;
use image::{GrayImage, Luma, RgbImage};
use serde_json::{json, Value};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: dfa::cli::eval::EvalArgs,
}

fn rect_mask(x0: u32, y0: u32, x1: u32, y1: u32) -> GrayImage {
    GrayImage::from_fn(20, 20, |x, y| {
        Luma([if x >= x0 && x < x1 && y >= y0 && y < y1 {
            255
        } else {
            0
        }])
    })
}

/// Writes the dataset; returns its path.
fn write_dataset(dir: &Path) -> std::path::PathBuf {
    for name in ["r1", "r2", "f1", "f2", "t1"] {
        RgbImage::from_pixel(20, 20, image::Rgb([120, 90, 80]))
            .save(dir.join(format!("{name}.png")))
            .unwrap();
    }
    // Artifact masks. The face box is [5, 5, 15, 15] (100 px).
    // f1: x 5..15, y 5..10 (50 px, inside the face box)   -> IoU 50/100 = 0.5, F1 100/150.
    // f2: x 0..10, y 0..10 (100 px, 25 px inside the box) -> IoU 25/175,       F1 50/200.
    rect_mask(5, 5, 15, 10)
        .save(dir.join("f1_art.png"))
        .unwrap();
    rect_mask(0, 0, 10, 10)
        .save(dir.join("f2_art.png"))
        .unwrap();
    // f1's ground-truth segments: two 25 px halves, each IoU 25/100 with the face box.
    rect_mask(5, 5, 10, 10).save(dir.join("f1_le.png")).unwrap();
    rect_mask(10, 5, 15, 10)
        .save(dir.join("f1_re.png"))
        .unwrap();

    let base = |id: &str, label: &str| {
        json!({"id": id, "split": "test", "identity": id, "image": format!("{id}.png"),
               "label": label, "face_bbox": [5.0, 5.0, 15.0, 15.0]})
    };
    let mut f1 = base("f1", "fake");
    f1["forgery_type"] = json!("warp");
    f1["recipe"] = json!("warp_eyes");
    f1["artifact_mask"] = json!("f1_art.png");
    f1["concepts"] = json!(["left eye", "right eye"]);
    f1["segments"] = json!([
        {"concept": "left eye", "phrase": "the left eye", "mask": "f1_le.png", "area_px": 25},
        {"concept": "right eye", "phrase": "the right eye", "mask": "f1_re.png", "area_px": 25}
    ]);
    f1["tasks"] = json!([{"task": "age", "prompt": "Is this face edited? Explain.",
        "answer": "Yes: <p> the left eye </p> [SEG] and <p> the right eye </p> [SEG] are warped."}]);
    let mut f2 = base("f2", "fake");
    f2["forgery_type"] = json!("colour");
    f2["recipe"] = json!("colour_shift");
    f2["artifact_mask"] = json!("f2_art.png");
    let mut missing = base("m1", "fake");
    missing["image"] = json!("does_not_exist.png");
    let mut train = base("t1", "real");
    train["split"] = json!("train");
    let lines = [
        base("r1", "real").to_string(),
        f1.to_string(),
        "{\"id\": \"broken\", this is not json".to_string(),
        base("r2", "real").to_string(),
        missing.to_string(),
        f2.to_string(),
        train.to_string(),
    ];
    let path = dir.join("data.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Run `dfa eval DATA --out OUT --baseline always-fake EXTRA...`.
fn run_cli(data: &Path, out: &Path, extra: &[&str]) {
    let mut argv = vec![
        "eval".to_string(),
        data.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--baseline".into(),
        "always-fake".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(&argv).unwrap();
    dfa::cli::eval::run(&cli.args).unwrap();
}

/// [`run_cli`], then read OUT/metrics.json.
fn run_eval(data: &Path, out: &Path, extra: &[&str]) -> Value {
    run_cli(data, out, extra);
    serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn always_fake_on_a_tiny_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_dataset(dir.path());
    let out = dir.path().join("out");
    let m = run_eval(&data, &out, &[]);

    // The malformed line (3) and the missing image (5) are skipped and counted; the train
    // sample is not part of the test split.
    assert_eq!(m["samples"], 4);
    assert_eq!(
        (m["reals"].clone(), m["fakes"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(m["skipped"]["total"], 2);
    assert_eq!(m["skipped"]["by_kind"]["malformed"], 1);
    assert_eq!(m["skipped"]["by_kind"]["missing_image"], 1);
    let lines: Vec<u64> = m["skipped"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 5]);

    let sys = &m["systems"][0];
    assert_eq!(sys["system"], "always-fake");
    // Every score is 1: all (fake, real) pairs tie, AUC = 1/2; the ROC is the diagonal, EER 1/2.
    assert!(close(num(&sys["det"]["auc"]["value"]), 0.5));
    assert!(close(num(&sys["det"]["eer"]["value"]), 0.5));
    assert!(close(num(&sys["det"]["accuracy"]["value"]), 0.5));
    assert!(close(num(&sys["det"]["false_fake_rate"]["value"]), 1.0));
    assert_eq!(sys["det"]["auc"]["n"], 4);
    // Loc: the face box against each artifact mask (see write_dataset).
    let miou = num(&sys["loc"]["miou"]["value"]);
    assert!(close(miou, (0.5 + 25.0 / 175.0) / 2.0), "{miou}");
    let f1 = num(&sys["loc"]["pixel_f1"]["value"]);
    assert!(close(f1, (100.0 / 150.0 + 50.0 / 200.0) / 2.0), "{f1}");
    let ci = &sys["loc"]["miou"]["ci95"];
    assert!(num(&ci["lo"]) <= miou && miou <= num(&ci["hi"]));
    // AGE on f1: every phrase's mask is the face box, IoU 0.25 with each ground-truth half.
    // How many phrases the baseline says depends on the concept tree; with k phrases,
    // min(k, 2) of the 2 concepts are matched.
    let phrases = sys["age"]["phrases"].as_u64().unwrap() as f64;
    assert!(phrases >= 1.0);
    let expect = 0.25 * phrases.min(2.0) / 2.0;
    assert!(close(num(&sys["age"]["miou"]["value"]), expect));
    assert_eq!(
        sys["age"]["missed_concepts"],
        json!(2 - phrases.min(2.0) as u64)
    );
    // Naming: always-fake names every atomic concept of the tree, so the atomic parts of both
    // eyes find "left eye" and "right eye" (recall 1) while most names are wrong.
    if phrases >= 2.0 {
        assert!(close(num(&sys["region_naming"]["recall"]["value"]), 1.0));
        assert!(num(&sys["region_naming"]["precision"]["value"]) < 0.5);
    }
    // Cls: the baseline names no forgery type.
    assert!(close(num(&sys["cls"]["accuracy"]["value"]), 0.0));
    // Reals get masks from this baseline.
    assert!(close(num(&sys["masks_on_real"]["value"]), 1.0));
    assert_eq!(sys["text"]["age"]["meteor"]["n"], 1);

    for f in [
        "metrics.md",
        "roc.png",
        "pr.png",
        "iou_hist_always-fake.png",
        "confusion_always-fake.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(out.join("metrics.md")).unwrap();
    assert!(md.lines().any(|l| l.starts_with("| always-fake |")));

    // Resume: a rerun asks nothing again; adding a baseline asks only that baseline.
    let count = || {
        std::fs::read_to_string(out.join("predictions.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    // 4 samples x 1 request: f1 has an age record, so its det/cls/loc are scored from that
    // request instead of a default one.
    assert_eq!(count(), 4);
    let again = run_eval(&data, &out, &[]);
    assert_eq!(count(), 4);
    assert_eq!(again["systems"], m["systems"]);
    let both = run_eval(
        &data,
        &out,
        &["--baseline", "whole-face", "--limit", "2", "--jobs", "2"],
    );
    // --limit 2 keeps r1 and f1 (2 requests) and stops reading before the malformed line.
    assert_eq!(count(), 6);
    assert_eq!(both["systems"].as_array().unwrap().len(), 2);
    assert_eq!(both["samples"], 2);
    assert_eq!(both["skipped"]["total"], 0);
}

#[test]
fn bad_dataset_and_unloadable_model_give_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let run = |argv: &[&str]| {
        let cli = Cli::try_parse_from(argv).unwrap();
        dfa::cli::eval::run(&cli.args).unwrap_err()
    };
    let missing = dir.path().join("nope.jsonl");
    let err = run(&[
        "eval",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(dfa::cli::exit_code(&err), 2, "{err:#}");
    assert!(format!("{err:#}").contains("nope.jsonl"));

    let data = write_dataset(dir.path());
    // Several splits name folders: a path is refused as bad arguments.
    let err = run(&[
        "eval",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--split",
        "test,../x",
    ]);
    assert_eq!(dfa::cli::exit_code(&err), 2, "{err:#}");
    assert!(format!("{err:#}").contains("../x"), "{err:#}");
    let no_model = dir.path().join("no-model-here");
    let err = run(&[
        "eval",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model",
        no_model.to_str().unwrap(),
        "--baseline",
        "vision-only",
    ]);
    assert_eq!(dfa::cli::exit_code(&err), 4, "{err:#}");
    assert!(format!("{err:#}").contains("no-model-here"), "{err:#}");
}

/// Two splits in one run (`--split a,b`) with photo sources: a folder per split, one shared
/// prediction cache, `splits.md` naming both with the AUC gap, and the per-source breakdown.
#[test]
fn two_splits_and_photo_sources() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path()); // for its images
    let sample = |id: &str, image: &str, split: &str, label: &str, collection: Option<&str>| {
        let mut s = json!({"id": id, "split": split, "identity": id, "image": image,
            "label": label, "face_bbox": [5.0, 5.0, 15.0, 15.0]});
        if label == "fake" {
            s["forgery_type"] = json!("warp");
        }
        if let Some(c) = collection {
            s["collection"] = json!(c);
        }
        s.to_string()
    };
    let lines = [
        sample("r1", "r1.png", "a", "real", Some("lfw")),
        sample("f1", "f1.png", "a", "fake", Some("lfw")),
        sample("u1", "t1.png", "a", "real", None),
        sample("r2", "r2.png", "b", "real", Some("solvay")),
        sample("f2", "f2.png", "b", "fake", Some("solvay")),
        sample("g1", "f1.png", "b", "fake", Some("utkface")),
        sample("x1", "r1.png", "train", "real", Some("lfw")),
    ];
    let data = dir.path().join("sources.jsonl");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    run_cli(&data, &out, &["--split", "a,b", "--tasks", "det"]);
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let metrics = |split: &str| -> Value {
        serde_json::from_str(&read(&out.join(split).join("metrics.json"))).unwrap()
    };

    let (a, b) = (metrics("a"), metrics("b"));
    assert_eq!(
        (a["split"].clone(), a["samples"].clone()),
        (json!("a"), json!(3))
    );
    assert_eq!(
        (b["split"].clone(), b["samples"].clone()),
        (json!("b"), json!(3))
    );
    assert!(out.join("a").join("metrics.md").is_file());
    assert!(
        !out.join("metrics.json").exists(),
        "a single split's place stays free"
    );
    // One cache at the top, one answer per sample of both splits.
    let cached = || read(&out.join("predictions.jsonl")).lines().count();
    assert_eq!(cached(), 6);

    let md = read(&out.join("splits.md"));
    assert!(md.contains("| always-fake | a | 3 |"), "{md}");
    assert!(md.contains("| always-fake | b | 3 |"), "{md}");
    // Every score is 1, so both AUCs are 1/2 and the gap is 0.
    assert!(md.contains("AUC(b) − AUC(a): always-fake +0.000"), "{md}");
    let c: Value = serde_json::from_str(&read(&out.join("splits.json"))).unwrap();
    assert_eq!(c["splits"], json!(["a", "b"]));
    assert_eq!(c["rows"][1]["auc_gap"], json!(0.0));

    // Per photo source: samples without a collection are "unknown"; a source with fakes only
    // has no AUC and no false-fake rate.
    let src = &a["systems"][0]["per_source"];
    assert_eq!(
        (src["lfw"]["reals"].clone(), src["lfw"]["fakes"].clone()),
        (json!(1), json!(1))
    );
    assert!(close(num(&src["lfw"]["auc"]["value"]), 0.5));
    assert!(close(num(&src["lfw"]["false_fake_rate"]["value"]), 1.0));
    assert!(close(num(&src["lfw"]["accuracy"]["value"]), 0.5));
    assert_eq!(src["unknown"]["reals"], 1);
    let utk = &b["systems"][0]["per_source"]["utkface"];
    assert_eq!(
        (utk["fakes"].clone(), utk["auc"]["value"].clone()),
        (json!(1), Value::Null)
    );
    assert_eq!(utk["false_fake_rate"]["value"], Value::Null);
    let md_b = read(&out.join("b").join("metrics.md"));
    assert!(
        md_b.contains("| always-fake | utkface | 0 | 1 | 1.000 | – | – |"),
        "{md_b}"
    );

    // One split again into the same folder: its results where they always were, from the
    // shared cache (nothing asked again).
    let m = run_eval(&data, &out, &["--split", "b", "--tasks", "det"]);
    assert_eq!(m["split"], "b");
    assert_eq!(cached(), 6);
}

/// Throughput of the evaluation machinery itself (baselines answer instantly): N synthetic
/// 256x256 samples, two baselines, first run and a fully cached rerun. Ignored by default; run
/// `cargo test --release --test eval_cli bench -- --ignored --nocapture` (prints timings, no
/// assertion on time).
#[test]
#[ignore]
fn bench_eval_pipeline() {
    let n: usize = std::env::var("DFA_EVAL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let big = |x0: u32, y0: u32, x1: u32, y1: u32| {
        GrayImage::from_fn(256, 256, |x, y| {
            Luma([if x >= x0 && x < x1 && y >= y0 && y < y1 {
                255
            } else {
                0
            }])
        })
    };
    RgbImage::from_pixel(256, 256, image::Rgb([120, 90, 80]))
        .save(dir.path().join("img.png"))
        .unwrap();
    big(60, 60, 200, 120)
        .save(dir.path().join("art.png"))
        .unwrap();
    big(60, 60, 120, 120)
        .save(dir.path().join("s1.png"))
        .unwrap();
    big(140, 60, 200, 120)
        .save(dir.path().join("s2.png"))
        .unwrap();
    let mut lines = Vec::new();
    for i in 0..n {
        let fake = i % 2 == 0;
        let mut s = json!({"id": format!("s{i}"), "split": "test", "identity": "x",
            "image": "img.png", "label": if fake {"fake"} else {"real"},
            "face_bbox": [40.0, 40.0, 216.0, 216.0]});
        if fake {
            s["forgery_type"] = json!("warp");
            s["artifact_mask"] = json!("art.png");
            s["concepts"] = json!(["left eye", "right eye"]);
            s["segments"] = json!([
                {"concept": "left eye", "phrase": "the left eye", "mask": "s1.png", "area_px": 3600},
                {"concept": "right eye", "phrase": "the right eye", "mask": "s2.png", "area_px": 3600}]);
            s["tasks"] = json!([{"task": "age", "prompt": "Explain.",
                "answer": "<p> the left eye </p> [SEG] and <p> the right eye </p> [SEG] are warped."}]);
        }
        lines.push(s.to_string());
    }
    let data = dir.path().join("data.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = dir.path().join("out");
    for pass in ["first run", "cached rerun"] {
        let t = std::time::Instant::now();
        run_eval(&data, &out, &["--baseline", "whole-face"]);
        eprintln!(
            "{pass}: {n} samples, 2 systems: {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
}
