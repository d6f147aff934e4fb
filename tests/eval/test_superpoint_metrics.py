import math

import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval import instance_recovery as exported_recovery
from sem3r.eval import superpoint_metrics as exported_metrics
from sem3r.eval.superpoints import instance_recovery, superpoint_metrics

CHAIN = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])


def test_hand_computed_chain():
    sp = np.array([0, 0, 0, 1, 1, 2])
    gt = np.array([5, 5, 7, 7, 7, -1])
    m = superpoint_metrics(sp, gt, edges=CHAIN)
    # Superpoint 0 = {5, 5, 7}: one point off its majority; superpoints 1 and 2 are pure.
    assert m["undersegmentation_error"] == pytest.approx(1 / 6)
    # GT boundaries: 1-2 and 4-5; predicted: 2-3 and 4-5; one in common.
    assert m["boundary_recall"] == pytest.approx(0.5)
    assert m["boundary_precision"] == pytest.approx(0.5)
    assert m["num_superpoints"] == 3 and m["mean_size"] == pytest.approx(2.0)
    assert m["recovered"] == 1.0  # instance 7: 2 of its 3 points in superpoint 1
    assert exported_metrics is superpoint_metrics and exported_recovery is instance_recovery


def test_refinement_of_ground_truth_is_perfect_and_one_superpoint_is_not():
    gt = np.array([3, 3, -1, -1, 8, 8])
    perfect = superpoint_metrics(np.array([10, 10, 20, 20, 30, 30]), gt, edges=CHAIN)
    assert perfect["undersegmentation_error"] == 0.0
    assert perfect["boundary_recall"] == 1.0 and perfect["boundary_precision"] == 1.0
    assert perfect["recovered"] == 1.0
    whole = superpoint_metrics(np.zeros(6, np.int64), gt, edges=CHAIN)
    assert whole["undersegmentation_error"] == pytest.approx(4 / 6)  # majority tie 3/-1/8 -> smallest label -1
    assert whole["boundary_recall"] == 0.0 and math.isnan(whole["boundary_precision"])
    assert whole["recovered"] == 0.0 and whole["num_superpoints"] == 1 and whole["mean_size"] == 6.0


def test_unlabelled_is_a_label_like_any_other():
    # Three background points and two of instance 0 in one superpoint: the object's points are errors.
    sp = np.zeros(5, np.int64)
    gt = np.array([-1, -1, -1, 0, 0])
    m = superpoint_metrics(sp, gt, edges=np.array([[0, 1], [1, 2], [2, 3], [3, 4]]))
    assert m["undersegmentation_error"] == pytest.approx(0.4)
    assert m["boundary_recall"] == 0.0
    assert m["recovered"] == 0.0


def test_wall_flat_poster_merged_into_its_wall_is_not_recovered():
    gt = np.r_[np.full(80, -1), np.full(20, 3), np.full(30, 5)]  # wall, poster 3, chair 5
    merged = np.r_[np.zeros(100, np.int64), np.ones(30, np.int64)]
    frac, ids, coverage = instance_recovery(merged, gt, per_instance=True)
    assert frac == 0.5 and ids.tolist() == [3, 5] and coverage.tolist() == [0.0, 1.0]
    assert instance_recovery(merged, gt, instance_ids=[3]) == 0.0
    edges = np.stack([np.arange(129), np.arange(1, 130)], axis=1)
    assert superpoint_metrics(merged, gt, edges=edges)["recovered"] == 0.5
    assert superpoint_metrics(merged, gt, edges=edges, instance_ids=np.array([5]))["recovered"] == 1.0
    assert instance_recovery(merged, gt, instance_ids=[5, 99]) == 1.0  # ids without points are skipped
    assert math.isnan(instance_recovery(merged, gt, instance_ids=[99]))
    split = np.r_[np.zeros(80, np.int64), np.full(20, 2), np.ones(30, np.int64)]
    assert instance_recovery(split, gt, instance_ids=[3]) == 1.0


def test_coverage_threshold():
    # Instance 1 has 10 points: 6 in its own superpoint, 4 inside a superpoint of instance 2.
    gt = np.r_[np.full(6, 1), np.full(4, 1), np.full(20, 2)]
    sp = np.r_[np.zeros(6, np.int64), np.ones(24, np.int64)]
    _, _, coverage = instance_recovery(sp, gt, per_instance=True)
    assert coverage.tolist() == [0.6, 1.0]
    assert instance_recovery(sp, gt, instance_ids=[1], min_coverage=0.5) == 1.0
    assert instance_recovery(sp, gt, instance_ids=[1], min_coverage=0.7) == 0.0


def test_knn_graph_from_points():
    # Two clusters far apart; labels split each cluster in halves along x.
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, size=(200, 3))
    b = a + 10.0
    pts = np.r_[a, b]
    gt = np.r_[(a[:, 0] > 0.5).astype(np.int64), 2 + (b[:, 0] > 10.5)]
    sp = np.r_[np.zeros(200, np.int64), np.ones(200, np.int64)]
    m = superpoint_metrics(sp, gt, points=pts, k=6)
    assert m["boundary_recall"] == 0.0 and math.isnan(m["boundary_precision"])  # no KNN edge joins the clusters
    assert m["undersegmentation_error"] == pytest.approx(
        1 - (max((gt[:200] == 0).sum(), (gt[:200] == 1).sum()) + max((gt[200:] == 2).sum(), (gt[200:] == 3).sum())) / 400)
    refined = superpoint_metrics(gt * 7, gt, points=pts, k=6)
    assert refined["boundary_recall"] == 1.0 and refined["boundary_precision"] == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"superpoints": np.zeros(3, int), "gt_instance": np.zeros(4, int), "edges": CHAIN[:1]}, "one length"),
        ({"superpoints": np.zeros(3), "gt_instance": np.zeros(3, int), "edges": CHAIN[:1]}, "integer"),
        ({"superpoints": np.zeros(3, int), "gt_instance": np.zeros(3, int)}, "exactly one"),
        ({"superpoints": np.zeros(3, int), "gt_instance": np.zeros(3, int), "edges": CHAIN[:1], "points": np.zeros((3, 3))},
         "exactly one"),
        ({"superpoints": np.zeros(3, int), "gt_instance": np.zeros(3, int), "edges": np.array([[0, 3]])}, "edge point ids"),
        ({"superpoints": np.zeros(3, int), "gt_instance": np.zeros(3, int), "points": np.zeros((2, 3))}, "points must"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(Sem3RError, match=match):
        superpoint_metrics(**kwargs)


def test_bad_coverage_raises():
    with pytest.raises(Sem3RError, match="min_coverage"):
        instance_recovery(np.zeros(3, int), np.zeros(3, int), min_coverage=0.0)
