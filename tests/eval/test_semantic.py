import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval.semantic import confusion_matrix, metrics_from_confusion, semantic_metrics_2d, semantic_miou_3d


def test_confusion_matrix_by_hand():
    gt = np.array([0, 0, 1, 1, 2, -1])
    pred = np.array([0, 1, 1, 1, -1, 2])
    conf = confusion_matrix(pred, gt, 4)
    expected = np.zeros((4, 5), dtype=np.int64)
    expected[0, 0] = expected[0, 1] = 1
    expected[1, 1] = 2
    expected[2, 4] = 1  # unlabelled prediction on a class-2 pixel; the gt=-1 pixel is ignored
    np.testing.assert_array_equal(conf, expected)


def test_miou_macc_by_hand_and_absent_class_excluded():
    gt = np.array([[0, 0, 1], [1, 2, -1]])
    pred = np.array([[0, 1, 1], [1, -1, 2]])
    m = semantic_metrics_2d(pred, gt, num_classes=4)  # class 3 is in neither: excluded
    # IoU: class 0 = 1/2, class 1 = 2/3, class 2 = 0/1
    assert m["miou"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
    assert m["macc"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m["pixel_acc"] == pytest.approx(3 / 5)
    assert m["num_classes"] == 3


def test_class_only_in_prediction_counts_for_miou_not_macc():
    m = semantic_metrics_2d(np.array([0, 1]), np.array([0, 0]))
    assert m["miou"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["macc"] == pytest.approx(0.5)


def test_perfect_and_empty():
    labels = np.random.default_rng(0).integers(-1, 5, size=(2, 6, 7))
    m = semantic_metrics_2d(labels, labels)
    assert m["miou"] == 1.0 and m["macc"] == 1.0
    empty = metrics_from_confusion(np.zeros((3, 4)))
    assert np.isnan(empty["miou"]) and np.isnan(empty["macc"])


def test_voxel_miou_by_hand():
    v = 1.0
    gt_pts = np.array([[0.5, 0.5, 0.5], [0.6, 0.5, 0.5], [1.5, 0.5, 0.5], [2.9, 0.5, 0.5], [3.5, 0.5, 0.5]])
    gt_lab = np.array([0, 0, 1, 1, -1])  # voxels: (0) -> 0, (1) -> 1, (2) -> 1, (3) unlabelled
    pred_pts = np.array([[0.2, 0.1, 0.1], [1.2, 0.2, 0.3], [1.7, 0.2, 0.3], [1.8, 0.2, 0.3], [5.5, 0.5, 0.5]])
    pred_lab = np.array([0, 1, 0, 0, 1])
    # nearest predicted point within 1.0 of each gt point: 0 (d=.64), 0 (d=.69), 0 (1.7: d=.41),
    # none for 2.9 (1.1 from 1.8), none for 3.5 (unlabelled anyway); (5.5) is not scored
    m = semantic_miou_3d(pred_pts, pred_lab, gt_pts, gt_lab, voxel_size=v)
    # voxel pairs (gt, pred): (0, 0), (1, 0), (1, missing) -> IoU_0 = 1/2, IoU_1 = 0
    assert m["miou"] == pytest.approx(0.25)
    assert m["macc"] == pytest.approx(0.5)


def test_voxel_miou_survives_a_surface_on_a_voxel_boundary():
    rng = np.random.default_rng(1)
    floor = np.c_[rng.uniform(0, 2, size=(2000, 2)), np.zeros(2000)]  # z = 0 is a voxel boundary
    lab = (floor[:, 0] > 1).astype(np.int64)
    shifted = floor - [0, 0, 1e-6]  # a sub-micron alignment error moves every point to voxel k = -1
    assert semantic_miou_3d(shifted, lab, floor, lab, voxel_size=0.1)["miou"] == 1.0


def test_voxel_miou_of_identical_clouds_and_no_prediction():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, size=(500, 3))
    lab = (pts[:, 0] > 0.5).astype(np.int64)
    assert semantic_miou_3d(pts, lab, pts, lab, voxel_size=0.1)["miou"] == 1.0
    assert semantic_miou_3d(np.zeros((0, 3)), np.zeros(0), pts, lab, voxel_size=0.1)["miou"] == 0.0


def test_bad_input():
    with pytest.raises(Sem3RError):
        semantic_metrics_2d(np.zeros(3), np.zeros(4))
    with pytest.raises(Sem3RError):
        semantic_miou_3d(np.zeros((2, 3)), np.zeros(3), np.zeros((2, 3)), np.zeros(2))
