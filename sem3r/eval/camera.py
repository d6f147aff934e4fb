"""Camera pose accuracy from relative poses: RRA, RTA and AUC (PoseDiffusion / VGGT protocol).

Protocol, for ``N`` predicted and ground-truth ``cam_from_world`` poses ``[R_i | t_i]``:

1. For every unordered pair ``i < j`` the relative pose ``j_from_i`` is
   ``R_ij = R_j R_i^T`` and ``t_ij = t_j - R_ij t_i`` (maps camera-i coordinates to camera j).
2. Rotation error (degrees): the geodesic angle of ``R_ij,pred^T R_ij,gt`` in ``[0, 180]``
   (:func:`sem3r.geometry.transforms.rotation_angle`).
3. Translation error (degrees): the angle between the directions of ``t_ij,pred`` and ``t_ij,gt``,
   ``arccos(<a, b> / (|a| |b|))`` in ``[0, 180]``; it is sign-sensitive (a reversed baseline is
   180 degrees). ``translation_sign_ambiguity=True`` folds it to ``min(e, 180 - e)`` as the
   PoseDiffusion/VGGT evaluation code does. A translation is treated as zero when its norm is at
   most ``1e-9`` times the median non-zero relative-translation norm of its camera set (so the
   test is scale free); if both are zero the error is 0, if only one is zero it is 180 degrees.
4. ``RRA@t`` / ``RTA@t``: fraction of pairs whose rotation / translation error is ``< t``.
5. ``AUC@T`` (VGGT): per pair ``e = max(rotation error, translation error)``; a histogram of ``e``
   with 1-degree bins ``[0, 1), [1, 2), ..., [T-1, T]`` (the last bin includes ``T``), divided by
   the number of pairs; ``AUC@T`` is the mean of its cumulative sum, i.e.
   ``(1/T) sum_{k=1..T} frac(e < k)`` except that the ``k = T`` term counts ``e <= T``.

All metrics depend only on relative poses and translation directions, so applying one global
similarity transform (rotation, translation, positive scale) to all predicted cameras leaves them
unchanged.
"""

from __future__ import annotations

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry.relative import pairwise_relative_poses
from sem3r.geometry.transforms import rotation_angle


def _translation_angle_deg(t_a: np.ndarray, t_b: np.ndarray, zero_a: np.ndarray, zero_b: np.ndarray) -> np.ndarray:
    """Angle in degrees between directions ``t_a, t_b (P, 3)`` given which of them count as zero.

    ``atan2(|a x b|, a . b)`` equals the ``arccos`` of the module docstring and stays accurate near
    0 and 180 degrees.
    """
    cross = np.linalg.norm(np.cross(t_a, t_b), axis=-1)
    angle = np.degrees(np.arctan2(cross, np.einsum("pi,pi->p", t_a, t_b)))
    angle = np.where(zero_a ^ zero_b, 180.0, angle)
    return np.where(zero_a & zero_b, 0.0, angle)


def _zero_translations(t: np.ndarray) -> np.ndarray:
    """``(P,) bool``: norms at most ``1e-9`` of the median non-zero norm of the set."""
    norm = np.linalg.norm(t, axis=-1)
    positive = norm[norm > 0]
    reference = np.median(positive) if len(positive) else 1.0
    return norm <= 1e-9 * reference


def pose_auc(errors: np.ndarray, max_threshold: int) -> float:
    """VGGT AUC of per-pair errors ``(P,)`` in degrees: mean cumulative 1-degree histogram up to ``max_threshold``."""
    hist, _ = np.histogram(errors, bins=np.arange(max_threshold + 1))
    return float(np.mean(np.cumsum(hist / len(errors))))


def camera_metrics(
    pred_cam_from_world: np.ndarray,
    gt_cam_from_world: np.ndarray,
    thresholds: tuple[int, ...] = (5, 15, 30),
    translation_sign_ambiguity: bool = False,
) -> dict[str, float]:
    """Relative-pose accuracy of predicted cameras (see the module docstring for the protocol).

    Args:
        pred_cam_from_world: ``(N, 3, 4)`` predicted OpenCV extrinsics, any world frame and scale.
        gt_cam_from_world: ``(N, 3, 4)`` ground truth.
        thresholds: integer angles in degrees for ``RRA@t``, ``RTA@t`` and ``AUC@t``.
        translation_sign_ambiguity: fold translation errors to ``min(e, 180 - e)`` (VGGT code).

    Returns:
        ``rra@t``, ``rta@t``, ``auc@t`` for every threshold, ``rot_err_mean``, ``rot_err_median``,
        ``trans_err_mean``, ``trans_err_median`` (degrees) and ``num_pairs``.

    Raises:
        Sem3RError: shapes differ, fewer than two cameras, non-finite poses, or a non-integer
            threshold.

    Example:
        >>> poses = np.tile(np.eye(3, 4), (3, 1, 1)); poses[:, 0, 3] = [0, 1, 2]
        >>> camera_metrics(poses, poses)["auc@30"]
        1.0
    """
    pred = np.asarray(pred_cam_from_world, dtype=np.float64)
    gt = np.asarray(gt_cam_from_world, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[1:] != (3, 4):
        raise Sem3RError(f"camera poses must both be (N, 3, 4), got {pred.shape} and {gt.shape}")
    if len(gt) < 2:
        raise Sem3RError(f"camera metrics need at least two views, got {len(gt)}")
    if not (np.isfinite(pred).all() and np.isfinite(gt).all()):
        raise Sem3RError("camera poses contain NaN or infinite values")
    if any(int(t) != t or t <= 0 for t in thresholds):
        raise Sem3RError(f"camera metric thresholds must be positive integers (degrees), got {tuple(thresholds)}")
    _, rel_pred = pairwise_relative_poses(pred)
    _, rel_gt = pairwise_relative_poses(gt)
    R_pred, t_pred = rel_pred[:, :, :3], rel_pred[:, :, 3]
    R_gt, t_gt = rel_gt[:, :, :3], rel_gt[:, :, 3]
    rot_err = rotation_angle(np.swapaxes(R_pred, -1, -2) @ R_gt)
    trans_err = _translation_angle_deg(t_pred, t_gt, _zero_translations(t_pred), _zero_translations(t_gt))
    if translation_sign_ambiguity:
        trans_err = np.minimum(trans_err, 180.0 - trans_err)
    pair_err = np.maximum(rot_err, trans_err)
    out: dict[str, float] = {}
    for t in thresholds:
        out[f"rra@{int(t)}"] = float(np.mean(rot_err < t))
        out[f"rta@{int(t)}"] = float(np.mean(trans_err < t))
        out[f"auc@{int(t)}"] = pose_auc(pair_err, int(t))
    out.update(
        rot_err_mean=float(rot_err.mean()),
        rot_err_median=float(np.median(rot_err)),
        trans_err_mean=float(trans_err.mean()),
        trans_err_median=float(np.median(trans_err)),
        num_pairs=float(len(pair_err)),
    )
    return out
