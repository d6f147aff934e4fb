import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval.depth import depth_metrics

GT = np.array([[[1.0, 2.0], [4.0, 0.0]]])
PRED = np.array([[[1.0, 2.0], [2.0, 5.0]]])


def test_hand_computed_2x2_without_alignment():
    m = depth_metrics(PRED, GT, alignment="none")
    # valid pixels: gt 1, 2, 4 (the gt=0 pixel is invalid); errors 0, 0, |2-4|/4
    assert m["abs_rel"] == pytest.approx(0.5 / 3)
    assert m["delta_1.25"] == pytest.approx(2 / 3)
    assert m["inlier_1.03"] == pytest.approx(2 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert m["scale"] == 1.0 and m["num_valid"] == 3


def test_median_and_lstsq_scales():
    assert depth_metrics(PRED, GT, alignment="median")["scale"] == pytest.approx(2.0 / 2.0)
    # argmin_s sum (s p - g)^2 = (1*1 + 2*2 + 2*4) / (1 + 4 + 4)
    assert depth_metrics(PRED, GT, alignment="lstsq")["scale"] == pytest.approx(13 / 9)


def test_threshold_is_strict():
    gt = np.array([[[1.0, 1.0]]])
    pred = np.array([[[1.25, 1.0]]])
    m = depth_metrics(pred, gt, alignment="none")
    assert m["delta_1.25"] == 0.5


@pytest.mark.parametrize("alignment", ["median", "lstsq"])
def test_invariant_to_global_prediction_scale(alignment):
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 5.0, size=(3, 8, 9))
    pred = gt * rng.uniform(0.8, 1.2, size=gt.shape)
    a = depth_metrics(pred, gt, alignment=alignment)
    b = depth_metrics(pred * 37.5, gt, alignment=alignment)
    for key in ("abs_rel", "delta_1.25", "inlier_1.03", "rmse"):
        assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12)
    assert b["scale"] == pytest.approx(a["scale"] / 37.5)


def test_scaled_prediction_is_perfect_after_alignment():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.5, 5.0, size=(2, 4, 4))
    for alignment in ("median", "lstsq"):
        m = depth_metrics(0.1 * gt, gt, alignment=alignment)
        assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12)
        assert m["inlier_1.03"] == 1.0


def test_validity_mask_max_depth_and_non_finite():
    gt = np.array([[[1.0, 2.0, 10.0, 3.0]]])
    pred = np.array([[[1.0, 2.0, 1.0, np.nan]]])
    m = depth_metrics(pred, gt, alignment="none", max_depth=5.0)
    assert m["num_valid"] == 2 and m["abs_rel"] == 0.0
    valid = np.array([[[True, False, True, True]]])
    assert depth_metrics(pred, gt, valid=valid, alignment="none", max_depth=5.0)["num_valid"] == 1


def test_bad_input():
    with pytest.raises(Sem3RError):
        depth_metrics(PRED, GT[:, :1])
    with pytest.raises(Sem3RError):
        depth_metrics(PRED, GT, alignment="mean")
    with pytest.raises(Sem3RError):
        depth_metrics(np.zeros((1, 2, 2)), GT)
