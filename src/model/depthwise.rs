//! CPU kernels, with backward, for the two MobileNetV2 ops candle makes slow to train:
//! the depthwise 3×3 convolution (candle runs a grouped conv as one conv per channel, and a
//! composition of shifted multiply-adds spends seconds in its backward) and ReLU6.
//! Other devices (CUDA) take the composed form, which has the same numbers.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// Output side of a 3×3 conv with padding 1.
fn out_side(n: usize, stride: usize) -> usize {
    (n - 1) / stride + 1
}

/// Input offsets a 3×3 tap at output `o` reads: `o * stride + k - 1`, when inside `0..n`.
fn tap(o: usize, k: usize, stride: usize, n: usize) -> Option<usize> {
    (o * stride + k).checked_sub(1).filter(|&i| i < n)
}

/// y = depthwise(x, w): x (n, c, h, w), w (c, 9).
struct DwConv {
    stride: usize,
}

impl CustomOp2 for DwConv {
    fn name(&self) -> &'static str {
        "depthwise3x3"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, k) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
        );
        let (n, c, h, w) = l1.shape().dims4()?;
        let s = self.stride;
        let (ho, wo) = (out_side(h, s), out_side(w, s));
        let mut out = vec![0f32; n * c * ho * wo];
        out.par_chunks_mut(ho * wo).enumerate().for_each(|(p, o)| {
            let xp = &x[p * h * w..(p + 1) * h * w];
            let kp = &k[(p % c) * 9..(p % c) * 9 + 9];
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0f32;
                    for ky in 0..3 {
                        let Some(iy) = tap(oy, ky, s, h) else {
                            continue;
                        };
                        for kx in 0..3 {
                            if let Some(ix) = tap(ox, kx, s, w) {
                                acc += xp[iy * w + ix] * kp[ky * 3 + kx];
                            }
                        }
                    }
                    o[oy * wo + ox] = acc;
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        k: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (_, _, h, w) = x.dims4()?;
        let gx = grad.apply_op2_no_bwd(
            k,
            &DwGradInput {
                stride: self.stride,
                h,
                w,
            },
        )?;
        let gk = x.apply_op2_no_bwd(
            &grad,
            &DwGradKernel {
                stride: self.stride,
            },
        )?;
        Ok((Some(gx), Some(gk)))
    }
}

/// dL/dx from dL/dy (n, c, ho, wo) and w (c, 9).
struct DwGradInput {
    stride: usize,
    h: usize,
    w: usize,
}

impl CustomOp2 for DwGradInput {
    fn name(&self) -> &'static str {
        "depthwise3x3-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, k) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
        );
        let (n, c, ho, wo) = l1.shape().dims4()?;
        let (h, w, s) = (self.h, self.w, self.stride);
        let mut out = vec![0f32; n * c * h * w];
        out.par_chunks_mut(h * w).enumerate().for_each(|(p, gx)| {
            let gp = &g[p * ho * wo..(p + 1) * ho * wo];
            let kp = &k[(p % c) * 9..(p % c) * 9 + 9];
            for oy in 0..ho {
                for ox in 0..wo {
                    let go = gp[oy * wo + ox];
                    for ky in 0..3 {
                        let Some(iy) = tap(oy, ky, s, h) else {
                            continue;
                        };
                        for kx in 0..3 {
                            if let Some(ix) = tap(ox, kx, s, w) {
                                gx[iy * w + ix] += go * kp[ky * 3 + kx];
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
    }
}

/// dL/dw (c, 9) from x (n, c, h, w) and dL/dy (n, c, ho, wo).
struct DwGradKernel {
    stride: usize,
}

impl CustomOp2 for DwGradKernel {
    fn name(&self) -> &'static str {
        "depthwise3x3-grad-kernel"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
        );
        let (n, c, h, w) = l1.shape().dims4()?;
        let (_, _, ho, wo) = l2.shape().dims4()?;
        let s = self.stride;
        let mut out = vec![0f32; c * 9];
        out.par_chunks_mut(9).enumerate().for_each(|(ch, acc)| {
            for b in 0..n {
                let p = b * c + ch;
                let xp = &x[p * h * w..(p + 1) * h * w];
                let gp = &g[p * ho * wo..(p + 1) * ho * wo];
                for ky in 0..3 {
                    for kx in 0..3 {
                        let mut sum = 0f32;
                        for oy in 0..ho {
                            let Some(iy) = tap(oy, ky, s, h) else {
                                continue;
                            };
                            for ox in 0..wo {
                                if let Some(ix) = tap(ox, kx, s, w) {
                                    sum += gp[oy * wo + ox] * xp[iy * w + ix];
                                }
                            }
                        }
                        acc[ky * 3 + kx] += sum;
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((c, 9))))
    }
}

/// Depthwise 3×3 convolution with padding 1: `w` (c, 1, 3, 3), `b` (c).
pub fn depthwise3x3(x: &Tensor, w: &Tensor, b: &Tensor, stride: usize) -> Result<Tensor> {
    let c = w.dim(0)?;
    let y = if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?
            .apply_op2(&w.reshape((c, 9))?.contiguous()?, DwConv { stride })?
    } else {
        composed_depthwise3x3(x, w, stride)?
    };
    y.broadcast_add(&b.reshape((1, c, 1, 1))?)
}

/// The same convolution from nine shifted multiply-adds (any device; slow backward).
pub fn composed_depthwise3x3(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    let taps = w.reshape((c, 9))?;
    let mut acc = Tensor::zeros((n, c, h, wd), x.dtype(), x.device())?;
    for dy in 0..3 {
        for dx in 0..3 {
            let k = taps.narrow(1, dy * 3 + dx, 1)?.reshape((1, c, 1, 1))?;
            let shifted = padded.narrow(2, dy, h)?.narrow(3, dx, wd)?;
            acc = (acc + shifted.broadcast_mul(&k)?)?;
        }
    }
    if stride == 1 {
        return Ok(acc);
    }
    // Stride 2 keeps the even positions (output ceil(h/2) × ceil(w/2), as torch computes it).
    let acc = acc
        .pad_with_zeros(2, 0, h % 2)?
        .pad_with_zeros(3, 0, wd % 2)?;
    let (h2, w2) = (h.div_ceil(2), wd.div_ceil(2));
    acc.reshape((n, c, h2, 2, w2, 2))?
        .narrow(3, 0, 1)?
        .narrow(5, 0, 1)?
        .reshape((n, c, h2, w2))
}

struct Relu6;

impl CustomOp1 for Relu6 {
    fn name(&self) -> &'static str {
        "relu6"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let out: Vec<f32> = x.par_iter().map(|v| v.clamp(0.0, 6.0)).collect();
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &Relu6Grad)?))
    }
}

/// dL/dx of ReLU6: the gradient where 0 < x < 6, else 0.
struct Relu6Grad;

impl CustomOp2 for Relu6Grad {
    fn name(&self) -> &'static str {
        "relu6-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (
            contiguous(s1, l1, self.name())?,
            contiguous(s2, l2, self.name())?,
        );
        let out: Vec<f32> = x
            .par_iter()
            .zip(g.par_iter())
            .map(|(&x, &g)| if x > 0.0 && x < 6.0 { g } else { 0.0 })
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// min(max(x, 0), 6).
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op1(Relu6)
    } else {
        x.clamp(0f32, 6f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn kernel_matches_grouped_conv_and_composed_form() -> Result<()> {
        let dev = Device::Cpu;
        for (h, stride) in [(6, 1), (6, 2), (7, 2), (1, 2)] {
            let x = Tensor::randn(0f32, 1.0, (2, 5, h, h + 1), &dev)?;
            let w = Tensor::randn(0f32, 1.0, (5, 1, 3, 3), &dev)?;
            let b = Tensor::randn(0f32, 1.0, 5, &dev)?;
            let want = x
                .conv2d(&w, 1, stride, 1, 5)?
                .broadcast_add(&b.reshape((1, 5, 1, 1))?)?;
            let got = depthwise3x3(&x, &w, &b, stride)?;
            assert_eq!(got.dims(), want.dims(), "h {h} stride {stride}");
            assert!(max_diff(&got, &want) < 1e-4, "h {h} stride {stride}");
            let composed = composed_depthwise3x3(&x, &w, stride)?;
            let composed = composed.broadcast_add(&b.reshape((1, 5, 1, 1))?)?;
            assert!(max_diff(&composed, &want) < 1e-4);
        }
        Ok(())
    }

    #[test]
    fn gradients_match_the_composed_form() -> Result<()> {
        let dev = Device::Cpu;
        for stride in [1, 2] {
            let x = Var::randn(0f32, 1.0, (2, 3, 7, 6), &dev)?;
            let w = Var::randn(0f32, 1.0, (3, 1, 3, 3), &dev)?;
            let b = Tensor::zeros(3, candle_core::DType::F32, &dev)?;
            let out_shape = if stride == 1 {
                (2, 3, 7, 6)
            } else {
                (2, 3, 4, 3)
            };
            let weights = Tensor::randn(0f32, 1.0, out_shape, &dev)?;
            // A loss that reaches every output position differently, through ReLU6.
            let loss =
                |y: Tensor| -> Result<Tensor> { (relu6(&(y * 2.0)?)? * &weights)?.sum_all() };
            let fast = loss(depthwise3x3(x.as_tensor(), w.as_tensor(), &b, stride)?)?.backward()?;
            let slow = (composed_depthwise3x3(x.as_tensor(), w.as_tensor(), stride)? * 2.0)?
                .clamp(0f32, 6f32)?
                .mul(&weights)?
                .sum_all()?
                .backward()?;
            for v in [&x, &w] {
                let (a, b) = (fast.get(v).unwrap(), slow.get(v).unwrap());
                assert_eq!(a.dims(), b.dims());
                assert!(max_diff(a, b) < 1e-4, "stride {stride}: {}", max_diff(a, b));
            }
        }
        Ok(())
    }
}
