//! Losses built only from ops that have a backward in candle 0.11 (STACK.md).

use candle_core::{Result, Tensor, D};

/// Mean binary cross-entropy with logits, numerically stable: max(x,0) - x·y + log(1 + e^{-|x|}).
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let relu = logits.relu()?;
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((relu - (logits * targets)?)? + softplus)?.mean_all()
}

/// Soft dice loss on probabilities, per row then averaged: 1 - 2|p∩t| / (|p| + |t| + 1).
pub fn dice_loss(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let p = candle_nn::ops::sigmoid(logits)?.flatten_from(1)?;
    let t = targets.flatten_from(1)?;
    let inter = (&p * &t)?.sum(D::Minus1)?;
    let denom = ((p.sum(D::Minus1)? + t.sum(D::Minus1)?)? + 1.0)?;
    (1.0 - ((inter * 2.0)? / denom)?)?.mean_all()
}

/// Cross-entropy of logits (n, c) against class ids (n,), through log-softmax from basic ops.
pub fn cross_entropy(logits: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let logp = shifted.broadcast_sub(&lse)?;
    let picked = logp.gather(&ids.unsqueeze(1)?, 1)?;
    picked.neg()?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn losses_match_closed_forms_and_have_gradients() {
        let dev = Device::Cpu;
        let x = Var::from_vec(vec![2.0f32, -1.0, 0.5], (1, 3), &dev).unwrap();
        let y = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], (1, 3), &dev).unwrap();
        let l = bce_with_logits(x.as_tensor(), &y).unwrap();
        let want = [
            (1.0f32 + (-2.0f32).exp()).ln(),
            (1.0f32 + (-1.0f32).exp()).ln(),
            (1.0f32 + (-0.5f32).exp()).ln(),
        ]
        .iter()
        .sum::<f32>()
            / 3.0;
        assert!((l.to_scalar::<f32>().unwrap() - want).abs() < 1e-5);
        let g = l.backward().unwrap();
        let gx: Vec<f32> = g.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        for (i, (&xv, yv)) in [2.0f32, -1.0, 0.5]
            .iter()
            .zip([1.0f32, 0.0, 1.0])
            .enumerate()
        {
            assert!((gx[i] - (sig(xv) - yv) / 3.0).abs() < 1e-5);
        }
        let logits = Var::from_vec(vec![1.0f32, 2.0, 3.0, 1.0, 1.0, 1.0], (2, 3), &dev).unwrap();
        let ids = Tensor::from_vec(vec![2u32, 0], 2, &dev).unwrap();
        let ce = cross_entropy(logits.as_tensor(), &ids)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let lse1 = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
        let want = ((lse1 - 3.0) + 3f32.ln()) / 2.0;
        assert!((ce - want).abs() < 1e-5);
        let d = dice_loss(x.as_tensor(), &y).unwrap();
        assert!(d.backward().unwrap().get(&x).is_some());
    }
}
