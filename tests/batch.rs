//! `dfa batch`: the library runner with a small deterministic stand-in engine (the batch code is
//! real). Broken lines become error records; a killed run (simulated by a torn last line) resumes
//! with exactly one record per id. (Once the lead wires the engine into the binary, a SIGKILL
//! of the real `dfa batch` joins these.)

#[path = "support/scripted_analyzer.rs"]
mod scripted_analyzer;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dfa::chat::batch::{plan, run_batch, BatchError, BatchOptions};
use scripted_analyzer::{face_image, ScriptedAnalyzer};
use serde_json::Value;

fn options(script: &Path, out: &Path) -> BatchOptions {
    BatchOptions {
        script: script.to_path_buf(),
        out: out.to_path_buf(),
        artifacts: false,
        resume: false,
        force: false,
        jobs: 1,
        progress: false,
        whole_image_fallback: false,
    }
}

/// A 50-line script in `dir/scripts/`, images in `dir/scripts/img/` (relative paths), with 5
/// broken lines; returns the script path and the expected ids.
fn fifty_line_script(dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let sdir = dir.join("scripts");
    std::fs::create_dir_all(sdir.join("img")).unwrap();
    for (name, red) in [("fake.png", 220u8), ("real.png", 15u8)] {
        face_image(48, 60, red)
            .save(sdir.join("img").join(name))
            .unwrap();
    }
    let mut lines = Vec::new();
    let mut ids = Vec::new();
    for i in 0..45 {
        let img = if i % 3 == 0 {
            "img/real.png"
        } else {
            "img/fake.png"
        };
        let id = format!("item-{i:02}");
        let line = match i % 5 {
            0 => serde_json::json!({"id": id, "image": img}),
            1 => serde_json::json!({"id": id, "image": img, "prompt": "Which parts were edited?"}),
            2 => serde_json::json!({"id": id, "image": img, "box": [2, 2, 30, 30], "task": "box"}),
            3 => serde_json::json!({"id": id, "image": img, "task": "age"}),
            _ => {
                serde_json::json!({"id": id, "image": img, "prompt": "Is it real?", "task": "cls"})
            }
        };
        lines.push(line.to_string());
        ids.push(id);
    }
    // Five broken lines, spread through the script.
    let broken = [
        (
            3,
            "{\"id\": \"bad-json\", \"image\": ".to_string(),
            "line-4",
        ),
        (
            10,
            r#"{"id": "no-image", "prompt": "hi"}"#.to_string(),
            "no-image",
        ),
        (
            20,
            r#"{"id": "missing-file", "image": "img/nope.png"}"#.to_string(),
            "missing-file",
        ),
        (
            30,
            r#"{"id": "odd-region", "image": "img/fake.png", "region": "elbow"}"#.to_string(),
            "odd-region",
        ),
        (
            40,
            r#"{"image": "img/fake.png", "box": [10, 10, 5, 5]}"#.to_string(),
            "line-41",
        ),
    ];
    for (at, line, id) in broken {
        lines.insert(at, line);
        ids.push(id.to_string());
    }
    assert_eq!(lines.len(), 50);
    let script = sdir.join("script.jsonl");
    std::fs::write(&script, lines.join("\n") + "\n").unwrap();
    (script, ids)
}

fn read_results(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn fifty_lines_with_five_broken_give_45_results_and_5_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (script, ids) = fifty_line_script(dir.path());
    let out = dir.path().join("out");
    let mut opts = options(&script, &out);
    opts.jobs = 2;
    opts.artifacts = true;
    let engine = Arc::new(ScriptedAnalyzer::new());
    let summary = run_batch(&opts, engine.clone()).unwrap();
    assert_eq!((summary.items, summary.ok, summary.errors), (50, 45, 5));
    // 45 good lines, plus the unknown region when no concept tree is built in (then the
    // engine rejects it instead of the batch planner).
    let calls = engine.calls.load(Ordering::SeqCst);
    assert!(calls == 45 || calls == 46, "{calls}");
    assert_eq!(summary.verdicts.get("fake"), Some(&30));
    assert_eq!(summary.verdicts.get("real"), Some(&15));

    let results = read_results(&out);
    assert_eq!(results.len(), 50);
    let by_id: BTreeMap<String, &Value> = results
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(by_id.len(), 50, "one record per id");
    assert_eq!(
        by_id.keys().cloned().collect::<BTreeSet<_>>(),
        ids.into_iter().collect::<BTreeSet<_>>()
    );
    let errors: BTreeMap<&str, &str> = results
        .iter()
        .filter_map(|r| Some((r["id"].as_str()?, r.get("error")?.as_str()?)))
        .collect();
    assert_eq!(errors.len(), 5);
    assert!(errors["line-4"].starts_with("bad JSON"));
    assert!(errors["no-image"].contains("missing \"image\""));
    assert!(errors["missing-file"].starts_with("cannot open image"));
    assert!(errors["odd-region"].contains("unknown region \"elbow\""));
    assert!(errors["line-41"].contains("is empty"));
    // Good records are the report JSON plus the id.
    let good = by_id["item-01"];
    assert_eq!(good["schema"], "dfa.report/1");
    assert_eq!(good["faces"][0]["verdict"], "fake");
    assert_eq!(good["faces"][0]["segments"][1]["phrase"], "the mouth");
    assert!(good["image"]["path"]
        .as_str()
        .unwrap()
        .ends_with("scripts/img/fake.png"));
    assert_eq!(by_id["item-02"]["task"], "box");
    assert!(out.join("artifacts/item-01/overlay.png").exists());
    assert!(out.join("artifacts/item-01/face1-mask2.png").exists());
    // Text summary.
    let table = summary.table();
    assert!(table.contains("errors") && table.contains("faces fake"));
}

#[test]
fn resume_after_a_kill_keeps_exactly_one_record_per_id() {
    let dir = tempfile::tempdir().unwrap();
    let (script, ids) = fifty_line_script(dir.path());
    let out = dir.path().join("out");
    let opts = options(&script, &out);
    run_batch(&opts, ScriptedAnalyzer::shared()).unwrap();
    let full = std::fs::read_to_string(out.join("results.jsonl")).unwrap();

    // Simulate a SIGKILL after 17 whole lines, in the middle of writing the 18th.
    let lines: Vec<&str> = full.lines().collect();
    let mut torn = lines[..17].join("\n");
    torn.push('\n');
    torn.push_str(&lines[17][..lines[17].len() / 2]);
    std::fs::write(out.join("results.jsonl"), &torn).unwrap();

    // Without --resume the existing file is not clobbered.
    assert!(matches!(
        run_batch(&opts, ScriptedAnalyzer::shared()),
        Err(BatchError::Exists { .. })
    ));

    let mut resume = opts.clone();
    resume.resume = true;
    resume.jobs = 3;
    let p = plan(&resume).unwrap();
    assert_eq!(p.skipped, 17);
    assert_eq!(p.dropped, 1, "the torn line is dropped");
    let engine = Arc::new(ScriptedAnalyzer::new());
    let summary = dfa::chat::batch::execute(p, &resume, engine.clone()).unwrap();
    assert_eq!(summary.ok + summary.errors, 33);

    let results = read_results(&out);
    assert_eq!(results.len(), 50);
    let mut seen = BTreeMap::new();
    for r in &results {
        *seen
            .entry(r["id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(seen.len(), ids.len());

    // Resuming a finished run does nothing.
    let again = run_batch(&resume, engine.clone()).unwrap();
    assert_eq!((again.skipped, again.ok, again.errors), (50, 0, 0));
    assert_eq!(read_results(&out).len(), 50);
}

#[test]
fn duplicate_ids_unknown_fields_and_tasks_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    face_image(20, 20, 200)
        .save(dir.path().join("a.png"))
        .unwrap();
    let script = dir.path().join("s.jsonl");
    let mut f = std::fs::File::create(&script).unwrap();
    for line in [
        r#"{"id": 7, "image": "a.png"}"#,
        r#"{"id": 7, "image": "a.png"}"#,
        r#"{"id": "x", "image": "a.png", "promt": "typo"}"#,
        r#"{"id": "y", "image": "a.png", "task": "dance"}"#,
        r#"{"id": "z", "image": "a.png", "region": "nose", "box": [0, 0, 1, 1]}"#,
        r#"["not", "an", "object"]"#,
        "",
        r#"{"id": "", "image": "a.png", "task": "region"}"#,
    ] {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let out = dir.path().join("out");
    let summary = run_batch(&options(&script, &out), ScriptedAnalyzer::shared()).unwrap();
    assert_eq!((summary.ok, summary.errors), (1, 6));
    let results = read_results(&out);
    let err = |id: &str| -> String {
        results
            .iter()
            .find(|r| r["id"] == id)
            .and_then(|r| r["error"].as_str())
            .unwrap_or_else(|| panic!("no error for {id}"))
            .to_string()
    };
    assert!(err("line-2").contains("duplicate id \"7\""));
    assert!(err("x").contains("unknown field `promt`"));
    assert!(err("y").contains("unknown task \"dance\""));
    assert!(err("z").contains("not both"));
    assert!(err("line-6").contains("JSON object"));
    assert!(err("line-8").contains("task \"region\" needs a \"region\""));
    assert!(results
        .iter()
        .any(|r| r["id"] == "7" && r.get("faces").is_some()));
}

#[test]
fn a_missing_script_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_batch(
        &options(&dir.path().join("nope.jsonl"), &dir.path().join("out")),
        ScriptedAnalyzer::shared(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("cannot read script"), "{err}");
    assert!(!err.contains('\n'));
}

/// The real binary, killed with SIGKILL mid-run and resumed: exactly one record per id.
#[test]
#[cfg(unix)]
fn real_binary_sigkill_then_resume() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/solvay-1927.png");
    let script = dir.path().join("s.jsonl");
    let ids: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let lines: Vec<String> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "image": image, "face": 1}).to_string())
        .collect();
    std::fs::write(&script, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let results = out.join("results.jsonl");
    let bin = env!("CARGO_BIN_EXE_dfa");
    let mut child = Command::new(bin)
        .args([
            "batch",
            script.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as the first result is on disk (a hang guard, not a speed check).
    let start = Instant::now();
    while std::fs::read_to_string(&results).map_or(0, |s| s.lines().count()) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "no result appeared"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let status = Command::new(bin)
        .args([
            "batch",
            script.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--resume",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let got: Vec<String> = read_results(&out)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got.len(), ids.len(), "{got:?}");
    assert_eq!(unique, ids.into_iter().collect());
}
