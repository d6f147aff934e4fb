import numpy as np
import pytest
from scipy.spatial import cKDTree

from sem3r.errors import Sem3RError
from sem3r.geometry.knn import knn


def test_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    pts, queries = rng.normal(size=(300, 3)), rng.normal(size=(40, 3))
    d, i = knn(pts, queries, k=5)
    full = np.linalg.norm(queries[:, None] - pts[None], axis=-1)
    np.testing.assert_array_equal(i, np.argsort(full, axis=1)[:, :5])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :5])
    assert d.shape == i.shape == (40, 5) and i.dtype == np.int64


def test_knn_k1_is_2d_and_tree_is_reusable():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3))
    d, i = knn(cKDTree(pts), pts, k=1)
    assert d.shape == (50, 1)
    np.testing.assert_array_equal(i[:, 0], np.arange(50))
    np.testing.assert_array_equal(d, 0.0)


def test_knn_max_distance_marks_missing():
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [5, 0, 0]])
    d, i = knn(pts, np.array([[0.2, 0, 0]]), k=3, max_distance=1.0)
    assert i.tolist() == [[0, 1, 3]]
    assert np.isinf(d[0, 2])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(points=np.zeros((3, 3)), queries=np.zeros((1, 3)), k=4),
        dict(points=np.zeros((3, 3)), queries=np.zeros((1, 3)), k=0),
        dict(points=np.zeros((3, 2)), queries=np.zeros((1, 2)), k=1),
        dict(points=np.zeros((0, 3)), queries=np.zeros((1, 3)), k=1),
        dict(points=np.zeros((3, 3)), queries=np.array([[np.nan, 0, 0]]), k=1),
        dict(points=np.zeros((3, 3)), queries=np.zeros((1, 3)), k=1, max_distance=0.0),
    ],
)
def test_knn_bad_input(kwargs):
    with pytest.raises(Sem3RError):
        knn(**kwargs)
