import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval.tracking import tracking_metrics

GT = np.array([[[0, 0, 1, -1]], [[0, 1, 1, -1]]], dtype=np.int32)


def test_hand_computed_sequence():
    pred = np.array([[[5, 5, 5, -1]], [[5, 9, 9, -1]]], dtype=np.int32)
    m = tracking_metrics(pred, GT)
    # matching: gt 0 <-> 5 (sequence IoU 3/4), gt 1 <-> 9 (2/3)
    # gt 0: view IoUs 2/3, 1 -> T-mIoU 5/6, tracked; gt 1: view IoUs 0, 1 -> 1/2, lost in view 0
    assert m["t_miou"] == pytest.approx((5 / 6 + 1 / 2) / 2)
    assert m["t_sr"] == pytest.approx(0.5)
    assert m["num_objects"] == 2


def test_prediction_equal_to_ground_truth():
    rng = np.random.default_rng(0)
    gt = rng.integers(-1, 6, size=(4, 9, 11)).astype(np.int32)
    m = tracking_metrics(gt, gt)
    assert m["t_miou"] == 1.0 and m["t_sr"] == 1.0 and m["num_objects"] == 6


def test_invariant_to_predicted_id_relabelling():
    rng = np.random.default_rng(1)
    gt = rng.integers(-1, 5, size=(3, 10, 12)).astype(np.int32)
    pred = np.where(rng.uniform(size=gt.shape) < 0.3, rng.integers(-1, 7, size=gt.shape), gt).astype(np.int32)
    base = tracking_metrics(pred, gt)
    new_ids = rng.permutation(1000)[:7] + 20
    relabelled = np.where(pred >= 0, new_ids[np.maximum(pred, 0)], -1)
    for matching in ("hungarian", "max"):
        expected = tracking_metrics(pred, gt, matching=matching)
        assert tracking_metrics(relabelled, gt, matching=matching) == pytest.approx(expected)
    assert 0.0 < base["t_miou"] < 1.0


def test_hallucinated_view_is_a_tracking_error():
    gt = np.array([[[0, 0]], [[-1, -1]]], dtype=np.int32)
    pred = np.array([[[3, 3]], [[3, -1]]], dtype=np.int32)  # object predicted in view 1 where it is absent
    m = tracking_metrics(pred, gt)
    assert m["t_miou"] == pytest.approx(0.5) and m["t_sr"] == 0.0


def test_success_threshold_is_strict():
    gt = np.array([[[0, 0, -1, -1]]], dtype=np.int32)
    pred = np.array([[[0, 0, 0, 0]]], dtype=np.int32)  # IoU exactly 0.5
    assert tracking_metrics(pred, gt)["t_sr"] == 0.0
    assert tracking_metrics(pred, gt, success_iou=0.49)["t_sr"] == 1.0


def test_one_to_one_versus_per_object_max():
    gt = np.array([[[0, 0, 1, 1]]], dtype=np.int32)
    pred = np.array([[[7, 7, 7, 7]]], dtype=np.int32)  # one prediction covering both objects
    hungarian = tracking_metrics(pred, gt)
    assert hungarian["t_miou"] == pytest.approx(0.25) and hungarian["t_sr"] == 0.0  # second object unmatched
    per_object = tracking_metrics(pred, gt, matching="max")
    assert per_object["t_miou"] == pytest.approx(0.5)


def test_no_prediction_and_no_objects():
    empty = np.full(GT.shape, -1, dtype=np.int32)
    m = tracking_metrics(empty, GT)
    assert m["t_miou"] == 0.0 and m["t_sr"] == 0.0
    assert np.isnan(tracking_metrics(GT, empty)["t_miou"])


def test_bad_input():
    with pytest.raises(Sem3RError):
        tracking_metrics(GT[:1], GT)
    with pytest.raises(Sem3RError):
        tracking_metrics(GT, GT, matching="greedy")
