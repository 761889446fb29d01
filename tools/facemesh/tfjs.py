"""Read a TF.js graph model (model.json + weight shards) into numpy arrays. Dev-only helper
shared by convert.py and reference.py."""
import base64
import json
import os

import numpy as np

PREFIX = "StatefulPartitionedCall/model_1/"


def short(name):
    """Node name without the Keras wrapper prefix and the ':0' suffix."""
    name = name.split(":")[0]
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


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
    return nodes, weights, model["signature"]
