"""The fast kernels under superpoints give what the plain formulations give (issue 15)."""

import numpy as np
import pytest

from sem3r.geometry.felzenszwalb import felzenszwalb_segment, radix_argsort
from sem3r.geometry.normals import normals_from_neighbours
from sem3r.superpoints.graph import knn_neighbours, mesh_edges, vertex_normals


def _plain_felzenszwalb(n, edges, weights, k, min_size, anchored=None):
    """The algorithm as stated: one stable sort, every edge in both passes, union-find without tricks."""
    anchored = np.ones(n, bool) if anchored is None else anchored
    parent, size, internal, holds = list(range(n)), [1] * n, [0.0] * n, list(anchored)

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    order = np.argsort(weights, kind="stable")
    for e in order:
        u, v = edges[e]
        a, b = find(u), find(v)
        if a == b or (holds[a] and holds[b] and not (anchored[u] and anchored[v])):
            continue
        w = weights[e]
        if w <= internal[a] + k / size[a] and w <= internal[b] + k / size[b]:
            parent[b] = a
            size[a] += size[b]
            internal[a] = w
            holds[a] = holds[a] or holds[b]
    for e in order:
        a, b = find(edges[e][0]), find(edges[e][1])
        if a != b and (size[a] < min_size or size[b] < min_size):
            parent[b] = a
            size[a] += size[b]
            holds[a] = holds[a] or holds[b]
    first = {}
    return [first.setdefault(find(i), len(first)) for i in range(n)]


@pytest.mark.parametrize("trial", range(12))
def test_felzenszwalb_equals_the_plain_algorithm_with_ties_heavy_edges_and_anchors(trial):
    rng = np.random.default_rng(trial)
    n, m = int(rng.integers(5, 120)), int(rng.integers(5, 600))
    edges = rng.integers(0, n, (m, 2))
    if trial % 2:  # many exact ties, some above the 2k bound that the first pass never merges
        weights = rng.choice([0.0, 0.001, 0.005, 0.01, 0.02, 0.03, 0.5], m)
    else:
        weights = rng.random(m) * 0.05
    k = [0.0, 0.01, 0.05][trial % 3]
    min_size = [1, 5, 20][trial % 3 - 1]
    anchored = rng.random(n) < 0.8 if trial % 4 == 0 else None
    got = felzenszwalb_segment(n, edges, weights, k, min_size, anchored=anchored)
    assert got.tolist() == _plain_felzenszwalb(n, edges, weights, k, min_size, anchored)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_radix_argsort_is_numpys_stable_argsort(dtype):
    rng = np.random.default_rng(0)
    keys = np.concatenate([rng.random(3000), rng.integers(0, 4, 3000) / 4, [-0.0, 0.0, np.inf, -1.5, -2e-9]])
    keys = rng.permutation(keys).astype(dtype)
    assert radix_argsort(keys).tolist() == np.argsort(keys, kind="stable").tolist()
    assert radix_argsort(np.zeros(0, dtype)).tolist() == []


def test_mesh_edges_equal_unique_sorted_sides_with_degenerate_faces():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 300, (2000, 3))
    faces[::50, 1] = faces[::50, 0]  # degenerate faces: no self loops
    sides = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    expected = np.unique(sides[sides[:, 0] != sides[:, 1]], axis=0)
    assert np.array_equal(mesh_edges(faces, 300), expected)
    assert np.array_equal(mesh_edges(faces), expected)


def test_vertex_normals_equal_the_bincount_formulation():
    rng = np.random.default_rng(1)
    verts, faces = rng.normal(size=(200, 3)), rng.integers(0, 190, (600, 3))  # 10 vertices in no face
    tri = verts[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    sums = np.stack([np.bincount(faces.ravel(), np.repeat(cross[:, d], 3), minlength=200) for d in range(3)], 1)
    norm = np.linalg.norm(sums, axis=1, keepdims=True)
    expected = np.divide(sums, norm, out=np.zeros_like(sums), where=norm > 0)
    assert np.allclose(vertex_normals(verts, faces), expected, atol=1e-12)


def test_numba_pca_normals_equal_eigh():
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(3000, 3)) * [1.0, 0.5, 0.05]
    nb = knn_neighbours(pts, 15, distances=False)
    patch = pts[nb]
    patch -= patch.mean(axis=1, keepdims=True)
    expected = np.linalg.eigh(np.swapaxes(patch, 1, 2) @ patch)[1][:, :, 0]
    got = normals_from_neighbours(pts, nb)
    assert np.allclose(np.abs(np.einsum("ij,ij->i", got, expected)), 1.0, atol=1e-9)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0)


def test_bounded_knn_query_equals_the_plain_query():
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(3)
    pts = np.r_[rng.normal(size=(30_000, 3)), rng.normal(size=(200, 3)) * 20]  # sparse outliers miss the bound
    dist, idx = knn_neighbours(pts, 12)
    d0, i0 = cKDTree(pts).query(pts, 13)
    assert np.array_equal(idx, i0) and np.allclose(dist, d0)
