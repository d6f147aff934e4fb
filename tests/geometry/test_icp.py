import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.geometry.icp import ICPResult, icp
from sem3r.geometry.transforms import Sim3, rotation_angle


def _rotation(axis, degrees):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    th = np.radians(degrees)
    Kx = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(th) * Kx + (1 - np.cos(th)) * Kx @ Kx


def _cloud(rng, n=2000):
    """A non-symmetric surface patch: an L-shaped height field with a bump, plus a post."""
    xy = rng.uniform(0, 1, size=(n, 2)) * [1.2, 0.8]
    xy = xy[~((xy[:, 0] > 0.7) & (xy[:, 1] > 0.4))]
    z = 0.15 * np.exp(-((xy[:, 0] - 0.3) ** 2 + (xy[:, 1] - 0.2) ** 2) / 0.02) + 0.05 * xy[:, 0] ** 2
    post = np.c_[0.9 + 0.02 * rng.normal(size=(200, 2)), rng.uniform(0, 0.5, size=200)]
    post[:, 1] -= 0.6
    return np.concatenate([np.c_[xy, z], post])


def _motion_error(estimate: Sim3, truth: Sim3, points):
    return np.abs(estimate.apply(points) - truth.apply(points)).max()


def test_icp_recovers_small_rigid_motion():
    rng = np.random.default_rng(0)
    src = _cloud(rng)
    truth = Sim3(1.0, _rotation([0.3, -0.5, 1.0], 6.0), np.array([0.03, -0.02, 0.04]))
    tgt = rng.permutation(truth.apply(src))
    res = icp(src, tgt)
    assert isinstance(res, ICPResult) and res.converged
    assert _motion_error(res.transform, truth, src) < 1e-4
    assert float(rotation_angle(res.transform.rotation.T @ truth.rotation)) < 1e-3
    assert res.rmse < 1e-4 and res.fitness == 1.0
    assert 1 <= res.iterations <= 50 and res.transform.scale == 1.0


def test_icp_with_init_and_scale():
    rng = np.random.default_rng(1)
    src = _cloud(rng)
    truth = Sim3(1.3, _rotation([1.0, 0.2, 0.1], 50.0), np.array([1.0, 2.0, -0.5]))
    tgt = truth.apply(src)
    init = Sim3(1.25, _rotation([1.0, 0.25, 0.1], 47.0), np.array([1.02, 1.97, -0.48]))
    res = icp(src, tgt, init=init, with_scale=True)
    assert res.converged
    assert res.transform.scale == pytest.approx(1.3, abs=1e-5)
    assert _motion_error(res.transform, truth, src) < 1e-4


def test_icp_rejects_far_pairs():
    rng = np.random.default_rng(2)
    surface = _cloud(rng)
    floating = np.c_[rng.uniform(0, 1.2, size=(300, 2)), rng.uniform(1.0, 1.2, size=300)]  # >= 0.5 m above
    src = np.concatenate([surface, floating])
    truth = Sim3(1.0, _rotation([0, 0, 1], 3.0), np.array([0.02, 0.01, 0.0]))
    tgt = np.concatenate([truth.apply(surface), rng.uniform(5, 6, size=(300, 3))])  # clutter, no floaters
    res = icp(src, tgt, max_correspondence_distance=0.05)
    assert _motion_error(res.transform, truth, surface) < 1e-4
    assert res.fitness == pytest.approx(len(surface) / len(src))
    assert res.rmse < 1e-4
    unguarded = icp(src, tgt)  # every floater pulls the fit upward
    assert _motion_error(unguarded.transform, truth, surface) > 1e-2 and unguarded.fitness == 1.0


def test_icp_iteration_cap_reports_not_converged():
    rng = np.random.default_rng(3)
    src = _cloud(rng)
    tgt = Sim3(1.0, _rotation([0, 1, 0], 8.0), np.array([0.05, 0.0, 0.0])).apply(src)
    res = icp(src, tgt, max_iterations=1, tolerance=0.0)
    assert res.iterations == 1 and not res.converged


def test_icp_identical_clouds():
    src = _cloud(np.random.default_rng(4))
    res = icp(src, src)
    assert res.converged and res.iterations == 1 and res.rmse < 1e-12
    np.testing.assert_allclose(res.transform.matrix(), np.eye(4), atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(source=np.zeros((2, 3)), target=np.zeros((5, 3))),
        dict(source=np.full((5, 3), np.nan), target=np.zeros((5, 3))),
        dict(source=np.eye(3), target=np.zeros((0, 3))),
        dict(source=np.eye(3), target=np.eye(3) + 10.0, max_correspondence_distance=0.1),
        dict(source=np.eye(3), target=np.eye(3), max_iterations=0),
        dict(source=np.eye(3), target=np.eye(3), init=np.eye(4)),
    ],
)
def test_icp_bad_input(kwargs):
    with pytest.raises(Sem3RError):
        icp(**kwargs)
