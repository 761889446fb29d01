//! The model directory format (docs/model-format.md): `config.json` names every part; paths are
//! relative to the directory. A model is a local directory, or `org/repo` resolved through the
//! local hf-hub cache (dfa never downloads at run time unless told to).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::vision::ImageConfig;

pub const MODEL_FORMAT: &str = "dfa.model/1";

/// Where the LLM's weights are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LlmSource {
    /// A GGUF file (tokenizer rebuilt from its metadata unless `tokenizer` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gguf: Option<PathBuf>,
    /// A HF model directory with config.json + *.safetensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safetensors: Option<PathBuf>,
    /// GGUF only: dequantize to f32 at load (faster on CPU, see README) or keep quantized kernels.
    #[serde(default = "yes")]
    pub dequantize: bool,
}

fn yes() -> bool {
    true
}

/// Prompting: template, system text and the default question.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PromptConfig {
    /// Template file under prompts/ (only "chatml" is shipped).
    pub template: String,
    #[serde(default)]
    pub system: Option<String>,
    /// The question asked when the user gives none.
    pub default_prompt: String,
    /// Identifies `default_prompt` in reports.
    pub prompt_id: String,
}

/// Decision thresholds on P(fake), and on the concept head's probabilities.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thresholds {
    /// P(fake) at or above: "fake".
    pub fake: f32,
    /// P(fake) at or below: "real". Between the two: "uncertain".
    pub real: f32,
    /// A region is named when the concept head gives it at least this (the most likely one
    /// always is, at most `MAX_NAMED` are).
    #[serde(default = "default_concept_threshold")]
    pub concept: f32,
}

fn default_concept_threshold() -> f32 {
    0.5
}

/// Platt scaling of P(fake): `sigmoid(scale · logit(p) + bias)`. The trained heads give
/// scores bunched near 1 (reals at 0.99, fakes at 0.999); this spreads them so that "0.5"
/// means even odds on the data it was fit on.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Platt {
    pub scale: f32,
    pub bias: f32,
}

impl Platt {
    pub fn apply(&self, p: f32) -> f32 {
        let p = p.clamp(1e-7, 1.0 - 1e-7) as f64;
        let z = self.scale as f64 * (p / (1.0 - p)).ln() + self.bias as f64;
        (1.0 / (1.0 + (-z).exp())) as f32
    }
}

impl ModelConfig {
    /// P(fake) as shown and thresholded: the heads' value through `calibration`, if any.
    pub fn calibrated(&self, p_fake: f32) -> f32 {
        self.calibration.map_or(p_fake, |c| c.apply(p_fake))
    }
}

/// The most regions one answer names.
pub const MAX_NAMED: usize = 3;

impl Thresholds {
    /// The verdict for a P(fake).
    pub fn verdict(&self, p_fake: f32) -> crate::analysis::Verdict {
        use crate::analysis::Verdict;
        if p_fake >= self.fake {
            Verdict::Fake
        } else if p_fake <= self.real {
            Verdict::Real
        } else {
            Verdict::Uncertain
        }
    }

    /// The concepts to name from the concept head's probabilities (one per `vocab` entry): the
    /// most likely, then any other at or above `concept`, most likely first, at most
    /// `MAX_NAMED`.
    pub fn pick_concepts(&self, vocab: &[String], probs: &[f32]) -> Vec<String> {
        let mut order: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1));
        order
            .iter()
            .enumerate()
            .take_while(|(rank, (_, p))| *rank == 0 || *p >= self.concept)
            .take(MAX_NAMED)
            .filter_map(|(_, (i, _))| vocab.get(*i).cloned())
            .collect()
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            fake: 0.6,
            real: 0.4,
            concept: default_concept_threshold(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelConfig {
    /// Always "dfa.model/1".
    pub format: String,
    pub name: String,
    pub llm: LlmSource,
    /// tokenizer.json; `None` = from the GGUF metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
    pub image: ImageConfig,
    /// The extras safetensors (vision encoder, projectors, heads, added-token rows).
    pub extras: PathBuf,
    /// PEFT LoRA adapter directory, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<PathBuf>,
    pub prompt: PromptConfig,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Maps the heads' P(fake) to a calibrated probability before it is shown or thresholded
    /// (`thresholds.fake`/`real` are then on the calibrated scale). Fit by `dfa eval --split val`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Platt>,
    /// False until `dfa train` wrote the weights: the report then says the heads are untrained
    /// and draws no masks.
    pub trained: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    #[error("model {0} not found: not a directory, and not in the local hf-hub cache")]
    NotFound(String),
    #[error("{0} is not a dfa model directory: it has no config.json")]
    NoConfig(String),
    #[error("{path}/config.json is not a valid dfa model config: {reason}")]
    BadConfig { path: String, reason: String },
    #[error("model {dir}: {what} {path} does not exist")]
    MissingFile {
        dir: String,
        what: String,
        path: String,
    },
}

/// A loaded config with its directory; every path in it resolved to an absolute one.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub config: ModelConfig,
}

impl ModelDir {
    /// Open `spec`: a directory, or `org/repo` found in the hf-hub cache.
    pub fn open(spec: &str) -> Result<Self, ModelDirError> {
        let path = Path::new(spec);
        let dir = if path.is_dir() {
            path.to_path_buf()
        } else if let Some(dir) = from_hf_cache(spec) {
            dir
        } else {
            return Err(ModelDirError::NotFound(spec.to_string()));
        };
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path)
            .map_err(|_| ModelDirError::NoConfig(dir.display().to_string()))?;
        let mut config: ModelConfig =
            serde_json::from_str(&text).map_err(|e| ModelDirError::BadConfig {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        if config.format != MODEL_FORMAT {
            return Err(ModelDirError::BadConfig {
                path: dir.display().to_string(),
                reason: format!(
                    "format is \"{}\", expected \"{MODEL_FORMAT}\"",
                    config.format
                ),
            });
        }
        let d = dir.display().to_string();
        let resolve = |p: &Path, what: &str| -> Result<PathBuf, ModelDirError> {
            let full = if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            };
            if full.exists() {
                Ok(full)
            } else {
                Err(ModelDirError::MissingFile {
                    dir: d.clone(),
                    what: what.into(),
                    path: full.display().to_string(),
                })
            }
        };
        config.llm.gguf = config
            .llm
            .gguf
            .as_deref()
            .map(|p| resolve(p, "LLM gguf"))
            .transpose()?;
        config.llm.safetensors = config
            .llm
            .safetensors
            .as_deref()
            .map(|p| resolve(p, "LLM directory"))
            .transpose()?;
        if config.llm.gguf.is_none() && config.llm.safetensors.is_none() {
            return Err(ModelDirError::BadConfig {
                path: d,
                reason: "llm names neither a gguf nor a safetensors directory".into(),
            });
        }
        config.tokenizer = config
            .tokenizer
            .as_deref()
            .map(|p| resolve(p, "tokenizer"))
            .transpose()?;
        config.extras = resolve(&config.extras, "extras")?;
        config.adapter = config
            .adapter
            .as_deref()
            .map(|p| resolve(p, "adapter"))
            .transpose()?;
        Ok(Self { dir, config })
    }
}

/// `org/repo` → its snapshot folder in the hf-hub cache, when config.json is cached.
fn from_hf_cache(spec: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = spec.split('/').collect();
    if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let repo = hf_hub::Cache::from_env().model(spec.to_string());
    repo.get("config.json")
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// The embedded default model directory: `$DFA_MODEL`, else `adapters/dfa-tiny` of this checkout,
/// else `adapters/dfa-tiny` beside the executable's ancestors.
pub fn default_model_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DFA_MODEL") {
        return Some(PathBuf::from(p));
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/dfa-tiny");
    if built.join("config.json").exists() {
        return Some(built);
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|a| a.join("adapters/dfa-tiny"))
        .find(|p| p.join("config.json").exists())
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_model_dirs_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert!(matches!(
            ModelDir::open("/no/such/dir"),
            Err(ModelDirError::NotFound(_))
        ));
        assert!(matches!(ModelDir::open(d), Err(ModelDirError::NoConfig(_))));
        std::fs::write(
            dir.path().join("config.json"),
            "{\"format\": \"something-else\"}",
        )
        .unwrap();
        assert!(matches!(
            ModelDir::open(d),
            Err(ModelDirError::BadConfig { .. })
        ));
        let cfg = serde_json::json!({
            "format": MODEL_FORMAT, "name": "t", "llm": {"gguf": "missing.gguf"},
            "image": {"size": 128, "mean": [0.5,0.5,0.5], "std": [0.25,0.25,0.25]},
            "extras": "extras.safetensors",
            "prompt": {"template": "chatml", "default_prompt": "Is this face manipulated?", "prompt_id": "p1"},
            "trained": false
        });
        std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
        let err = ModelDir::open(d).unwrap_err().to_string();
        assert!(err.contains("missing.gguf"), "{err}");
    }

    #[test]
    fn picks_the_top_concept_and_those_above_the_threshold() {
        let t = Thresholds::default();
        let vocab: Vec<String> = ["nose", "chin", "lips", "forehead", "left eye"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            t.pick_concepts(&vocab, &[0.1, 0.3, 0.2, 0.05, 0.0]),
            ["chin"]
        );
        assert_eq!(
            t.pick_concepts(&vocab, &[0.6, 0.9, 0.2, 0.5, 0.7]),
            ["chin", "left eye", "nose"]
        );
        assert!(t.pick_concepts(&[], &[]).is_empty());
        // Old config files without the field still load.
        let old: Thresholds = serde_json::from_str(r#"{"fake":0.7,"real":0.3}"#).unwrap();
        assert_eq!(old.concept, 0.5);
    }

    #[test]
    fn platt_scaling_is_monotone_and_identity_at_unit_scale() {
        let id = Platt {
            scale: 1.0,
            bias: 0.0,
        };
        for p in [0.01f32, 0.3, 0.5, 0.9, 0.999] {
            assert!((id.apply(p) - p).abs() < 1e-5, "{p}");
        }
        let c = Platt {
            scale: 0.5,
            bias: -3.0,
        };
        let ps = [0.9f32, 0.99, 0.995, 0.999, 1.0];
        let out: Vec<f32> = ps.iter().map(|&p| c.apply(p)).collect();
        assert!(out.windows(2).all(|w| w[0] < w[1]), "{out:?}");
        // logit(0.99) = 4.595: 0.5 * 4.595 - 3 = -0.70 -> 0.33.
        assert!((out[1] - 0.3316).abs() < 1e-3, "{out:?}");
    }
}
