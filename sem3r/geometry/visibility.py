"""Which 3D points a set of depth cameras actually observed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sem3r.geometry.camera import project


def observed_by_views(
    points: np.ndarray,
    depth: np.ndarray,
    intrinsics: np.ndarray,
    cam_from_world: np.ndarray,
    abs_tol: float = 0.005,
    rel_tol: float = 0.003,
    labels: Sequence[tuple[np.ndarray, np.ndarray]] = (),
) -> np.ndarray:
    """Mask of points seen by at least one view (z-buffer test against the views' depth maps).

    A point is observed by view ``i`` when it projects inside the image in front of the camera, the
    nearest pixel has valid depth, and ``|z_point - depth| <= abs_tol + rel_tol * depth``; points
    hidden behind a surface fail the test. The default tolerances (5 mm + 0.3 %) are below the
    thickness of a poster on a wall, so the wall behind it does not count as observed. Used to restrict a ground-truth point cloud sampled on a
    whole mesh to what the input views could reconstruct.

    Args:
        points: ``(M, 3)`` world points.
        depth: ``(N, H, W)`` z-depth, 0 = invalid.
        intrinsics: ``(N, 3, 3)``.
        cam_from_world: ``(N, 3, 4)``.
        abs_tol: absolute depth tolerance in metres.
        rel_tol: tolerance proportional to depth.
        labels: pairs ``(point_labels (M,), label_maps (N, H, W))``; a point is observed by a view
            only where every pair agrees at its pixel.

    Returns:
        ``(M,) bool``.

    Example:
        >>> K = np.array([[[10., 0, 1], [0, 10, 1], [0, 0, 1]]])
        >>> d = np.full((1, 3, 3), 2.0, np.float32)
        >>> pts = np.array([[0, 0, 2.0], [0, 0, 3.0], [0, 0, -2.0]])
        >>> observed_by_views(pts, d, K, np.eye(3, 4)[None]).tolist()
        [True, False, False]
        >>> seen_as = (np.array([5, 5, 5]), np.full((1, 3, 3), 4))
        >>> observed_by_views(pts, d, K, np.eye(3, 4)[None], labels=[seen_as]).tolist()
        [False, False, False]
    """
    points = np.asarray(points, np.float64)
    n, h, w = depth.shape
    seen = np.zeros(len(points), bool)
    for i in range(n):
        uv, z = project(points, intrinsics[i], cam_from_world[i])
        px = np.where(np.isfinite(uv), np.rint(uv), -1).astype(np.int64)
        inside = (z > 0) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
        d = np.zeros(len(points))
        d[inside] = depth[i][px[inside, 1], px[inside, 0]]
        ok = inside & (d > 0) & (np.abs(z - d) <= abs_tol + rel_tol * d)
        for point_labels, label_maps in labels:
            ok[ok] &= np.asarray(point_labels)[ok] == label_maps[i][px[ok, 1], px[ok, 0]]
        seen |= ok
    return seen
