"""Relative camera poses (the quantity G2VLM's camera loss and pose metrics compare)."""

from __future__ import annotations

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import finite_array
from sem3r.geometry.camera import invert_pose
from sem3r.geometry.transforms import compose


def _poses(value, name: str) -> np.ndarray:
    pose = finite_array(value, name)
    if pose.shape[-2:] not in ((3, 4), (4, 4)):
        raise Sem3RError(f"{name} must have shape (..., 3, 4), got {pose.shape}")
    return pose[..., :3, :]


def relative_pose(cam_from_world_i: np.ndarray, cam_from_world_j: np.ndarray) -> np.ndarray:
    """Pose of camera ``i`` in camera ``j``'s frame: ``j_from_i = T_j ∘ T_i^{-1}``.

    It maps camera-``i`` coordinates to camera-``j`` coordinates, so
    ``compose(relative_pose(Ti, Tj), Ti) == Tj``. Leading dimensions broadcast.

    Args:
        cam_from_world_i: ``(..., 3, 4)``.
        cam_from_world_j: ``(..., 3, 4)``.

    Returns:
        ``(..., 3, 4)`` float64 ``j_from_i``.

    Example:
        >>> Ti = np.eye(3, 4)
        >>> Tj = np.hstack([np.eye(3), [[-1.0], [0.0], [0.0]]])  # camera j sits at x = 1
        >>> relative_pose(Ti, Tj)[:, 3].tolist()
        [-1.0, 0.0, 0.0]
    """
    Ti = _poses(cam_from_world_i, "cam_from_world_i")
    Tj = _poses(cam_from_world_j, "cam_from_world_j")
    return compose(Tj, invert_pose(Ti))


def pairwise_relative_poses(cam_from_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative poses of every unordered pair of ``N`` cameras.

    Args:
        cam_from_world: ``(N, 3, 4)``.

    Returns:
        ``indices (P, 2) int64`` with rows ``(i, j)``, ``i < j``, in row-major order, and
        ``poses (P, 3, 4)`` float64 ``j_from_i``; ``P = N (N - 1) / 2``.

    Example:
        >>> idx, rel = pairwise_relative_poses(np.tile(np.eye(3, 4), (3, 1, 1)))
        >>> idx.tolist(), rel.shape
        ([[0, 1], [0, 2], [1, 2]], (3, 3, 4))
    """
    poses = _poses(cam_from_world, "cam_from_world")
    if poses.ndim != 3:
        raise Sem3RError(f"cam_from_world must have shape (N, 3, 4), got {poses.shape}")
    i, j = np.triu_indices(len(poses), k=1)
    return np.stack([i, j], axis=1).astype(np.int64), relative_pose(poses[i], poses[j])
