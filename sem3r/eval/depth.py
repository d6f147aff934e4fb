"""Depth accuracy of a reconstruction against ground-truth depth (LSM / VGGT / IGGT protocol).

Protocol, for one scene of ``N`` views:

1. Valid pixels: ``gt > 0``, ``pred > 0``, both finite, and ``gt <= max_depth`` when ``max_depth``
   is given. Everything below uses only these pixels, pooled over all views of the scene.
2. One scale ``s`` for the whole scene (feed-forward predictions are up to scale):

   * ``"median"``: ``s = median(gt) / median(pred)``;
   * ``"lstsq"``: ``s = argmin_s sum (s * pred - gt)^2 = sum(pred * gt) / sum(pred^2)``;
   * ``"none"``: ``s = 1`` (metric predictions).

   The aligned prediction is ``d = s * pred``; it is not clipped.
3. Metrics over the valid pixels (means are pixel means over the whole scene):

   * ``abs_rel``: ``mean(|d - gt| / gt)``;
   * ``delta_1.25``: fraction of pixels with ``max(d / gt, gt / d) < 1.25``;
   * ``inlier_1.03``: the same with ``1.03`` (the "inlier ratio" of LSM and IGGT);
   * ``rmse``: ``sqrt(mean((d - gt)^2))`` in the units of ``gt``.

The returned dict also carries ``scale`` (the ``s`` used) and ``num_valid``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sem3r.errors import Sem3RError

_ALIGNMENTS = ("median", "lstsq", "none")


def depth_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    alignment: Literal["median", "lstsq", "none"] = "median",
    max_depth: float | None = None,
) -> dict[str, float]:
    """Scale-aligned depth errors of one scene.

    Args:
        pred: ``(N, H, W)`` (or ``(H, W)``) predicted depth; 0 or non-finite = no prediction.
        gt: ground-truth depth of the same shape, 0 = invalid.
        valid: optional ``bool`` mask of the same shape, intersected with the automatic validity.
        alignment: ``"median"``, ``"lstsq"`` or ``"none"`` (see the module docstring).
        max_depth: ignore pixels whose ground truth is farther than this.

    Returns:
        ``abs_rel``, ``delta_1.25``, ``inlier_1.03``, ``rmse``, ``scale``, ``num_valid``.

    Raises:
        Sem3RError: mismatched shapes, an unknown alignment, or no valid pixel.

    Example:
        >>> gt = np.array([[[1.0, 2.0], [4.0, 0.0]]])
        >>> m = depth_metrics(2 * gt, gt)
        >>> round(m["abs_rel"], 6), m["scale"], m["num_valid"]
        (0.0, 0.5, 3.0)
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise Sem3RError(f"predicted depth {pred.shape} and ground-truth depth {gt.shape} differ in shape")
    if alignment not in _ALIGNMENTS:
        raise Sem3RError(f"unknown depth alignment '{alignment}' (expected one of {', '.join(_ALIGNMENTS)})")
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(pred) & np.isfinite(gt) & (gt > 0) & (pred > 0)
        if max_depth is not None:
            mask &= gt <= max_depth
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != gt.shape:
            raise Sem3RError(f"depth validity mask {valid.shape} does not match the depth maps {gt.shape}")
        mask &= valid
    if not mask.any():
        raise Sem3RError("no pixel has both a valid predicted and a valid ground-truth depth")
    p, g = pred[mask], gt[mask]
    if alignment == "median":
        scale = np.median(g) / np.median(p)
    elif alignment == "lstsq":
        scale = np.dot(p, g) / np.dot(p, p)
    else:
        scale = 1.0
    d = scale * p
    ratio = np.maximum(d / g, g / d)
    return {
        "abs_rel": float(np.mean(np.abs(d - g) / g)),
        "delta_1.25": float(np.mean(ratio < 1.25)),
        "inlier_1.03": float(np.mean(ratio < 1.03)),
        "rmse": float(np.sqrt(np.mean((d - g) ** 2))),
        "scale": float(scale),
        "num_valid": float(len(g)),
    }
