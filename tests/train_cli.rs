//! `dfa train` end to end with the real GGUF: a tiny forged dataset, a run killed mid-way
//! (SIGKILL, no chance to clean up), the same command again resuming from the checkpoint, and
//! the written model directory loading in `dfa explain`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dfa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dfa"))
}

fn vision_step(work: &Path) -> usize {
    std::fs::read_to_string(work.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["vision_step"].as_u64())
        .unwrap_or(0) as usize
}

#[test]
fn killed_run_resumes_and_writes_a_loadable_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = forge_tiny(dir.path(), 6);
    let (work, out) = (dir.path().join("work"), dir.path().join("model"));
    let train_args = [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--work",
        work.to_str().unwrap(),
        "--vision-steps",
        "30",
        "--vision-batch",
        "2",
        "--llm-steps",
        "2",
        "--llm-batch",
        "1",
        "--checkpoint-minutes",
        "0.0005",
    ]
    .map(String::from);

    // First run: kill it once a checkpoint past step 1 exists.
    let mut child = dfa()
        .args(&train_args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while vision_step(&work) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(300), "no checkpoint");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = vision_step(&work);
    assert!((2..30).contains(&killed_at), "killed at {killed_at}");
    assert!(
        !out.join("config.json").exists(),
        "a killed run wrote a model"
    );

    // Same command again: resumes, finishes, writes the model directory.
    let run = dfa().args(&train_args).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let resumed = format!(
        "resumed parts at vision step {}",
        vision_step_before(&stderr)
    );
    assert!(stderr.contains(&resumed), "{stderr}");
    assert!(vision_step_before(&stderr) >= killed_at);
    let log = std::fs::read_to_string(work.join("log.jsonl")).unwrap();
    let steps: Vec<(String, u64)> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["stage"].as_str().unwrap_or("").to_string(),
                v["step"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps.iter().filter(|s| s.0 == "vision").map(|s| s.1).max(),
        Some(30)
    );
    assert_eq!(
        steps.iter().filter(|s| s.0 == "llm").map(|s| s.1).max(),
        Some(2)
    );
    for f in [
        "config.json",
        "extras.safetensors",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "loss.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }

    // The model directory loads and answers.
    let explain = dfa()
        .args(["explain", "assets/samples/real-1.png", "--json", "--model"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&explain.stderr);
    assert!(explain.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&explain.stdout).unwrap();
    assert_eq!(report["faces"].as_array().map(Vec::len), Some(1));
}

/// The step number in "resumed parts at vision step N".
fn vision_step_before(stderr: &str) -> usize {
    stderr
        .split("resumed parts at vision step ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(usize::MAX)
}

/// A tiny forged dataset of `n` pairs (`--sources` pointing nowhere); returns its data.jsonl.
fn forge_tiny(dir: &Path, n: usize) -> std::path::PathBuf {
    let data = dir.join("ds");
    let ok = dfa()
        .args([
            "forge",
            "--out",
            data.to_str().unwrap(),
            "--n",
            &n.to_string(),
        ])
        .args(["--packages", "/nonexistent", "--quiet"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    data.join("data.jsonl")
}

#[test]
fn mobilenet_backbone_trains_from_imagenet_weights_or_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data = forge_tiny(dir.path(), 4);
    let out = dir.path().join("model");
    let args = |init: &str, work: &str| {
        let mut a: Vec<String> = ["train", "--data", data.to_str().unwrap()]
            .map(String::from)
            .to_vec();
        a.extend(
            [
                "--out",
                out.to_str().unwrap(),
                "--work",
                dir.path().join(work).to_str().unwrap(),
                "--backbone",
                "mobilenet-v2",
                "--init-backbone",
                init,
                "--vision-steps",
                "2",
                "--vision-batch",
                "2",
                "--llm-steps",
                "1",
                "--llm-batch",
                "1",
            ]
            .map(String::from),
        );
        a
    };
    let missing = dfa()
        .args(args("/nonexistent.safetensors", "w1"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("tools/fetch-sources.sh"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("cache/mobilenet_v2.safetensors");
    if !weights.exists() {
        eprintln!(
            "SKIPPED the training half: run tools/fetch-sources.sh for {}",
            weights.display()
        );
        return;
    }
    let run = dfa()
        .args(args(weights.to_str().unwrap(), "w2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("ImageNet tensors"), "{err}");
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("0.485"), "ImageNet normalisation: {config}");
    let explain = dfa()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["explain", "assets/samples/real-1.png", "--json", "--model"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        explain.status.success(),
        "{}",
        String::from_utf8_lossy(&explain.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&explain.stdout).unwrap();
    assert_eq!(report["faces"].as_array().map(Vec::len), Some(1));
}
