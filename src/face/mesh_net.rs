//! The FaceMesh network in candle: a small interpreter for the op list that
//! `tools/facemesh/convert.py` wrote (`assets/face/facemesh.graph.json`), with the converted
//! float16 weights (`facemesh.safetensors`). Activations are NHWC f32, batch first.
//!
//! Ops: `conv` (any kernel/stride as im2col + matmul, bias, optional fused PReLU), `dwconv`
//! (3x3 depthwise as nine shifted multiply-adds), `add`, `prelu` (`x > 0 ? x : alpha * x`),
//! `maxpool` (k = stride), `pad_channels` (zeros after the last channel), `sigmoid`.
//! TF "SAME" padding is asymmetric at stride 2: the odd pixel is padded at the bottom/right.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::MeshError;

/// One op as written by `convert.py`.
#[derive(Debug, Deserialize)]
struct OpSpec {
    op: String,
    out: String,
    #[serde(rename = "in")]
    input: String,
    in2: Option<String>,
    k: Option<serde_json::Value>,
    stride: Option<usize>,
    pad: Option<String>,
    w: Option<String>,
    b: Option<String>,
    alpha: Option<String>,
    after: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct GraphSpec {
    format: String,
    outputs: HashMap<String, String>,
    ops: Vec<OpSpec>,
}

/// A resolved op: weights looked up, inputs as slots in the value table.
enum Op {
    Conv {
        kh: usize,
        kw: usize,
        stride: usize,
        same: bool,
        w: Tensor,
        b: Tensor,
        alpha: Option<Tensor>,
    },
    DwConv {
        kh: usize,
        kw: usize,
        stride: usize,
        same: bool,
        w: Tensor,
    },
    Add(usize),
    Prelu(Tensor),
    MaxPool(usize),
    PadChannels(usize),
    Sigmoid,
}

struct Node {
    input: usize,
    op: Op,
}

/// Raw network outputs for a batch of 192x192 crops.
pub(crate) struct NetOutput {
    /// `[N, 1404]`: 468 (x, y, z) in crop pixels.
    pub mesh: Tensor,
    /// `[N]`: face presence probability.
    pub faceflag: Tensor,
}

/// The loaded FaceMesh network.
pub(crate) struct MeshNet {
    nodes: Vec<Node>,
    mesh_slot: usize,
    flag_slot: usize,
    device: Device,
}

fn bad(msg: impl Into<String>) -> MeshError {
    MeshError::Model(msg.into())
}

fn ce(e: candle_core::Error) -> MeshError {
    MeshError::Model(e.to_string())
}

/// TF "SAME" padding (before, after) for one spatial dimension.
fn same_pads(size: usize, k: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + k).saturating_sub(size);
    (total / 2, total - total / 2)
}

fn pad_hw(
    x: &Tensor,
    kh: usize,
    kw: usize,
    stride: usize,
    same: bool,
) -> candle_core::Result<Tensor> {
    if !same {
        return Ok(x.clone());
    }
    let (_, h, w, _) = x.dims4()?;
    let (pt, pb) = same_pads(h, kh, stride);
    let (pl, pr) = same_pads(w, kw, stride);
    x.pad_with_zeros(1, pt, pb)?.pad_with_zeros(2, pl, pr)
}

/// Make dimension `dim` exactly `len` long: cut the end or pad zeros after.
fn fit(x: &Tensor, dim: usize, len: usize) -> candle_core::Result<Tensor> {
    let have = x.dim(dim)?;
    if have >= len {
        x.narrow(dim, 0, len)
    } else {
        x.pad_with_zeros(dim, 0, len - have)
    }
}

/// Keep every `stride`-th row and column of an NHWC tensor (starting at 0): `[N, oh, ow, C]`.
fn subsample(x: &Tensor, stride: usize, oh: usize, ow: usize) -> candle_core::Result<Tensor> {
    if stride == 1 {
        return fit(&fit(x, 1, oh)?, 2, ow);
    }
    let (n, _, _, c) = x.dims4()?;
    let x = fit(&fit(x, 1, oh * stride)?, 2, ow * stride)?.contiguous()?;
    x.reshape((n, oh, stride, ow, stride, c))?
        .narrow(2, 0, 1)?
        .narrow(4, 0, 1)?
        .reshape((n, oh, ow, c))
}

fn prelu(x: &Tensor, alpha: &Tensor) -> candle_core::Result<Tensor> {
    x.maximum(0f32)? + x.minimum(0f32)?.broadcast_mul(alpha)?
}

impl Op {
    fn forward(&self, x: &Tensor, values: &[Tensor]) -> candle_core::Result<Tensor> {
        match self {
            Op::Conv {
                kh,
                kw,
                stride,
                same,
                w,
                b,
                alpha,
            } => {
                let x = pad_hw(x, *kh, *kw, *stride, *same)?;
                let (n, h, wd, _) = x.dims4()?;
                let oh = (h - kh) / stride + 1;
                let ow = (wd - kw) / stride + 1;
                // im2col over (ky, kx, ci), the order of the flattened HWIO weight.
                let cols = if *kh == 1 && *kw == 1 {
                    subsample(&x, *stride, oh, ow)?
                } else {
                    let mut taps = Vec::with_capacity(kh * kw);
                    for ky in 0..*kh {
                        for kx in 0..*kw {
                            let v = x.narrow(1, ky, stride * (oh - 1) + 1)?.narrow(
                                2,
                                kx,
                                stride * (ow - 1) + 1,
                            )?;
                            taps.push(subsample(&v, *stride, oh, ow)?);
                        }
                    }
                    Tensor::cat(&taps, 3)?
                };
                let k = cols.dim(3)?;
                let y = cols
                    .contiguous()?
                    .reshape((n * oh * ow, k))?
                    .matmul(w)?
                    .broadcast_add(b)?;
                let y = y.reshape((n, oh, ow, w.dim(1)?))?;
                match alpha {
                    Some(a) => prelu(&y, a),
                    None => Ok(y),
                }
            }
            Op::DwConv {
                kh,
                kw,
                stride,
                same,
                w,
            } => {
                let x = pad_hw(x, *kh, *kw, *stride, *same)?;
                let (_, h, wd, _) = x.dims4()?;
                // Stride-1 result over the padded input, then keep every stride-th pixel.
                let (fh, fw) = (h - kh + 1, wd - kw + 1);
                let mut acc: Option<Tensor> = None;
                for ky in 0..*kh {
                    for kx in 0..*kw {
                        let tap = w.get(ky * kw + kx)?;
                        let v = x
                            .narrow(1, ky, fh)?
                            .narrow(2, kx, fw)?
                            .broadcast_mul(&tap)?;
                        acc = Some(match acc {
                            None => v,
                            Some(a) => (a + v)?,
                        });
                    }
                }
                let acc = acc.ok_or_else(|| candle_core::Error::Msg("empty kernel".into()))?;
                let (oh, ow) = ((h - kh) / stride + 1, (wd - kw) / stride + 1);
                subsample(&acc, *stride, oh, ow)
            }
            Op::Add(other) => x + &values[*other],
            Op::Prelu(alpha) => prelu(x, alpha),
            Op::MaxPool(k) => {
                let (n, h, w, c) = x.dims4()?;
                let (oh, ow) = (h / k, w / k);
                let x = x.narrow(1, 0, oh * k)?.narrow(2, 0, ow * k)?.contiguous()?;
                x.reshape((n, oh, *k, ow, *k, c))?.max(4)?.max(2)
            }
            Op::PadChannels(after) => x.pad_with_zeros(3, 0, *after),
            Op::Sigmoid => candle_nn::ops::sigmoid(x),
        }
    }
}

impl MeshNet {
    /// Build the network from the graph JSON and safetensors bytes.
    pub(crate) fn from_bytes(
        graph_json: &[u8],
        weights: &[u8],
        device: &Device,
    ) -> Result<Self, MeshError> {
        let spec: GraphSpec = serde_json::from_slice(graph_json)
            .map_err(|e| bad(format!("facemesh graph is not valid: {e}")))?;
        if spec.format != "dfa-facemesh-graph/1" {
            return Err(bad(format!(
                "unknown facemesh graph format {:?}",
                spec.format
            )));
        }
        let tensors = candle_core::safetensors::load_buffer(weights, device).map_err(ce)?;
        let weight = |key: &Option<String>, what: &str| -> Result<Tensor, MeshError> {
            let key = key
                .as_ref()
                .ok_or_else(|| bad(format!("facemesh op lacks its {what}")))?;
            tensors
                .get(key)
                .ok_or_else(|| bad(format!("facemesh weight {key} is missing")))?
                .to_dtype(DType::F32)
                .map_err(ce)
        };
        let mut slots: HashMap<String, usize> = HashMap::from([("input".to_string(), 0)]);
        let slot = |slots: &HashMap<String, usize>, name: &str| {
            slots.get(name).copied().ok_or_else(|| {
                bad(format!(
                    "facemesh op input {name} is not defined before use"
                ))
            })
        };
        let mut nodes = Vec::with_capacity(spec.ops.len());
        for o in &spec.ops {
            let kernel = || -> Result<(usize, usize), MeshError> {
                let k: Vec<usize> =
                    o.k.as_ref()
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .ok_or_else(|| bad(format!("{}: bad kernel size", o.out)))?;
                match k.as_slice() {
                    [kh, kw] if *kh > 0 && *kw > 0 => Ok((*kh, *kw)),
                    _ => Err(bad(format!("{}: bad kernel size", o.out))),
                }
            };
            let stride = o.stride.unwrap_or(1).max(1);
            let same = o.pad.as_deref() == Some("same");
            let op = match o.op.as_str() {
                "conv" => {
                    let (kh, kw) = kernel()?;
                    Op::Conv {
                        kh,
                        kw,
                        stride,
                        same,
                        w: weight(&o.w, "weight")?,
                        b: weight(&o.b, "bias")?,
                        alpha: match o.alpha {
                            Some(_) => Some(weight(&o.alpha, "alpha")?),
                            None => None,
                        },
                    }
                }
                "dwconv" => {
                    let (kh, kw) = kernel()?;
                    Op::DwConv {
                        kh,
                        kw,
                        stride,
                        same,
                        w: weight(&o.w, "weight")?,
                    }
                }
                "add" => {
                    let other = o
                        .in2
                        .as_deref()
                        .ok_or_else(|| bad(format!("{}: add lacks its second input", o.out)))?;
                    Op::Add(slot(&slots, other)?)
                }
                "prelu" => Op::Prelu(weight(&o.alpha, "alpha")?),
                "maxpool" => {
                    let (k, _) = kernel().or_else(|_| {
                        o.k.as_ref()
                            .and_then(|v| v.as_u64())
                            .map(|k| (k as usize, k as usize))
                            .ok_or_else(|| bad(format!("{}: bad pool size", o.out)))
                    })?;
                    if k != stride || k == 0 {
                        return Err(bad(format!("{}: only pool size == stride", o.out)));
                    }
                    Op::MaxPool(k)
                }
                "pad_channels" => Op::PadChannels(o.after.unwrap_or(0)),
                "sigmoid" => Op::Sigmoid,
                other => return Err(bad(format!("unsupported facemesh op {other}"))),
            };
            nodes.push(Node {
                input: slot(&slots, &o.input)?,
                op,
            });
            slots.insert(o.out.clone(), nodes.len());
        }
        let output = |name: &str| -> Result<usize, MeshError> {
            let node = spec
                .outputs
                .get(name)
                .ok_or_else(|| bad(format!("facemesh graph lacks output {name}")))?;
            slot(&slots, node)
        };
        Ok(Self {
            mesh_slot: output("mesh")?,
            flag_slot: output("faceflag")?,
            nodes,
            device: device.clone(),
        })
    }

    /// The device the weights live on.
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    /// Run on `[N, 192, 192, 3]` RGB in `[0, 1]`.
    pub(crate) fn forward(&self, input: &Tensor) -> Result<NetOutput, MeshError> {
        let (n, h, w, c) = input.dims4().map_err(ce)?;
        if (h, w, c) != (192, 192, 3) {
            return Err(bad(format!(
                "facemesh input must be [N, 192, 192, 3], got [{n}, {h}, {w}, {c}]"
            )));
        }
        let mut values: Vec<Tensor> = Vec::with_capacity(self.nodes.len() + 1);
        values.push(input.clone());
        for node in &self.nodes {
            let y = node.op.forward(&values[node.input], &values).map_err(ce)?;
            values.push(y);
        }
        let mesh = values[self.mesh_slot].reshape((n, 1404)).map_err(ce)?;
        let faceflag = values[self.flag_slot].reshape(n).map_err(ce)?;
        Ok(NetOutput { mesh, faceflag })
    }
}

#[cfg(test)]
mod tests {
    use super::same_pads;

    #[test]
    fn same_padding_is_asymmetric_at_stride_two() {
        assert_eq!(same_pads(192, 3, 2), (0, 1));
        assert_eq!(same_pads(96, 3, 1), (1, 1));
        assert_eq!(same_pads(3, 3, 3), (0, 0));
    }
}
