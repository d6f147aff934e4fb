import numpy as np
import pytest
from scipy.spatial import cKDTree

from sem3r.errors import Sem3RError
from sem3r.superpoints.graph import (
    edges_from_neighbours,
    geometric_weights,
    knn_edges,
    knn_neighbours,
    mesh_edges,
    vertex_normals,
)

S = np.sqrt(0.5)


def test_knn_edges_are_unique_undirected_and_hold_every_knn_pair():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, size=(500, 3))
    k = 6
    edges, neighbours = knn_edges(pts, k, return_neighbours=True)
    assert edges.dtype == np.int64 and edges.shape[1] == 2
    assert (edges[:, 0] < edges[:, 1]).all()  # i < j: no self loops, one orientation
    assert len(np.unique(edges, axis=0)) == len(edges)
    # Brute force: the k nearest other points of every point (distinct distances for random points).
    _, idx = cKDTree(pts).query(pts, k + 1)
    np.testing.assert_array_equal(neighbours, idx)
    expected = {(min(i, j), max(i, j)) for i in range(len(pts)) for j in idx[i, 1:]}
    assert set(map(tuple, edges.tolist())) == expected
    assert len(pts) * k / 2 <= len(edges) <= len(pts) * k


def test_knn_neighbours_put_self_first_and_sort_by_distance():
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [7, 0, 0]])
    dist, idx = knn_neighbours(pts, k=2)
    assert idx.tolist() == [[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 1]]
    np.testing.assert_allclose(dist, [[0, 1, 3], [0, 1, 2], [0, 2, 3], [0, 4, 6]])
    assert knn_neighbours(pts, k=10)[1].shape == (4, 4)  # clipped to M - 1


def test_edges_from_neighbours_hand_built_table():
    # 1 -> 0 repeats 0 -> 1, 2 -> 0 repeats 0 -> 2, 3 -> 1 and 3 -> 2 repeat 1 -> 3 and 2 -> 3.
    table = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 1, 2]])
    assert edges_from_neighbours(table).tolist() == [[0, 1], [0, 2], [1, 3], [2, 3]]
    # A pair only the larger index lists is kept (oriented i < j); self entries are dropped.
    assert edges_from_neighbours(np.array([[0, 1], [1, 0], [2, 0]])).tolist() == [[0, 1], [0, 2]]


def test_mesh_edges_of_two_triangles_sharing_an_edge():
    edges = mesh_edges(np.array([[0, 1, 2], [2, 1, 3]]))
    assert edges.tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    assert mesh_edges(np.array([[0, 0, 1]])).tolist() == [[0, 1]]  # degenerate face: no self loop
    assert mesh_edges(np.zeros((0, 3), np.int64)).shape == (0, 2)


def test_vertex_normals_are_area_weighted():
    # A fold: a triangle in z=0 (area 1) and one in x=0 (area 0.5) share the edge 0-1.
    v = np.array([[0.0, 0, 0], [0, 1, 0], [2, 0, 0], [0, 0, 1]])
    n = vertex_normals(v, np.array([[0, 2, 1], [0, 3, 1]]))
    np.testing.assert_allclose(n[2], [0, 0, 1])
    np.testing.assert_allclose(n[3], [-1, 0, 0])
    shared = np.array([-1.0, 0, 2.0]) / np.sqrt(5)  # cross products (0, 0, 2) and (-1, 0, 0) summed
    np.testing.assert_allclose(n[0], shared)
    np.testing.assert_allclose(n[1], shared)


def test_scannet_weights_hand_computed_convex_and_concave():
    p = np.array([[0.0, 0, 0], [1, 0, 0]])
    edge = np.array([[0, 1]])
    flat = np.array([[0, 0, 1], [0, 0, 1]])
    ridge = np.array([[0, 0, 1], [S, 0, S]])  # b's normal leans along a -> b: convex
    valley = np.array([[0, 0, 1], [-S, 0, S]])  # leans against it: concave
    w = 1 - S  # 1 - cos 45 degrees
    assert geometric_weights(p, flat, edge)[0] == pytest.approx(0.0)
    assert geometric_weights(p, ridge, edge)[0] == pytest.approx(w**2)
    assert geometric_weights(p, valley, edge)[0] == pytest.approx(w)
    # A right-angle ridge (box edge) and valley (floor meets wall): 1 - 0 = 1, squared or not.
    assert geometric_weights(p, np.array([[-S, 0, S], [S, 0, S]]), edge)[0] == pytest.approx(1.0)
    assert geometric_weights(p, np.array([[S, 0, S], [-S, 0, S]]), edge)[0] == pytest.approx(1.0)
    # The weight does not depend on which endpoint an edge lists first.
    assert geometric_weights(p, ridge, np.array([[1, 0]]))[0] == pytest.approx(w**2)
    assert geometric_weights(p, valley, np.array([[1, 0]]))[0] == pytest.approx(w)


def test_unoriented_weights_ignore_normal_signs_and_convexity():
    p = np.array([[0.0, 0, 0], [1, 0, 0]])
    edge = np.array([[0, 1]])
    ridge = np.array([[0, 0, 1], [S, 0, S]])
    flipped = ridge * np.array([[1], [-1]])
    for normals in (ridge, flipped):
        assert geometric_weights(p, normals, edge, oriented=False)[0] == pytest.approx(1 - S)
    assert geometric_weights(p, flipped, edge)[0] == pytest.approx(1 + S)  # oriented: a flip reads as a fold


def test_weights_are_never_negative():
    rng = np.random.default_rng(1)
    n = rng.normal(size=(1000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    pts = rng.normal(size=(1000, 3))
    edges = np.stack([np.arange(999), np.arange(1, 1000)], 1)
    same = np.repeat(n[:1], 1000, axis=0)
    assert (geometric_weights(pts, same, edges) >= 0).all()
    w = geometric_weights(pts, n, edges)
    assert (w >= 0).all() and (w <= 4).all() and (w > 2).any()  # convex edges beyond 90 degrees square w > 1


@pytest.mark.parametrize(
    "fn, kwargs",
    [
        (knn_edges, {"points": np.zeros((1, 3)), "k": 3}),
        (knn_edges, {"points": np.array([[0.0, 0, 0], [np.nan, 0, 0]]), "k": 1}),
        (knn_edges, {"points": np.zeros((5, 2)), "k": 1}),
        (knn_edges, {"points": np.random.default_rng(0).normal(size=(5, 3)), "k": 0}),
        (edges_from_neighbours, {"neighbours": np.array([[0, 5], [1, 0]])}),
        (edges_from_neighbours, {"neighbours": np.array([0.0, 1.0])}),
        (mesh_edges, {"faces": np.array([[0, 1]])}),
        (mesh_edges, {"faces": np.array([[0, 1, -1]])}),
        (mesh_edges, {"faces": np.array([[0, 1, 4]]), "num_vertices": 3}),
        (geometric_weights, {"points": np.zeros((2, 3)), "normals": np.zeros((3, 3)), "edges": np.array([[0, 1]])}),
        (geometric_weights, {"points": np.zeros((2, 3)), "normals": np.zeros((2, 3)), "edges": np.array([[0, 2]])}),
        (geometric_weights, {"points": np.zeros((2, 3)), "normals": np.full((2, 3), np.nan), "edges": np.array([[0, 1]])}),
    ],
)
def test_bad_input_raises(fn, kwargs):
    with pytest.raises(Sem3RError):
        fn(**kwargs)
