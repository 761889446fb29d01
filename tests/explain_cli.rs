//! `dfa explain` end to end with the real binary: bad input gives one line, a documented exit
//! code and no report; the shipped default writes every file with the documented schema.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dfa(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfa"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("DFA_MODEL")
        .output()
        .expect("run dfa")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn one_line_error(o: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_images_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty.png"), b"").unwrap();
    std::fs::write(d.join("notes.png"), b"this is a text file").unwrap();
    let img = image::RgbImage::from_pixel(64, 64, image::Rgb([90, 80, 70]));
    img.save(d.join("ok.png")).unwrap();
    img.save(d.join("ok.jpg")).unwrap();
    let png = std::fs::read(d.join("ok.png")).unwrap();
    std::fs::write(d.join("cut.png"), &png[..png.len() / 2]).unwrap();
    let jpg = std::fs::read(d.join("ok.jpg")).unwrap();
    std::fs::write(d.join("cut.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    let out = d.join("out");
    let o = out.to_str().unwrap();
    one_line_error(
        &dfa(&["explain", "missing.png", "--out", o], d),
        2,
        "missing.png",
    );
    one_line_error(&dfa(&["explain", "empty.png", "--out", o], d), 2, "empty");
    one_line_error(
        &dfa(&["explain", "notes.png", "--out", o], d),
        2,
        "not an image",
    );
    one_line_error(&dfa(&["explain", "cut.png", "--out", o], d), 2, "cut.png");
    one_line_error(&dfa(&["explain", "cut.jpg", "--out", o], d), 2, "cut.jpg");
    one_line_error(
        &dfa(&["explain", "ok.png", "--box", "1,2,3", "--out", o], d),
        2,
        "--box",
    );
    one_line_error(
        &dfa(
            &["explain", "ok.png", "--region", "left eyebrw", "--out", o],
            d,
        ),
        2,
        "left eyebrow",
    );
    one_line_error(
        &dfa(
            &[
                "explain",
                "ok.png",
                "--model",
                d.to_str().unwrap(),
                "--out",
                o,
            ],
            d,
        ),
        4,
        "config.json",
    );
    // A PNG header that claims 30000x30000 (a decompression bomb) is refused before decoding.
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&30000u32.to_be_bytes());
    png.extend_from_slice(&30000u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&crc32(&png[12..]).to_be_bytes());
    for (kind, body) in [
        (&b"IDAT"[..], &[0x78u8, 0x9c, 0x03, 0x00][..]),
        (&b"IEND"[..], &[][..]),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(body);
        png.extend_from_slice(&(body.len() as u32).to_be_bytes());
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    std::fs::write(d.join("bomb.png"), &png).unwrap();
    one_line_error(
        &dfa(&["explain", "bomb.png", "--out", o], d),
        2,
        "too large",
    );
    assert!(!out.exists(), "no report may be written on failure");
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn adapter_for_another_base_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("adapter");
    std::fs::create_dir_all(&adapter).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "peft_type": "LORA", "task_type": "CAUSAL_LM"}"#,
    )
    .unwrap();
    // Shapes of a 64-wide model; SmolLM2-135M is 576 wide.
    let dev = candle_core::Device::Cpu;
    let key = "base_model.model.model.layers.0.self_attn.q_proj";
    let tensors = std::collections::HashMap::from([
        (
            format!("{key}.lora_A.weight"),
            candle_core::Tensor::zeros((4, 64), candle_core::DType::F32, &dev).unwrap(),
        ),
        (
            format!("{key}.lora_B.weight"),
            candle_core::Tensor::zeros((64, 4), candle_core::DType::F32, &dev).unwrap(),
        ),
    ]);
    candle_core::safetensors::save(&tensors, adapter.join("adapter_model.safetensors")).unwrap();
    let sample = repo().join("assets/samples/real-1.png");
    let out = dir.path().join("out");
    let o = dfa(
        &[
            "explain",
            sample.to_str().unwrap(),
            "--adapter",
            adapter.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    one_line_error(&o, 4, "q_proj");
    assert!(!out.exists());
}

#[test]
fn shipped_default_writes_every_file_with_the_schema() {
    let sample = repo().join("assets/samples/fake-1.png");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let o = dfa(
        &[
            "explain",
            sample.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is the JSON report");
    assert_eq!(report["schema"], "dfa.report/1");
    for k in ["path", "width", "height"] {
        assert!(!report["image"][k].is_null(), "image.{k}");
    }
    for k in [
        "dfa_version",
        "model",
        "model_sha256",
        "dtype",
        "device",
        "seed",
        "prompt_id",
    ] {
        assert!(!report["provenance"][k].is_null(), "provenance.{k}");
    }
    let faces = report["faces"].as_array().unwrap();
    assert!(!faces.is_empty());
    for f in faces {
        for k in [
            "face_id",
            "bbox",
            "verdict",
            "p_fake",
            "explanation",
            "explanation_raw",
            "segments",
        ] {
            assert!(f.get(k).is_some(), "faces[].{k}");
        }
        for s in f["segments"].as_array().unwrap() {
            for k in ["id", "phrase", "region", "bbox", "area_px", "mask"] {
                assert!(s.get(k).is_some(), "segments[].{k}");
            }
            // The RLE decodes back to the PNG mask that was written.
            let rle: dfa::report::rle::Rle = serde_json::from_value(s["mask"].clone()).unwrap();
            let decoded = dfa::report::rle::decode(&rle).unwrap();
            let png = image::open(out.join(format!("mask_{}_{}.png", f["face_id"], s["id"])))
                .unwrap()
                .to_luma8();
            assert_eq!(decoded, png);
        }
    }
    for file in ["overlay.png", "report.json", "report.md"] {
        assert!(out.join(file).exists(), "{file}");
    }
}
