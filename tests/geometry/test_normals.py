import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.geometry.normals import estimate_normals
from sem3r.geometry.transforms import random_rotation


def _noisy_plane(rng, n=3000):
    normal = np.array([0.2, -0.3, 1.0])
    normal /= np.linalg.norm(normal)
    u = np.cross(normal, [1.0, 0, 0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    ab = rng.uniform(-1, 1, size=(n, 2))
    pts = ab[:, :1] * u + ab[:, 1:] * v + 0.002 * rng.normal(size=(n, 1)) * normal + [0.5, 0.2, 1.0]
    return pts, normal


def test_noisy_plane_normals_are_plus_minus_plane_normal():
    rng = np.random.default_rng(0)
    pts, normal = _noisy_plane(rng)
    n = estimate_normals(pts, k=20)
    assert n.shape == pts.shape and n.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-12)
    assert np.median(np.abs(n @ normal)) > 0.995
    assert np.abs(n @ normal).min() > 0.95


def test_orientation_toward_viewpoint():
    rng = np.random.default_rng(1)
    pts, normal = _noisy_plane(rng)
    above = pts.mean(0) + 3.0 * normal
    n = estimate_normals(pts, k=20, viewpoints=above)
    assert (n @ normal > 0.95).all()
    below = np.broadcast_to(pts.mean(0) - 3.0 * normal, pts.shape)  # per-point viewpoints
    assert (estimate_normals(pts, k=20, viewpoints=below) @ normal < -0.95).all()


def test_sphere_normals_are_radial():
    rng = np.random.default_rng(2)
    d = rng.normal(size=(4000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    n = estimate_normals(2.0 * d + 1.0, k=12, viewpoints=np.full(3, 1.0))  # viewpoint at the centre
    assert (np.einsum("ij,ij->i", n, -d) > 0.99).all()


def test_rigid_transform_rotates_normals():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(1500, 3)) * [2.0, 1.0, 0.3]
    views = pts + rng.normal(size=pts.shape)
    R, t = random_rotation(rng), rng.normal(size=3)
    n = estimate_normals(pts, k=16, viewpoints=views)
    n_moved = estimate_normals(pts @ R.T + t, k=16, viewpoints=views @ R.T + t)
    np.testing.assert_allclose(n_moved, n @ R.T, atol=1e-8)


def test_float32_in_float32_out_and_small_inputs():
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32)
    n = estimate_normals(pts, k=16, viewpoints=np.array([0.0, 0.0, -1.0]))
    assert n.dtype == np.float32
    np.testing.assert_allclose(n, np.tile([0, 0, -1], (4, 1)), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(points=np.zeros((2, 3))),
        dict(points=np.full((10, 3), np.nan)),
        dict(points=np.zeros((10, 2))),
        dict(points=np.random.default_rng(0).normal(size=(10, 3)), k=2),
        dict(points=np.random.default_rng(0).normal(size=(10, 3)), viewpoints=np.zeros((9, 3))),
        dict(points=np.random.default_rng(0).normal(size=(10, 3)), viewpoints=np.array([0.0, np.nan, 0.0])),
    ],
)
def test_bad_input(kwargs):
    with pytest.raises(Sem3RError):
        estimate_normals(**kwargs)
