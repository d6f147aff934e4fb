import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval.camera import camera_metrics
from sem3r.geometry.transforms import Sim3, random_rotation


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _line_cameras(centers_x) -> np.ndarray:
    """Identity-rotation cameras with centres on the x axis (t = -c)."""
    poses = np.tile(np.eye(3, 4), (len(centers_x), 1, 1))
    poses[:, 0, 3] = -np.asarray(centers_x, dtype=np.float64)
    return poses


def test_three_cameras_with_known_angles():
    gt = _line_cameras([0.0, 1.0, 2.0])
    pred = gt.copy()
    # rotate camera 2 about its own optical axis by 20.5 deg, keeping its centre
    R = _rot_z(20.5)
    pred[2, :, :3] = R @ pred[2, :, :3]
    pred[2, :, 3] = R @ pred[2, :, 3]
    m = camera_metrics(pred, gt)
    # pairs (0,1): 0 deg; (0,2), (1,2): rotation 20.5 and translation (along x, rotated about z) 20.5
    assert m["num_pairs"] == 3
    assert m["rra@5"] == pytest.approx(1 / 3) and m["rra@15"] == pytest.approx(1 / 3) and m["rra@30"] == 1.0
    assert m["rta@5"] == pytest.approx(1 / 3) and m["rta@30"] == 1.0
    assert m["rot_err_mean"] == pytest.approx(41 / 3)
    assert m["trans_err_median"] == pytest.approx(20.5)
    # AUC@30 = (1/30) sum_k frac(e < k): 1/3 for k = 1..20, 1 for k = 21..30
    assert m["auc@30"] == pytest.approx((20 / 3 + 10) / 30)
    # AUC@15: only the zero-error pair below every bin edge
    assert m["auc@15"] == pytest.approx(1 / 3)


def test_perfect_prediction():
    m = camera_metrics(_line_cameras([0.0, 1.0, 3.0]), _line_cameras([0.0, 1.0, 3.0]))
    assert all(m[f"{k}@{t}"] == 1.0 for k in ("rra", "rta", "auc") for t in (5, 15, 30))


def test_translation_error_is_sign_sensitive():
    gt = _line_cameras([0.0, 1.0, 2.0])
    pred = _line_cameras([0.0, -1.0, -2.0])
    m = camera_metrics(pred, gt)
    assert m["trans_err_mean"] == pytest.approx(180.0)
    assert m["rta@30"] == 0.0 and m["rra@5"] == 1.0 and m["auc@30"] == 0.0
    folded = camera_metrics(pred, gt, translation_sign_ambiguity=True)
    assert folded["trans_err_mean"] == pytest.approx(0.0) and folded["auc@30"] == 1.0


def test_zero_translation():
    gt = _line_cameras([0.0, 0.0, 1.0])  # cameras 0 and 1 coincide
    m = camera_metrics(gt, gt)
    assert m["trans_err_mean"] == 0.0
    pred = _line_cameras([0.0, 0.5, 1.0])  # a baseline where the ground truth has none
    m = camera_metrics(pred, gt)
    assert m["trans_err_median"] == pytest.approx(0.0)
    assert m["rta@30"] == pytest.approx(2 / 3)  # only the (0, 1) pair fails, at 180 degrees


def test_invariant_to_global_sim3():
    rng = np.random.default_rng(3)
    n = 6
    gt = np.concatenate([random_rotation(rng, n), rng.normal(size=(n, 3, 1))], axis=2)
    noise = np.concatenate([random_rotation(rng, n), rng.normal(scale=0.3, size=(n, 3, 1))], axis=2)
    pred = np.einsum("nij,njk->nik", noise[:, :, :3], gt)
    pred[:, :, 3] += noise[:, :, 3]
    T = Sim3(3.7, random_rotation(rng), rng.normal(size=3))
    a = camera_metrics(pred, gt, thresholds=(5, 15, 30, 90))
    b = camera_metrics(T.transform_cameras(pred), gt, thresholds=(5, 15, 30, 90))
    assert a.keys() == b.keys()
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=1e-7)


def test_bad_input():
    poses = _line_cameras([0.0, 1.0])
    with pytest.raises(Sem3RError):
        camera_metrics(poses[:1], poses[:1])
    with pytest.raises(Sem3RError):
        camera_metrics(poses, _line_cameras([0.0, 1.0, 2.0]))
    with pytest.raises(Sem3RError):
        camera_metrics(poses, poses, thresholds=(2.5,))
    bad = poses.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(Sem3RError):
        camera_metrics(bad, poses)
