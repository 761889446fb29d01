#!/usr/bin/env python3
"""Dev-only: write assets/face/canonical_468.json from the MediaPipe canonical face UV map.

Source: npm package @tensorflow-models/facemesh@0.0.5 (Apache-2.0, Google LLC),
file package/dist/uv_coords.js (`UV_COORDS`: 468 [u, v] pairs, the texture coordinates of
MediaPipe's canonical face model, i.e. a frontal 2D layout of the 468 FaceMesh points).

    npm pack @tensorflow-models/facemesh@0.0.5   # sha256 c06726d4f984405e8488b06111bb7e3716030edca8649f0ea83139bad302dd09
    tar -xzf tensorflow-models-facemesh-0.0.5.tgz
    python3 tools/extract_canonical.py package/dist/uv_coords.js > assets/face/canonical_468.json

Nothing here runs at dfa run time; the JSON is embedded with include_str!.
"""
import json
import re
import sys


def main() -> None:
    text = open(sys.argv[1], encoding="utf-8").read()
    body = text[text.index("UV_COORDS") :]
    pairs = re.findall(r"\[\s*([-0-9.e]+)\s*,\s*([-0-9.e]+)\s*\]", body)
    points = [[round(float(u), 6), round(float(v), 6)] for u, v in pairs]
    if len(points) != 468:
        sys.exit(f"expected 468 points, found {len(points)}")
    out = {
        "source": "npm @tensorflow-models/facemesh@0.0.5, dist/uv_coords.js (UV_COORDS)",
        "license": "Apache-2.0, Copyright 2020 Google LLC",
        "description": "MediaPipe canonical face model, texture (u, v) of the 468 FaceMesh "
        "landmarks: a frontal 2D layout, u to the image right (subject's left), v down",
        "points": points,
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
