"""``SuperpointConfig(compat="scannet")``: ScanNet Segmentator partitions from the tool's stated rules."""

import shutil
import subprocess

import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.geometry.felzenszwalb import felzenszwalb_scannet, std_sort_order
from sem3r.superpoints.graph import scannet_mesh_graph
from sem3r.superpoints.segment import (
    SuperpointConfig,
    compute_superpoints,
    mesh_superpoints,
)


def _heightfield(seed, n=6, amp=0.3):
    """An ``n x n`` vertex grid with seeded random heights, two triangles per cell (consistent winding)."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float), indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), amp * rng.standard_normal(n * n)], 1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    return v, np.concatenate([np.stack([a, b, c], 1), np.stack([c, b, d], 1)])


def _reference(v, f, k, one_sided=True, renormalise=False):
    """Independent plain-Python Segmentator (``min_size = 1``, so the order of equal weights is irrelevant).

    Rules: float32; unit face normals blended into vertex normals by the running mean
    ``n <- t f + (1 - t) n``, ``t = 1 / (count + 1)``, not re-normalised; per face ``(i1, i2, i3)`` the
    directed edges ``i1->i2, i1->i3, i3->i2``; ``w = 1 - n_a . n_b``, squared when ``n_b . d > 0``
    (``d`` the unit direction a -> b); Felzenszwalb with float32 thresholds ``w + k / |C|``.
    ``one_sided=False`` uses Sem3R's symmetric test ``(n_b - n_a) . d > 0``; ``renormalise=True``
    makes the vertex normals unit length.
    """
    v = v.astype(np.float32)
    one, kk = np.float32(1), np.float32(k)
    normals = np.zeros((len(v), 3), np.float32)
    count = np.zeros(len(v), np.float32)
    for i1, i2, i3 in f:
        c = np.cross(v[i2] - v[i1], v[i3] - v[i1])
        c = c / np.sqrt(np.float32((c * c).sum()))
        for i in (i1, i2, i3):
            t = one / (count[i] + one)
            normals[i] = t * c + (one - t) * normals[i]
            count[i] += one
    if renormalise:
        normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    edges = [(a, b) for i1, i2, i3 in f for a, b in ((i1, i2), (i1, i3), (i3, i2))]
    weights = []
    for a, b in edges:
        d = v[b] - v[a]
        d = d / np.sqrt(np.float32((d * d).sum()))
        w = one - np.float32(normals[a] @ normals[b])
        convex = normals[b] @ d > 0 if one_sided else (normals[b] - normals[a]) @ d > 0
        weights.append(w * w if convex else w)
    weights = np.array(weights, np.float32)
    parent, size, threshold = list(range(len(v))), [1] * len(v), [kk] * len(v)

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for e in np.argsort(weights, kind="stable"):
        a, b = find(edges[e][0]), find(edges[e][1])
        if a != b and weights[e] <= threshold[a] and weights[e] <= threshold[b]:
            parent[b] = a
            size[a] += size[b]
            threshold[a] = weights[e] + kk / np.float32(size[a])
    first = {}
    return np.array([first.setdefault(find(i), len(first)) for i in range(len(v))])


@pytest.mark.parametrize("seed, kthresh", [(0, 0.1), (3, 0.1), (4, 0.05)])
def test_compat_scannet_follows_the_tools_rules_and_differs_from_the_default(seed, kthresh):
    v, f = _heightfield(seed)
    expected = _reference(v, f, kthresh)
    got = mesh_superpoints(v, f, SuperpointConfig(compat="scannet", kthresh=kthresh, min_size=1))
    assert got.tolist() == expected.tolist()
    default = mesh_superpoints(v, f, SuperpointConfig(kthresh=kthresh, min_size=1))
    assert not np.array_equal(default, expected)
    # each of the two rules changes the partition on its own
    assert not np.array_equal(_reference(v, f, kthresh, one_sided=False), expected)
    assert not np.array_equal(_reference(v, f, kthresh, renormalise=True), expected)


def test_scannet_graph_directed_edges_and_unnormalised_normals():
    # Two faces folded 90 degrees along the edge 0-1 (a table edge): the top faces +z, the side -y.
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, -1]])
    f = np.array([[0, 1, 2], [1, 0, 3]])
    normals, edges, weights = scannet_mesh_graph(v, f)
    assert edges.tolist() == [[0, 1], [0, 2], [2, 1], [1, 0], [1, 3], [3, 0]]
    # vertices 0 and 1 average +z and -y without re-normalising: length sqrt(1/2)
    assert np.allclose(normals[[0, 1]], [0, -0.5, 0.5]) and np.isclose(np.linalg.norm(normals[0]), np.sqrt(0.5))
    assert np.allclose(normals[2], [0, 0, 1]) and np.allclose(normals[3], [0, -1, 0])
    assert weights.dtype == np.float32 and edges.shape == (3 * len(f), 2)
    # n_a . n_b = 1/2 on every edge; 2 -> 1 and 3 -> 0 walk onto the crease from a flat side, where the
    # far normal leans along the walk (convex: squared); the copies along the crease (0 -> 1, 1 -> 0)
    # and the walks off it (0 -> 2, 1 -> 3: far normal perpendicular) are not
    assert weights.tolist() == pytest.approx([0.5, 0.5, 0.25, 0.5, 0.5, 0.25])


def test_scannet_min_size_and_nan_weights():
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    assert felzenszwalb_scannet(4, edges, np.array([0.0, 5.0, 0.0]), k=1.0, min_size=1).tolist() == [0, 0, 1, 1]
    assert felzenszwalb_scannet(4, edges, np.array([0.0, 5.0, 0.0]), k=1.0, min_size=3).tolist() == [0, 0, 0, 0]
    # NaN never merges in the first pass (NaN <= t is false) but the min_size pass ignores weights
    nan = np.array([0.0, np.nan, 0.0])
    assert felzenszwalb_scannet(4, edges, nan, k=1.0, min_size=1).tolist() == [0, 0, 1, 1]
    assert felzenszwalb_scannet(4, edges, nan, k=1.0, min_size=3).tolist() == [0, 0, 0, 0]
    with pytest.raises(Sem3RError, match="tie_order"):
        felzenszwalb_scannet(4, edges, np.zeros(3), tie_order="random")


def test_std_sort_order_sorts_and_matches_insertion_sort_below_17_keys():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 5, 1000).astype(np.float32)
    order = std_sort_order(keys)
    assert sorted(order.tolist()) == list(range(1000)) and (np.diff(keys[order]) >= 0).all()
    small = rng.integers(0, 3, 16).astype(np.float32)  # 16 keys: only the (stable) insertion sort runs
    assert std_sort_order(small).tolist() == np.argsort(small, kind="stable").tolist()


CPP = r"""
#include <algorithm>
#include <cstdio>
#include <vector>
struct E { float w; int i; };
bool operator<(const E& a, const E& b) { return a.w < b.w; }
int main() {
  int n; std::scanf("%d", &n);
  std::vector<E> v(n);
  for (int i = 0; i < n; i++) { std::scanf("%f", &v[i].w); v[i].i = i; }
  std::sort(v.begin(), v.end());
  for (int i = 0; i < n; i++) std::printf("%d\n", v[i].i);
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ (libstdc++) as the reference")
def test_std_sort_order_matches_gcc_std_sort(tmp_path):
    src = tmp_path / "sort.cpp"
    src.write_text(CPP)
    exe = tmp_path / "sort"
    subprocess.run(["g++", "-O2", "-o", str(exe), str(src)], check=True)
    rng = np.random.default_rng(1)
    for n, levels in ((5000, 7), (3000, 1000), (200, 2)):
        keys = (rng.integers(0, levels, n) / 8).astype(np.float32)
        text = f"{n}\n" + "\n".join(repr(float(k)) for k in keys)
        out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout
        assert std_sort_order(keys).tolist() == [int(x) for x in out.split()]


def test_compat_is_for_meshes_only():
    with pytest.raises(Sem3RError, match="compat"):
        SuperpointConfig(compat="s3dis").validate()
    pts = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(Sem3RError, match="mesh_superpoints"):
        compute_superpoints(pts, SuperpointConfig(compat="scannet"))
