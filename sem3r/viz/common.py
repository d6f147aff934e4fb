"""Helpers shared by the exporters: the cloud to draw, camera frusta and a viewing frame.

A frustum is a pyramid with its apex at the camera centre and its base at camera depth ``z = d``
through the four outer image corners. Under the OpenCV convention used by Sem3R, pixel ``(u, v)``
with integer values is a pixel centre, so the outer corners are ``(-0.5, -0.5)``,
``(W - 0.5, -0.5)``, ``(W - 0.5, H - 0.5)`` and ``(-0.5, H - 0.5)`` (top-left, top-right,
bottom-right, bottom-left).
"""

from __future__ import annotations

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry.camera import camera_centers, invert_pose
from sem3r.scene import PointCloud, Scene

FIRST_FRUSTUM_COLOR = (255, 150, 30)
"""RGB of the first camera's frustum (the camera that usually defines the world frame)."""

FRUSTUM_COLOR = (90, 180, 255)
"""RGB of the other cameras' frusta."""

FRUSTUM_EDGES = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4], [4, 1]], np.int64)
"""``(8, 2)`` vertex index pairs of a frustum's edges: four from the apex, four around the base."""


def frustum_vertices(intrinsics: np.ndarray, cam_from_world: np.ndarray, height: int, width: int, depth: float) -> np.ndarray:
    """World-frame frustum vertices of ``N`` cameras.

    Args:
        intrinsics: ``(N, 3, 3)`` OpenCV ``K``.
        cam_from_world: ``(N, 3, 4)`` world -> camera.
        height: image height ``H`` in pixels.
        width: image width ``W`` in pixels.
        depth: camera-frame ``z`` of the base, world units.

    Returns:
        ``(N, 5, 3) float64``: the apex (camera centre) then the base corners top-left, top-right,
        bottom-right, bottom-left.

    Example:
        >>> K = np.array([[[10., 0, 1.5], [0, 10, 1.5], [0, 0, 1]]])
        >>> v = frustum_vertices(K, np.eye(3, 4)[None], 4, 4, 1.0)
        >>> np.allclose(v[0, 0], 0.0), v[0, 1].tolist()
        (True, [-0.2, -0.2, 1.0])
    """
    K = np.asarray(intrinsics, np.float64).reshape(-1, 3, 3)
    pose = np.asarray(cam_from_world, np.float64).reshape(-1, 3, 4)
    corners = np.array([[-0.5, -0.5, 1.0], [width - 0.5, -0.5, 1.0], [width - 0.5, height - 0.5, 1.0], [-0.5, height - 0.5, 1.0]])
    rays = np.einsum("nij,cj->nci", np.linalg.inv(K), corners)
    base_cam = rays / rays[..., 2:3] * float(depth)
    world_from_cam = invert_pose(pose)
    base = np.einsum("nij,ncj->nci", world_from_cam[:, :, :3], base_cam) + world_from_cam[:, None, :, 3]
    return np.concatenate([camera_centers(pose)[:, None], base], axis=1)


def frustum_segments(vertices: np.ndarray) -> np.ndarray:
    """Line segments of frusta: ``(N, 5, 3)`` vertices -> ``(N, 8, 2, 3)`` segment end points."""
    return np.asarray(vertices)[:, FRUSTUM_EDGES]


def default_frustum_depth(cam_from_world: np.ndarray, points: np.ndarray | None = None) -> float:
    """A frustum depth of 5 % of the scene extent.

    The extent is the diagonal of the 2nd-98th percentile box of the points together with the
    camera centres (robust to a few far outliers). Falls back to ``0.1`` for a degenerate scene
    (one camera and no points).

    Args:
        cam_from_world: ``(N, 3, 4)``.
        points: ``(M, 3)`` world points or ``None``.

    Returns:
        Depth in world units.
    """
    pts = camera_centers(np.asarray(cam_from_world, np.float64).reshape(-1, 3, 4))
    if points is not None and len(points):
        pts = np.concatenate([pts, np.asarray(points, np.float64).reshape(-1, 3)])
    lo, hi = np.percentile(pts, [2.0, 98.0], axis=0)
    extent = float(np.linalg.norm(hi - lo))
    return 0.05 * extent if extent > 0 else 0.1


def resolve_cloud(scene: Scene, cloud: PointCloud | None, max_points: int | None, seed: int = 0) -> PointCloud:
    """The point cloud an exporter draws.

    Args:
        scene: the scene; used when ``cloud`` is ``None``.
        cloud: an explicit cloud, or ``None`` for ``scene.fused_point_cloud()`` (an empty cloud
            when the scene has neither depth nor world points).
        max_points: keep at most this many points (``None``: all).
        seed: seed of the subsampling.

    Returns:
        The cloud; when subsampled, a uniform random subset without replacement that keeps the
        original point order (``np.random.default_rng(seed)``).
    """
    if cloud is None:
        if scene.depth is None and scene.world_points is None:
            cloud = PointCloud(
                np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), *(np.zeros(0, np.int32) for _ in range(3))
            )
        else:
            cloud = scene.fused_point_cloud()
    m = len(cloud.xyz)
    for name, shape in (("rgb", (m, 3)), ("instance_ids", (m,)), ("semantic_ids", (m,)), ("view_ids", (m,))):
        if np.shape(getattr(cloud, name)) != shape:
            raise Sem3RError(f"point cloud '{name}' must have shape {shape}, got {np.shape(getattr(cloud, name))}")
    xyz = np.asarray(cloud.xyz, np.float32).reshape(m, 3)
    keep = slice(None)
    if max_points is not None and m > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(m, max_points, replace=False))
    return PointCloud(
        xyz[keep],
        np.asarray(cloud.rgb, np.uint8)[keep],
        np.asarray(cloud.instance_ids, np.int32)[keep],
        np.asarray(cloud.semantic_ids, np.int32)[keep],
        np.asarray(cloud.view_ids, np.int32)[keep],
    )


def viewer_frame(cam_from_world: np.ndarray) -> np.ndarray:
    """A rotation from the Sem3R world frame to a y-up, "look along -z" viewer frame.

    The new +y axis is the cameras' mean up direction (camera -y in the world frame) and the new
    -z axis is their mean viewing direction made orthogonal to it, so glTF viewers and the HTML
    viewer show the scene upright, seen roughly as the cameras saw it. When the world frame is the
    first camera's OpenCV frame this is the OpenCV -> glTF flip ``diag(1, -1, -1)``.

    Args:
        cam_from_world: ``(N, 3, 4)``.

    Returns:
        ``(3, 3) float64`` rotation ``R`` with ``x_viewer = R @ x_world``.

    Example:
        >>> viewer_frame(np.eye(3, 4)[None]).tolist()
        [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]
    """
    rot = np.asarray(cam_from_world, np.float64).reshape(-1, 3, 4)[:, :, :3]
    up = -rot[:, 1].mean(axis=0)
    if np.linalg.norm(up) < 1e-6:
        up = -rot[0, 1]
    up = up / np.linalg.norm(up)
    forward = rot[:, 2].mean(axis=0)
    forward = forward - up * (forward @ up)
    if np.linalg.norm(forward) < 1e-6:
        forward = np.eye(3)[int(np.argmin(np.abs(up)))]
        forward = forward - up * (forward @ up)
    forward = forward / np.linalg.norm(forward)
    back = -forward
    return np.stack([np.cross(up, back), up, back]) + 0.0
