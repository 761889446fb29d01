//! Tests of the LLM, LoRA and tokenizer on tiny random-weight models built here from a seeded
//! generator, checked against a naive reference written with plain loops.

use std::collections::HashMap;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};

use super::llm::{Llm, LlmConfig};
use super::llm_load::WeightMode;
use super::lora::{lora_key, LoraAdapter, LoraConfig};
use super::sampling::Sampler;

const CPU: Device = Device::Cpu;

/// HF-named weights as plain values and shapes.
type Weights = HashMap<String, (Vec<f32>, Vec<usize>)>;

fn tiny_config(qwen2: bool) -> LlmConfig {
    serde_json::from_value(serde_json::json!({
        "model_type": if qwen2 { "qwen2" } else { "llama" },
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "vocab_size": 40, "tie_word_embeddings": true,
        "max_position_embeddings": 64
    }))
    .unwrap()
}

/// Random HF-named weights for `cfg` (plain Vec<f32> per name, with its shape).
fn tiny_weights(cfg: &LlmConfig, seed: u64) -> Weights {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut w = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        let n = shape.iter().product();
        let v = (0..n)
            .map(|_| offset + rng.random_range(-scale..scale))
            .collect();
        w.insert(name, (v, shape));
    };
    let (d, ff, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim());
    let (h, kv) = (cfg.num_attention_heads, cfg.kv_heads());
    put(
        "model.embed_tokens.weight".into(),
        vec![cfg.vocab_size, d],
        1.0,
        0.0,
    );
    put("model.norm.weight".into(), vec![d], 0.2, 1.0);
    for i in 0..cfg.num_hidden_layers {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        put(p("input_layernorm.weight"), vec![d], 0.2, 1.0);
        put(p("post_attention_layernorm.weight"), vec![d], 0.2, 1.0);
        for (m, rows) in [("q_proj", h * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)] {
            put(p(&format!("self_attn.{m}.weight")), vec![rows, d], 0.3, 0.0);
            if cfg.qkv_bias() {
                put(p(&format!("self_attn.{m}.bias")), vec![rows], 0.3, 0.0);
            }
        }
        put(p("self_attn.o_proj.weight"), vec![d, h * hd], 0.3, 0.0);
        put(p("mlp.gate_proj.weight"), vec![ff, d], 0.3, 0.0);
        put(p("mlp.up_proj.weight"), vec![ff, d], 0.3, 0.0);
        put(p("mlp.down_proj.weight"), vec![d, ff], 0.3, 0.0);
    }
    w
}

fn to_tensors(w: &Weights) -> HashMap<String, Tensor> {
    w.iter()
        .map(|(k, (v, s))| {
            (
                k.clone(),
                Tensor::from_vec(v.clone(), s.clone(), &CPU).unwrap(),
            )
        })
        .collect()
}

fn tiny_model(qwen2: bool, dtype: DType) -> (Llm, Weights) {
    let cfg = tiny_config(qwen2);
    let w = tiny_weights(&cfg, if qwen2 { 11 } else { 7 });
    (
        Llm::from_hf_tensors(cfg, &to_tensors(&w), dtype, &CPU).unwrap(),
        w,
    )
}

fn ids_tensor(ids: &[&[u32]]) -> Tensor {
    let t = ids[0].len();
    Tensor::from_vec(ids.concat(), (ids.len(), t), &CPU).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap()).unwrap();
    d.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

// ---------------------------------------------------------------- naive reference

fn matvec(w: &(Vec<f32>, Vec<usize>), x: &[f32]) -> Vec<f32> {
    let (rows, cols) = (w.1[0], w.1[1]);
    (0..rows)
        .map(|r| (0..cols).map(|c| w.0[r * cols + c] * x[c]).sum())
        .collect()
}

fn rms(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let s = 1.0 / (ms + eps as f32).sqrt();
    x.iter().zip(w).map(|(v, g)| v * s * g).collect()
}

/// Rotates each head of `v` (HF layout: pairs `(i, i + half)`) for position `p`.
fn rotate(v: &mut [f32], hd: usize, p: usize, theta: f64) {
    let half = hd / 2;
    for head in v.chunks_mut(hd) {
        for i in 0..half {
            let ang = p as f64 / theta.powf(2.0 * i as f64 / hd as f64);
            let (c, s) = (ang.cos() as f32, ang.sin() as f32);
            let (a, b) = (head[i], head[i + half]);
            head[i] = a * c - b * s;
            head[i + half] = b * c + a * s;
        }
    }
}

/// Hidden states after the final norm for one sequence, written with plain loops.
fn naive_forward(cfg: &LlmConfig, w: &Weights, ids: &[u32]) -> Vec<Vec<f32>> {
    let (d, hd) = (cfg.hidden_size, cfg.head_dim());
    let (nh, nkv) = (cfg.num_attention_heads, cfg.kv_heads());
    let emb = &w["model.embed_tokens.weight"].0;
    let mut x: Vec<Vec<f32>> = ids
        .iter()
        .map(|&i| emb[i as usize * d..(i as usize + 1) * d].to_vec())
        .collect();
    for l in 0..cfg.num_hidden_layers {
        let g = |s: &str| &w[&format!("model.layers.{l}.{s}")];
        let proj = |m: &str, h: &[f32]| {
            let mut y = matvec(g(&format!("self_attn.{m}.weight")), h);
            if let Some(b) = w.get(&format!("model.layers.{l}.self_attn.{m}.bias")) {
                y.iter_mut().zip(&b.0).for_each(|(y, b)| *y += b);
            }
            y
        };
        let h: Vec<Vec<f32>> = x
            .iter()
            .map(|v| rms(v, &g("input_layernorm.weight").0, cfg.rms_norm_eps))
            .collect();
        let mut q: Vec<Vec<f32>> = h.iter().map(|v| proj("q_proj", v)).collect();
        let mut k: Vec<Vec<f32>> = h.iter().map(|v| proj("k_proj", v)).collect();
        let v: Vec<Vec<f32>> = h.iter().map(|v| proj("v_proj", v)).collect();
        for p in 0..ids.len() {
            rotate(&mut q[p], hd, p, cfg.rope_theta);
            rotate(&mut k[p], hd, p, cfg.rope_theta);
        }
        for p in 0..ids.len() {
            let mut att_out = vec![0f32; nh * hd];
            for head in 0..nh {
                let kvh = head / (nh / nkv);
                let qh = &q[p][head * hd..(head + 1) * hd];
                let scores: Vec<f32> = (0..=p)
                    .map(|j| {
                        let kh = &k[j][kvh * hd..(kvh + 1) * hd];
                        qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f32>() / (hd as f32).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f32::MIN, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f32 = e.iter().sum();
                for (j, ej) in e.iter().enumerate() {
                    for c in 0..hd {
                        att_out[head * hd + c] += ej / z * v[j][kvh * hd + c];
                    }
                }
            }
            let o = matvec(g("self_attn.o_proj.weight"), &att_out);
            x[p].iter_mut().zip(o).for_each(|(a, b)| *a += b);
        }
        for xp in x.iter_mut() {
            let h2 = rms(
                xp,
                &g("post_attention_layernorm.weight").0,
                cfg.rms_norm_eps,
            );
            let gate = matvec(g("mlp.gate_proj.weight"), &h2);
            let up = matvec(g("mlp.up_proj.weight"), &h2);
            let act: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = matvec(g("mlp.down_proj.weight"), &act);
            xp.iter_mut().zip(down).for_each(|(a, b)| *a += b);
        }
    }
    x.iter()
        .map(|v| rms(v, &w["model.norm.weight"].0, cfg.rms_norm_eps))
        .collect()
}

// ---------------------------------------------------------------- forward

#[test]
fn forward_matches_naive_reference_llama_and_qwen2() {
    for qwen2 in [false, true] {
        let (llm, w) = tiny_model(qwen2, DType::F32);
        let seqs: [&[u32]; 2] = [&[1, 5, 9, 33, 2, 17, 0], &[39, 3, 3, 12, 8, 25, 30]];
        let hidden = llm
            .forward(&llm.embed(&ids_tensor(&seqs)).unwrap(), None, 0)
            .unwrap();
        assert_eq!(hidden.dims(), &[2, 7, 32]);
        for (b, seq) in seqs.iter().enumerate() {
            let want = naive_forward(llm.config(), &w, seq);
            let want = Tensor::from_vec(want.concat(), (seq.len(), 32), &CPU).unwrap();
            let got = hidden.get(b).unwrap();
            assert!(
                max_diff(&got, &want) < 1e-4,
                "qwen2={qwen2} seq {b}: {}",
                max_diff(&got, &want)
            );
        }
        // Tied head: logits = hidden · embedᵀ.
        let logits = llm.logits(&hidden).unwrap();
        assert_eq!(logits.dims(), &[2, 7, 40]);
        let emb =
            Tensor::from_vec(w["model.embed_tokens.weight"].0.clone(), (40, 32), &CPU).unwrap();
        let want = hidden.broadcast_matmul(&emb.t().unwrap()).unwrap();
        assert!(max_diff(&logits, &want) < 1e-4);
    }
}

#[test]
fn kv_cache_decoding_equals_full_recomputation() {
    let (llm, _) = tiny_model(false, DType::F32);
    let ids: [u32; 8] = [4, 8, 15, 16, 23, 38, 1, 0];
    let full = llm
        .forward(&llm.embed(&ids_tensor(&[&ids])).unwrap(), None, 0)
        .unwrap();
    let mut cache = llm.new_cache();
    let mut steps = Vec::new();
    for chunk in [&ids[0..3], &ids[3..4], &ids[4..5], &ids[5..7], &ids[7..8]] {
        let pos = cache.len();
        steps.push(
            llm.forward(
                &llm.embed(&ids_tensor(&[chunk])).unwrap(),
                Some(&mut cache),
                pos,
            )
            .unwrap(),
        );
    }
    assert_eq!(cache.len(), 8);
    let stepped = Tensor::cat(&steps, 1).unwrap();
    assert!(
        max_diff(&stepped, &full) < 1e-5,
        "{}",
        max_diff(&stepped, &full)
    );
    // Rolling back to a prefix and decoding again gives the same states.
    cache.truncate(3).unwrap();
    let again = llm
        .forward(
            &llm.embed(&ids_tensor(&[&ids[3..8]])).unwrap(),
            Some(&mut cache),
            3,
        )
        .unwrap();
    assert!(max_diff(&again, &full.narrow(1, 3, 5).unwrap()) < 1e-5);
    // A wrong position is refused.
    assert!(llm
        .forward(
            &llm.embed(&ids_tensor(&[&[1]])).unwrap(),
            Some(&mut cache),
            2
        )
        .is_err());
}

#[test]
fn forward_train_equals_forward() {
    for qwen2 in [false, true] {
        let (llm, _) = tiny_model(qwen2, DType::F32);
        let e = llm
            .embed(&ids_tensor(&[&[3, 1, 4, 1, 5, 9], &[2, 6, 5, 3, 5, 8]]))
            .unwrap();
        let a = llm.forward(&e, None, 0).unwrap();
        let b = llm.forward_train(&e).unwrap();
        assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
    }
}

#[test]
fn added_token_rows_feed_embed_and_logits() {
    let (mut llm, _) = tiny_model(false, DType::F32);
    let rows = Tensor::arange(0f32, 64.0, &CPU)
        .unwrap()
        .reshape((2, 32))
        .unwrap();
    llm.append_token_rows(&rows).unwrap();
    assert_eq!(llm.vocab_size(), 42);
    let e = llm.embed(&ids_tensor(&[&[41, 3, 40]])).unwrap();
    assert!(max_diff(&e.get(0).unwrap().get(0).unwrap(), &rows.get(1).unwrap()) == 0.0);
    assert!(max_diff(&e.get(0).unwrap().get(2).unwrap(), &rows.get(0).unwrap()) == 0.0);
    let h = llm.forward(&e, None, 0).unwrap();
    let logits = llm.logits(&h).unwrap();
    assert_eq!(logits.dims(), &[1, 3, 42]);
    let want = h.broadcast_matmul(&rows.t().unwrap()).unwrap();
    assert!(max_diff(&logits.narrow(2, 40, 2).unwrap(), &want) < 1e-4);
    assert!(
        llm.embed(&ids_tensor(&[&[42]])).is_err(),
        "id past the vocabulary"
    );
    assert!(llm
        .append_token_rows(&Tensor::zeros((1, 31), DType::F32, &CPU).unwrap())
        .is_err());
}

#[test]
fn greedy_generation_is_deterministic_and_stops() {
    let (llm, _) = tiny_model(false, DType::F32);
    let a = llm
        .generate(&[1, 2, 3], 6, &mut Sampler::greedy(), &[])
        .unwrap();
    let b = llm
        .generate(&[1, 2, 3], 6, &mut Sampler::greedy(), &[])
        .unwrap();
    assert_eq!(a.len(), 6);
    assert_eq!(a, b);
    let stopped = llm
        .generate(&[1, 2, 3], 6, &mut Sampler::greedy(), &[a[1]])
        .unwrap();
    assert_eq!(
        stopped,
        a[..=a.iter().position(|&t| t == a[1]).unwrap()].to_vec()
    );
}

// ---------------------------------------------------------------- config and GGUF

#[test]
fn llm_and_cache_can_move_to_a_worker_thread() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Llm>();
    send_sync::<super::llm::KvCache>();
    send_sync::<LoraAdapter>();
}

#[test]
fn config_reads_hf_json_and_rejects_what_it_cannot_run() {
    let cfg = tiny_config(true);
    assert!(cfg.qkv_bias());
    assert_eq!((cfg.kv_heads(), cfg.head_dim()), (2, 8));
    assert!(!tiny_config(false).qkv_bias());
    let mut scaled = tiny_config(false);
    scaled.rope_scaling = Some(serde_json::json!({"rope_type": "llama3", "factor": 8.0}));
    assert!(scaled.validate().is_err());
    let mut odd = tiny_config(false);
    odd.num_key_value_heads = Some(3);
    assert!(odd.validate().is_err());
}

#[test]
fn safetensors_directory_loads_f32_and_bf16_files() {
    let (reference, w) = tiny_model(true, DType::F32);
    let e_ids = ids_tensor(&[&[1, 2, 3, 4]]);
    let want = reference
        .forward(&reference.embed(&e_ids).unwrap(), None, 0)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg_json = serde_json::to_string(reference.config()).unwrap();
    std::fs::write(dir.path().join("config.json"), cfg_json).unwrap();
    for (file_dtype, tol) in [(DType::F32, 1e-5), (DType::BF16, 0.1)] {
        let tensors: HashMap<String, Tensor> = to_tensors(&w)
            .into_iter()
            .map(|(k, t)| (k, t.to_dtype(file_dtype).unwrap()))
            .collect();
        candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
        let llm = Llm::load_safetensors(dir.path(), DType::F32, &CPU).unwrap();
        let got = llm.forward(&llm.embed(&e_ids).unwrap(), None, 0).unwrap();
        assert!(
            max_diff(&got, &want) < tol,
            "{file_dtype:?}: {}",
            max_diff(&got, &want)
        );
    }
    // A missing weight is named.
    let mut partial = to_tensors(&w);
    partial.remove("model.layers.1.mlp.up_proj.weight");
    candle_core::safetensors::save(&partial, dir.path().join("model.safetensors")).unwrap();
    let err = Llm::load_safetensors(dir.path(), DType::F32, &CPU)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.layers.1.mlp.up_proj.weight"), "{err}");
}

/// llama.cpp's q/k row permutation (the inverse of what the loader undoes).
fn permute_for_gguf(v: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let hd = rows / heads;
    let mut out = vec![0f32; v.len()];
    for h in 0..heads {
        for i in 0..hd / 2 {
            for j in 0..2 {
                let (dst, src) = (h * hd + 2 * i + j, h * hd + j * hd / 2 + i);
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&v[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

fn write_tiny_gguf(path: &std::path::Path, cfg: &LlmConfig, w: &Weights, qtype: GgmlDType) {
    use gguf_file::Value as V;
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, v: Vec<f32>, shape: &[usize]| {
        let t = Tensor::from_vec(v, shape, &CPU).unwrap();
        let q = if shape.len() == 2 {
            qtype
        } else {
            GgmlDType::F32
        };
        tensors.push((name, QTensor::quantize(&t, q).unwrap()));
    };
    let get = |k: &str| w[k].clone();
    add(
        "token_embd.weight".into(),
        get("model.embed_tokens.weight").0,
        &[40, 32],
    );
    add(
        "output_norm.weight".into(),
        get("model.norm.weight").0,
        &[32],
    );
    let hf = [
        ("attn_norm", "input_layernorm"),
        ("ffn_norm", "post_attention_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ];
    for i in 0..cfg.num_hidden_layers {
        for (g, h) in hf {
            let (v, s) = get(&format!("model.layers.{i}.{h}.weight"));
            let v = match g {
                "attn_q" => permute_for_gguf(&v, s[0], s[1], cfg.num_attention_heads),
                "attn_k" => permute_for_gguf(&v, s[0], s[1], cfg.kv_heads()),
                _ => v,
            };
            add(format!("blk.{i}.{g}.weight"), v, &s);
        }
    }
    let tokens: Vec<V> = (0..40).map(|i| V::String(format!("t{i}"))).collect();
    let meta: Vec<(&str, V)> = vec![
        ("general.architecture", V::String("llama".into())),
        ("llama.block_count", V::U32(2)),
        ("llama.context_length", V::U32(64)),
        ("llama.embedding_length", V::U32(32)),
        ("llama.feed_forward_length", V::U32(64)),
        ("llama.attention.head_count", V::U32(4)),
        ("llama.attention.head_count_kv", V::U32(2)),
        ("llama.rope.freq_base", V::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5)),
        ("tokenizer.ggml.model", V::String("gpt2".into())),
        ("tokenizer.ggml.tokens", V::Array(tokens)),
    ];
    let meta_refs: Vec<(&str, &V)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, q)| (k.as_str(), q)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &meta_refs, &tensor_refs).unwrap();
}

#[test]
fn gguf_llama_layout_loads_to_the_same_model() {
    let (reference, w) = tiny_model(false, DType::F32);
    let dir = tempfile::tempdir().unwrap();
    let e_ids = ids_tensor(&[&[5, 7, 11, 13, 17, 19]]);
    let want = reference
        .forward(&reference.embed(&e_ids).unwrap(), None, 0)
        .unwrap();
    let f32_path = dir.path().join("tiny-f32.gguf");
    write_tiny_gguf(&f32_path, reference.config(), &w, GgmlDType::F32);
    for dequantize in [true, false] {
        let (llm, meta) = Llm::load_gguf(&f32_path, dequantize, &CPU).unwrap();
        assert_eq!(meta.tokens.len(), 40);
        assert_eq!(llm.config().vocab_size, 40);
        let got = llm.forward(&llm.embed(&e_ids).unwrap(), None, 0).unwrap();
        assert!(
            max_diff(&got, &want) < 1e-4,
            "f32 gguf: {}",
            max_diff(&got, &want)
        );
    }
    // Q8_0 weights, through the quantized kernels and dequantized: close to the f32 model.
    let q8_path = dir.path().join("tiny-q8.gguf");
    write_tiny_gguf(&q8_path, reference.config(), &w, GgmlDType::Q8_0);
    for mode in [
        WeightMode::Native,
        WeightMode::F32,
        WeightMode::Q8_0,
        WeightMode::F32Q8,
    ] {
        let (llm, _) = Llm::load_gguf_with(&q8_path, mode, &CPU).unwrap();
        let got = llm.forward(&llm.embed(&e_ids).unwrap(), None, 0).unwrap();
        assert!(
            max_diff(&got, &want) < 0.1,
            "{mode:?}: {}",
            max_diff(&got, &want)
        );
        let logits = llm.logits(&got).unwrap();
        let want_logits = reference.logits(&want).unwrap();
        assert_eq!(
            logits.argmax(2).unwrap().to_vec2::<u32>().unwrap(),
            want_logits.argmax(2).unwrap().to_vec2::<u32>().unwrap(),
            "{mode:?}"
        );
    }
    // One PEFT adapter means the same thing on the GGUF base (stored with permuted q/k rows)
    // and on the HF base.
    let cfg = LoraConfig::new(2, 4.0, &["q_proj", "k_proj", "v_proj"]);
    let adapter = random_adapter(&reference, &cfg, 9);
    let (mut from_gguf, _) = Llm::load_gguf(&f32_path, true, &CPU).unwrap();
    let mut from_hf = reference.clone();
    from_gguf.apply_lora(&adapter, false).unwrap();
    from_hf.apply_lora(&adapter, false).unwrap();
    let a = from_gguf
        .forward(&from_gguf.embed(&e_ids).unwrap(), None, 0)
        .unwrap();
    let b = from_hf
        .forward(&from_hf.embed(&e_ids).unwrap(), None, 0)
        .unwrap();
    assert!(
        max_diff(&a, &b) < 1e-4,
        "adapter on gguf vs hf base: {}",
        max_diff(&a, &b)
    );
    assert!(
        max_diff(&a, &want) > 1e-2,
        "the adapter must change the output"
    );
    let exported = from_gguf.export_lora().unwrap();
    for (k, t) in &adapter.tensors {
        assert_eq!(
            max_diff(t, &exported.tensors[k]),
            0.0,
            "exported {k} differs"
        );
    }
    let missing = Llm::load_gguf(&dir.path().join("nope.gguf"), true, &CPU).unwrap_err();
    assert!(missing.to_string().contains("nope.gguf"), "{missing}");
}

// ---------------------------------------------------------------- LoRA

fn random_adapter(llm: &Llm, cfg: &LoraConfig, seed: u64) -> LoraAdapter {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tensors = HashMap::new();
    for layer in 0..llm.config().num_hidden_layers {
        for m in &cfg.target_modules {
            let (out, inp) = linear_dims(llm, m);
            for (which, shape) in [('A', (cfg.r, inp)), ('B', (out, cfg.r))] {
                let v: Vec<f32> = (0..shape.0 * shape.1)
                    .map(|_| rng.random_range(-0.3..0.3))
                    .collect();
                tensors.insert(
                    lora_key(layer, m, which),
                    Tensor::from_vec(v, shape, &CPU).unwrap(),
                );
            }
        }
    }
    LoraAdapter {
        config: cfg.clone(),
        tensors,
    }
}

fn linear_dims(llm: &Llm, module: &str) -> (usize, usize) {
    let c = llm.config();
    let (d, q, kv, ff) = (
        c.hidden_size,
        c.num_attention_heads * c.head_dim(),
        c.kv_heads() * c.head_dim(),
        c.intermediate_size,
    );
    match module {
        "q_proj" => (q, d),
        "k_proj" | "v_proj" => (kv, d),
        "o_proj" => (d, q),
        "gate_proj" | "up_proj" => (ff, d),
        _ => (d, ff),
    }
}

#[test]
fn lora_unmerged_equals_merged() {
    let (base, _) = tiny_model(true, DType::F32);
    let cfg = LoraConfig::new(
        4,
        8.0,
        &[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
    );
    let adapter = random_adapter(&base, &cfg, 5);
    let (mut unmerged, mut merged) = (base.clone(), base.clone());
    unmerged.apply_lora(&adapter, false).unwrap();
    merged.apply_lora(&adapter, true).unwrap();
    let e = base.embed(&ids_tensor(&[&[1, 2, 3, 4, 5, 6, 7]])).unwrap();
    let (h0, h1, h2) = (
        base.forward(&e, None, 0).unwrap(),
        unmerged.forward(&e, None, 0).unwrap(),
        merged.forward(&e, None, 0).unwrap(),
    );
    assert!(max_diff(&h1, &h2) < 1e-5, "{}", max_diff(&h1, &h2));
    assert!(
        max_diff(&h0, &h1) > 1e-2,
        "the adapter must change the output"
    );
    // The unmerged adapter exports back to the same tensors.
    let exported = unmerged.export_lora().unwrap();
    assert_eq!(exported.config, cfg);
    for (k, t) in &adapter.tensors {
        assert_eq!(max_diff(t, &exported.tensors[k]), 0.0, "{k}");
    }
}

#[test]
fn peft_adapter_round_trips_through_files() {
    let (mut llm, _) = tiny_model(false, DType::F32);
    let cfg = LoraConfig::new(2, 4.0, &["q_proj", "v_proj"]);
    let varmap = candle_nn::VarMap::new();
    llm.add_trainable_lora(&cfg, &varmap).unwrap();
    let adapter = llm.export_lora().unwrap();
    let dir = tempfile::tempdir().unwrap();
    adapter.save(dir.path()).unwrap();
    let raw =
        candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &CPU).unwrap();
    let mut keys: Vec<&String> = raw.keys().collect();
    keys.sort();
    assert_eq!(keys.len(), 8);
    assert_eq!(
        keys[0],
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    );
    assert_eq!(
        keys[1],
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
    );
    assert_eq!(raw[keys[0]].dims(), &[2, 32]);
    assert_eq!(raw[keys[1]].dims(), &[32, 2]);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["peft_type"], "LORA");
    assert_eq!(json["task_type"], "CAUSAL_LM");
    assert_eq!(json["r"], 2);
    let back = LoraAdapter::load(dir.path()).unwrap();
    assert_eq!(back.config, cfg);
    for (k, t) in &adapter.tensors {
        assert_eq!(max_diff(t, &back.tensors[k]), 0.0, "{k}");
    }
    // A fresh trainable LoRA (B = 0) leaves the model unchanged.
    let (base, _) = tiny_model(false, DType::F32);
    let e = base.embed(&ids_tensor(&[&[9, 8, 7]])).unwrap();
    assert!(
        max_diff(
            &base.forward(&e, None, 0).unwrap(),
            &llm.forward(&e, None, 0).unwrap()
        ) < 1e-5
    );
    // Same keys give the same initial A on a second model (seeded by key).
    let (mut other, _) = tiny_model(false, DType::F32);
    other
        .add_trainable_lora(&cfg, &candle_nn::VarMap::new())
        .unwrap();
    let again = other.export_lora().unwrap();
    assert_eq!(
        max_diff(&again.tensors[keys[0]], &adapter.tensors[keys[0]]),
        0.0
    );
}

#[test]
fn mismatched_adapter_is_refused_with_key_and_shapes() {
    let (mut llm, _) = tiny_model(false, DType::F32);
    let cfg = LoraConfig::new(4, 8.0, &["q_proj", "down_proj"]);
    let good = random_adapter(&llm, &cfg, 1);

    let mut wrong_in = good.clone();
    let key = lora_key(1, "down_proj", 'A');
    wrong_in.tensors.insert(
        key.clone(),
        Tensor::zeros((4, 32), DType::F32, &CPU).unwrap(),
    );
    let err = llm.apply_lora(&wrong_in, false).unwrap_err().to_string();
    assert!(
        err.contains(&key) && err.contains("[4, 32]") && err.contains("64"),
        "{err}"
    );

    let mut wrong_out = good.clone();
    let key = lora_key(0, "q_proj", 'B');
    wrong_out.tensors.insert(
        key.clone(),
        Tensor::zeros((16, 4), DType::F32, &CPU).unwrap(),
    );
    let err = llm.apply_lora(&wrong_out, true).unwrap_err().to_string();
    assert!(
        err.contains(&key) && err.contains("[16, 4]") && err.contains("[32, 4]"),
        "{err}"
    );

    let mut deep = good.clone();
    let key = lora_key(5, "q_proj", 'A');
    deep.tensors.insert(
        key.clone(),
        Tensor::zeros((4, 32), DType::F32, &CPU).unwrap(),
    );
    let err = llm.apply_lora(&deep, false).unwrap_err().to_string();
    assert!(err.contains(&key) && err.contains("2 layers"), "{err}");

    let mut lonely = good.clone();
    lonely.tensors.remove(&lora_key(0, "down_proj", 'B'));
    let err = llm.apply_lora(&lonely, false).unwrap_err().to_string();
    assert!(err.contains("layers.0.mlp.down_proj.lora_A"), "{err}");

    // Nothing was applied by the refused adapters; the good one still applies.
    let (base, _) = tiny_model(false, DType::F32);
    let e = base.embed(&ids_tensor(&[&[1, 2]])).unwrap();
    assert_eq!(
        max_diff(
            &base.forward(&e, None, 0).unwrap(),
            &llm.forward(&e, None, 0).unwrap()
        ),
        0.0
    );
    llm.apply_lora(&good, false).unwrap();
}

// ---------------------------------------------------------------- gradients

/// Central finite differences in f64 against backprop: gradients reach LoRA A and B, the added
/// token rows (used in embed and logits) and the input embeddings; frozen weights get none.
#[test]
fn gradients_reach_lora_extra_rows_and_inputs() {
    let (mut llm, _) = tiny_model(true, DType::F64);
    let cfg = LoraConfig::new(2, 4.0, &["q_proj", "v_proj", "down_proj"]);
    let varmap = candle_nn::VarMap::new();
    llm.add_trainable_lora(&cfg, &varmap).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut rand_t = |shape: (usize, usize)| {
        let v: Vec<f64> = (0..shape.0 * shape.1)
            .map(|_| rng.random_range(-0.5..0.5))
            .collect();
        Tensor::from_vec(v, shape, &CPU).unwrap()
    };
    // Make B non-zero so that A gets a gradient too.
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.contains("lora_B") {
            var.set(&rand_t((var.dims()[0], var.dims()[1]))).unwrap();
        }
    }
    let extra = Var::from_tensor(&rand_t((2, 32))).unwrap();
    llm.set_extra_rows(extra.as_tensor().clone()).unwrap();
    let ids = ids_tensor(&[&[3, 40, 7, 41, 9]]);
    let prefix = Var::from_tensor(&rand_t((2, 32)).reshape((1, 2, 32)).unwrap()).unwrap();
    let weights = rand_t((7, 42)).reshape((1, 7, 42)).unwrap();
    let loss = |llm: &Llm| -> Tensor {
        let embeds = Tensor::cat(&[prefix.as_tensor(), &llm.embed(&ids).unwrap()], 1).unwrap();
        let logits = llm.logits(&llm.forward_train(&embeds).unwrap()).unwrap();
        (logits * &weights).unwrap().sum_all().unwrap()
    };
    let grads = loss(&llm).backward().unwrap();
    let vars = varmap.data().lock().unwrap().clone();
    let mut checked = Vec::new();
    let mut check = |name: &str, var: &Var, idx: (usize, usize)| {
        let g = grads
            .get(var)
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let g2 = g
            .reshape((
                g.dims()[..g.rank() - 1].iter().product::<usize>(),
                g.dims()[g.rank() - 1],
            ))
            .unwrap();
        let analytic = g2
            .get(idx.0)
            .unwrap()
            .get(idx.1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let orig = var.as_tensor().copy().unwrap();
        let shape = orig.dims().to_vec();
        let flat_idx = idx.0 * shape[shape.len() - 1] + idx.1;
        let eps = 1e-5;
        let at = |delta: f64| {
            let mut v: Vec<f64> = orig.flatten_all().unwrap().to_vec1().unwrap();
            v[flat_idx] += delta;
            var.set(&Tensor::from_vec(v, shape.clone(), &CPU).unwrap())
                .unwrap();
            loss(&llm).to_scalar::<f64>().unwrap()
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        var.set(&orig).unwrap();
        assert!(
            (numeric - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
            "{name}{idx:?}: numeric {numeric} vs backprop {analytic}"
        );
        assert!(analytic.abs() > 1e-8, "{name}{idx:?}: zero gradient");
        checked.push(name.to_string());
    };
    check("q_proj A", &vars[&lora_key(1, "q_proj", 'A')], (1, 5));
    check("v_proj B", &vars[&lora_key(0, "v_proj", 'B')], (3, 0));
    check(
        "down_proj A",
        &vars[&lora_key(0, "down_proj", 'A')],
        (0, 17),
    );
    check("extra rows", &extra, (1, 4));
    check("extra rows", &extra, (0, 30));
    check("input embeds", &prefix, (1, 2));
    assert_eq!(checked.len(), 6);
    for block_weight in llm.frozen_weights_for_test() {
        assert!(
            grads.get(&block_weight).is_none(),
            "a frozen base weight got a gradient"
        );
    }
}
