import numpy as np
import pytest

from sem3r.geometry.camera import (
    camera_centers,
    invert_pose,
    pixel_grid,
    project,
    scale_intrinsics,
    to_homogeneous,
    transform_points,
    unproject_depth,
)
from sem3r.geometry.transforms import compose, random_rotation


def _random_camera(rng):
    R = random_rotation(rng)
    t = rng.normal(size=3)
    fx, fy, cx, cy = rng.uniform(200, 400), rng.uniform(200, 400), rng.uniform(20, 40), rng.uniform(15, 30)
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    return K, np.hstack([R, t[:, None]])


def test_project_hand_value():
    K = np.array([[100.0, 0, 50], [0, 200, 40], [0, 0, 1]])
    pose = np.hstack([np.eye(3), [[0.0], [0.0], [1.0]]])
    uv, z = project(np.array([[0.2, -0.1, 1.0]]), K, pose)
    np.testing.assert_allclose(uv, [[60.0, 30.0]])
    np.testing.assert_allclose(z, [2.0])


def test_project_behind_camera_is_nan():
    uv, z = project(np.array([[0.0, 0.0, -1.0]]), np.eye(3), np.eye(3, 4))
    assert np.isnan(uv).all() and z[0] == -1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unproject_project_round_trip(seed):
    rng = np.random.default_rng(seed)
    K, pose = _random_camera(rng)
    depth = rng.uniform(0.5, 5.0, size=(48, 64)).astype(np.float32)
    pts = unproject_depth(depth, K, pose)
    assert pts.shape == (48, 64, 3) and pts.dtype == np.float32
    uv, z = project(pts.astype(np.float64), K, pose)
    np.testing.assert_allclose(uv, pixel_grid(48, 64, np.float64), atol=2e-3)
    np.testing.assert_allclose(z, depth, rtol=1e-5)


def test_unproject_batched_matches_single():
    rng = np.random.default_rng(3)
    cams = [_random_camera(rng) for _ in range(2)]
    K = np.stack([c[0] for c in cams])
    poses = np.stack([c[1] for c in cams])
    depth = rng.uniform(1, 2, size=(2, 6, 5)).astype(np.float32)
    batched = unproject_depth(depth, K, poses)
    for i in range(2):
        np.testing.assert_allclose(batched[i], unproject_depth(depth[i], K[i], poses[i]), rtol=1e-6)


def test_unproject_camera_frame():
    K = np.array([[2.0, 0, 1], [0, 2, 1], [0, 0, 1]])
    pts = unproject_depth(np.full((3, 3), 4.0), K)
    np.testing.assert_allclose(pts[0, 0], [-2.0, -2.0, 4.0])
    np.testing.assert_allclose(pts[1, 1], [0.0, 0.0, 4.0])


def test_pixel_grid_is_uv():
    g = pixel_grid(2, 3)
    assert g.shape == (2, 3, 2)
    assert g[1, 2].tolist() == [2.0, 1.0]


def test_invert_pose_composes_to_identity():
    rng = np.random.default_rng(4)
    poses = np.concatenate([random_rotation(rng, 5), rng.normal(size=(5, 3, 1))], axis=-1)
    ident = np.broadcast_to(np.eye(3, 4), (5, 3, 4))
    np.testing.assert_allclose(compose(invert_pose(poses), poses), ident, atol=1e-12)
    np.testing.assert_allclose(compose(poses, invert_pose(poses)), ident, atol=1e-12)
    np.testing.assert_allclose(invert_pose(to_homogeneous(poses))[:, :3], invert_pose(poses), atol=1e-12)


def test_camera_centers_map_to_origin():
    rng = np.random.default_rng(5)
    _, pose = _random_camera(rng)
    np.testing.assert_allclose(transform_points(pose, camera_centers(pose)), 0.0, atol=1e-12)


def test_to_homogeneous():
    h = to_homogeneous(np.zeros((2, 3, 4)))
    assert h.shape == (2, 4, 4)
    assert h[:, 3].tolist() == [[0, 0, 0, 1], [0, 0, 0, 1]]


def test_scale_intrinsics_known_resize():
    # A 640x480 image halved to 320x240: pixel centre u maps to (u + 0.5) / 2 - 0.5.
    K = np.array([[500.0, 0, 319.5], [0, 520, 239.5], [0, 0, 1]])
    expected = np.array([[250.0, 0, 159.5], [0, 260, 119.5], [0, 0, 1]])
    np.testing.assert_allclose(scale_intrinsics(K, 0.5, 0.5), expected)
    np.testing.assert_allclose(scale_intrinsics(K[None], 0.5, 0.5)[0], expected)


def test_scale_intrinsics_preserves_projection_of_pixel_corners():
    K = np.array([[300.0, 0, 100], [0, 300, 80], [0, 0, 1]])
    sx, sy = 1.5, 0.75
    K2 = scale_intrinsics(K, sx, sy)
    p = np.array([[0.3, -0.2, 2.0]])
    uv, _ = project(p, K, np.eye(3, 4))
    uv2, _ = project(p, K2, np.eye(3, 4))
    # Pixel edges (u + 0.5) scale exactly with the resize.
    np.testing.assert_allclose(uv2 + 0.5, (uv + 0.5) * [sx, sy])
