"""Instance spatial tracking: Temporal mIoU (T-mIoU) and Temporal Success Rate (T-SR), IGGT A.4.

IGGT describes, for one object ``o`` with predicted masks ``M_t`` and ground-truth masks ``G_t``
over the views ``t = 1..T`` of a sequence, the mean IoU over the views (T-mIoU) and an indicator
that the object is tracked in *every* view (T-SR), both averaged over all objects. The equations
themselves are not legible in our copy of the paper, so Sem3R reads them as
``T-mIoU(o) = (1/T) sum_t IoU(M_t, G_t)`` and ``T-SR(o) = prod_t 1[M_t tracks G_t]``, and fixes
the view set, the success test and the identity matching as follows.

1. **Objects** are the ground-truth ids ``>= 0`` of the sequence. Predicted ids are arbitrary
   integers (``-1`` = unlabelled); only their grouping matters.
2. **Identity matching** (one prediction per object, one object per prediction, since a track
   follows one object): the sequence-level IoU of ground-truth id ``g`` and predicted id ``p`` is
   ``|M_p ∩ G_g| / |M_p ∪ G_g|`` with pixels pooled over all views. The Hungarian algorithm picks
   the one-to-one assignment maximising the summed IoU (``matching="hungarian"``); with
   ``matching="max"`` every object takes its own best predicted id independently (ties: the
   smaller predicted id), the per-object argmax. A pair with IoU 0 is no match: the object gets an
   empty prediction.
3. **Views** of an object: those where its ground-truth mask or its matched predicted mask is
   non-empty. Views where both are empty carry no information and are skipped; a view where the
   prediction hallucinates the object while it is not visible has IoU 0 (a tracking error).
4. **Per view** ``IoU_t = |M_t ∩ G_t| / |M_t ∪ G_t|``; ``T-mIoU(o)`` is its mean over the object's
   views; the object is **successfully tracked** in a view when ``IoU_t > success_iou``
   (default 0.5, the usual success criterion of mask tracking), and ``T-SR(o) = 1`` when that
   holds in all of its views.
5. ``t_miou`` and ``t_sr`` are the means over objects (an unmatched object scores 0 on both).

Relabelling the predicted ids by any injective map leaves both metrics unchanged, and a prediction
equal to the ground truth scores 1.0 on both.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from sem3r.errors import Sem3RError


def tracking_metrics(
    pred_masks: np.ndarray,
    gt_masks: np.ndarray,
    success_iou: float = 0.5,
    matching: Literal["hungarian", "max"] = "hungarian",
) -> dict[str, float]:
    """T-mIoU and T-SR of predicted 3D-consistent instance masks (see the module docstring).

    Args:
        pred_masks: ``(N, H, W) int`` predicted instance ids, -1 = unlabelled.
        gt_masks: ``(N, H, W) int`` ground-truth instance ids, -1 = unlabelled.
        success_iou: a view counts as tracked when its IoU is strictly above this.
        matching: ``"hungarian"`` (one-to-one) or ``"max"`` (per-object best predicted id).

    Returns:
        ``t_miou``, ``t_sr`` and ``num_objects``; NaN scores when the ground truth has no object.

    Raises:
        Sem3RError: shapes differ or ``matching`` is unknown.

    Example:
        >>> gt = np.array([[[0, 0, 1, -1]], [[0, 1, 1, -1]]])
        >>> m = tracking_metrics(gt + 7, gt)
        >>> m["t_miou"], m["t_sr"]
        (1.0, 1.0)
    """
    pred = np.asarray(pred_masks)
    gt = np.asarray(gt_masks)
    if pred.shape != gt.shape or gt.ndim != 3:
        raise Sem3RError(f"instance masks must both be (N, H, W), got {pred.shape} and {gt.shape}")
    if matching not in ("hungarian", "max"):
        raise Sem3RError(f"unknown tracking matching '{matching}' (expected hungarian or max)")
    n = gt.shape[0]
    views = np.broadcast_to(np.arange(n)[:, None, None], gt.shape).reshape(-1)
    gt_flat, pred_flat = gt.reshape(-1).astype(np.int64), pred.reshape(-1).astype(np.int64)
    gt_ids, g_idx = np.unique(gt_flat, return_inverse=True)
    pred_ids, p_idx = np.unique(pred_flat, return_inverse=True)
    # Compact indices of labelled ids (-1 and other negatives become -1).
    g_idx = np.where(gt_flat >= 0, g_idx - np.count_nonzero(gt_ids < 0), -1)
    p_idx = np.where(pred_flat >= 0, p_idx - np.count_nonzero(pred_ids < 0), -1)
    num_g, num_p = int(np.count_nonzero(gt_ids >= 0)), int(np.count_nonzero(pred_ids >= 0))
    if num_g == 0:
        return {"t_miou": float("nan"), "t_sr": float("nan"), "num_objects": 0.0}
    g_lab, p_lab = g_idx >= 0, p_idx >= 0
    gt_area = np.bincount(views[g_lab] * num_g + g_idx[g_lab], minlength=n * num_g).reshape(n, num_g)
    pred_area = np.bincount(views[p_lab] * num_p + p_idx[p_lab], minlength=n * num_p).reshape(n, num_p)
    both = g_lab & p_lab
    keys, inter = np.unique((views[both] * num_g + g_idx[both]) * num_p + p_idx[both], return_counts=True)
    k_view, k_g, k_p = keys // (num_g * num_p), (keys // num_p) % num_g, keys % num_p
    seq_inter = np.zeros((num_g, num_p))
    np.add.at(seq_inter, (k_g, k_p), inter)
    seq_union = gt_area.sum(0)[:, None] + pred_area.sum(0)[None, :] - seq_inter
    seq_iou = np.divide(seq_inter, seq_union, out=np.zeros_like(seq_inter), where=seq_union > 0)

    match = np.full(num_g, -1, dtype=np.int64)
    if num_p:
        if matching == "hungarian":
            rows, cols = linear_sum_assignment(seq_iou, maximize=True)
        else:
            rows, cols = np.arange(num_g), np.argmax(seq_iou, axis=1)
        ok = seq_iou[rows, cols] > 0
        match[rows[ok]] = cols[ok]

    view_inter = np.zeros((n, num_g))
    on_match = match[k_g] == k_p
    np.add.at(view_inter, (k_view[on_match], k_g[on_match]), inter[on_match])
    matched_area = np.where(match >= 0, pred_area[:, np.maximum(match, 0)], 0) if num_p else np.zeros((n, num_g))
    view_union = gt_area + matched_area - view_inter
    seen = view_union > 0
    view_iou = np.divide(view_inter, view_union, out=np.zeros_like(view_inter), where=seen)
    t_miou = view_iou.sum(0) / seen.sum(0)
    tracked = np.all((view_iou > success_iou) | ~seen, axis=0)
    return {"t_miou": float(t_miou.mean()), "t_sr": float(tracked.mean()), "num_objects": float(num_g)}
