import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval.pointcloud import align_point_clouds, pointcloud_metrics
from sem3r.geometry.transforms import Sim3, random_rotation


def _box_surface(n: int, seed: int) -> np.ndarray:
    """Points on the surface of an axis-aligned 2 x 1.5 x 1 box (no symmetry ICP could slip along)."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1, size=(n, 3)) * [2.0, 1.5, 1.0]
    face = rng.integers(0, 6, size=n)
    axis, side = face % 3, face // 3
    pts[np.arange(n), axis] = side * np.array([2.0, 1.5, 1.0])[axis]
    return pts


def test_hand_computed_offset_plane():
    g = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    gt = np.c_[g, np.zeros(len(g))]
    pred = gt + [0.0, 0.0, 0.1]
    m = pointcloud_metrics(pred, gt, align="none")
    for key in ("accuracy", "accuracy_median", "completeness", "completeness_median", "chamfer"):
        assert m[key] == pytest.approx(0.1)
    assert m["normal_consistency"] == pytest.approx(1.0)


def test_asymmetric_accuracy_and_completeness():
    gt = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])
    pred = np.array([[0.0, 0, 0], [1, 0, 0], [1, 0, 0]])
    normals_z, normals_y = np.tile([0, 0, 1.0], (3, 1)), np.tile([0, 1.0, 0], (4, 1))
    m = pointcloud_metrics(pred, gt, normals_z, normals_y, align="none")
    assert m["accuracy"] == 0.0
    assert m["completeness"] == pytest.approx((0 + 0 + 1 + 2) / 4)
    assert m["completeness_median"] == pytest.approx(0.5)
    assert m["normal_consistency"] == pytest.approx(0.0)


def test_random_sim3_is_recovered_with_correspondences():
    gt = _box_surface(3000, 0)
    rng = np.random.default_rng(1)
    T = Sim3(0.37, random_rotation(rng), rng.normal(size=3))
    pred = T.apply(gt)  # the prediction lives in another frame and scale
    m = pointcloud_metrics(pred, gt, correspondences=(pred, gt))
    assert m["chamfer"] < 1e-6 and m["accuracy_median"] < 1e-6
    assert m["normal_consistency"] > 0.99
    assert m["scale"] == pytest.approx(1 / 0.37)
    unaligned = pointcloud_metrics(pred, gt, align="none")
    assert unaligned["chamfer"] > 0.1


def test_given_normals_rotate_with_the_alignment():
    gt = _box_surface(2000, 2)
    rng = np.random.default_rng(3)
    T = Sim3(2.0, random_rotation(rng), rng.normal(size=3))
    gt_normals = np.zeros_like(gt)
    gt_normals[np.arange(len(gt)), np.argmax(np.isclose(gt, 0) | np.isclose(gt, [2.0, 1.5, 1.0]), axis=1)] = 1.0
    pred, pred_normals = T.apply(gt), gt_normals @ T.rotation.T
    m = pointcloud_metrics(pred, gt, pred_normals, gt_normals, correspondences=(pred, gt))
    assert m["normal_consistency"] == pytest.approx(1.0, abs=1e-6)


def test_icp_only_recovers_a_small_rigid_offset():
    gt = _box_surface(3000, 4)
    angle = np.radians(2.0)
    R = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    pred = Sim3(1.0, R, [0.02, -0.01, 0.01]).apply(gt)
    assert pointcloud_metrics(pred, gt, align="icp", icp_threshold=0.2)["chamfer"] < 1e-4
    assert pointcloud_metrics(pred, gt, align="none")["chamfer"] > 1e-2


def test_fallback_without_correspondences_recovers_scale_and_translation():
    gt = _box_surface(3000, 5)
    pred = Sim3(3.0, np.eye(3), [1.0, 2.0, 3.0]).apply(gt)
    T = align_point_clouds(pred, gt, icp_threshold=0.3)
    assert T.scale == pytest.approx(1 / 3, rel=1e-4)
    np.testing.assert_allclose(T.apply(pred), gt, atol=1e-4)


def test_bad_input():
    gt = _box_surface(100, 6)
    with pytest.raises(Sem3RError):
        pointcloud_metrics(gt, gt, align="procrustes")
    with pytest.raises(Sem3RError):
        pointcloud_metrics(gt[:, :2], gt)
    with pytest.raises(Sem3RError):
        pointcloud_metrics(gt, gt, pred_normals=np.zeros((3, 3)))


def test_prediction_too_far_for_icp_keeps_the_initial_transform():
    gt = _box_surface(500, 7)
    pred = gt + 5.0
    m = pointcloud_metrics(pred, gt, align="icp", icp_threshold=0.1)
    assert m["accuracy"] > 4.0
