"""3D instance segmentation AP in the ScanNet / ScanNet200 protocol (as reported by OVSeg3R).

Masks are sets of points of one shared point cloud per scene (the ground-truth mesh vertices in
ScanNet). The protocol below is that of ScanNet's ``evaluate_semantic_instance.py`` benchmark
script, written out:

**Ground truth.** Instances are the ground-truth instance ids ``>= 0`` whose class is one of the
``C`` evaluated classes (an instance's class is the majority class of its points when classes are
given per point). *Void* points are points without an instance id or whose instance has no
evaluated class. Instances with fewer than ``min_region_size`` points (100) are *small*: they are
neither true positives nor false negatives.

**Predictions.** A prediction is a point mask, a class in ``[0, C)`` and a confidence score.
Predictions with fewer than ``min_region_size`` points, or whose class is not evaluated, are
dropped before anything else. Predictions and ground truth only interact within the same class.

**Overlap.** ``IoU(p, g) = |p ∩ g| / (|p| + |g| - |p ∩ g|)`` with ``|p|`` counting all points of the
prediction (void ones included). A match needs ``IoU > t`` (strictly).

**Matching at threshold t, per class and scene.** Ground-truth instances (not small) are visited in
ascending id order. For one instance, the candidates are the predictions of its class that are
still unclaimed and have ``IoU > t``. Without a candidate the instance is a *hard false negative*.
Otherwise it is one true positive scored with the *highest* candidate confidence, every other
candidate is a false positive with its own confidence, and only the first candidate in prediction
order becomes claimed (the others stay available to later instances; this only matters for
``t < 0.5``, where one prediction can overlap two instances by more than ``t``).

**Unmatched predictions.** A prediction of class ``c`` that has ``IoU > t`` with no ground-truth
instance of class ``c`` (small ones included) is a false positive unless it mostly covers ignored
points: with ``ignored = |p ∩ void| + sum |p ∩ g|`` over the small instances ``g`` of class ``c``,
it is *not* a false positive when ``ignored / |p| > t`` (the same ``t`` as the IoU threshold).

**Precision-recall and AP (per class, pooled over all scenes added).** Let ``y`` be the true/false
positive flags with their scores. For each distinct score ``u`` (ascending), keeping the entries
with score ``>= u``: ``precision = TP / (TP + FP)`` and
``recall = TP / (TP + FN)`` with ``FN`` = true positives below ``u`` plus all hard false negatives.
The curve is these points in ascending ``u`` (descending recall) followed by an artificial point
``(recall 0, precision 1)``. With ``r_{-1} = r_0`` and ``r_{K+1} = 0`` around the ``K + 1`` points,
``AP = sum_i p_i (r_{i-1} - r_{i+1}) / 2`` (ScanNet's central-difference step widths; precision is
not made monotone). A class with ground truth but no prediction has AP 0; a class without ground
truth has AP NaN and is left out of every mean.

**Summary.** ``ap`` averages a class's AP over ``t = 0.50, 0.55, ..., 0.90``, then over classes;
``ap50`` and ``ap25`` use ``t = 0.5`` and ``t = 0.25``. With ``splits`` (class name -> split name,
e.g. ScanNet200's head / common / tail) the same three numbers are also averaged per split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from sem3r.errors import Sem3RError
from sem3r.geometry.voxels import VoxelGrid

AP_THRESHOLDS = np.round(np.arange(0.50, 0.901, 0.05), 2)
"""IoU thresholds averaged into ``ap``: ``0.50, 0.55, ..., 0.90``."""

_ALL_THRESHOLDS = np.append(AP_THRESHOLDS, 0.25)


def average_precision(true: np.ndarray, scores: np.ndarray, hard_false_negatives: int) -> float:
    """ScanNet AP of scored detections (see the module docstring).

    Args:
        true: ``(D,) bool`` true-positive flags of the detections.
        scores: ``(D,)`` their confidences.
        hard_false_negatives: ground-truth instances no detection matched.

    Example:
        >>> average_precision(np.array([True]), np.array([0.9]), 1)   # recall 0.5 at precision 1
        0.5
    """
    true = np.asarray(true, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    scores, true = scores[order], true[order]
    _, first = np.unique(scores, return_index=True)
    below = np.concatenate([[0], np.cumsum(true)])[first]
    tp = true.sum() - below
    fp = (len(scores) - first) - tp
    precision = np.append(tp / np.maximum(tp + fp, 1), 1.0)
    positives = true.sum() + hard_false_negatives
    recall = np.append(tp / positives if positives else np.zeros(len(tp)), 0.0)
    padded = np.concatenate([[recall[0]], recall, [0.0]])
    return float(np.dot(precision, (padded[:-2] - padded[2:]) / 2.0))


class InstanceAPEvaluator:
    """Accumulates scenes and computes ScanNet-protocol AP (see the module docstring).

    Args:
        class_names: the ``C`` evaluated classes; class ids index this list.
        min_region_size: ground-truth instances and predictions with fewer points are ignored.

    Example:
        >>> ev = InstanceAPEvaluator(["chair"], min_region_size=1)
        >>> gt = np.array([0, 0, 1, 1, -1])
        >>> ev.add_scene(np.array([0, 0, -1, -1, -1]), [0], [0.9], gt, {0: 0, 1: 0})
        >>> ev.compute()["ap50"]
        0.5
    """

    def __init__(self, class_names: Sequence[str], min_region_size: int = 100):
        self.class_names = [str(c) for c in class_names]
        if not self.class_names:
            raise Sem3RError("instance AP needs at least one class name")
        self.min_region_size = int(min_region_size)
        shape = (len(_ALL_THRESHOLDS), len(self.class_names))
        self._true = [[[] for _ in range(shape[1])] for _ in range(shape[0])]
        self._score = [[[] for _ in range(shape[1])] for _ in range(shape[0])]
        self._hard_fn = np.zeros(shape, dtype=np.int64)
        self._has_gt = np.zeros(shape[1], dtype=bool)
        self._has_pred = np.zeros(shape[1], dtype=bool)

    # ------------------------------------------------------------------ input parsing
    def _pred_matrix(self, pred_masks, num_points: int, num_pred: int) -> sp.csr_matrix:
        masks = np.asarray(pred_masks)
        if masks.ndim == 1:
            if len(masks) != num_points:
                raise Sem3RError(f"per-point predicted ids have {len(masks)} entries for {num_points} points")
            ids = masks.astype(np.int64)
            if ids.size and ids.max() >= num_pred:
                raise Sem3RError(f"predicted id {int(ids.max())} has no class/score row ({num_pred} predictions)")
            on = ids >= 0
            return sp.csr_matrix(
                (np.ones(int(on.sum())), (ids[on], np.flatnonzero(on))), shape=(num_pred, num_points)
            )
        if masks.ndim != 2 or masks.shape != (num_pred, num_points):
            raise Sem3RError(
                f"predicted masks must be ({num_pred}, {num_points}) bool or ({num_points},) ids, got {masks.shape}"
            )
        return sp.csr_matrix(masks.astype(bool), dtype=np.float64)

    def _gt_instances(self, gt_instance_ids, gt_classes) -> tuple[np.ndarray, np.ndarray]:
        """Per-point instance slot ``(M,)`` (-1 = void) and per-slot class ``(G,)``, ids ascending."""
        inst = np.asarray(gt_instance_ids, dtype=np.int64).reshape(-1)
        labelled = inst >= 0
        ids, inverse = np.unique(inst[labelled], return_inverse=True)
        if isinstance(gt_classes, Mapping):
            cls = np.array([int(gt_classes.get(int(i), -1)) for i in ids], dtype=np.int64)
        else:
            point_cls = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
            if len(point_cls) != len(inst):
                raise Sem3RError(
                    f"ground-truth classes per point have {len(point_cls)} entries for {len(inst)} points "
                    "(pass a dict instance id -> class for per-instance classes)"
                )
            grid = VoxelGrid(keys=ids, inverse=inverse, counts=np.bincount(inverse, minlength=len(ids)), voxel_size=1.0)
            cls = grid.majority(point_cls[labelled])
        valid = (cls >= 0) & (cls < len(self.class_names))
        slot = np.full(len(ids), -1, dtype=np.int64)
        slot[valid] = np.arange(int(valid.sum()))
        point_slot = np.full(len(inst), -1, dtype=np.int64)
        point_slot[labelled] = slot[inverse]
        return point_slot, cls[valid]

    # ------------------------------------------------------------------ accumulation
    def add_scene(self, pred_masks, pred_classes, pred_scores, gt_instance_ids, gt_classes) -> None:
        """Add one scene.

        Args:
            pred_masks: ``(P, M) bool`` point masks, or ``(M,) int`` per-point predicted ids where id
                ``k`` is row ``k`` of ``pred_classes`` / ``pred_scores`` and -1 means no prediction.
            pred_classes: ``(P,) int`` class ids into ``class_names``.
            pred_scores: ``(P,) float`` confidences.
            gt_instance_ids: ``(M,) int`` ground-truth instance id per point, -1 = unlabelled.
            gt_classes: ``(M,) int`` class id per point (-1 = none; an instance takes its points'
                majority class) or a dict instance id -> class id.
        """
        pred_classes = np.asarray(pred_classes, dtype=np.int64).reshape(-1)
        pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
        if len(pred_classes) != len(pred_scores):
            raise Sem3RError(f"{len(pred_classes)} predicted classes for {len(pred_scores)} scores")
        point_slot, gt_cls = self._gt_instances(gt_instance_ids, gt_classes)
        num_points, num_gt = len(point_slot), len(gt_cls)
        pred = self._pred_matrix(pred_masks, num_points, len(pred_classes))
        pred_size = np.asarray(pred.sum(axis=1)).reshape(-1)
        known_class = (pred_classes >= 0) & (pred_classes < len(self.class_names))
        keep = (pred_size >= max(self.min_region_size, 1)) & known_class
        pred, pred_size, pred_classes, pred_scores = pred[keep], pred_size[keep], pred_classes[keep], pred_scores[keep]
        column = np.where(point_slot >= 0, point_slot, num_gt)
        onehot = sp.csr_matrix((np.ones(num_points), (np.arange(num_points), column)), shape=(num_points, num_gt + 1))
        overlap = (pred @ onehot).toarray()
        inter, void = overlap[:, :num_gt], overlap[:, num_gt]
        gt_size = np.bincount(point_slot[point_slot >= 0], minlength=num_gt).astype(np.float64)
        iou = inter / (pred_size[:, None] + gt_size[None, :] - inter)
        iou[pred_classes[:, None] != gt_cls[None, :]] = 0.0
        small = gt_size < self.min_region_size
        for c in np.union1d(gt_cls, pred_classes):
            self._add_class(int(c), iou, inter, void, pred_size, pred_scores, pred_classes == c, gt_cls == c, small)

    def _add_class(self, c, iou, inter, void, pred_size, scores, pred_c, gt_c, small) -> None:
        """Match one class of one scene at every threshold and store the flags."""
        eval_gt = np.flatnonzero(gt_c & ~small)
        self._has_gt[c] |= len(eval_gt) > 0
        self._has_pred[c] |= bool(pred_c.any())
        iou_c = iou[pred_c][:, gt_c]
        iou_eval = iou[pred_c][:, eval_gt]
        scores_c = scores[pred_c]
        ignored = (void[pred_c] + inter[pred_c][:, gt_c & small].sum(axis=1)) / pred_size[pred_c]
        for ti, t in enumerate(_ALL_THRESHOLDS):
            claimed = np.zeros(len(scores_c), dtype=bool)
            true, score = [], []
            for g in range(len(eval_gt)):
                cand = np.flatnonzero((iou_eval[:, g] > t) & ~claimed)
                if not len(cand):
                    self._hard_fn[ti, c] += 1
                    continue
                claimed[cand[0]] = True
                s = scores_c[cand]
                best = int(np.argmax(s))
                true += [True] + [False] * (len(s) - 1)
                score += [s[best]] + np.delete(s, best).tolist()
            false_pos = ~(iou_c > t).any(axis=1) & (ignored <= t)
            self._true[ti][c].append(np.concatenate([np.array(true, dtype=bool), np.zeros(int(false_pos.sum()), bool)]))
            self._score[ti][c].append(np.concatenate([np.array(score, dtype=np.float64), scores_c[false_pos]]))

    # ------------------------------------------------------------------ results
    def class_ap(self) -> np.ndarray:
        """Per-threshold, per-class AP ``(10, C)``: rows ``0.50..0.90`` then ``0.25``; NaN without GT."""
        out = np.full((len(_ALL_THRESHOLDS), len(self.class_names)), np.nan)
        for c in np.flatnonzero(self._has_gt):
            for ti in range(len(_ALL_THRESHOLDS)):
                if not self._has_pred[c]:
                    out[ti, c] = 0.0
                    continue
                true = np.concatenate(self._true[ti][c])
                score = np.concatenate(self._score[ti][c])
                out[ti, c] = average_precision(true, score, int(self._hard_fn[ti, c])) if len(true) else 0.0
        return out

    def compute(self, splits: Mapping[str, str] | None = None) -> dict[str, float]:
        """``ap``, ``ap50``, ``ap25`` (class means) and, with ``splits``, ``ap_<split>`` etc.

        Args:
            splits: class name -> split name (e.g. ``"head"``, ``"common"``, ``"tail"``); classes
                not in the mapping belong to no split.
        """
        per = self.class_ap()
        table = {
            "ap": per[: len(AP_THRESHOLDS)].mean(axis=0),
            "ap50": per[np.flatnonzero(_ALL_THRESHOLDS == 0.5)[0]],
            "ap25": per[-1],
        }
        groups = {"": np.ones(len(self.class_names), dtype=bool)}
        for name in sorted(set((splits or {}).values())):
            groups[f"_{name}"] = np.array([splits.get(c) == name for c in self.class_names])
        out: dict[str, float] = {}
        for suffix, members in groups.items():
            for key, values in table.items():
                v = values[members & ~np.isnan(values)]
                out[key + suffix] = float(v.mean()) if len(v) else float("nan")
        out["num_classes"] = float(self._has_gt.sum())
        return out


def instance_ap(
    pred_masks,
    pred_classes,
    pred_scores,
    gt_instance_ids,
    gt_classes,
    class_names: Sequence[str],
    splits: Mapping[str, str] | None = None,
    min_region_size: int = 100,
) -> dict[str, float]:
    """ScanNet-protocol 3D instance AP of one scene (use :class:`InstanceAPEvaluator` for a dataset).

    Args:
        pred_masks: ``(P, M) bool`` masks over the ``M`` ground-truth points, or ``(M,) int``
            per-point predicted ids (id ``k`` = row ``k`` of the class and score arrays, -1 = none).
        pred_classes: ``(P,) int`` class ids into ``class_names``.
        pred_scores: ``(P,) float`` confidences.
        gt_instance_ids: ``(M,) int`` ground-truth instance ids, -1 = unlabelled.
        gt_classes: ``(M,) int`` per-point class ids, or a dict instance id -> class id.
        class_names: the evaluated classes.
        splits: optional class name -> split name for the head / common / tail breakdown.
        min_region_size: minimum points of a counted ground-truth instance or prediction (100).

    Returns:
        ``ap``, ``ap50``, ``ap25``, ``num_classes`` (classes with ground truth) and, per split,
        ``ap_<split>``, ``ap50_<split>``, ``ap25_<split>``.
    """
    evaluator = InstanceAPEvaluator(class_names, min_region_size)
    evaluator.add_scene(pred_masks, pred_classes, pred_scores, gt_instance_ids, gt_classes)
    return evaluator.compute(splits)
