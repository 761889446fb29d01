"""Read a TF.js graph model (model.json + weight shards) into numpy arrays, and translate it into
dfa's op list (`to_ops`) with a float16 safetensors writer. Dev-only helper shared by
convert.py and reference.py here and by tools/blazeface/."""
import base64
import json
import os
import struct

import numpy as np

PREFIXES = ("StatefulPartitionedCall/model_1/", "StatefulPartitionedCall/functional_1/")


def short(name):
    """Node name without the Keras wrapper prefix and the ':0' suffix."""
    name = name.split(":")[0]
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def load(model_json):
    """Return (nodes, weights): nodes as dicts {name, op, inputs, attr}, weights name -> ndarray."""
    with open(model_json) as f:
        model = json.load(f)
    base = os.path.dirname(model_json)
    weights = {}
    for group in model["weightsManifest"]:
        blob = b"".join(open(os.path.join(base, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q and q["dtype"] == "float16":
                arr = np.frombuffer(blob, np.float16, count, off).astype(np.float32)
                off += 2 * count
            elif q:
                raise SystemExit(f"unsupported quantization {q}")
            else:
                dt = {"float32": np.float32, "int32": np.int32}[w["dtype"]]
                arr = np.frombuffer(blob, dt, count, off)
                off += 4 * count
            weights[short(w["name"])] = arr.reshape(w["shape"])
        if off != len(blob):
            raise SystemExit(f"weights size mismatch: read {off}, file {len(blob)}")
    nodes = []
    for n in model["modelTopology"]["node"]:
        attr = {}
        for k, v in n.get("attr", {}).items():
            if "list" in v:
                lst = v["list"]
                if "s" in lst:
                    attr[k] = [base64.b64decode(s).decode() for s in lst["s"]]
                elif "i" in lst:
                    attr[k] = [int(i) for i in lst["i"]]
            elif "s" in v:
                attr[k] = base64.b64decode(v["s"]).decode()
        nodes.append({
            "name": short(n["name"]),
            "op": n["op"],
            "inputs": [short(i) for i in n.get("input", [])],
            "attr": attr,
        })
    sig = model.get("signature") or model.get("userDefinedMetadata", {}).get("signature")
    return nodes, weights, sig


def write_safetensors(path, tensors, source):
    """Minimal safetensors writer (header JSON + little-endian raw data), float16 tensors."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].astype("<f2"))
        header[name] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = {"source": source}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_graph(path, graph):
    """The op-list JSON, one op per line: readable and diff-friendly."""
    with open(path, "w") as f:
        head = {k: v for k, v in graph.items() if k != "ops"}
        f.write(json.dumps(head)[:-1] + ',\n"ops": [\n')
        f.write(",\n".join(json.dumps(o) for o in graph["ops"]))
        f.write("\n]}\n")


def to_ops(nodes, weights, outputs, input_name, keys_by_op=False):
    """Translate the graph into dfa's op list, pruned to `outputs` ({key: node name}).

    Returns (ops, tensors, outputs as op names). Identity/Reshape are dropped (the caller
    reshapes the outputs). Weight layouts (NHWC activations at run time):
      conv   w: [KH*KW*CI, CO] (HWIO flattened, matches an im2col over (ky, kx, ci)), b: [CO]
      dwconv w: [KH*KW, C]
      alpha  (PReLU, the stored `.../Neg` constants used as y = x > 0 ? x : alpha * x): [C]
    Conv weights are named after their constant's layer (FaceMesh) or, with `keys_by_op`,
    after the op (graphs whose constants are called `unknown_N`)."""
    by_name = {n["name"]: n for n in nodes}

    # Follow Identity/Reshape back to the producing op for each kept output.
    def producer(name):
        while by_name[name]["op"] in ("Identity", "Reshape"):
            name = by_name[name]["inputs"][0]
        return name

    outputs = {k: producer(v) for k, v in outputs.items()}
    needed, stack = set(), list(outputs.values())
    while stack:
        name = stack.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        stack.extend(by_name[name]["inputs"])

    alias = {input_name: "input"}
    ops, tensors = [], {}

    def ref(name):
        return alias.get(name, name)

    def f16(key, arr):
        tensors[key] = np.asarray(arr, dtype=np.float32)
        return key

    def layer(const, out):
        return out if keys_by_op else const.split("/")[0]

    for n in nodes:
        name, op, a, ins = n["name"], n["op"], n["attr"], n["inputs"]
        if name not in needed or op in ("Const", "Placeholder"):
            continue
        out = name.split("/")[0]
        if op == "_FusedConv2D":
            w = weights[ins[1]]
            kh, kw, ci, co = w.shape
            key = layer(ins[1], out)
            o = {"op": "conv", "out": out, "in": ref(ins[0]), "k": [kh, kw], "stride": a["strides"][1],
                 "pad": a["padding"].lower(), "w": f16(key + ".weight", w.reshape(kh * kw * ci, co)),
                 "b": f16(key + ".bias", weights[ins[2]])}
            if a["fused_ops"] == ["BiasAdd", "Prelu"]:
                o["alpha"] = f16(layer(ins[3], out) + ".alpha", weights[ins[3]].reshape(-1))
            elif a["fused_ops"] == ["BiasAdd", "Relu"]:
                o["act"] = "relu"
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
        elif op == "Relu":
            o = {"op": "relu", "out": out, "in": ref(ins[0])}
        elif op == "MaxPool":
            assert a["ksize"][1] == a["ksize"][2] and a["strides"][1] == a["strides"][2]
            o = {"op": "maxpool", "out": out, "in": ref(ins[0]), "k": a["ksize"][1], "stride": a["strides"][1]}
            if a["padding"] == "SAME":
                o["pad"] = "same"
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
    return ops, tensors, {k: ref(v) for k, v in outputs.items()}
