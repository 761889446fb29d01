//! LLM speed on this machine: `cargo bench --bench llm`.
//!
//! For each way of holding the SmolLM2-135M GGUF weights (native Q4_1 kernels, dequantized
//! f32, re-quantized Q8_0, f32 + Q8_0) it reports load time, prefill tok/s at ~100 tokens, decode tok/s and
//! peak RSS (VmHWM), each mode in its own process so the peaks do not mix. It also times one
//! LoRA training step (forward_train + logits + backward). Set RAYON_NUM_THREADS (1 on a
//! 2-core VM) to avoid candle's per-op CPU probing.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use candle_core::{Device, Tensor};
use dfa::model::llm::Llm;
use dfa::model::llm_load::WeightMode;
use dfa::model::lora::LoraConfig;
use dfa::model::sampling::Sampler;
use dfa::model::tokenizer::tokenizer_from_gguf;

const TEXT: &str =
    "The photograph shows a young woman in soft daylight. Her left eye looks slightly \
larger than the right one, the skin around the nose is unusually smooth, and the edge of the jaw \
blends into the background with a faint halo. Lighting on the forehead comes from the left while \
the shadows under the lips suggest a source on the right. Fine hair strands near the temples \
are missing and the teeth look uniform, as if painted. Taken together these details suggest that \
parts of the face were edited, but the ears and the neck look natural and consistent.";

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn gguf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/llm/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn run_mode(name: &str) -> anyhow::Result<()> {
    let mode = match name {
        "native" => WeightMode::Native,
        "f32" => WeightMode::F32,
        "q8_0" => WeightMode::Q8_0,
        "f32q8" => WeightMode::F32Q8,
        other => anyhow::bail!("unknown mode {other}"),
    };
    let t = Instant::now();
    let (llm, meta) = Llm::load_gguf_with(&gguf(), mode, &Device::Cpu)?;
    let load_s = t.elapsed().as_secs_f64();
    let tok = tokenizer_from_gguf(&meta)?;
    let mut ids = tok
        .encode(TEXT, false)
        .map_err(anyhow::Error::msg)?
        .get_ids()
        .to_vec();
    ids.truncate(100);
    let n = ids.len();
    let input = Tensor::from_vec(ids.clone(), (1, n), &Device::Cpu)?;
    // Warm-up (first-call allocations, kernel repacking).
    llm.forward(&llm.embed(&input)?, None, 0)?;
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        let mut cache = llm.new_cache();
        let h = llm.forward(&llm.embed(&input)?, Some(&mut cache), 0)?;
        llm.logits(&h.narrow(1, n - 1, 1)?)?;
    }
    let prefill = (reps * n) as f64 / t.elapsed().as_secs_f64();
    let decode_n = 32;
    let t = Instant::now();
    let out = llm.generate(&ids[..8], decode_n, &mut Sampler::greedy(), &[])?;
    let decode = out.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "{name:<7} load {load_s:5.2} s | prefill {n} tok: {prefill:7.1} tok/s | decode: {decode:6.1} tok/s | peak RSS {:6.0} MB",
        peak_rss_mb()
    );
    if mode != WeightMode::F32 {
        let (reference, _) = Llm::load_gguf_with(&gguf(), WeightMode::F32, &Device::Cpu)?;
        let (got, want) = (
            stepwise_logits(&llm, &ids)?,
            stepwise_logits(&reference, &ids)?,
        );
        let agree = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| argmax(a) == argmax(b))
            .count();
        let max_delta = got
            .iter()
            .zip(&want)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0f32, f32::max);
        println!(
            "        vs f32, decoding the {n} tokens one by one: next-token argmax agrees {agree}/{n}, max |Δlogit| {max_delta:.2}"
        );
    }
    Ok(())
}

/// Next-token logits at every position, fed one token at a time (the decode path).
fn stepwise_logits(llm: &Llm, ids: &[u32]) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut cache = llm.new_cache();
    let mut out = Vec::new();
    for (pos, &id) in ids.iter().enumerate() {
        let x = llm.embed(&Tensor::from_vec(vec![id], (1, 1), &Device::Cpu)?)?;
        let h = llm.forward(&x, Some(&mut cache), pos)?;
        out.push(llm.logits(&h)?.flatten_all()?.to_vec1()?);
    }
    Ok(out)
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

fn run_train() -> anyhow::Result<()> {
    let (mut llm, _) = Llm::load_gguf_with(&gguf(), WeightMode::F32, &Device::Cpu)?;
    let varmap = candle_nn::VarMap::new();
    llm.add_trainable_lora(&LoraConfig::new(8, 16.0, &["q_proj", "v_proj"]), &varmap)?;
    let seq = 128;
    let ids: Vec<u32> = (0..seq as u32).map(|i| 100 + (i * 37) % 5000).collect();
    let input = Tensor::from_vec(ids, (1, seq), &Device::Cpu)?;
    let weights = Tensor::ones(
        (1, seq, llm.vocab_size()),
        candle_core::DType::F32,
        &Device::Cpu,
    )?;
    let step = || -> anyhow::Result<()> {
        let logits = llm.logits(&llm.forward_train(&llm.embed(&input)?)?)?;
        let loss = (candle_nn::ops::log_softmax(&logits, 2)? * &weights)?.mean_all()?;
        loss.backward()?;
        Ok(())
    };
    step()?;
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        step()?;
    }
    println!(
        "train   LoRA r8 q/v, f32 base, batch 1 x {seq} tokens: {:.2} s/step | peak RSS {:.0} MB",
        t.elapsed().as_secs_f64() / reps as f64,
        peak_rss_mb()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("train") => return run_train(),
        Some(mode) => return run_mode(mode),
        None => {}
    }
    println!(
        "SmolLM2-135M GGUF, RAYON_NUM_THREADS={}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    let exe = std::env::current_exe()?;
    for mode in ["native", "f32", "q8_0", "f32q8", "train"] {
        let status = Command::new(&exe).arg(mode).status()?;
        if !status.success() {
            anyhow::bail!("{mode} run failed: {status}");
        }
    }
    Ok(())
}
