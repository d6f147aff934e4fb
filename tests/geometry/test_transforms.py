import numpy as np
import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.geometry.transforms import (
    Sim3,
    compose,
    matrix_from_quat,
    quat_from_matrix,
    random_rotation,
    rotation_angle,
    umeyama,
)


def _axis_angle(axis, degrees):
    """Rodrigues' formula, written independently of the code under test."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    th = np.radians(degrees)
    Kx = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(th) * Kx + (1 - np.cos(th)) * Kx @ Kx


def _random_sim3(rng):
    return Sim3(rng.uniform(0.3, 3.0), random_rotation(rng), rng.normal(size=3))


# ---- compose / Sim3 -------------------------------------------------------------------------------


def test_compose_applies_b_first():
    rng = np.random.default_rng(0)
    a = np.hstack([random_rotation(rng), rng.normal(size=(3, 1))])
    b = np.hstack([random_rotation(rng), rng.normal(size=(3, 1))])
    p = rng.normal(size=3)
    apply = lambda T, x: T[:3, :3] @ x + T[:3, 3]  # noqa: E731
    np.testing.assert_allclose(apply(compose(a, b), p), apply(a, apply(b, p)))


def test_compose_broadcasts_and_accepts_4x4():
    rng = np.random.default_rng(1)
    a = np.concatenate([random_rotation(rng, (4,)), rng.normal(size=(4, 3, 1))], axis=-1)
    b = np.vstack([np.hstack([random_rotation(rng), rng.normal(size=(3, 1))]), [0, 0, 0, 1]])
    out = compose(a, b)
    assert out.shape == (4, 3, 4)
    np.testing.assert_allclose(out[2], compose(a[2], b[:3]))


def test_sim3_apply_inverse_matrix_compose():
    rng = np.random.default_rng(2)
    S, T = _random_sim3(rng), _random_sim3(rng)
    p = rng.normal(size=(10, 3))
    np.testing.assert_allclose(S.inverse().apply(S.apply(p)), p, atol=1e-12)
    homog = np.c_[p, np.ones(10)] @ S.matrix().T
    np.testing.assert_allclose(homog[:, :3], S.apply(p))
    np.testing.assert_allclose(S.compose(T).apply(p), S.apply(T.apply(p)))
    np.testing.assert_allclose(S.compose(T).matrix(), S.matrix() @ T.matrix())
    back = Sim3.from_matrix(S.matrix())
    assert back.scale == pytest.approx(S.scale)
    np.testing.assert_allclose(back.rotation, S.rotation, atol=1e-12)
    np.testing.assert_allclose(Sim3.identity().apply(p), p)


def test_sim3_transform_cameras():
    rng = np.random.default_rng(3)
    S = _random_sim3(rng)
    poses = np.concatenate([random_rotation(rng, 3), rng.normal(size=(3, 3, 1))], axis=-1)
    new = S.transform_cameras(poses)
    centres = -np.einsum("nji,nj->ni", poses[:, :, :3], poses[:, :, 3])
    new_centres = -np.einsum("nji,nj->ni", new[:, :, :3], new[:, :, 3])
    np.testing.assert_allclose(new_centres, S.apply(centres), atol=1e-12)
    # The same world point seen through old and new cameras lands on the same normalised ray.
    x = rng.normal(size=3)
    old_cam = poses[0, :, :3] @ x + poses[0, :, 3]
    new_cam = new[0, :, :3] @ S.apply(x) + new[0, :, 3]
    np.testing.assert_allclose(new_cam, S.scale * old_cam, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(scale=0.0, rotation=np.eye(3), translation=np.zeros(3)),
        dict(scale=1.0, rotation=np.eye(2), translation=np.zeros(3)),
        dict(scale=1.0, rotation=np.eye(3), translation=[np.nan, 0, 0]),
    ],
)
def test_sim3_bad_input(kwargs):
    with pytest.raises(Sem3RError):
        Sim3(**kwargs)


# ---- umeyama --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_umeyama_recovers_random_sim3(seed):
    rng = np.random.default_rng(seed)
    truth = _random_sim3(rng)
    src = rng.normal(size=(50, 3))
    est = umeyama(src, truth.apply(src))
    assert est.scale == pytest.approx(truth.scale, rel=1e-10)
    np.testing.assert_allclose(est.rotation, truth.rotation, atol=1e-10)
    np.testing.assert_allclose(est.translation, truth.translation, atol=1e-10)


def test_umeyama_rigid_keeps_unit_scale():
    rng = np.random.default_rng(4)
    truth = Sim3(1.0, random_rotation(rng), rng.normal(size=3))
    src = rng.normal(size=(20, 3))
    est = umeyama(src, truth.apply(src) + 0.0, with_scale=False)
    assert est.scale == 1.0
    np.testing.assert_allclose(est.rotation, truth.rotation, atol=1e-10)


def test_umeyama_permutation_invariant():
    rng = np.random.default_rng(5)
    src = rng.normal(size=(30, 3))
    dst = _random_sim3(rng).apply(src) + 0.05 * rng.normal(size=(30, 3))
    perm = rng.permutation(30)
    a, b = umeyama(src, dst), umeyama(src[perm], dst[perm])
    np.testing.assert_allclose(a.matrix(), b.matrix(), atol=1e-12)


def test_umeyama_minimal_and_planar_sets_are_exact():
    rng = np.random.default_rng(6)
    truth = _random_sim3(rng)
    for src in (rng.normal(size=(3, 3)), np.c_[rng.normal(size=(10, 2)), np.zeros(10)]):
        est = umeyama(src, truth.apply(src))
        np.testing.assert_allclose(est.matrix(), truth.matrix(), atol=1e-9)
        assert np.linalg.det(est.rotation) == pytest.approx(1.0)


def test_umeyama_reflection_returns_the_best_rotation():
    rng = np.random.default_rng(7)
    src = rng.normal(size=(40, 3)) * [3.0, 2.0, 1.0]
    dst = src * [-1.0, 1.0, 1.0] + 0.01 * rng.normal(size=(40, 3))  # a mirror image: SVD alone gives det -1
    est = umeyama(src, dst, with_scale=False)
    assert np.linalg.det(est.rotation) == pytest.approx(1.0)
    xs, xd = src - src.mean(0), dst - dst.mean(0)

    def alignment(R):  # sum_n xd_n . R xs_n, the quantity the optimal rotation maximises
        return np.einsum("ni,...ij,nj->...", xd, R, xs)

    best = alignment(est.rotation)
    assert (alignment(random_rotation(rng, 2000)) <= best + 1e-9).all()
    nudges = np.stack([_axis_angle(rng.normal(size=3), 0.05) for _ in range(50)])
    assert (alignment(est.rotation @ nudges) <= best + 1e-9).all()


def test_umeyama_weights():
    rng = np.random.default_rng(8)
    truth = _random_sim3(rng)
    src = rng.normal(size=(30, 3))
    dst = truth.apply(src)
    dst[:5] += 10.0  # outliers with zero weight do not matter
    w = np.ones(30)
    w[:5] = 0.0
    np.testing.assert_allclose(umeyama(src, dst, weights=w).matrix(), truth.matrix(), atol=1e-10)
    # Integer weights equal repeating points.
    w2 = rng.integers(1, 4, size=30)
    np.testing.assert_allclose(
        umeyama(src, dst, weights=w2).matrix(),
        umeyama(np.repeat(src, w2, 0), np.repeat(dst, w2, 0)).matrix(),
        atol=1e-10,
    )


@pytest.mark.parametrize(
    "src,dst",
    [
        (np.zeros((2, 3)), np.zeros((2, 3))),  # too few points
        (np.outer(np.arange(5.0), [1, 2, 3]), np.outer(np.arange(5.0), [3, 1, 2])),  # collinear
        (np.ones((5, 3)), np.random.default_rng(0).normal(size=(5, 3))),  # coincident
        (np.eye(3), np.eye(4)[:, :3]),  # mismatched sizes
        (np.array([[0, 0, 0], [1, 0, 0], [0, 1, np.nan]]), np.eye(3)),  # NaN
    ],
)
def test_umeyama_bad_input(src, dst):
    with pytest.raises(Sem3RError):
        umeyama(src, dst)


def test_umeyama_bad_weights():
    src = np.random.default_rng(9).normal(size=(6, 3))
    with pytest.raises(Sem3RError):
        umeyama(src, src, weights=-np.ones(6))
    with pytest.raises(Sem3RError):
        umeyama(src, src, weights=np.array([1.0, 1, 0, 0, 0, 0]))


# ---- rotations and quaternions --------------------------------------------------------------------


@pytest.mark.parametrize("degrees", [0.0, 1e-7, 30.0, 90.0, 179.9999, 180.0])
def test_rotation_angle(degrees):
    R = _axis_angle([1.0, 2.0, -0.5], degrees)
    assert float(rotation_angle(R)) == pytest.approx(degrees, abs=1e-9)


def test_rotation_angle_batched_relative():
    rng = np.random.default_rng(10)
    Ra = random_rotation(rng, 4)
    Rb = Ra @ _axis_angle([0, 0, 1], 25.0)
    np.testing.assert_allclose(rotation_angle(np.swapaxes(Ra, -1, -2) @ Rb), 25.0)


def test_quaternion_hand_values():
    np.testing.assert_allclose(quat_from_matrix(np.eye(3)), [0, 0, 0, 1])
    s = np.sqrt(0.5)
    np.testing.assert_allclose(quat_from_matrix(_axis_angle([0, 0, 1], 90)), [0, 0, s, s], atol=1e-15)
    np.testing.assert_allclose(matrix_from_quat(np.array([s, 0, 0, s])), _axis_angle([1, 0, 0], 90), atol=1e-15)


def test_quaternion_round_trip_random():
    R = random_rotation(np.random.default_rng(11), (200,))
    q = quat_from_matrix(R)
    assert q.shape == (200, 4) and (q[:, 3] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(matrix_from_quat(q), R, atol=1e-12)


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, -2, 3], [0.3, 0.1, -0.9]])
@pytest.mark.parametrize("degrees", [180.0, 179.999999, 120.0])
def test_quaternion_round_trip_near_180(axis, degrees):
    R = _axis_angle(axis, degrees)
    q = quat_from_matrix(R)
    np.testing.assert_allclose(matrix_from_quat(q), R, atol=1e-12)
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    half = np.radians(degrees) / 2
    expected = np.r_[a * np.sin(half), np.cos(half)]
    np.testing.assert_allclose(np.abs(q @ expected), 1.0, atol=1e-12)


def test_matrix_from_quat_normalises():
    q = np.array([0.1, -0.4, 0.3, 0.8])
    np.testing.assert_allclose(matrix_from_quat(5.0 * q), matrix_from_quat(q / np.linalg.norm(q)), atol=1e-14)
    np.testing.assert_allclose(matrix_from_quat(-q), matrix_from_quat(q), atol=1e-14)


def test_quaternion_torch_matches_numpy_and_is_differentiable():
    R = random_rotation(np.random.default_rng(12), (5,))
    Rt = torch.tensor(R, requires_grad=True)
    q = quat_from_matrix(Rt)
    assert isinstance(q, torch.Tensor) and q.dtype == torch.float64
    np.testing.assert_allclose(q.detach().numpy(), quat_from_matrix(R), atol=1e-14)
    q.sum().backward()
    assert torch.isfinite(Rt.grad).all()
    qt = torch.tensor(quat_from_matrix(R), requires_grad=True)
    matrix_from_quat(qt).sum().backward()
    assert torch.isfinite(qt.grad).all()


def test_random_rotation_is_proper_and_seeded():
    R = random_rotation(13, 100)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), (100, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0)
    np.testing.assert_array_equal(R, random_rotation(np.random.default_rng(13), 100))
    # Haar measure: the mean rotation matrix is close to zero.
    assert np.abs(random_rotation(14, 4000).mean(axis=0)).max() < 0.05


@pytest.mark.parametrize(
    "call",
    [
        lambda: quat_from_matrix(np.full((3, 3), np.nan)),
        lambda: quat_from_matrix(np.eye(4)),
        lambda: matrix_from_quat(np.zeros(4)),
        lambda: matrix_from_quat(np.ones(3)),
    ],
)
def test_quaternion_bad_input(call):
    with pytest.raises(Sem3RError):
        call()
