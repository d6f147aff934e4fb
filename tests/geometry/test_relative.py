import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.geometry.camera import invert_pose, transform_points
from sem3r.geometry.relative import pairwise_relative_poses, relative_pose
from sem3r.geometry.transforms import compose, random_rotation


def _poses(rng, n):
    return np.concatenate([random_rotation(rng, n), rng.normal(size=(n, 3, 1))], axis=-1)


def test_relative_pose_composes_back():
    rng = np.random.default_rng(0)
    Ti, Tj = _poses(rng, 6)[:3], _poses(rng, 6)[3:]
    rel = relative_pose(Ti, Tj)
    assert rel.shape == (3, 3, 4)
    np.testing.assert_allclose(compose(rel, Ti), Tj, atol=1e-12)


def test_relative_pose_maps_camera_frames():
    rng = np.random.default_rng(1)
    Ti, Tj = _poses(rng, 2)
    x = rng.normal(size=3)
    xi = transform_points(Ti, x)
    np.testing.assert_allclose(transform_points(relative_pose(Ti, Tj), xi), transform_points(Tj, x), atol=1e-12)


def test_relative_pose_hand_case():
    # Camera j is camera i moved 1 m to the right (+x): a point in i's frame appears 1 m further left in j.
    Ti = np.eye(3, 4)
    Tj = np.hstack([np.eye(3), [[-1.0], [0.0], [0.0]]])
    np.testing.assert_allclose(relative_pose(Ti, Tj), Tj)
    np.testing.assert_allclose(relative_pose(Tj, Ti), invert_pose(Tj))


def test_relative_pose_broadcasts():
    rng = np.random.default_rng(2)
    ref, many = _poses(rng, 1)[0], _poses(rng, 4)
    np.testing.assert_allclose(relative_pose(ref, many), np.stack([relative_pose(ref, T) for T in many]))


def test_relative_pose_is_invariant_to_the_world_frame():
    rng = np.random.default_rng(3)
    Ti, Tj = _poses(rng, 2)
    world_change = _poses(rng, 1)[0]  # x_world = G x_new: poses in the new world frame are T ∘ G
    np.testing.assert_allclose(
        relative_pose(compose(Ti, world_change), compose(Tj, world_change)), relative_pose(Ti, Tj), atol=1e-12
    )


def test_pairwise_relative_poses():
    rng = np.random.default_rng(4)
    poses = _poses(rng, 5)
    idx, rel = pairwise_relative_poses(poses)
    assert idx.shape == (10, 2) and rel.shape == (10, 3, 4) and idx.dtype == np.int64
    assert (idx[:, 0] < idx[:, 1]).all()
    assert idx.tolist()[:4] == [[0, 1], [0, 2], [0, 3], [0, 4]]
    np.testing.assert_allclose(compose(rel, poses[idx[:, 0]]), poses[idx[:, 1]], atol=1e-12)


def test_pairwise_single_camera_is_empty():
    idx, rel = pairwise_relative_poses(np.eye(3, 4)[None])
    assert idx.shape == (0, 2) and rel.shape == (0, 3, 4)


@pytest.mark.parametrize(
    "call",
    [
        lambda: relative_pose(np.full((3, 4), np.nan), np.eye(3, 4)),
        lambda: relative_pose(np.eye(3), np.eye(3, 4)),
        lambda: pairwise_relative_poses(np.eye(3, 4)),
    ],
)
def test_relative_bad_input(call):
    with pytest.raises(Sem3RError):
        call()
