"""Semantic segmentation accuracy: 2D mIoU / mAcc from a confusion matrix, and voxel 3D mIoU.

2D protocol (:func:`semantic_metrics_2d`):

* A confusion matrix ``C (K, K+1)`` counts pixels by (ground-truth class, predicted class); its last
  column collects labelled pixels the prediction left unlabelled (-1) or gave an id outside
  ``[0, K)``: they are wrong for their ground-truth class and count for no predicted class.
  Ground-truth pixels with -1 (or an id outside ``[0, K)``) are ignored.
* ``IoU_c = C[c, c] / (sum_row_c + sum_col_c - C[c, c])``; ``Acc_c = C[c, c] / sum_row_c``
  (per-class recall, the "mAcc" of LangSplat / LSM / IGGT tables).
* ``mIoU`` averages ``IoU_c`` over classes present in the ground truth or the prediction
  (union > 0); classes absent from both are excluded. ``mAcc`` averages ``Acc_c`` over classes
  present in the ground truth (it is undefined otherwise). ``pixel_acc`` is
  ``trace / labelled pixels``.

3D protocol (:func:`semantic_miou_3d`, IGGT appendix A.4: labelled points are voxelised and the
mIoU is computed on voxels):

* Every ground-truth point takes the label of the nearest predicted point within ``voxel_size``
  (-1 when there is none). Ground-truth points are voxelised (cubes of ``voxel_size`` anchored at
  the origin, :mod:`sem3r.geometry.voxels`); each voxel's ground-truth label and predicted label are
  the per-voxel majorities of the ground-truth labels and of the transferred labels. Transferring
  through nearest neighbours rather than voxelising the prediction separately keeps a surface that
  lies on a voxel boundary (a floor at z = 0) from falling into the neighbouring voxel after a
  sub-millimetre alignment error.
* A ground-truth voxel with a label ``>= 0`` whose predicted label is -1 (no predicted point near,
  or an unlabelled one) is wrong: it counts for its ground-truth class only. Predicted points far
  from every ground-truth point are not scored.
* The 2D rules above then apply to these voxel pairs (``mIoU``, ``mAcc``).
"""

from __future__ import annotations

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry.knn import knn
from sem3r.geometry.voxels import VoxelGrid


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``(K, K+1) int64`` of (gt class, predicted class) over labelled ground truth.

    Args:
        pred: integer labels of any shape; -1 or an id outside ``[0, K)`` goes to column ``K``.
        gt: integer labels of the same shape; -1 or an id outside ``[0, K)`` is ignored.
        num_classes: ``K``.

    Example:
        >>> confusion_matrix(np.array([0, 1, -1]), np.array([0, 0, 1]), 2).tolist()
        [[1, 1, 0], [0, 0, 1]]
    """
    pred = np.asarray(pred, dtype=np.int64)
    gt = np.asarray(gt, dtype=np.int64)
    if pred.shape != gt.shape:
        raise Sem3RError(f"predicted labels {pred.shape} and ground-truth labels {gt.shape} differ in shape")
    k = int(num_classes)
    keep = (gt >= 0) & (gt < k)
    p = pred[keep]
    p = np.where((p >= 0) & (p < k), p, k)
    return np.bincount(gt[keep] * (k + 1) + p, minlength=k * (k + 1)).reshape(k, k + 1)


def metrics_from_confusion(conf: np.ndarray) -> dict[str, float]:
    """``miou``, ``macc``, ``pixel_acc`` and ``num_classes`` (classes averaged) from ``conf (K, K+1)``.

    Averaging rules are in the module docstring; values are NaN when nothing is labelled.
    """
    conf = np.asarray(conf, dtype=np.float64)
    k = conf.shape[0]
    tp = np.diag(conf[:, :k])
    gt_count = conf.sum(axis=1)
    pred_count = conf[:, :k].sum(axis=0)
    union = gt_count + pred_count - tp
    present = union > 0
    in_gt = gt_count > 0
    total = gt_count.sum()
    return {
        "miou": float(np.mean(tp[present] / union[present])) if present.any() else float("nan"),
        "macc": float(np.mean(tp[in_gt] / gt_count[in_gt])) if in_gt.any() else float("nan"),
        "pixel_acc": float(tp.sum() / total) if total else float("nan"),
        "num_classes": float(present.sum()),
    }


def _num_classes(num_classes: int | None, *labels: np.ndarray) -> int:
    if num_classes is not None:
        return int(num_classes)
    top = max((int(x.max()) for x in labels if x.size), default=-1)
    return max(top + 1, 0)


def semantic_metrics_2d(pred: np.ndarray, gt: np.ndarray, num_classes: int | None = None) -> dict[str, float]:
    """2D semantic mIoU / mAcc of label maps (see the module docstring).

    Args:
        pred: ``(N, H, W)`` (any shape) predicted class ids, -1 = unlabelled.
        gt: ground-truth class ids of the same shape, -1 = ignored.
        num_classes: ``K``; default ``max(label) + 1`` over both inputs.

    Returns:
        ``miou``, ``macc``, ``pixel_acc``, ``num_classes``.

    Example:
        >>> gt = np.array([0, 0, 1, 1]); pred = np.array([0, 1, 1, 1])
        >>> m = semantic_metrics_2d(pred, gt)
        >>> round(m["miou"], 4), m["macc"]
        (0.5833, 0.75)
    """
    pred = np.asarray(pred, dtype=np.int64)
    gt = np.asarray(gt, dtype=np.int64)
    return metrics_from_confusion(confusion_matrix(pred, gt, _num_classes(num_classes, pred, gt)))


def semantic_miou_3d(
    pred_points: np.ndarray,
    pred_labels: np.ndarray,
    gt_points: np.ndarray,
    gt_labels: np.ndarray,
    voxel_size: float = 0.05,
    num_classes: int | None = None,
) -> dict[str, float]:
    """Voxel 3D semantic mIoU (IGGT protocol, see the module docstring).

    Args:
        pred_points: ``(P, 3)`` predicted points in the ground-truth frame.
        pred_labels: ``(P,)`` class ids, -1 = unlabelled.
        gt_points: ``(M, 3)`` ground-truth points.
        gt_labels: ``(M,)`` class ids, -1 = unlabelled (not scored).
        voxel_size: voxel edge in the units of the points.
        num_classes: ``K``; default ``max(label) + 1``.

    Returns:
        ``miou``, ``macc``, ``pixel_acc`` (here: voxel accuracy), ``num_classes``.

    Example:
        >>> pts = np.array([[0.01, 0, 0], [0.11, 0, 0]])
        >>> semantic_miou_3d(pts, np.array([0, 1]), pts, np.array([0, 1]), voxel_size=0.1)["miou"]
        1.0
    """
    pred_points = np.asarray(pred_points, dtype=np.float64).reshape(-1, 3)
    gt_points = np.asarray(gt_points, dtype=np.float64).reshape(-1, 3)
    pred_labels = np.asarray(pred_labels, dtype=np.int64).reshape(-1)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    if len(pred_points) != len(pred_labels) or len(gt_points) != len(gt_labels):
        raise Sem3RError(
            f"points and labels differ in length: prediction {len(pred_points)} vs {len(pred_labels)}, "
            f"ground truth {len(gt_points)} vs {len(gt_labels)}"
        )
    if not len(gt_points):
        raise Sem3RError("3D semantic mIoU needs at least one ground-truth point")
    k = _num_classes(num_classes, pred_labels, gt_labels)
    transferred = np.full(len(gt_points), -1, dtype=np.int64)
    if len(pred_points):
        _, nearest = knn(pred_points, gt_points, 1, max_distance=voxel_size)
        hit = nearest[:, 0] < len(pred_points)
        transferred[hit] = pred_labels[nearest[hit, 0]]
    gt_grid = VoxelGrid.from_points(gt_points, voxel_size)
    return metrics_from_confusion(confusion_matrix(gt_grid.majority(transferred), gt_grid.majority(gt_labels), k))
