"""Point-cloud reconstruction quality: accuracy, completeness, Chamfer, normal consistency.

Protocol (the DUSt3R / Spann3R / VGGT-style 7-Scenes and NRGBD evaluation):

1. **Alignment** of the predicted cloud into the ground-truth frame (:func:`align_point_clouds`):

   * ``"sim3+icp"``: an initial similarity from :func:`sem3r.geometry.transforms.umeyama` on the
     given correspondences (predicted points paired with ground-truth points, e.g. the same pixel
     of the same view), then rigid point-to-point ICP (:func:`sem3r.geometry.icp.icp`) of the
     similarity-aligned cloud against the whole ground truth, rejecting pairs farther than
     ``icp_threshold``; the result is the rigid refinement composed after the similarity.
     Without correspondences the initial similarity only matches centroids and RMS radii
     (identity rotation) and ICP then also refines the scale; that fallback needs the rotation
     to be roughly right already.
   * ``"icp"``: rigid ICP from the identity (metric predictions roughly in the ground-truth frame).
   * ``"none"``: the clouds are compared as given.

   When fewer than 3 predicted points lie within ``icp_threshold`` of the ground truth at the
   initial transform (a prediction too poor to refine), ICP is skipped and the initial transform is
   kept, so a bad reconstruction gets bad scores rather than an error.

2. **Distances** after alignment, with nearest neighbours from :func:`sem3r.geometry.knn.knn`:

   * ``accuracy``: mean over predicted points of the distance to the nearest ground-truth point
     (``accuracy_median``: the median);
   * ``completeness``: mean over ground-truth points of the distance to the nearest predicted point
     (``completeness_median``);
   * ``chamfer = (accuracy + completeness) / 2``.

3. **Normal consistency**: normals not given are estimated by PCA of ``normal_k`` nearest neighbours
   (:func:`sem3r.geometry.normals.estimate_normals`, on the aligned prediction); given predicted
   normals are rotated with the alignment. ``nc_accuracy`` is the mean over predicted points of
   ``|<n_pred, n_gt(nearest)>|``, ``nc_completeness`` the same from the ground-truth side, and
   ``normal_consistency`` their average (the absolute value makes it independent of normal signs).

Distances are in ground-truth units; ``icp_threshold`` (default 0.1) is too.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import point_array
from sem3r.geometry.icp import icp
from sem3r.geometry.knn import knn
from sem3r.geometry.normals import estimate_normals
from sem3r.geometry.transforms import Sim3, umeyama

_ALIGNS = ("sim3+icp", "icp", "none")


def _rms_radius(points: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((points - points.mean(axis=0)) ** 2, axis=1))))


def _refine(source, gt, init: Sim3, threshold, max_iterations: int, with_scale: bool) -> Sim3:
    """ICP from ``init``; ``init`` itself when fewer than 3 moved points have a partner within ``threshold``."""
    if threshold is not None:
        dist, _ = knn(gt, init.apply(source), 1, max_distance=threshold)
        if np.count_nonzero(np.isfinite(dist)) < 3:
            return init
    result = icp(
        source,
        gt,
        init=init,
        max_iterations=max_iterations,
        max_correspondence_distance=threshold,
        with_scale=with_scale,
    )
    return result.transform


def align_point_clouds(
    pred: np.ndarray,
    gt: np.ndarray,
    align: Literal["sim3+icp", "icp", "none"] = "sim3+icp",
    correspondences: tuple[np.ndarray, np.ndarray] | None = None,
    icp_threshold: float | None = 0.1,
    max_iterations: int = 50,
) -> Sim3:
    """The transform that maps the predicted cloud into the ground-truth frame (module docstring, step 1).

    Args:
        pred: ``(N, 3)`` predicted points.
        gt: ``(M, 3)`` ground-truth points.
        align: ``"sim3+icp"``, ``"icp"`` or ``"none"``.
        correspondences: ``(pred_points (K, 3), gt_points (K, 3))`` pairs for the initial Umeyama
            similarity, ``K >= 3``, in the predicted and ground-truth frames.
        icp_threshold: ICP rejects pairs farther apart than this (``None``: keep all).
        max_iterations: ICP iterations.

    Returns:
        The :class:`Sim3` with ``gt ≈ T.apply(pred)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> gt = rng.uniform(size=(300, 3))
        >>> T = align_point_clouds(0.5 * gt, gt, correspondences=(0.5 * gt, gt))
        >>> round(T.scale, 6)
        2.0
    """
    if align not in _ALIGNS:
        raise Sem3RError(f"unknown point cloud alignment '{align}' (expected one of {', '.join(_ALIGNS)})")
    pred = point_array(pred, "predicted points", min_points=3)
    gt = point_array(gt, "ground-truth points", min_points=1)
    if align == "none":
        return Sim3.identity()
    if align == "icp":
        return _refine(pred, gt, Sim3.identity(), icp_threshold, max_iterations, with_scale=False)
    if correspondences is not None:
        src, dst = correspondences
        init = umeyama(src, dst, with_scale=True)
        refine = _refine(init.apply(pred), gt, Sim3.identity(), icp_threshold, max_iterations, with_scale=False)
        return refine.compose(init)
    radius = _rms_radius(pred)
    if not radius > 0:
        raise Sem3RError("the predicted points are all identical; they cannot be aligned")
    scale = _rms_radius(gt) / radius
    init = Sim3(scale, np.eye(3), gt.mean(axis=0) - scale * pred.mean(axis=0))
    return _refine(pred, gt, init, icp_threshold, max_iterations, with_scale=True)


def pointcloud_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    pred_normals: np.ndarray | None = None,
    gt_normals: np.ndarray | None = None,
    align: Literal["sim3+icp", "icp", "none"] = "sim3+icp",
    correspondences: tuple[np.ndarray, np.ndarray] | None = None,
    icp_threshold: float | None = 0.1,
    normal_k: int = 16,
) -> dict[str, float]:
    """Accuracy, completeness, Chamfer and normal consistency after alignment (module docstring).

    Args:
        pred: ``(N, 3)`` predicted points, ``N >= 3``, any frame.
        gt: ``(M, 3)`` ground-truth points, ``M >= 3``.
        pred_normals: ``(N, 3)`` normals in the predicted frame (estimated when ``None``).
        gt_normals: ``(M, 3)`` ground-truth normals (estimated when ``None``).
        align: ``"sim3+icp"``, ``"icp"`` or ``"none"``.
        correspondences: ``(pred_points (K, 3), gt_points (K, 3))`` for the initial Umeyama.
        icp_threshold: ICP correspondence distance in ground-truth units.
        normal_k: neighbours for normal estimation.

    Returns:
        ``accuracy``, ``accuracy_median``, ``completeness``, ``completeness_median``, ``chamfer``,
        ``nc_accuracy``, ``nc_completeness``, ``normal_consistency`` and ``scale`` (of the
        alignment).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> gt = rng.uniform(size=(500, 3))
        >>> m = pointcloud_metrics(gt, gt, align="none")
        >>> m["chamfer"], round(m["normal_consistency"], 6)
        (0.0, 1.0)
    """
    pred = point_array(pred, "predicted points", min_points=3)
    gt = point_array(gt, "ground-truth points", min_points=3)
    for name, normals, pts in (("predicted", pred_normals, pred), ("ground-truth", gt_normals, gt)):
        if normals is not None and np.shape(normals) != pts.shape:
            raise Sem3RError(f"{name} normals {np.shape(normals)} do not match the points {pts.shape}")
    transform = align_point_clouds(pred, gt, align, correspondences, icp_threshold)
    aligned = transform.apply(pred)
    d_pred, i_pred = knn(gt, aligned, 1)
    d_gt, i_gt = knn(aligned, gt, 1)
    d_pred, i_pred, d_gt, i_gt = d_pred[:, 0], i_pred[:, 0], d_gt[:, 0], i_gt[:, 0]
    if pred_normals is None:
        n_pred = estimate_normals(aligned, normal_k)
    else:
        n_pred = np.asarray(pred_normals, dtype=np.float64) @ transform.rotation.T
    n_gt = estimate_normals(gt, normal_k) if gt_normals is None else np.asarray(gt_normals, dtype=np.float64)
    n_pred = n_pred / np.maximum(np.linalg.norm(n_pred, axis=1, keepdims=True), 1e-12)
    n_gt = n_gt / np.maximum(np.linalg.norm(n_gt, axis=1, keepdims=True), 1e-12)
    nc_acc = float(np.mean(np.abs(np.einsum("ni,ni->n", n_pred, n_gt[i_pred]))))
    nc_comp = float(np.mean(np.abs(np.einsum("ni,ni->n", n_gt, n_pred[i_gt]))))
    accuracy, completeness = float(d_pred.mean()), float(d_gt.mean())
    return {
        "accuracy": accuracy,
        "accuracy_median": float(np.median(d_pred)),
        "completeness": completeness,
        "completeness_median": float(np.median(d_gt)),
        "chamfer": (accuracy + completeness) / 2.0,
        "nc_accuracy": nc_acc,
        "nc_completeness": nc_comp,
        "normal_consistency": (nc_acc + nc_comp) / 2.0,
        "scale": transform.scale,
    }
