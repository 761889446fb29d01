//! Tokenizers: an HF `tokenizer.json`, or a byte-level BPE rebuilt from GGUF metadata; the
//! dfa grounding tokens (`[SEG]`, `<p>`, `</p>`, `<image>`, `<region>`); and the ChatML prompt
//! template (`prompts/chatml.txt`).

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::llm::{LlmError, Result};
use super::llm_load::GgufMeta;

/// Loads `tokenizer.json` (a file, or a directory holding one).
pub fn load_tokenizer(dir_or_file: &Path) -> Result<Tokenizer> {
    let path = if dir_or_file.is_dir() {
        dir_or_file.join("tokenizer.json")
    } else {
        dir_or_file.to_path_buf()
    };
    if !path.exists() {
        return Err(LlmError::Tokenizer(format!(
            "{} does not exist",
            path.display()
        )));
    }
    Tokenizer::from_file(&path).map_err(|e| LlmError::Tokenizer(format!("{}: {e}", path.display())))
}

/// llama.cpp token type of control tokens (`<|im_start|>` ...).
const TOKEN_CONTROL: i32 = 3;
/// llama.cpp token type of user-defined added tokens.
const TOKEN_USER_DEFINED: i32 = 4;

/// Rebuilds the tokenizer of a GGUF file whose `tokenizer.ggml.model` is `gpt2` (byte-level
/// BPE): vocabulary and merges from the metadata, a byte-level pre-tokenizer (no prefix space;
/// single digits split first for `pre = smollm`), a byte-level decoder, and the control tokens
/// (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`, ...) as special added tokens.
pub fn tokenizer_from_gguf(meta: &GgufMeta) -> Result<Tokenizer> {
    let err = |m: String| LlmError::Tokenizer(m);
    match meta.tokenizer_model.as_deref() {
        Some("gpt2") => {}
        other => {
            return Err(err(format!(
                "GGUF tokenizer model {other:?} (only gpt2 byte-level BPE)"
            )))
        }
    }
    if meta.tokens.is_empty() {
        return Err(err("the GGUF file has no tokenizer.ggml.tokens".into()));
    }
    let byte_level = ByteLevel::new(false, true, true);
    let pre: PreTokenizerWrapper = match meta.tokenizer_pre.as_deref() {
        Some("smollm") => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
        None | Some("gpt2") | Some("default") => byte_level.into(),
        Some(other) => {
            return Err(err(format!(
                "GGUF pre-tokenizer {other:?} (supported: smollm, gpt2)"
            )))
        }
    };
    let vocab: Vocab = meta
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges = meta
        .merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| err(format!("malformed merge {m:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| err(format!("cannot build BPE: {e}")))?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pre));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    let typed = |ty: i32| -> Vec<AddedToken> {
        meta.tokens
            .iter()
            .zip(&meta.token_types)
            .filter(|(_, &t)| t == ty)
            .map(|(s, _)| AddedToken::from(s.clone(), ty == TOKEN_CONTROL))
            .collect()
    };
    tok.add_special_tokens(typed(TOKEN_CONTROL))
        .map_err(|e| err(e.to_string()))?;
    tok.add_tokens(typed(TOKEN_USER_DEFINED))
        .map_err(|e| err(e.to_string()))?;
    Ok(tok)
}

/// Ids of the grounding tokens dfa adds to the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DfaTokenIds {
    pub seg: u32,
    pub p_open: u32,
    pub p_close: u32,
    pub image: u32,
    pub region: u32,
}

/// The grounding tokens, in the order they are added.
pub const DFA_TOKENS: [&str; 5] = ["[SEG]", "<p>", "</p>", "<image>", "<region>"];

impl DfaTokenIds {
    /// The ids in [`DFA_TOKENS`] order.
    pub fn all(&self) -> [u32; 5] {
        [self.seg, self.p_open, self.p_close, self.image, self.region]
    }
}

/// Adds `[SEG]`, `<p>`, `</p>`, `<image>`, `<region>` as special tokens (kept if already
/// present) and checks that each encodes to exactly one id, alone and inside a sentence.
/// New ids follow the tokenizer's vocabulary, so the LLM needs as many added rows
/// ([`super::llm::Llm::append_token_rows`]) when they exceed its base vocabulary.
pub fn add_dfa_tokens(tok: &mut Tokenizer) -> Result<DfaTokenIds> {
    let err = |m: String| LlmError::Tokenizer(m);
    tok.add_special_tokens(DFA_TOKENS.iter().map(|t| AddedToken::from(*t, true)))
        .map_err(|e| err(e.to_string()))?;
    let mut ids = [0u32; 5];
    for (slot, t) in ids.iter_mut().zip(DFA_TOKENS) {
        let enc = tok.encode(t, false).map_err(|e| err(e.to_string()))?;
        match (enc.get_ids(), tok.token_to_id(t)) {
            ([one], Some(id)) if *one == id => *slot = id,
            (got, _) => return Err(err(format!("{t} encodes to {got:?}, not a single token"))),
        }
    }
    let probe = "<image> look at <p> the left eye </p> [SEG] <region>";
    let enc = tok.encode(probe, false).map_err(|e| err(e.to_string()))?;
    if let Some(missing) = ids.iter().find(|id| !enc.get_ids().contains(id)) {
        return Err(err(format!(
            "token id {missing} is not kept whole inside a sentence"
        )));
    }
    let [seg, p_open, p_close, image, region] = ids;
    Ok(DfaTokenIds {
        seg,
        p_open,
        p_close,
        image,
        region,
    })
}

/// The ChatML message template: `{role}` and `{content}` are filled in per message.
pub const CHATML_TEMPLATE: &str = include_str!("../../prompts/chatml.txt");

fn chat_message(role: &str, content: Option<&str>) -> String {
    let (prefix, suffix) = CHATML_TEMPLATE
        .split_once("{content}")
        .expect("prompts/chatml.txt contains {content}");
    let prefix = prefix.replace("{role}", role);
    match content {
        Some(c) => format!("{prefix}{c}{suffix}"),
        None => prefix,
    }
}

/// Renders a ChatML prompt: the optional system message, earlier `(user, assistant)` turns,
/// the new user message, and the opening of the assistant's reply.
pub fn render_chat(system: Option<&str>, turns: &[(String, String)], user: &str) -> String {
    let mut out = String::new();
    if let Some(s) = system {
        out += &chat_message("system", Some(s));
    }
    for (u, a) in turns {
        out += &chat_message("user", Some(u));
        out += &chat_message("assistant", Some(a));
    }
    out += &chat_message("user", Some(user));
    out += &chat_message("assistant", None);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made byte-level BPE in GGUF form: 3 control tokens, letters, space (`Ġ`),
    /// newline (`Ċ`), digits and three merges.
    fn tiny_meta() -> GgufMeta {
        let tokens = [
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "a",
            "b",
            "c",
            "Ġ",
            "Ċ",
            "1",
            "2",
            "ab",
            "abc",
            "Ġa",
            "u",
            "s",
            "e",
            "r",
            "us",
            "use",
            "user",
        ];
        let mut types = vec![1; tokens.len()];
        types[..3].fill(3);
        GgufMeta {
            architecture: "llama".into(),
            tokenizer_model: Some("gpt2".into()),
            tokenizer_pre: Some("smollm".into()),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            token_types: types,
            merges: ["a b", "ab c", "Ġ a", "u s", "us e", "use r"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn gguf_bpe_encodes_merges_digits_and_specials() {
        let tok = tokenizer_from_gguf(&tiny_meta()).unwrap();
        let text = "<|im_start|>user\nabc ab 12<|im_end|>";
        let enc = tok.encode(text, false).unwrap();
        // <|im_start|> user Ċ abc Ġ ab Ġ 1 2 <|im_end|>: "a b" outranks "Ġ a".
        assert_eq!(enc.get_ids(), &[1, 19, 7, 11, 6, 10, 6, 8, 9, 2]);
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), text);
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), "user\nabc ab 12");
        assert_eq!(tok.encode("ac a", false).unwrap().get_ids(), &[3, 5, 12]);
    }

    #[test]
    fn rebuilt_tokenizer_saves_as_tokenizer_json() {
        let mut tok = tokenizer_from_gguf(&tiny_meta()).unwrap();
        let ids = add_dfa_tokens(&mut tok).unwrap();
        let dir = tempfile::tempdir().unwrap();
        tok.save(dir.path().join("tokenizer.json"), false).unwrap();
        let back = load_tokenizer(dir.path()).unwrap();
        let text = "<|im_start|>user\n<image> abc 12 <p>ab</p>[SEG]<|im_end|>";
        let (a, b) = (
            tok.encode(text, false).unwrap(),
            back.encode(text, false).unwrap(),
        );
        assert_eq!(a.get_ids(), b.get_ids());
        assert!(b.get_ids().contains(&ids.seg));
        assert!(load_tokenizer(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn dfa_tokens_are_single_new_ids() {
        let mut tok = tokenizer_from_gguf(&tiny_meta()).unwrap();
        let ids = add_dfa_tokens(&mut tok).unwrap();
        assert_eq!(ids.all(), [20, 21, 22, 23, 24]);
        let enc = tok.encode("ab<p>abc</p>[SEG]", false).unwrap();
        assert_eq!(enc.get_ids(), &[10, ids.p_open, 11, ids.p_close, ids.seg]);
        // Adding them again keeps the same ids.
        assert_eq!(add_dfa_tokens(&mut tok).unwrap(), ids);
    }

    #[test]
    fn unsupported_gguf_tokenizers_are_refused() {
        let mut meta = tiny_meta();
        meta.tokenizer_model = Some("llama".into());
        assert!(tokenizer_from_gguf(&meta)
            .unwrap_err()
            .to_string()
            .contains("llama"));
        let mut meta = tiny_meta();
        meta.tokenizer_pre = Some("qwen2".into());
        assert!(tokenizer_from_gguf(&meta).is_err());
    }

    #[test]
    fn chatml_renders_system_history_and_generation_prompt() {
        let turns = vec![("hi".to_string(), "hello".to_string())];
        let text = render_chat(Some("be brief"), &turns, "is it fake?");
        assert_eq!(
            text,
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n\
             <|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nis it fake?<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(
            render_chat(None, &[], "{role}"),
            "<|im_start|>user\n{role}<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
