//! Choosing the next token from logits: greedy at temperature 0, otherwise seeded sampling
//! with temperature and nucleus (top-p) truncation.

use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::llm::{LlmError, Result};

/// A reproducible next-token sampler.
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: StdRng,
    temperature: f64,
    top_p: f64,
}

impl Sampler {
    /// `temperature <= 0` is greedy; `top_p` outside `(0, 1)` keeps the whole distribution.
    pub fn new(seed: u64, temperature: f64, top_p: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            temperature,
            top_p,
        }
    }

    /// A greedy sampler.
    pub fn greedy() -> Self {
        Self::new(0, 0.0, 1.0)
    }

    /// Picks a token from `logits` of any shape whose elements are one vocabulary row
    /// (e.g. `(vocab)`, `(1, vocab)` or `(1, 1, vocab)`).
    pub fn sample(&mut self, logits: &Tensor) -> Result<u32> {
        let v: Vec<f32> = logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
        self.sample_slice(&v)
    }

    /// [`Sampler::sample`] on a plain slice.
    pub fn sample_slice(&mut self, logits: &[f32]) -> Result<u32> {
        if logits.is_empty() {
            return Err(LlmError::Input("no logits to sample from".into()));
        }
        if logits.iter().any(|x| x.is_nan()) {
            return Err(LlmError::Input("logits contain NaN".into()));
        }
        let argmax = logits
            .iter()
            .enumerate()
            .fold(0, |best, (i, &x)| if x > logits[best] { i } else { best });
        if self.temperature <= 0.0 {
            return Ok(argmax as u32);
        }
        let max = logits[argmax] as f64;
        let mut probs: Vec<(usize, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &x)| (i, ((x as f64 - max) / self.temperature).exp()))
            .collect();
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = probs.iter().map(|p| p.1).sum();
        let mut keep = probs.len();
        if self.top_p > 0.0 && self.top_p < 1.0 {
            let mut acc = 0.0;
            for (n, p) in probs.iter().enumerate() {
                acc += p.1 / total;
                if acc >= self.top_p {
                    keep = n + 1;
                    break;
                }
            }
        }
        let kept = &probs[..keep];
        let mass: f64 = kept.iter().map(|p| p.1).sum();
        let mut u = self.rng.random::<f64>() * mass;
        for &(i, p) in kept {
            if u < p {
                return Ok(i as u32);
            }
            u -= p;
        }
        Ok(kept[keep - 1].0 as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_argmax() {
        let mut s = Sampler::greedy();
        assert_eq!(s.sample_slice(&[0.1, 3.0, -1.0, 2.9]).unwrap(), 1);
        let t = Tensor::new(&[[[0.5f32, -2.0, 4.0]]], &candle_core::Device::Cpu).unwrap();
        assert_eq!(s.sample(&t).unwrap(), 2);
    }

    #[test]
    fn same_seed_same_draws_and_top_p_truncates() {
        let logits = [1.0f32, 0.9, 0.8, -5.0, 0.7];
        let draw = |seed| {
            let mut s = Sampler::new(seed, 1.0, 1.0);
            (0..50)
                .map(|_| s.sample_slice(&logits).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let mut nucleus = Sampler::new(3, 1.0, 0.3);
        for _ in 0..200 {
            let id = nucleus.sample_slice(&logits).unwrap();
            assert!(
                id <= 1,
                "top_p 0.3 keeps only the two most likely tokens, got {id}"
            );
        }
        let mut hot = Sampler::new(3, 1.0, 1.0);
        let seen: std::collections::HashSet<u32> = (0..400)
            .map(|_| hot.sample_slice(&logits).unwrap())
            .collect();
        assert!(seen.len() >= 4, "temperature 1 explores: {seen:?}");
    }

    #[test]
    fn nan_logits_are_an_error() {
        let mut s = Sampler::greedy();
        assert!(s.sample_slice(&[0.0, f32::NAN]).is_err());
        assert!(s.sample_slice(&[]).is_err());
    }
}
