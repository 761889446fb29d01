//! LoRA adapters in the PEFT format (Hu et al., "LoRA", arXiv 2106.09685):
//! `adapter_config.json` + `adapter_model.safetensors` with keys
//! `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` `(r, in)` and
//! `...lora_B.weight` `(out, r)`; the update is `W + (alpha / r) · B · A`.
//!
//! Adapters attach to an [`Llm`] unmerged (an extra low-rank branch) or merged into the base
//! weight, and can be created trainable (A small random, B zero) in a `VarMap`. Every base is
//! held in the HF layout (see `llm_load.rs`), so a PEFT adapter means the same on a GGUF or an
//! HF base and no q/k permutation of `lora_B` is needed.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::llm::{Llm, LlmError, Result};
use super::llm_layers::{module_parent, BaseWeight, LoraBranch};
use super::llm_load::hybrid;

/// The linear modules a LoRA may target, in HF naming.
pub const LORA_MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

const CONFIG_FILE: &str = "adapter_config.json";
const WEIGHTS_FILE: &str = "adapter_model.safetensors";

fn default_peft_type() -> String {
    "LORA".into()
}
fn default_task_type() -> String {
    "CAUSAL_LM".into()
}
fn default_bias() -> String {
    "none".into()
}

/// PEFT `target_modules`: a list of names, or the string `"all-linear"`.
fn de_targets<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Targets {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Targets::deserialize(d)? {
        Targets::Many(v) => v,
        Targets::One(s) if s == "all-linear" => {
            LORA_MODULES.iter().map(|m| m.to_string()).collect()
        }
        Targets::One(s) => vec![s],
    })
}

/// `adapter_config.json` of a PEFT LoRA adapter (unknown fields are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(deserialize_with = "de_targets")]
    pub target_modules: Vec<String>,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default = "default_peft_type")]
    pub peft_type: String,
    #[serde(default = "default_task_type")]
    pub task_type: String,
    #[serde(default)]
    pub lora_dropout: f64,
    #[serde(default = "default_bias")]
    pub bias: String,
    /// Scale by `alpha / sqrt(r)` instead of `alpha / r`.
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default)]
    pub use_dora: bool,
}

impl LoraConfig {
    /// A config for `r`, `alpha` and the given target modules, other fields PEFT's defaults.
    pub fn new(r: usize, lora_alpha: f64, targets: &[&str]) -> Self {
        Self {
            r,
            lora_alpha,
            target_modules: targets.iter().map(|t| t.to_string()).collect(),
            base_model_name_or_path: None,
            peft_type: default_peft_type(),
            task_type: default_task_type(),
            lora_dropout: 0.0,
            bias: default_bias(),
            use_rslora: false,
            fan_in_fan_out: false,
            use_dora: false,
        }
    }

    /// The factor applied to `B · A`.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// Rejects what this implementation would apply wrongly.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LlmError::Adapter(m));
        if self.peft_type != "LORA" {
            return bad(format!("peft_type {:?} (only LORA)", self.peft_type));
        }
        if self.r == 0 {
            return bad("r must be positive".into());
        }
        if self.bias != "none" {
            return bad(format!("bias {:?} (only \"none\")", self.bias));
        }
        if self.fan_in_fan_out || self.use_dora {
            return bad("fan_in_fan_out and DoRA adapters are not supported".into());
        }
        if self.target_modules.is_empty() {
            return bad("no target_modules".into());
        }
        if let Some(m) = self
            .target_modules
            .iter()
            .find(|m| !LORA_MODULES.contains(&m.as_str()))
        {
            return bad(format!(
                "unknown target module {m:?} (known: {})",
                LORA_MODULES.join(", ")
            ));
        }
        Ok(())
    }
}

/// The PEFT key of one LoRA factor (`which` is `'A'` or `'B'`).
pub fn lora_key(layer: usize, module: &str, which: char) -> String {
    format!(
        "base_model.model.model.layers.{layer}.{}.{module}.lora_{which}.weight",
        module_parent(module)
    )
}

/// Parses a PEFT key into (layer, module, 'A' | 'B'); also accepts the `.default.weight` form.
fn parse_key(key: &str) -> Option<(usize, String, char)> {
    let rest = key.strip_prefix("base_model.model.model.layers.")?;
    let rest = rest.strip_suffix(".weight")?;
    let rest = rest.strip_suffix(".default").unwrap_or(rest);
    let mut parts = rest.split('.');
    let layer = parts.next()?.parse().ok()?;
    let parent = parts.next()?;
    let module = parts.next()?;
    let which = match parts.next()? {
        "lora_A" => 'A',
        "lora_B" => 'B',
        _ => return None,
    };
    if parts.next().is_some() || module_parent(module) != parent || !LORA_MODULES.contains(&module)
    {
        return None;
    }
    Some((layer, module.to_string(), which))
}

/// A LoRA adapter: its config and its tensors under PEFT keys (on the CPU, f32).
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    pub config: LoraConfig,
    pub tensors: HashMap<String, Tensor>,
}

impl LoraAdapter {
    /// Reads `adapter_config.json` and `adapter_model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&cfg_path).map_err(|source| LlmError::Io {
            path: cfg_path.display().to_string(),
            source,
        })?;
        let config: LoraConfig = serde_json::from_str(&text).map_err(|source| LlmError::Json {
            path: cfg_path.display().to_string(),
            source,
        })?;
        config.validate()?;
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.exists() {
            return Err(LlmError::Adapter(format!(
                "{} is missing (pickled adapter_model.bin files are not read)",
                weights.display()
            )));
        }
        let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)?
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        Ok(Self { config, tensors })
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into `dir` (created).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let io = |source| LlmError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let json = serde_json::to_string_pretty(&self.config).expect("LoraConfig serializes");
        std::fs::write(dir.join(CONFIG_FILE), json).map_err(io)?;
        candle_core::safetensors::save(&self.tensors, dir.join(WEIGHTS_FILE))?;
        Ok(())
    }
}

/// A stable seed for the initial `A` of one key (FNV-1a), so runs are reproducible.
fn key_seed(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Llm {
    /// Attaches `adapter`: unmerged (`y = Wx + s·B(Ax)`) or merged into `W` (a quantized base
    /// weight becomes dense f32 when merged). The adapter is checked completely first; one that
    /// does not fit is refused with an error naming the first bad key and the shapes, and the
    /// model is left unchanged.
    pub fn apply_lora(&mut self, adapter: &LoraAdapter, merge: bool) -> Result<()> {
        adapter.config.validate()?;
        let mut keys: Vec<&String> = adapter.tensors.keys().collect();
        keys.sort();
        if keys.is_empty() {
            return Err(LlmError::Adapter("the adapter holds no tensors".into()));
        }
        let mut pairs: Vec<(usize, String, Tensor, Tensor)> = Vec::new();
        for key in keys {
            let (layer, module, which) = parse_key(key)
                .ok_or_else(|| LlmError::Adapter(format!("unrecognised key {key}")))?;
            if layer >= self.blocks.len() {
                return Err(LlmError::Adapter(format!(
                    "key {key}: layer {layer} does not exist (the base has {} layers)",
                    self.blocks.len()
                )));
            }
            if which == 'B' {
                continue; // checked together with its A
            }
            let a = &adapter.tensors[key];
            let b_key = lora_key(layer, &module, 'B');
            let b = adapter.tensors.get(&b_key).or_else(|| {
                adapter
                    .tensors
                    .get(&b_key.replace(".weight", ".default.weight"))
            });
            let b =
                b.ok_or_else(|| LlmError::Adapter(format!("key {key} has no matching {b_key}")))?;
            let linear = self.blocks[layer].linear(&module).expect("known module");
            let (out, inp) = linear.base.dims()?;
            let r = a.dim(0).unwrap_or(0);
            if a.dims() != [r, inp] || r == 0 {
                return Err(LlmError::Adapter(format!(
                    "key {key} has shape {:?}, but {module} of layer {layer} takes inputs of {inp} (expected [r, {inp}])",
                    a.dims()
                )));
            }
            if r != adapter.config.r {
                return Err(LlmError::Adapter(format!(
                    "key {key} has rank {r} but adapter_config.json says r = {} (rank_pattern is not supported)",
                    adapter.config.r
                )));
            }
            if b.dims() != [out, r] {
                return Err(LlmError::Adapter(format!(
                    "key {b_key} has shape {:?}, expected [{out}, {r}] for {module} of layer {layer}",
                    b.dims()
                )));
            }
            if !merge && linear.lora.is_some() {
                return Err(LlmError::Adapter(format!(
                    "{module} of layer {layer} already has an unmerged LoRA; merge one of them"
                )));
            }
            pairs.push((layer, module, a.clone(), b.clone()));
        }
        if let Some(orphan) = adapter.tensors.keys().find(|k| {
            parse_key(k).is_some_and(|(l, m, w)| {
                w == 'B' && !pairs.iter().any(|(pl, pm, _, _)| *pl == l && *pm == m)
            })
        }) {
            return Err(LlmError::Adapter(format!(
                "key {orphan} has no matching lora_A"
            )));
        }
        let scale = adapter.config.scale();
        let (dev, dtype) = (self.device.clone(), self.dtype);
        for (layer, module, a, b) in pairs {
            let a = a.to_device(&dev)?.to_dtype(dtype)?;
            let b = b.to_device(&dev)?.to_dtype(dtype)?;
            let linear = self.blocks[layer]
                .linear_mut(&module)
                .expect("known module");
            if merge {
                let w = linear.base.dense(&dev, DType::F32)?;
                let delta = (b.to_dtype(DType::F32)?.matmul(&a.to_dtype(DType::F32)?)? * scale)?;
                let merged = (w + delta)?.to_dtype(dtype)?;
                linear.base = match linear.base {
                    BaseWeight::Hybrid { .. } => hybrid(merged, None)?,
                    _ => BaseWeight::Dense(merged),
                };
            } else {
                linear.lora = Some(LoraBranch { a, b, scale });
            }
        }
        if !merge {
            self.lora_cfg = Some(adapter.config.clone());
        }
        Ok(())
    }

    /// Adds trainable LoRA branches for `cfg.target_modules` on every layer. Their factors live
    /// in `varmap` under the PEFT keys: a key already there (e.g. loaded to resume training) is
    /// used as is; otherwise A is uniform in ±1/sqrt(in) (seeded by the key) and B is zero.
    pub fn add_trainable_lora(
        &mut self,
        cfg: &LoraConfig,
        varmap: &candle_nn::VarMap,
    ) -> Result<()> {
        cfg.validate()?;
        let mut vars = varmap
            .data()
            .lock()
            .map_err(|_| LlmError::Adapter("VarMap lock poisoned".into()))?;
        let (dev, dtype) = (self.device.clone(), self.dtype);
        for layer in 0..self.blocks.len() {
            for module in &cfg.target_modules {
                let linear = self.blocks[layer]
                    .linear_mut(module)
                    .expect("validated module");
                if linear.lora.is_some() {
                    return Err(LlmError::Adapter(format!(
                        "{module} of layer {layer} already has a LoRA; merge it before adding a trainable one"
                    )));
                }
                let (out, inp) = linear.base.dims()?;
                let mut factor = |which: char, shape: (usize, usize)| -> Result<Tensor> {
                    let key = lora_key(layer, module, which);
                    if let Some(v) = vars.get(&key) {
                        if v.dims() != [shape.0, shape.1] {
                            return Err(LlmError::Adapter(format!(
                                "VarMap entry {key} has shape {:?}, expected [{}, {}]",
                                v.dims(),
                                shape.0,
                                shape.1
                            )));
                        }
                        return Ok(v.as_tensor().clone());
                    }
                    let init = if which == 'A' {
                        let bound = 1.0 / (inp as f32).sqrt();
                        let mut rng = rand::rngs::StdRng::seed_from_u64(key_seed(&key));
                        let vals: Vec<f32> = (0..shape.0 * shape.1)
                            .map(|_| rng.random_range(-bound..bound))
                            .collect();
                        Tensor::from_vec(vals, shape, &dev)?.to_dtype(dtype)?
                    } else {
                        Tensor::zeros(shape, dtype, &dev)?
                    };
                    let var = Var::from_tensor(&init)?;
                    let t = var.as_tensor().clone();
                    vars.insert(key, var);
                    Ok(t)
                };
                let a = factor('A', (cfg.r, inp))?;
                let b = factor('B', (out, cfg.r))?;
                linear.lora = Some(LoraBranch {
                    a,
                    b,
                    scale: cfg.scale(),
                });
            }
        }
        self.lora_cfg = Some(cfg.clone());
        Ok(())
    }

    /// The unmerged LoRA branches currently attached, as a PEFT adapter (CPU, f32).
    pub fn export_lora(&self) -> Result<LoraAdapter> {
        let config = self
            .lora_cfg
            .clone()
            .ok_or_else(|| LlmError::Adapter("the model has no unmerged LoRA to export".into()))?;
        let mut tensors = HashMap::new();
        for (layer, block) in self.blocks.iter().enumerate() {
            for module in LORA_MODULES {
                if let Some(l) = &block.linear(module).expect("known module").lora {
                    let cpu = |t: &Tensor| -> Result<Tensor> {
                        Ok(t.detach()
                            .to_dtype(DType::F32)?
                            .to_device(&Device::Cpu)?
                            .copy()?)
                    };
                    tensors.insert(lora_key(layer, module, 'A'), cpu(&l.a)?);
                    tensors.insert(lora_key(layer, module, 'B'), cpu(&l.b)?);
                }
            }
        }
        Ok(LoraAdapter { config, tensors })
    }
}
