//! A small candle interpreter for the op lists that the TF.js graph converters write
//! (`tools/facemesh/convert.py` -> `assets/face/facemesh.graph.json`,
//! `tools/blazeface/convert.py` -> `assets/face/blazeface.graph.json`; shared translation in
//! `tools/facemesh/tfjs.py`), with their float16 safetensors weights. Used by FaceMesh and
//! BlazeFace. Activations are NHWC f32, batch first.
//!
//! Ops: `conv` (any kernel/stride as im2col + matmul, bias, optional fused PReLU or ReLU),
//! `dwconv` (depthwise, a direct loop on the host), `add`, `prelu` (`x > 0 ? x : alpha * x`),
//! `relu`, `maxpool` (k = stride; "same" pads the odd edge so that it never wins),
//! `pad_channels` (zeros after the last channel), `sigmoid`.
//! TF "SAME" padding is asymmetric at stride 2: the odd pixel is padded at the bottom/right.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

/// Graph formats this interpreter reads.
const FORMATS: [&str; 2] = ["dfa-facemesh-graph/1", "dfa-tfjs-graph/1"];

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
    act: Option<String>,
    after: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct InputSpec {
    shape: Vec<usize>,
}

#[derive(Debug, Deserialize)]
struct GraphSpec {
    format: String,
    input: Option<InputSpec>,
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
        relu: bool,
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
    Relu,
    MaxPool {
        k: usize,
        same: bool,
    },
    PadChannels(usize),
    Sigmoid,
}

struct Node {
    input: usize,
    op: Op,
}

/// A loaded network: ops in order, value slots (0 = input, i + 1 = output of op i).
pub(crate) struct GraphNet {
    nodes: Vec<Node>,
    outputs: HashMap<String, usize>,
    /// `[H, W, C]` the graph declares for its input, if any.
    input_shape: Option<Vec<usize>>,
    /// For each slot, the index of the last op that reads it (values are dropped after it).
    last_use: Vec<usize>,
    device: Device,
}

/// Errors are plain messages; callers wrap them in their own error type.
type Result<T> = std::result::Result<T, String>;

fn ce(e: candle_core::Error) -> String {
    e.to_string()
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

/// The values of a contiguous NHWC tensor (copied to the host when needed).
fn host(x: &Tensor) -> candle_core::Result<Vec<f32>> {
    x.flatten_all()?.to_vec1::<f32>()
}

/// `[N, OH, OW, KH*KW*C]`: every kernel window of a (padded) NHWC input, in (ky, kx, c) order,
/// the order of the flattened HWIO weight.
fn im2col(
    x: &Tensor,
    kh: usize,
    kw: usize,
    stride: usize,
    oh: usize,
    ow: usize,
) -> candle_core::Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let src = host(x)?;
    let mut out = Vec::with_capacity(n * oh * ow * kh * kw * c);
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..kh {
                    let row = (b * h + oy * stride + ky) * w;
                    let start = (row + ox * stride) * c;
                    out.extend_from_slice(&src[start..start + kw * c]);
                }
            }
        }
    }
    Tensor::from_vec(out, (n, oh, ow, kh * kw * c), x.device())
}

/// Depthwise convolution of a (padded) NHWC input with `w: [KH*KW, C]`, no padding.
fn depthwise(
    x: &Tensor,
    w: &Tensor,
    kh: usize,
    kw: usize,
    stride: usize,
) -> candle_core::Result<Tensor> {
    let (n, h, wd, c) = x.dims4()?;
    if h < kh || wd < kw || w.dims() != [kh * kw, c] {
        candle_core::bail!(
            "depthwise: input {:?} does not fit weight {:?}",
            x.dims(),
            w.dims()
        );
    }
    let (oh, ow) = ((h - kh) / stride + 1, (wd - kw) / stride + 1);
    let (src, taps) = (host(x)?, host(w)?);
    let mut out = vec![0f32; n * oh * ow * c];
    for b in 0..n {
        for oy in 0..oh {
            let o = (b * oh + oy) * ow * c;
            let out_row = &mut out[o..o + ow * c];
            for ky in 0..kh {
                let row = (b * h + oy * stride + ky) * wd;
                for kx in 0..kw {
                    let t = &taps[(ky * kw + kx) * c..(ky * kw + kx + 1) * c];
                    let start = (row + kx) * c;
                    let src_row = &src[start..start + ((ow - 1) * stride + 1) * c];
                    for (acc, v) in out_row.chunks_exact_mut(c).zip(src_row.chunks(stride * c)) {
                        for ((a, v), k) in acc.iter_mut().zip(&v[..c]).zip(t) {
                            *a += v * k;
                        }
                    }
                }
            }
        }
    }
    Tensor::from_vec(out, (n, oh, ow, c), x.device())
}

/// TF "SAME" padding for a k = stride pool: pad H and W up to a multiple of `k` with the
/// lowest f32, so a padded cell never wins the max.
fn pad_min(x: &Tensor, k: usize) -> candle_core::Result<Tensor> {
    let mut x = x.clone();
    for dim in [1, 2] {
        let size = x.dim(dim)?;
        let (before, after) = same_pads(size, k, k);
        if before + after == 0 {
            continue;
        }
        let mut shape = x.dims().to_vec();
        let mut parts = Vec::with_capacity(3);
        if before > 0 {
            shape[dim] = before;
            parts.push(Tensor::full(f32::MIN, shape.as_slice(), x.device())?);
        }
        parts.push(x.clone());
        shape[dim] = after;
        parts.push(Tensor::full(f32::MIN, shape.as_slice(), x.device())?);
        x = Tensor::cat(&parts, dim)?;
    }
    Ok(x)
}

impl Op {
    /// `others`: the second inputs (for `add`).
    fn forward(&self, x: &Tensor, others: &[Tensor]) -> candle_core::Result<Tensor> {
        match self {
            Op::Conv {
                kh,
                kw,
                stride,
                same,
                w,
                b,
                alpha,
                relu,
            } => {
                let x = pad_hw(x, *kh, *kw, *stride, *same)?;
                let (n, h, wd, _) = x.dims4()?;
                let oh = (h - kh) / stride + 1;
                let ow = (wd - kw) / stride + 1;
                // im2col over (ky, kx, ci), the order of the flattened HWIO weight.
                let cols = if *kh == 1 && *kw == 1 {
                    subsample(&x, *stride, oh, ow)?
                } else {
                    im2col(&x, *kh, *kw, *stride, oh, ow)?
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
                    None if *relu => y.relu(),
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
                depthwise(&x, w, *kh, *kw, *stride)
            }
            Op::Add(_) => x + &others[0],
            Op::Prelu(alpha) => prelu(x, alpha),
            Op::Relu => x.relu(),
            Op::MaxPool { k, same } => {
                let x = if *same { pad_min(x, *k)? } else { x.clone() };
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

impl GraphNet {
    /// Build the network from the graph JSON and safetensors bytes.
    pub(crate) fn from_bytes(graph_json: &[u8], weights: &[u8], device: &Device) -> Result<Self> {
        let spec: GraphSpec =
            serde_json::from_slice(graph_json).map_err(|e| format!("graph is not valid: {e}"))?;
        if !FORMATS.contains(&spec.format.as_str()) {
            return Err(format!("unknown graph format {:?}", spec.format));
        }
        let tensors = candle_core::safetensors::load_buffer(weights, device).map_err(ce)?;
        let weight = |key: &Option<String>, what: &str| -> Result<Tensor> {
            let key = key.as_ref().ok_or_else(|| format!("op lacks its {what}"))?;
            tensors
                .get(key)
                .ok_or_else(|| format!("weight {key} is missing"))?
                .to_dtype(DType::F32)
                .map_err(ce)
        };
        let mut slots: HashMap<String, usize> = HashMap::from([("input".to_string(), 0)]);
        let slot = |slots: &HashMap<String, usize>, name: &str| {
            slots
                .get(name)
                .copied()
                .ok_or_else(|| format!("op input {name} is not defined before use"))
        };
        let mut nodes = Vec::with_capacity(spec.ops.len());
        let mut last_use = vec![0usize];
        for o in &spec.ops {
            let kernel = || -> Result<(usize, usize)> {
                if let Some(k) = o.k.as_ref().and_then(|v| v.as_u64()) {
                    return Ok((k as usize, k as usize));
                }
                let k: Vec<usize> =
                    o.k.as_ref()
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .ok_or_else(|| format!("{}: bad kernel size", o.out))?;
                match k.as_slice() {
                    [kh, kw] if *kh > 0 && *kw > 0 => Ok((*kh, *kw)),
                    _ => Err(format!("{}: bad kernel size", o.out)),
                }
            };
            let stride = o.stride.unwrap_or(1).max(1);
            let same = o.pad.as_deref() == Some("same");
            let mut reads = vec![slot(&slots, &o.input)?];
            let op = match o.op.as_str() {
                "conv" => {
                    let (kh, kw) = kernel()?;
                    let relu = match o.act.as_deref() {
                        None => false,
                        Some("relu") => true,
                        Some(a) => return Err(format!("{}: unsupported activation {a}", o.out)),
                    };
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
                        relu,
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
                        .ok_or_else(|| format!("{}: add lacks its second input", o.out))?;
                    let other = slot(&slots, other)?;
                    reads.push(other);
                    Op::Add(other)
                }
                "prelu" => Op::Prelu(weight(&o.alpha, "alpha")?),
                "relu" => Op::Relu,
                "maxpool" => {
                    let (k, kw) = kernel()?;
                    if k != kw || k != stride {
                        return Err(format!("{}: only square pools with size == stride", o.out));
                    }
                    Op::MaxPool { k, same }
                }
                "pad_channels" => Op::PadChannels(o.after.unwrap_or(0)),
                "sigmoid" => Op::Sigmoid,
                other => return Err(format!("unsupported op {other}")),
            };
            for r in reads {
                last_use[r] = nodes.len();
            }
            nodes.push(Node {
                input: slot(&slots, &o.input)?,
                op,
            });
            last_use.push(usize::MAX);
            slots.insert(o.out.clone(), nodes.len());
        }
        let mut outputs = HashMap::new();
        for (name, node) in &spec.outputs {
            let s = slot(&slots, node)?;
            last_use[s] = usize::MAX; // outputs live to the end
            outputs.insert(name.clone(), s);
        }
        Ok(Self {
            nodes,
            outputs,
            input_shape: spec.input.map(|i| i.shape),
            last_use,
            device: device.clone(),
        })
    }

    /// The device the weights live on.
    pub(crate) fn device(&self) -> &Device {
        &self.device
    }

    /// Run on an NHWC input and return the named outputs in the order asked. Intermediate
    /// values are dropped as soon as no later op reads them.
    pub(crate) fn forward(&self, input: &Tensor, names: &[&str]) -> Result<Vec<Tensor>> {
        let (n, h, w, c) = input.dims4().map_err(ce)?;
        if let Some(want) = &self.input_shape {
            if want.as_slice() != [h, w, c] {
                return Err(format!(
                    "input must be [N, {}], got [{n}, {h}, {w}, {c}]",
                    want.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let wanted: Vec<usize> = names
            .iter()
            .map(|name| {
                self.outputs
                    .get(*name)
                    .copied()
                    .ok_or_else(|| format!("graph lacks output {name}"))
            })
            .collect::<Result<_>>()?;
        let mut values: Vec<Option<Tensor>> = Vec::with_capacity(self.nodes.len() + 1);
        values.push(Some(input.clone()));
        for (i, node) in self.nodes.iter().enumerate() {
            let x = values[node.input]
                .as_ref()
                .ok_or("value dropped before its last use")?;
            let y = {
                let refs: Vec<Tensor> = match &node.op {
                    Op::Add(other) => vec![values[*other]
                        .clone()
                        .ok_or("value dropped before its last use")?],
                    _ => Vec::new(),
                };
                node.op.forward(x, &refs).map_err(ce)?
            };
            values.push(Some(y));
            for (s, v) in values.iter_mut().enumerate() {
                if self.last_use[s] == i {
                    *v = None;
                }
            }
        }
        wanted
            .iter()
            .map(|&s| {
                values[s]
                    .clone()
                    .ok_or_else(|| "output was dropped".to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(data: &[f32], shape: (usize, usize, usize, usize)) -> Tensor {
        Tensor::from_slice(data, shape, &Device::Cpu).unwrap()
    }

    fn flat(x: &Tensor) -> Vec<f32> {
        x.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// A safetensors file of F32 tensors, written by hand.
    fn safetensors(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
        let (mut header, mut data) = (serde_json::Map::new(), Vec::new());
        for (name, shape, values) in tensors {
            let start = data.len();
            data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let h = serde_json::to_vec(&header).unwrap();
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend(h);
        out.extend(data);
        out
    }

    #[test]
    fn same_padding_is_asymmetric_at_stride_two() {
        assert_eq!(same_pads(192, 3, 2), (0, 1));
        assert_eq!(same_pads(96, 3, 1), (1, 1));
        assert_eq!(same_pads(3, 3, 3), (0, 0));
    }

    #[test]
    fn relu_op_zeroes_negatives() {
        let x = t(&[-1.5, 0.0, 2.0, -0.1], (1, 1, 2, 2));
        assert_eq!(
            flat(&Op::Relu.forward(&x, &[]).unwrap()),
            [0.0, 0.0, 2.0, 0.0]
        );
    }

    #[test]
    fn conv_with_fused_relu() {
        // 1x1 conv, 2 -> 2 channels: y0 = x0 - x1 + 0.5, y1 = -x0 (then ReLU).
        let w = Tensor::from_slice(&[1f32, -1.0, -1.0, 0.0], (2, 2), &Device::Cpu).unwrap();
        let b = Tensor::from_slice(&[0.5f32, 0.0], 2, &Device::Cpu).unwrap();
        let op = |relu| Op::Conv {
            kh: 1,
            kw: 1,
            stride: 1,
            same: false,
            w: w.clone(),
            b: b.clone(),
            alpha: None,
            relu,
        };
        let x = t(&[1.0, 3.0, 2.0, 1.0], (1, 1, 2, 2));
        assert_eq!(
            flat(&op(false).forward(&x, &[]).unwrap()),
            [-1.5, -1.0, 1.5, -2.0]
        );
        assert_eq!(
            flat(&op(true).forward(&x, &[]).unwrap()),
            [0.0, 0.0, 1.5, 0.0]
        );
    }

    #[test]
    fn depthwise_and_im2col_windows() {
        let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], (1, 3, 3, 1));
        let ones = Tensor::ones((4, 1), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            flat(&depthwise(&x, &ones, 2, 2, 1).unwrap()),
            [12.0, 16.0, 24.0, 28.0]
        );
        assert_eq!(flat(&depthwise(&x, &ones, 2, 2, 2).unwrap()), [12.0]);
        let cols = im2col(&x, 2, 2, 1, 2, 2).unwrap();
        assert_eq!(cols.dims(), [1, 2, 2, 4]);
        assert_eq!(&flat(&cols)[..8], [1.0, 2.0, 4.0, 5.0, 2.0, 3.0, 5.0, 6.0]);
        assert!(depthwise(&x, &ones, 4, 4, 1).is_err());
    }

    #[test]
    fn maxpool_same_pads_the_odd_edge_with_losers() {
        // 3x3, one channel, all negative: the padded row/column must never win.
        let x = t(
            &[-9.0, -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0],
            (1, 3, 3, 1),
        );
        let y = Op::MaxPool { k: 2, same: true }.forward(&x, &[]).unwrap();
        assert_eq!(y.dims(), [1, 2, 2, 1]);
        assert_eq!(flat(&y), [-5.0, -4.0, -2.0, -1.0]);
        let valid = Op::MaxPool { k: 2, same: false }.forward(&x, &[]).unwrap();
        assert_eq!(flat(&valid), [-5.0]);
    }

    #[test]
    fn graph_with_new_ops_runs_and_frees_values() {
        let graph = br#"{"format": "dfa-tfjs-graph/1", "input": {"shape": [3, 3, 1]},
            "outputs": {"y": "sum", "pooled": "pool"},
            "ops": [
            {"op": "conv", "out": "c", "in": "input", "k": [1, 1], "stride": 1, "pad": "valid",
             "w": "c.weight", "b": "c.bias", "act": "relu"},
            {"op": "relu", "out": "r", "in": "input"},
            {"op": "add", "out": "sum", "in": "c", "in2": "r"},
            {"op": "maxpool", "out": "pool", "in": "sum", "k": 2, "stride": 2, "pad": "same"}
            ]}"#;
        let weights = safetensors(&[
            ("c.weight", vec![1, 1], vec![-1.0]),
            ("c.bias", vec![1], vec![1.0]),
        ]);
        let net = GraphNet::from_bytes(graph, &weights, &Device::Cpu).unwrap();
        let x = t(
            &[-2.0, 0.5, 3.0, 1.0, -1.0, 0.0, 4.0, 2.0, -3.0],
            (1, 3, 3, 1),
        );
        let out = net.forward(&x, &["y", "pooled"]).unwrap();
        // relu(1 - x) + relu(x)
        assert_eq!(flat(&out[0]), [3.0, 1.0, 3.0, 1.0, 2.0, 1.0, 4.0, 2.0, 4.0]);
        assert_eq!(flat(&out[1]), [3.0, 3.0, 4.0, 4.0]);
        assert!(net.forward(&x, &["nope"]).is_err());
        let wrong = t(&[0.0; 4], (1, 2, 2, 1));
        assert!(net.forward(&wrong, &["y"]).is_err());
        let bad_act = String::from_utf8_lossy(graph).replace("\"relu\"}", "\"gelu\"}");
        assert!(GraphNet::from_bytes(bad_act.as_bytes(), &weights, &Device::Cpu).is_err());
    }
}
