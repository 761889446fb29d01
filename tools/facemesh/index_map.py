"""Derive the MediaPipe 468 -> iBUG/300-W 68 landmark index map from the mesh topology and
landmark semantics (dev-only; prints the map that docs/face-mesh.md and tests/face_real.rs use).

Rules (iBUG numbering 0..67, "left" = image left = the subject's right = MediaPipe "right"):
- fixed anchors with a MediaPipe meaning: eye corners 33/133/362/263, mouth corners 61/291,
  inner mouth corners 78/308, upper/lower lip centres 0/17 and 13/14, nose tip 1, nasion 168
  ("midwayBetweenEyes"), subnasale 2 ("noseBottom"), alar bases 98/327 ("nose corners"), chin 152;
- points iBUG spaces between two anchors are taken at equal arc length along the MediaPipe
  contour (the tfjs-facemesh MESH_ANNOTATIONS lists: lids, lips, brows, silhouette) or, where
  no contour list exists (nose bridge, nostril base), along the shortest path in the
  FACEMESH_TESSELATION graph; the nearest contour vertex is used.
- the jaw runs along the silhouette from the level of the outer eye corner down to the chin.
Arc lengths are measured on a frontal face: the mesh of the committed reference crop
(tests/data/facemesh_ref.json; the astronaut photo, not an evaluation photo).

    python3 tools/facemesh/index_map.py --connections .../face_mesh_connections.py
"""
import argparse
import ast
import heapq
import json
import os

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONN = os.path.join(ROOT, "cache/sources/un/mediapipe/mediapipe/python/solutions/face_mesh_connections.py")

# tfjs-facemesh 0.0.5 keypoints.js MESH_ANNOTATIONS (facts: index lists), subject-right = image-left.
SILHOUETTE = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
              377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
R_UPPER = [33, 246, 161, 160, 159, 158, 157, 173, 133]
R_LOWER = [33, 7, 163, 144, 145, 153, 154, 155, 133]
L_UPPER = [362, 398, 384, 385, 386, 387, 388, 466, 263]
L_LOWER = [362, 382, 381, 380, 374, 373, 390, 249, 263]
R_BROW = [70, 63, 105, 66, 107]          # rightEyebrowUpper without the ends beyond the brow
L_BROW = [336, 296, 334, 293, 300]       # leftEyebrowUpper, inner to outer
LIP_UP_OUT = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIP_LO_OUT = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIP_UP_IN = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIP_LO_IN = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]


def tessellation(path):
    src = open(path).read()
    tree = ast.parse(src)
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "FACEMESH_TESSELATION":
            return ast.literal_eval(node.value.args[0])
    raise SystemExit("FACEMESH_TESSELATION not found")


def shortest_path(edges, pts, a, b):
    adj = {}
    for u, v in edges:
        adj.setdefault(u, []).append(v)
        adj.setdefault(v, []).append(u)
    dist, prev, heap = {a: 0.0}, {}, [(0.0, a)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == b:
            break
        if d > dist[u]:
            continue
        for v in adj[u]:
            nd = d + np.linalg.norm(pts[u] - pts[v])
            if nd < dist.get(v, 1e18):
                dist[v], prev[v] = nd, u
                heapq.heappush(heap, (nd, v))
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


def at_fractions(chain, pts, fractions, mirror=None):
    """Positions in `chain` nearest (in arc length) to each fraction of its length. With
    `mirror` (the same contour on the other half of the face, same order), arc lengths are
    averaged over both, so that the picks are left/right symmetric on a slightly turned face."""
    def cum(c):
        seg = [np.linalg.norm(pts[u] - pts[v]) for u, v in zip(c, c[1:])]
        return np.concatenate([[0.0], np.cumsum(seg)])
    c = cum(chain) if mirror is None else (cum(chain) + cum(mirror)) / 2
    return [int(np.argmin(np.abs(c - f * c[-1]))) for f in fractions]


def pick(chain, k):
    return [chain[i] for i in k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", default=CONN)
    ap.add_argument("--mesh", default=os.path.join(ROOT, "tests/data/facemesh_ref.json"))
    args = ap.parse_args()
    m = np.array(json.load(open(args.mesh))["mesh"]).reshape(468, 3)
    pts = m[:, :2]
    edges = tessellation(args.connections)
    thirds = [1 / 3, 2 / 3]

    n = len(SILHOUETTE)
    mirror_of = {SILHOUETTE[i]: SILHOUETTE[(n - i) % n] for i in range(n)}

    # Jaw: silhouette from the vertex level with the outer eye corner, via the chin, to the other.
    i152 = SILHOUETTE.index(152)
    left = SILHOUETTE[i152:][::-1]                      # top -> image-left side -> chin
    eye_y = (pts[33][1] + pts[263][1]) / 2
    start = int(np.argmin([abs((pts[v][1] + pts[mirror_of[v]][1]) / 2 - eye_y) for v in left]))
    lj = left[start:]                                   # eye level -> chin (image left)
    rj = [mirror_of[v] for v in lj]                     # the same on the image right
    k = at_fractions(lj, pts, [i / 8 for i in range(8)], rj)
    jaw = pick(lj, k) + [152] + pick(rj, k)[::-1]

    brows = R_BROW + L_BROW
    bridge = shortest_path(edges, pts, 168, 1)
    nose = [168] + pick(bridge, at_fractions(bridge, pts, thirds)) + [1]
    nl = shortest_path(edges, pts, 98, 2)               # alar base -> subnasale, image left
    nr = shortest_path(edges, pts, 327, 2)              # the same, image right
    kn = at_fractions(nl, pts, [0.5], nr if len(nr) == len(nl) else None)
    nostrils = [98] + pick(nl, kn) + [2] + pick(nr, kn) + [327]

    lu, ll = L_UPPER[::-1], L_LOWER[::-1]               # image-right eye, outer -> inner
    ku = at_fractions(R_UPPER, pts, thirds, lu)
    kl = at_fractions(R_LOWER, pts, thirds, ll)
    eyes = [33] + pick(R_UPPER, ku) + [133] + pick(R_LOWER, kl)[::-1] + \
        [362] + pick(lu, ku)[::-1] + [263] + pick(ll, kl)

    def half(lst):
        """Corner -> centre of a symmetric lip contour and its mirror."""
        mid = len(lst) // 2
        return lst[: mid + 1], lst[mid:][::-1]
    a, b = half(LIP_UP_OUT)
    ko = at_fractions(a, pts, thirds, b)
    c, d = half(LIP_LO_OUT)
    kq = at_fractions(c, pts, thirds, d)
    outer = [61] + pick(a, ko) + [0] + pick(b, ko)[::-1] + [291] + pick(d, kq) + [17] + pick(c, kq)[::-1]
    e, f = half(LIP_UP_IN)
    ki = at_fractions(e, pts, [0.5], f)
    g, h = half(LIP_LO_IN)
    kj = at_fractions(g, pts, [0.5], h)
    inner = [78] + pick(e, ki) + [13] + pick(f, ki) + [308] + pick(h, kj) + [14] + pick(g, kj)
    full = jaw + brows + nose + nostrils + eyes + outer + inner
    assert len(full) == 68, len(full)
    print(json.dumps(full))


if __name__ == "__main__":
    main()
