//! A linear layer with a frozen weight: `y = x · Wᵀ` whose backward returns only `dL/dx`.
//!
//! candle's matmul backward always computes the gradient of both operands, so a plain
//! `x.matmul(&w.t())` in training pays a full weight-gradient GEMM for every frozen base weight
//! (and the 49k-row LM head). This op skips it: gradients still reach `x` (and through it LoRA
//! parameters, added token rows and input embeddings), never `W`.

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CudaStorage, CustomOp2, Layout, MetalStorage, Result, Shape, Tensor,
};

/// `x (..., in) · wᵀ` with `w (out, in)` treated as a constant in backprop.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (Some(&k), Ok((n, wk))) = (dims.last(), w.dims2()) else {
        candle_core::bail!(
            "frozen_linear: bad shapes {:?} x {:?}",
            x.shape(),
            w.shape()
        )
    };
    if k != wk {
        candle_core::bail!(
            "frozen_linear: input dim {k} does not match weight {:?}",
            w.shape()
        )
    }
    let m = x.elem_count() / k.max(1);
    let x2 = x.reshape((m, k))?.contiguous()?;
    let w = w.contiguous()?;
    let y = x2.apply_op2(&w, FrozenLinear)?;
    let mut out_dims = dims;
    *out_dims.last_mut().expect("non-empty dims") = n;
    y.reshape(out_dims)
}

struct FrozenLinear;

fn mnk(l1: &Layout, l2: &Layout) -> Result<(usize, usize, usize)> {
    let (m, k) = l1.shape().dims2()?;
    let (n, _) = l2.shape().dims2()?;
    Ok((m, n, k))
}

impl CustomOp2 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, n, k) = mnk(l1, l2)?;
        let out = s1.matmul(s2, (1, m, n, k), l1, &l2.transpose(0, 1)?)?;
        Ok((out, Shape::from((m, n))))
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (m, n, k) = mnk(l1, l2)?;
        let out = s1.matmul(s2, (1, m, n, k), l1, &l2.transpose(0, 1)?)?;
        Ok((out, Shape::from((m, n))))
    }

    fn metal_fwd(
        &self,
        s1: &MetalStorage,
        l1: &Layout,
        s2: &MetalStorage,
        l2: &Layout,
    ) -> Result<(MetalStorage, Shape)> {
        let (m, n, k) = mnk(l1, l2)?;
        let out = s1.matmul(s2, (1, m, n, k), l1, &l2.transpose(0, 1)?)?;
        Ok((out, Shape::from((m, n))))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.matmul(w)?), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn seeded(shape: (usize, usize), seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let v: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn forward_and_input_gradient_match_plain_matmul() {
        let x = Var::from_tensor(&seeded((6, 5), 1).reshape((2, 3, 5)).unwrap()).unwrap();
        let w = seeded((4, 5), 2);
        let r = seeded((6, 4), 3).reshape((2, 3, 4)).unwrap();
        let frozen = frozen_linear(x.as_tensor(), &w).unwrap();
        let plain = x.as_tensor().broadcast_matmul(&w.t().unwrap()).unwrap();
        let diff = (&frozen - &plain)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        let g_frozen = (frozen * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g_plain = (plain * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let (a, b) = (g_frozen.get(&x).unwrap(), g_plain.get(&x).unwrap());
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        assert!(
            g_frozen.get(&w).is_none(),
            "a frozen weight must get no gradient"
        );
    }
}
