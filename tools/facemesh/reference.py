"""Numpy (float64) reference of the FaceMesh TF.js graph, executed node by node straight from
the original model.json + .bin (independent of convert.py), on a committed 192x192 input.
Writes tests/data/facemesh_ref.json, the fixture the candle port is tested against.

    python3 tools/facemesh/reference.py [--model PATH/facemesh.json]
Dev-only; needs numpy and pillow.
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

import tfjs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_MODEL = os.path.join(ROOT, "cache/sources/un/npm/package/models/facemesh.json")


def same_pads(size, k, s):
    """TF 'SAME' padding: (before, after); the odd pixel goes after (bottom/right)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pad_hw(x, kh, kw, s, padding):
    if padding == "VALID":
        return x
    pt, pb = same_pads(x.shape[1], kh, s)
    pl, pr = same_pads(x.shape[2], kw, s)
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))


def windows(x, kh, kw, s):
    """Yield (ky, kx, view) for each kernel tap; view is [N, OH, OW, C]."""
    oh = (x.shape[1] - kh) // s + 1
    ow = (x.shape[2] - kw) // s + 1
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, x[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s, :]


def conv2d(x, w, s, padding):  # w: [KH, KW, CI, CO]
    kh, kw = w.shape[:2]
    x = pad_hw(x, kh, kw, s, padding)
    return sum(np.einsum("nhwc,cd->nhwd", v, w[ky, kx]) for ky, kx, v in windows(x, kh, kw, s))


def depthwise(x, w, s, padding):  # w: [KH, KW, C, 1]
    kh, kw = w.shape[:2]
    x = pad_hw(x, kh, kw, s, padding)
    return sum(v * w[ky, kx, :, 0] for ky, kx, v in windows(x, kh, kw, s))


def prelu(x, alpha):
    return np.where(x > 0, x, x * alpha.reshape(-1))


def run(nodes, weights, image, input_name="input_1"):
    vals = {input_name: image.astype(np.float64)}
    w = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in weights.items()}

    def get(name):
        return vals[name] if name in vals else w[name]

    for n in nodes:
        op, a, ins = n["op"], n["attr"], n["inputs"]
        if op in ("Const", "Placeholder"):
            continue
        if op == "_FusedConv2D":
            y = conv2d(get(ins[0]), get(ins[1]), a["strides"][1], a["padding"]) + get(ins[2])
            fused = a["fused_ops"]
            if fused == ["BiasAdd", "Prelu"]:
                y = prelu(y, get(ins[3]))
            elif fused == ["BiasAdd", "Relu"]:
                y = np.maximum(y, 0.0)
            elif fused != ["BiasAdd"]:
                raise SystemExit(f"unsupported fused ops {fused}")
        elif op == "DepthwiseConv2dNative":
            y = depthwise(get(ins[0]), get(ins[1]), a["strides"][1], a["padding"])
        elif op == "AddV2":
            y = get(ins[0]) + get(ins[1])
        elif op == "Prelu":
            y = prelu(get(ins[0]), get(ins[1]))
        elif op == "Relu":
            y = np.maximum(get(ins[0]), 0.0)
        elif op == "MaxPool":
            k, s = a["ksize"][1], a["strides"][1]
            x = get(ins[0])
            if a["padding"] == "SAME":  # pad with -inf: padded cells never win
                pt, pb = same_pads(x.shape[1], k, s)
                pl, pr = same_pads(x.shape[2], k, s)
                x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
            y = np.max(np.stack([v for _, _, v in windows(x, k, k, s)]), axis=0)
        elif op == "Pad":
            y = np.pad(get(ins[0]), get(ins[1]))
        elif op == "Sigmoid":
            y = 1.0 / (1.0 + np.exp(-get(ins[0])))
        elif op == "Reshape":
            y = get(ins[0]).reshape(get(ins[1]))
        elif op == "Identity":
            y = get(ins[0])
        else:
            raise SystemExit(f"unsupported op {op}")
        vals[n["name"]] = y
    return vals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--input", default=os.path.join(ROOT, "tests/data/facemesh_input.png"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/data/facemesh_ref.json"))
    args = ap.parse_args()
    nodes, weights, sig = tfjs.load(args.model)
    img = np.asarray(Image.open(args.input).convert("RGB"), dtype=np.float64) / 255.0
    assert img.shape == (192, 192, 3), img.shape
    vals = run(nodes, weights, img[None])
    outs = {k: tfjs.short(v["name"]) for k, v in sig["outputs"].items()}
    mesh = vals[outs["output_mesh"]].reshape(-1)
    flag = float(vals[outs["output_faceflag"]].reshape(-1)[0])
    with open(args.out, "w") as f:
        json.dump({
            "input": os.path.relpath(args.input, ROOT),
            "note": "tools/facemesh/reference.py: float64 numpy run of the TF.js graph",
            "faceflag": flag,
            "mesh": [round(float(v), 6) for v in mesh],
        }, f)
    print(f"faceflag {flag:.4f}; mesh x range {mesh[0::3].min():.1f}..{mesh[0::3].max():.1f}, "
          f"y range {mesh[1::3].min():.1f}..{mesh[1::3].max():.1f}; wrote {args.out}")


if __name__ == "__main__":
    main()
