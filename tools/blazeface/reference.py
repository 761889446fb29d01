"""Numpy (float64) reference of the BlazeFace full-range TF.js graph, executed node by node
straight from the original model.json + .bin (float32 weights, independent of convert.py and of
the float16 copy dfa embeds), plus the MediaPipe SSD decode (anchors, sigmoid, weighted NMS).

  python3 tools/blazeface/reference.py IMAGE [--out tests/data/blazeface_ref.json]

IMAGE is letterboxed (centred, black bars) to 256x256: pasted as is when it fits (the fixture:
tests/data/facemesh_input.png, 192x192, at (32, 32)), else scaled down with PIL bilinear. With
--out the JSON holds the raw logits of all 896 anchors and the 16 regressor values of the best
anchors: the fixture the candle port is tested against (tests/face_real.rs). Prints the decoded
boxes (input pixels). Dev-only; needs numpy and pillow.
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "facemesh"))
import reference  # noqa: E402
import tfjs  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_MODEL = os.path.join(ROOT, "cache/sources/un/npm/package/models/blazeface-back.json")
SIZE = 256


def anchors():
    """MediaPipe SSD anchors of the full-range model: strides 16, 32, 32, 32 with offset 0.5,
    fixed size; the three stride-32 layers share one 8x8 grid (6 anchors a cell), the
    stride-16 layer has 2 anchors a cell (16x16). Centres in [0, 1], order y, x, anchor."""
    out = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                out += [((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell
    return np.array(out)


def letterbox(path):
    img = Image.open(path).convert("RGB")
    if max(img.size) > SIZE:
        s = SIZE / max(img.size)
        img = img.resize((max(1, round(img.size[0] * s)), max(1, round(img.size[1] * s))), Image.BILINEAR)
    canvas = Image.new("RGB", (SIZE, SIZE))
    canvas.paste(img, ((SIZE - img.size[0]) // 2, (SIZE - img.size[1]) // 2))
    return canvas


def decode(scores, raw, thresh=0.5, iou=0.3):
    """Boxes [x0, y0, x1, y1] in input pixels with score, by weighted NMS."""
    a = anchors() * SIZE
    p = 1 / (1 + np.exp(-np.clip(scores, -100, 100)))
    cx, cy = raw[:, 0] + a[:, 0], raw[:, 1] + a[:, 1]
    boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], 1)
    order = [i for i in np.argsort(-p) if p[i] >= thresh]
    out = []
    while order:
        b = boxes[order[0]]
        ix = np.clip(np.minimum(b[2], boxes[order, 2]) - np.maximum(b[0], boxes[order, 0]), 0, None)
        iy = np.clip(np.minimum(b[3], boxes[order, 3]) - np.maximum(b[1], boxes[order, 1]), 0, None)
        area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
        ov = ix * iy / (area(b) + area(boxes[order]) - ix * iy)
        group = [o for o, v in zip(order, ov) if v > iou]
        wts = p[group]
        out.append((float(p[order[0]]), (boxes[group] * wts[:, None]).sum(0) / wts.sum()))
        order = [o for o, v in zip(order, ov) if v <= iou]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out")
    args = ap.parse_args()
    nodes, weights, sig = tfjs.load(args.model)
    canvas = letterbox(args.image)
    x = np.asarray(canvas, dtype=np.float64) / 127.5 - 1.0
    vals = reference.run(nodes, weights, x[None], input_name="input")
    out = {k: vals[tfjs.short(v["name"])].reshape(-1, v_len)
           for k, v, v_len in [("s16", sig["outputs"]["Identity:0"], 1), ("s8", sig["outputs"]["Identity_1:0"], 1),
                               ("r16", sig["outputs"]["Identity_2:0"], 16), ("r8", sig["outputs"]["Identity_3:0"], 16)]}
    scores = np.concatenate([out["s16"], out["s8"]])[:, 0]
    raw = np.concatenate([out["r16"], out["r8"]])
    for p, b in decode(scores, raw):
        print(f"score {p:.3f} box {np.round(b, 1).tolist()}")
    if args.out:
        best = [int(i) for i in np.argsort(-scores)[:8]]
        with open(args.out, "w") as f:
            json.dump({
                "input": os.path.relpath(os.path.abspath(args.image), ROOT),
                "note": "tools/blazeface/reference.py: float64 numpy run of the TF.js graph "
                        "(float32 weights); input: the image centred on a black 256x256 canvas, "
                        "scaled to [-1, 1]",
                "scores": [round(float(v), 5) for v in scores],
                "best": best,
                "regressors": [[round(float(v), 4) for v in raw[i]] for i in best],
            }, f)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
