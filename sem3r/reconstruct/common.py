"""Helpers shared by the geometry backends: building the result Scene and per-pixel geometry."""

from __future__ import annotations

import copy
from dataclasses import fields
from typing import Any

import numpy as np

from sem3r.geometry.camera import unproject_depth
from sem3r.scene import Scene


def derive_scene(scene: Scene, metadata: dict[str, Any], **changes: Any) -> Scene:
    """A new Scene: ``scene`` with the fields in ``changes`` replaced and ``metadata`` merged in.

    Every array that is not replaced is copied and the metadata and instance table are deep
    copies, so the result shares no mutable state with ``scene`` (a backend never modifies its
    input, and later stages may edit the result in place).

    When ``cam_from_world`` changes and ``sparse_points`` is not among ``changes``, the sparse
    points (and colours) are dropped: they are in the old cameras' frame.

    Args:
        scene: the input Scene.
        metadata: keys added to (or overriding) a deep copy of ``scene.metadata``.
        **changes: Scene fields to replace, e.g. ``depth=...`` or ``world_points=None``.

    Returns:
        The new Scene (validated).

    Example:
        >>> s = Scene(images=np.zeros((1, 2, 3, 3), np.uint8), intrinsics=np.eye(3)[None],
        ...           cam_from_world=np.eye(3, 4)[None], metadata={"source": "x"})
        >>> t = derive_scene(s, {"metric": True}, depth=np.ones((1, 2, 3), np.float32))
        >>> t.metadata, t.images is s.images, s.depth is None
        ({'source': 'x', 'metric': True}, False, True)
    """
    explicit = set(changes)
    kwargs = {}
    for f in fields(Scene):
        if f.name in changes:
            kwargs[f.name] = changes.pop(f.name)
        else:
            value = getattr(scene, f.name)
            kwargs[f.name] = value.copy() if isinstance(value, np.ndarray) else copy.deepcopy(value)
    if changes:
        raise TypeError(f"Scene has no field(s) {', '.join(sorted(changes))}")
    moved = not np.array_equal(kwargs["cam_from_world"], scene.cam_from_world)
    if moved and kwargs["sparse_points"] is not None and "sparse_points" not in explicit:
        kwargs["sparse_points"] = kwargs["sparse_colors"] = None  # they belong to the old cameras' frame
    kwargs["metadata"].update(copy.deepcopy(metadata))
    return Scene(**kwargs)


def valid_depth_points(depth: np.ndarray, intrinsics: np.ndarray, cam_from_world: np.ndarray) -> np.ndarray:
    """World points of depth maps with NaN where the depth is invalid.

    Args:
        depth: ``(N, H, W)`` camera z-depth, 0 = invalid.
        intrinsics: ``(N, 3, 3)``.
        cam_from_world: ``(N, 3, 4)``.

    Returns:
        ``(N, H, W, 3) float32`` world points (NaN where ``depth <= 0``), the layout of
        ``Scene.world_points`` whose validity is ``isfinite``.

    Example:
        >>> pts = valid_depth_points(np.array([[[0.0, 2.0]]], np.float32), np.eye(3)[None], np.eye(3, 4)[None])
        >>> pts[0, 0, 0].tolist(), pts[0, 0, 1].tolist()
        ([nan, nan, nan], [2.0, 0.0, 2.0])
    """
    points = unproject_depth(depth, intrinsics, cam_from_world)
    points[~(np.asarray(depth) > 0)] = np.nan
    return points
