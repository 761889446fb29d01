//! The real SmolLM2-135M-Instruct GGUF shipped under assets/: it loads, its tokenizer rebuilt
//! from GGUF metadata round-trips ChatML, and greedy decoding answers a factual question.

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use dfa::model::llm::Llm;
use dfa::model::llm_load::{GgufMeta, WeightMode};
use dfa::model::sampling::Sampler;
use dfa::model::tokenizer::{add_dfa_tokens, render_chat, tokenizer_from_gguf};

fn gguf_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/llm/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn model() -> &'static (Llm, GgufMeta) {
    static MODEL: OnceLock<(Llm, GgufMeta)> = OnceLock::new();
    MODEL.get_or_init(|| {
        Llm::load_gguf_with(&gguf_path(), WeightMode::default(), &Device::Cpu).expect("load GGUF")
    })
}

#[test]
fn loads_with_the_expected_shape() {
    let (llm, meta) = model();
    let cfg = llm.config();
    assert_eq!(
        (
            cfg.hidden_size,
            cfg.num_hidden_layers,
            cfg.num_attention_heads,
            cfg.kv_heads()
        ),
        (576, 30, 9, 3)
    );
    assert_eq!(cfg.vocab_size, 49152);
    assert_eq!(meta.tokens.len(), 49152);
    assert_eq!((meta.bos_id, meta.eos_id), (Some(1), Some(2)));
}

#[test]
fn rebuilt_tokenizer_round_trips_chatml() {
    let (llm, meta) = model();
    let mut tok = tokenizer_from_gguf(meta).unwrap();
    let text = render_chat(
        Some("You are a careful forensic analyst."),
        &[(
            "Hi there!".into(),
            "Hello. Send me a face photo, 1024x768 or so.".into(),
        )],
        "Is this face real? Explain: eyes, nose & mouth — \"quoted\" 42",
    );
    let enc = tok.encode(text.as_str(), false).unwrap();
    assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), text);
    for (special, id) in [("<|im_start|>", 1), ("<|im_end|>", 2), ("<|endoftext|>", 0)] {
        assert_eq!(
            tok.encode(special, false).unwrap().get_ids(),
            &[id],
            "{special}"
        );
    }
    let im_starts = enc.get_ids().iter().filter(|&&i| i == 1).count();
    assert_eq!(
        im_starts, 5,
        "each ChatML message opens with one <|im_start|> id"
    );
    // Ordinary words are merged (not byte-by-byte): far fewer tokens than characters.
    assert!(
        enc.get_ids().len() * 3 < text.len(),
        "{} tokens",
        enc.get_ids().len()
    );
    // The grounding tokens become new single ids just past the base vocabulary.
    let ids = add_dfa_tokens(&mut tok).unwrap();
    assert_eq!(ids.all(), [49152, 49153, 49154, 49155, 49156]);
    let mut llm = llm.clone();
    let rows = llm
        .embed(&Tensor::new(&[[0u32, 0, 0, 0, 0]], &Device::Cpu).unwrap())
        .unwrap();
    llm.append_token_rows(&rows.squeeze(0).unwrap()).unwrap();
    assert_eq!(llm.vocab_size(), 49157);
}

#[test]
fn greedy_answer_names_paris() {
    let (llm, meta) = model();
    let tok = tokenizer_from_gguf(meta).unwrap();
    let prompt = render_chat(
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
        &[],
        "What is the capital of France?",
    );
    let ids = tok
        .encode(prompt.as_str(), false)
        .unwrap()
        .get_ids()
        .to_vec();
    let eos = meta.eos_id.unwrap();
    let out = llm
        .generate(&ids, 20, &mut Sampler::greedy(), &[eos])
        .unwrap();
    let answer = tok.decode(&out, true).unwrap();
    println!("answer: {answer:?}");
    assert!(answer.contains("Paris"), "answer: {answer:?}");
}
