"""OpenCV pinhole cameras: projection, unprojection and pose helpers.

Conventions (used everywhere in Sem3R):

* ``cam_from_world`` is a ``(3, 4)`` matrix ``[R | t]`` mapping world points to camera coordinates,
  ``x_cam = R @ x_world + t``; the camera looks along +z, x points right and y points down.
* ``intrinsics`` ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``; pixel ``(u, v)`` with integer values
  is the *centre* of pixel column ``u`` / row ``v`` (OpenCV), so ``u = fx * x / z + cx``.
* Units are metres; depth is the camera-frame ``z`` (not the ray length); 0 marks invalid depth.
"""

from __future__ import annotations

import numpy as np


def to_homogeneous(cam_from_world: np.ndarray) -> np.ndarray:
    """Lift ``(..., 3, 4)`` poses to ``(..., 4, 4)`` by appending ``[0, 0, 0, 1]``."""
    pose = np.asarray(cam_from_world)
    out = np.zeros(pose.shape[:-2] + (4, 4), dtype=pose.dtype)
    out[..., :3, :] = pose[..., :3, :]
    out[..., 3, 3] = 1
    return out


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Invert rigid poses ``(..., 3, 4)`` (or ``(..., 4, 4)``); returns the same shape.

    For ``[R | t]`` the inverse is ``[R^T | -R^T t]``.
    """
    pose = np.asarray(pose)
    R = pose[..., :3, :3]
    t = pose[..., :3, 3]
    Rt = np.swapaxes(R, -1, -2)
    out = pose.copy()
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, t)
    return out


def camera_centers(cam_from_world: np.ndarray) -> np.ndarray:
    """Camera centres in world coordinates: ``(..., 3, 4) -> (..., 3)``, ``c = -R^T t``."""
    return invert_pose(cam_from_world)[..., :3, 3]


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``(3, 4)`` (or ``(4, 4)``) transform to ``points (..., 3)``; returns ``(..., 3)``."""
    pose = np.asarray(pose)
    points = np.asarray(points)
    return points @ pose[:3, :3].T + pose[:3, 3]


def pixel_grid(height: int, width: int, dtype=np.float32) -> np.ndarray:
    """Pixel-centre coordinates ``(H, W, 2)`` holding ``(u, v)`` = (column, row)."""
    v, u = np.meshgrid(np.arange(height, dtype=dtype), np.arange(width, dtype=dtype), indexing="ij")
    return np.stack([u, v], axis=-1)


def project(points_world: np.ndarray, intrinsics: np.ndarray, cam_from_world: np.ndarray):
    """Project world points into one camera.

    Args:
        points_world: ``(..., 3)`` world coordinates.
        intrinsics: ``(3, 3)``.
        cam_from_world: ``(3, 4)``.

    Returns:
        ``uv (..., 2)`` pixel coordinates and ``z (...)`` camera-frame depth. Points with ``z <= 0``
        get ``uv = nan``.

    Example:
        >>> K = np.array([[100., 0, 50], [0, 100, 40], [0, 0, 1]])
        >>> uv, z = project(np.array([0.1, 0.0, 2.0]), K, np.eye(3, 4))
        >>> uv.tolist(), float(z)
        ([55.0, 40.0], 2.0)
    """
    pc = transform_points(cam_from_world, points_world)
    z = pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = pc[..., :2] / np.where(z > 0, z, np.nan)[..., None]
    K = np.asarray(intrinsics)
    uv = xy @ K[:2, :2].T + K[:2, 2]
    return uv, z


def unproject_depth(depth: np.ndarray, intrinsics: np.ndarray, cam_from_world: np.ndarray | None = None) -> np.ndarray:
    """Unproject depth maps to 3D points.

    Args:
        depth: ``(N, H, W)`` or ``(H, W)`` metric z-depth, 0 = invalid.
        intrinsics: ``(N, 3, 3)`` or ``(3, 3)``.
        cam_from_world: ``(N, 3, 4)`` / ``(3, 4)``; when ``None`` points stay in the camera frame.

    Returns:
        ``(N, H, W, 3)`` (or ``(H, W, 3)``) float32 points; invalid pixels unproject to the camera
        centre scaled by 0 depth and should be masked with ``depth > 0`` by the caller.
    """
    depth = np.asarray(depth, dtype=np.float32)
    single = depth.ndim == 2
    if single:
        depth = depth[None]
        intrinsics = np.asarray(intrinsics)[None]
        cam_from_world = None if cam_from_world is None else np.asarray(cam_from_world)[None]
    K = np.asarray(intrinsics, dtype=np.float64)
    n, h, w = depth.shape
    uv = pixel_grid(h, w, np.float64)
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    cx, cy = K[:, 0, 2], K[:, 1, 2]
    x = (uv[None, ..., 0] - cx[:, None, None]) / fx[:, None, None]
    y = (uv[None, ..., 1] - cy[:, None, None]) / fy[:, None, None]
    pts = np.stack([x * depth, y * depth, depth.astype(np.float64)], axis=-1)
    if cam_from_world is not None:
        world_from_cam = invert_pose(np.asarray(cam_from_world, dtype=np.float64))
        pts = np.einsum("nij,nhwj->nhwi", world_from_cam[:, :3, :3], pts) + world_from_cam[:, None, None, :3, 3]
    pts = pts.astype(np.float32)
    return pts[0] if single else pts


def scale_intrinsics(intrinsics: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics after resizing an image by factors ``sx`` (width) and ``sy`` (height).

    With pixel centres at integer coordinates, a resize maps ``u -> (u + 0.5) * sx - 0.5``.
    """
    K = np.array(intrinsics, dtype=np.float64, copy=True)
    K[..., 0, 0] *= sx
    K[..., 1, 1] *= sy
    K[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    K[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    return K
