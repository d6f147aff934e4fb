import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval.instance_ap import InstanceAPEvaluator, average_precision, instance_ap

CLASSES = ["chair", "table", "lamp"]


def _scene():
    """1000 points: chair g0 = 0..199, chair g1 = 200..399, small chair g2 = 400..449 (50 points),
    unlabelled 450..799, table g3 = 800..999."""
    inst = np.full(1000, -1)
    inst[0:200], inst[200:400], inst[400:450], inst[800:1000] = 0, 1, 2, 3
    classes = {0: 0, 1: 0, 2: 0, 3: 1}
    return inst, classes


def _mask(*ranges):
    m = np.zeros(1000, dtype=bool)
    for a, b in ranges:
        m[a:b] = True
    return m


def _predictions():
    masks = np.stack(
        [
            _mask((0, 190)),  # p0: chair g0 at IoU 0.95
            _mask((200, 300)),  # p1: chair g1 at IoU exactly 0.5 -> no match at t = 0.5
            _mask((450, 650)),  # p2: only unlabelled points -> never a false positive
            _mask((400, 450), (650, 700)),  # p3: small chair + unlabelled -> ignored
            _mask((800, 900)),  # p4: "chair" on the table -> false positive
        ]
    )
    return masks, np.zeros(5, dtype=np.int64), np.array([0.9, 0.8, 0.95, 0.99, 0.7])


def test_hand_computed_ap():
    inst, classes = _scene()
    masks, pred_cls, scores = _predictions()
    m = instance_ap(masks, pred_cls, scores, inst, classes, CLASSES)
    # chair, t in 0.50..0.90: TP 0.9, FP 0.8 (p1), FP 0.7 (p4), 1 hard FN -> AP 0.5
    # chair, t = 0.25: TP 0.9, TP 0.8, FP 0.7 -> AP 1.0; table: ground truth, no prediction -> 0
    # lamp: no ground truth -> excluded
    assert m["ap"] == pytest.approx(0.25)
    assert m["ap50"] == pytest.approx(0.25)
    assert m["ap25"] == pytest.approx(0.5)
    assert m["num_classes"] == 2


def test_per_class_table_and_splits():
    inst, classes = _scene()
    masks, pred_cls, scores = _predictions()
    ev = InstanceAPEvaluator(CLASSES)
    ev.add_scene(masks, pred_cls, scores, inst, classes)
    per = ev.class_ap()
    np.testing.assert_allclose(per[:9, 0], 0.5)
    assert per[9, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(per[:, 1], 0.0)
    assert np.isnan(per[:, 2]).all()
    m = ev.compute(splits={"chair": "head", "table": "tail", "lamp": "tail"})
    assert m["ap_head"] == pytest.approx(0.5) and m["ap25_head"] == pytest.approx(1.0)
    assert m["ap_tail"] == 0.0 and m["ap"] == pytest.approx(0.25)


def test_iou_exactly_at_threshold_does_not_match():
    inst = np.r_[np.zeros(200, int), np.full(200, -1)]
    half = _mask((0, 100))[:400]
    m = instance_ap(half[None], [0], [1.0], inst, {0: 0}, ["chair"])
    assert m["ap50"] == 0.0  # IoU 100/200 = 0.5, not > 0.5
    assert m["ap25"] == pytest.approx(1.0)


def test_small_ground_truth_region_is_ignored():
    inst = np.r_[np.zeros(200, int), np.ones(99, int), np.full(101, -1)]
    pred = np.zeros((1, 400), dtype=bool)
    pred[0, :200] = True
    m = instance_ap(pred, [0], [1.0], inst, {0: 0, 1: 0}, ["chair"])
    assert m["ap50"] == pytest.approx(1.0)  # the 99-point instance is not a false negative
    m = instance_ap(pred, [0], [1.0], inst, {0: 0, 1: 0}, ["chair"], min_region_size=50)
    assert m["ap50"] == pytest.approx(0.5)


def test_unmatched_prediction_over_unlabelled_points_is_not_a_false_positive():
    inst = np.r_[np.zeros(200, int), np.full(400, -1)]
    good = _mask((0, 200))[:600]
    void = _mask((200, 400))[:600]
    mostly_void = _mask((150, 350))[:600]  # 150 of 200 unlabelled, IoU with g0 = 50/350
    # with a higher score than the true positive, a counted false positive would lower AP
    m = instance_ap(np.stack([good, void]), [0, 0], [0.5, 0.9], inst, {0: 0}, ["chair"])
    assert m["ap50"] == pytest.approx(1.0)
    m = instance_ap(np.stack([good, mostly_void]), [0, 0], [0.5, 0.9], inst, {0: 0}, ["chair"])
    # ignored fraction 0.75: not a false positive for t <= 0.70; for t = 0.75 .. 0.90 (0.75 <= t) it is,
    # and above the true positive: curve (p 1/2, r 1), (p 0, r 0), (1, 0) -> AP 1/4
    per_t = np.array([1.0] * 5 + [0.25] * 4)
    assert m["ap"] == pytest.approx(per_t.mean())
    assert m["ap25"] == pytest.approx(1.0)


def test_duplicate_takes_highest_score_as_true_positive():
    inst = np.r_[np.zeros(200, int), np.full(200, -1)]
    a = _mask((0, 195))[:400]  # IoU 0.975, score 0.6
    b = _mask((0, 180))[:400]  # IoU 0.9, score 0.9
    m = instance_ap(np.stack([a, b]), [0, 0], [0.6, 0.9], inst, {0: 0}, ["chair"])
    # TP at 0.9 and FP at 0.6 -> AP 1 (the reverse assignment would give 0.25)
    assert m["ap50"] == pytest.approx(1.0)


def test_per_point_ids_and_per_point_classes_match_masks():
    inst, classes = _scene()
    masks, pred_cls, scores = _predictions()
    keep = [0, 1, 4]  # disjoint masks can be written as per-point ids
    ids = np.full(1000, -1)
    for k, row in enumerate(keep):
        ids[masks[row]] = k
    point_classes = np.where(inst == 3, 1, np.where(inst >= 0, 0, -1))
    a = instance_ap(masks[keep], pred_cls[keep], scores[keep], inst, classes, CLASSES)
    b = instance_ap(ids, pred_cls[keep], scores[keep], inst, point_classes, CLASSES)
    assert a == pytest.approx(b)


def test_scenes_are_pooled():
    inst = np.r_[np.zeros(200, int), np.full(200, -1)]
    ev = InstanceAPEvaluator(["chair"])
    ev.add_scene(_mask((0, 200))[None, :400], [0], [0.9], inst, {0: 0})
    ev.add_scene(np.zeros((0, 400), bool), [], [], inst, {0: 0})
    assert ev.compute()["ap50"] == pytest.approx(0.5)  # one of two instances found, at precision 1


def test_average_precision_curve():
    # scores ascending 0.7 F, 0.8 F, 0.9 T; one missed instance
    assert average_precision(np.array([False, False, True]), np.array([0.7, 0.8, 0.9]), 1) == pytest.approx(0.5)
    # 0.6 T, 0.9 F: points (p 1/2, r 1), (p 0, r 0), (1, 0): 1/2 * (1 - 0) / 2
    assert average_precision(np.array([True, False]), np.array([0.6, 0.9]), 0) == pytest.approx(0.25)


def test_bad_input():
    inst = np.zeros(10, int)
    with pytest.raises(Sem3RError):
        instance_ap(np.zeros((1, 9), bool), [0], [1.0], inst, {0: 0}, ["chair"])
    with pytest.raises(Sem3RError):
        instance_ap(np.zeros(10, int), [0, 1], [1.0], inst, {0: 0}, ["chair"])
    with pytest.raises(Sem3RError):
        instance_ap(np.full(10, 3), [0], [1.0], inst, {0: 0}, ["chair"])
    with pytest.raises(Sem3RError):
        instance_ap(np.zeros(10, int), [0], [1.0], inst, np.zeros(4, int), ["chair"])
