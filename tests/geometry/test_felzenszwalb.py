import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.geometry.felzenszwalb import felzenszwalb_segment, image_grid_edges


def _clique(nodes):
    nodes = np.asarray(nodes)
    i, j = np.triu_indices(len(nodes), 1)
    return np.stack([nodes[i], nodes[j]], axis=1)


def test_two_cliques_joined_by_a_heavy_edge_stay_apart():
    edges = np.concatenate([_clique([0, 1, 2, 3]), _clique([4, 5, 6, 7]), [[3, 4]]])
    weights = np.r_[np.full(6, 0.1), np.full(6, 0.2), 10.0]
    labels = felzenszwalb_segment(8, edges, weights, k=1.0)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # A k large enough to pay for the bridge (10 <= 0.1 + k/4 and 0.2 + k/4) merges them.
    assert felzenszwalb_segment(8, edges, weights, k=40.0).tolist() == [0] * 8


def test_k_zero_merges_only_along_zero_weight_edges():
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    weights = np.array([0.0, 0.5, 0.0, 0.0, 1e-9])
    assert felzenszwalb_segment(6, edges, weights, k=0.0).tolist() == [0, 0, 1, 1, 1, 2]


def test_internal_difference_threshold_hand_computed():
    # 0 -0.4- 1 -0.6- 2. After merging {0,1}: Int = 0.4, |C| = 2; node 2 alone: Int = 0, |C| = 1.
    edges, weights = np.array([[0, 1], [1, 2]]), np.array([0.4, 0.6])
    # k = 0.5: MInt = min(0.4 + 0.25, 0 + 0.5) = 0.5 < 0.6 -> node 2 stays apart.
    assert felzenszwalb_segment(3, edges, weights, k=0.5).tolist() == [0, 0, 1]
    # k = 0.6: MInt = min(0.4 + 0.3, 0 + 0.6) = 0.6 >= 0.6 -> merged (the test is w <= MInt).
    assert felzenszwalb_segment(3, edges, weights, k=0.6).tolist() == [0, 0, 0]
    # k = 0.39: the first edge already fails 0.4 <= 0.39.
    assert felzenszwalb_segment(3, edges, weights, k=0.39).tolist() == [0, 1, 2]


def test_min_size_merges_a_singleton_along_its_lightest_edge():
    # Components {0,1,2} and {4,5,6} (zero-weight chains); node 3 touches both with heavy edges.
    edges = np.array([[0, 1], [1, 2], [4, 5], [5, 6], [2, 3], [3, 4]])
    weights = np.array([0.0, 0.0, 0.0, 0.0, 7.0, 5.0])
    assert felzenszwalb_segment(7, edges, weights, k=0.1).tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert felzenszwalb_segment(7, edges, weights, k=0.1, min_size=2).tolist() == [0, 0, 0, 1, 1, 1, 1]
    # min_size larger than any component keeps merging until all components are big enough.
    assert felzenszwalb_segment(7, edges, weights, k=0.1, min_size=5).tolist() == [0] * 7


def test_isolated_nodes_and_empty_graph():
    assert felzenszwalb_segment(3, np.zeros((0, 2), np.int64), np.zeros(0), k=1.0, min_size=10).tolist() == [0, 1, 2]
    assert felzenszwalb_segment(0, np.zeros((0, 2), np.int64), np.zeros(0), k=1.0).shape == (0,)


def test_partition_does_not_depend_on_edge_order_and_labels_follow_smallest_node():
    rng = np.random.default_rng(0)
    edges = image_grid_edges(12, 12, connectivity=8)
    weights = rng.random(len(edges))  # distinct weights: the sorted order is unique
    a = felzenszwalb_segment(144, edges, weights, k=0.8, min_size=4)
    perm = rng.permutation(len(edges))
    b = felzenszwalb_segment(144, edges[perm][:, ::-1], weights[perm], k=0.8, min_size=4)
    np.testing.assert_array_equal(a, b)
    _, first = np.unique(a, return_index=True)
    assert np.all(np.diff(first) > 0) and a[0] == 0
    assert np.bincount(a).min() >= 4


def test_two_colour_image_splits_exactly_at_the_colour_edge():
    h, w = 6, 8
    img = np.zeros((h, w))
    img[:, 5:] = 1.0
    edges = image_grid_edges(h, w)
    flat = img.reshape(-1)
    weights = np.abs(flat[edges[:, 0]] - flat[edges[:, 1]])
    labels = felzenszwalb_segment(h * w, edges, weights, k=0.5).reshape(h, w)
    np.testing.assert_array_equal(labels, (img > 0).astype(int))


@pytest.mark.parametrize("connectivity, expected", [(4, 3 * 3 + 2 * 4), (8, 3 * 3 + 2 * 4 + 2 * 2 * 3)])
def test_grid_edge_counts_and_neighbours(connectivity, expected):
    edges = image_grid_edges(3, 4, connectivity)
    assert edges.shape == (expected, 2) and edges.dtype == np.int64
    assert len(np.unique(np.sort(edges, axis=1), axis=0)) == expected
    r, c = np.divmod(edges, 4)
    chebyshev = np.maximum(np.abs(r[:, 0] - r[:, 1]), np.abs(c[:, 0] - c[:, 1]))
    manhattan = np.abs(r[:, 0] - r[:, 1]) + np.abs(c[:, 0] - c[:, 1])
    assert (chebyshev == 1).all()
    assert (manhattan == 1).sum() == 17


@pytest.mark.parametrize(
    "edges, weights, k, match",
    [
        (np.array([[0, 3]]), np.array([1.0]), 1.0, "node ids"),
        (np.array([[0, 1]]), np.array([np.nan]), 1.0, "NaN"),
        (np.array([[0, 1]]), np.array([-1.0]), 1.0, "non-negative"),
        (np.array([[0, 1]]), np.array([1.0, 2.0]), 1.0, "shape"),
        (np.array([0, 1, 2]), np.array([1.0]), 1.0, "shape"),
        (np.array([[0.0, 1.0]]), np.array([1.0]), 1.0, "integer"),
        (np.array([[0, 1]]), np.array([1.0]), -1.0, "k must"),
    ],
)
def test_bad_input_raises(edges, weights, k, match):
    with pytest.raises(Sem3RError, match=match):
        felzenszwalb_segment(3, edges, weights, k=k)


@pytest.mark.parametrize("args", [(0, 4), (3, 4, 6)])
def test_bad_grid_raises(args):
    with pytest.raises(Sem3RError):
        image_grid_edges(*args)
