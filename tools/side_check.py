#!/usr/bin/env python3
"""Which side do dfa's named regions and masks pick, against the edit's side?

    python3 tools/side_check.py forge-out/v1/data.jsonl eval-out/mnv2-prior/predictions.jsonl [SPLIT]

For every `[SEG]` of an AGE answer on a fake of SPLIT (default test) whose phrase names a sided concept
("left eye", "right cheek", ...), the named side is compared with the side its mask lies on
(mask box centre left or right of the face box centre; the subject's right is the image's
left) and, where the edit has one side only, both with the truth. One block per system in the
prediction cache (its fingerprint; the MLLM is the one whose raw answers contain `[SEG]`).
"""
import json
import sys
from collections import Counter

data, preds = sys.argv[1], sys.argv[2]
split = sys.argv[3] if len(sys.argv) > 3 else "test"
samples = {}
for line in open(data):
    r = json.loads(line)
    if r["split"] == split:
        samples[r["id"]] = r
systems = {}
for line in open(preds):
    p = json.loads(line)
    c = systems.setdefault((p["fingerprint"], "[SEG]" in p.get("explanation_raw", "")), Counter())
    s = samples.get(p["sample_id"])
    if not p["request"].startswith("age") or s is None or not s["concepts"]:
        continue
    fb = s["face_bbox"]
    centre = (fb[0] + fb[2]) / 2
    truth = {x.split()[0] for x in s["concepts"] if x.split()[0] in ("left", "right")}
    for seg in p["segments"]:
        words = (seg.get("region") or "").split()
        if not words or words[0] not in ("left", "right"):
            continue
        named = words[0]
        b = seg["bbox"]
        masked = "right" if (b[0] + b[2]) / 2 < centre else "left"
        c[f"named {named}"] += 1
        c["name and mask agree" if named == masked else "name and mask disagree"] += 1
        if len(truth) == 1:
            t = next(iter(truth))
            c["name on the edited side" if named == t else "name on the mirror side"] += 1
            c["mask on the edited side" if masked == t else "mask on the mirror side"] += 1
for (fp, mllm), c in systems.items():
    if not c:
        continue
    print(f"system {fp} ({'MLLM' if mllm else 'no [SEG] in its answers'})")
    for k in sorted(c):
        print(f"  {k}: {c[k]}")
