#!/usr/bin/env bash
# Turn local git clones of the public face collections (pinned commits, ../shared/SOURCES.md)
# into the folder layout `dfa forge --sources DIR` reads, under cache/faces/ (git-ignored):
#
#   cache/faces/lfw/<Name>/<Name>_NNNN.jpg       identity = folder   (LFW deep-funneled)
#   cache/faces/utkface/<age>_<g>_<r>_<t>.jpg    identity = file     (UTKFace part 1, ages >= 10)
#   cache/faces/webmorph-london/<id>_<nn>.jpg    identity = prefix before '_' (neutral + smiling)
#   cache/faces/webmorph-canada/<id>f.jpg        identity = file
#
# Each folder gets a source.json (name, identity rule, licence) and MANIFEST.sha256; the sha256
# of each manifest is checked against tools/faces.sha256 so that a different commit or a
# damaged clone is caught. Usage: tools/fetch-faces.sh [GIT_DIR]  (default: $FACES_GIT or
# cache/git). A clone is looked for as GIT_DIR/<name>, GIT_DIR/<owner>+<name>/repo or
# GIT_DIR/<owner>+<name>; bare clones work. Re-running skips finished folders.
#
# Filters applied here, by file name only: UTKFace ages 0-9 are left out (2,946 files: many are
# upscaled baby photos, and FICT proportions are adult ones); webmorph `._*` macOS files and
# `inst/3dsk`, `inst/composite` are never read. Face-level filters (size, one face, blur,
# duplicates) are `dfa forge`'s, which counts what it drops.
set -euo pipefail
cd "$(dirname "$0")/.."
GIT_DIR=${1:-${FACES_GIT:-cache/git}}
OUT=cache/faces
mkdir -p "$OUT"

find_clone() { # owner name -> path of a git dir that has the commit, or empty
  local owner=$1 name=$2 commit=$3
  for d in "$GIT_DIR/$name" "$GIT_DIR/$owner+$name/repo" "$GIT_DIR/$owner+$name"; do
    if [ -d "$d" ] && git -C "$d" cat-file -e "$commit^{commit}" 2>/dev/null; then echo "$d"; return; fi
  done
}

# source owner name commit path-in-repo filter identity licence
extract() {
  local src=$1 owner=$2 name=$3 commit=$4 path=$5 filter=$6 identity=$7 licence=$8
  local dest="$OUT/$src"
  if [ -f "$dest/source.json" ]; then echo "$src: already in $dest"; return; fi
  local clone; clone=$(find_clone "$owner" "$name" "$commit")
  if [ -z "$clone" ]; then
    echo "$src: no clone with commit $commit; run: git clone https://github.com/$owner/$name $GIT_DIR/$name" >&2
    return 1
  fi
  local tmp="$dest.tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
  git -C "$clone" archive "$commit" $path | tar -x -C "$tmp"
  python3 - "$tmp" "$dest.new" "$filter" <<'PY'
import os, re, shutil, sys
src, dst, rule = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(dst, exist_ok=True)
kept = 0
for root, _, files in os.walk(src):
    for f in sorted(files):
        if f.startswith('._') or not f.lower().endswith(('.jpg', '.jpeg', '.png')):
            continue
        rel = os.path.relpath(os.path.join(root, f), src)
        parts = rel.split(os.sep)
        if rule == 'lfw':            # images_deepfunneled/<Name>/<file>
            out = os.path.join(parts[-2], f)
        elif rule == 'utk':          # crop_part1/<age>_<g>_<r>_<t>.jpg.chip.jpg, adults and teens
            m = re.match(r'(\d+)_', f)
            if not m or int(m.group(1)) < 10:
                continue
            out = f.replace('.jpg.chip.jpg', '.jpg')
        else:                        # flat: inst/<set>/<file>
            out = f
        os.makedirs(os.path.dirname(os.path.join(dst, out)) or dst, exist_ok=True)
        shutil.move(os.path.join(root, f), os.path.join(dst, out))
        kept += 1
print(f"kept {kept}")
PY
  rm -rf "$tmp"
  (cd "$dest.new" && find . -type f \( -name '*.jpg' -o -name '*.png' \) | LC_ALL=C sort | xargs -d '\n' sha256sum > MANIFEST.sha256)
  local want; want=$(awk -v s="$src" '$2 == s {print $1}' tools/faces.sha256)
  local got; got=$(sha256sum "$dest.new/MANIFEST.sha256" | cut -d' ' -f1)
  if [ -n "$want" ] && [ "$want" != "$got" ]; then
    echo "$src: manifest sha256 $got does not match tools/faces.sha256 ($want)" >&2; return 1
  fi
  [ -n "$want" ] || echo "$src: manifest sha256 $got (not yet in tools/faces.sha256)"
  printf '{"name": "%s", "identity": "%s", "licence": "%s", "origin": "github.com/%s/%s@%s %s"}\n' \
    "$src" "$identity" "$licence" "$owner" "$name" "$commit" "$path" > "$dest.new/source.json"
  mv "$dest.new" "$dest"
  echo "$src: $(wc -l < "$dest/MANIFEST.sha256") photos in $dest"
}

status=0
extract lfw umass-vis-lfw umass-vis-lfw.github.io 2a620cd8cceb10430f8c7012fe9fa5f0837759e9 \
  images_deepfunneled lfw folder "no licence stated; research benchmark" || status=1
extract utkface Mohanish-5744 Major_Ensemble_Gender 2f8aa4a5932c395d465f4f58d864b6a17a1b03f6 \
  crop_part1 utk file "no licence stated; upstream: non-commercial research" || status=1
extract webmorph-london debruine webmorphR.stim fa8b78fda2d659bb74ce62fcd99c4407551d2a77 \
  "inst/neutral_front inst/smiling_front" flat "prefix:_" "CC BY 4.0 (Face Research Lab London Set)" || status=1
extract webmorph-canada debruine webmorphR.stim fa8b78fda2d659bb74ce62fcd99c4407551d2a77 \
  inst/canada flat file "CC BY 4.0 (Young Adult White Faces with Manipulated Versions)" || status=1
exit $status
