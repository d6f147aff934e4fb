"""Deterministic colours for instance ids and semantic class ids.

Both maps are pure functions of the id (no state, no dependence on which other ids exist), so the
same instance has the same colour in every view, file and session. Hues follow the golden-ratio
sequence ``h = frac(offset + id / phi)``: consecutive ids land far apart on the colour wheel and
any ``K`` ids stay roughly ``1 / K`` apart. Saturation and value cycle with co-prime periods so
ids with similar hues still differ in brightness. Negative ids (``-1`` = unlabelled) are grey.

Instance and semantic colours use different hue offsets and cycles, so instance 3 and class 3 do
not share a colour.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sem3r.errors import Sem3RError

UNLABELLED_COLOR = np.array([128, 128, 128], np.uint8)
"""``(3,) uint8`` colour of id ``-1`` (and any negative id)."""

_INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Convert HSV in ``[0, 1]`` to RGB in ``[0, 1]``.

    Args:
        hsv: ``(..., 3)`` hue, saturation, value.

    Returns:
        ``(..., 3) float64`` RGB.

    Example:
        >>> hsv_to_rgb(np.array([0.0, 1.0, 1.0])).tolist()
        [1.0, 0.0, 0.0]
    """
    hsv = np.asarray(hsv, np.float64)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    # Each channel n in (5, 3, 1) for (r, g, b): v - v*s*max(0, min(k, 4-k, 1)), k = (n + 6h) mod 6.
    k = np.mod(np.array([5.0, 3.0, 1.0]) + 6.0 * h[..., None], 6.0)
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return v[..., None] - v[..., None] * s[..., None] * ramp


def _golden_colors(ids: np.ndarray, hue_offset: float, sats: np.ndarray, vals: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
    ids64 = ids.astype(np.int64)
    safe = np.maximum(ids64, 0)
    hue = np.mod(hue_offset + safe.astype(np.float64) * _INV_PHI, 1.0)
    sat = sats[safe % len(sats)]
    val = vals[(safe // len(sats)) % len(vals)]
    rgb = np.rint(hsv_to_rgb(np.stack([hue, sat, val], axis=-1)) * 255.0).astype(np.uint8)
    rgb[ids64 < 0] = UNLABELLED_COLOR
    return rgb


def instance_colors(ids: np.ndarray) -> np.ndarray:
    """Colour per instance id.

    Args:
        ids: ``(...)`` integer instance ids; negative ids are unlabelled.

    Returns:
        ``(..., 3) uint8`` RGB; grey ``(128, 128, 128)`` for negative ids.

    Example:
        >>> c = instance_colors(np.array([-1, 0, 1]))
        >>> c.shape, c[0].tolist()
        ((3, 3), [128, 128, 128])
    """
    return _golden_colors(ids, 0.12, np.array([0.85, 0.6, 0.72]), np.array([0.95, 0.78]))


def semantic_colors(ids: np.ndarray) -> np.ndarray:
    """Colour per semantic class id (index into ``metadata['class_names']``).

    Args:
        ids: ``(...)`` integer class ids; negative ids are unlabelled.

    Returns:
        ``(..., 3) uint8`` RGB; grey for negative ids.

    Example:
        >>> semantic_colors(np.array([[0, -1]])).shape
        (1, 2, 3)
    """
    return _golden_colors(ids, 0.57, np.array([0.7, 0.9]), np.array([0.9, 0.7, 0.82]))


def label_palette(num_classes: int) -> np.ndarray:
    """The colours of classes ``0 .. num_classes - 1``: ``(num_classes, 3) uint8``.

    Example:
        >>> label_palette(4).shape
        (4, 3)
    """
    return semantic_colors(np.arange(num_classes))


def cloud_colors(cloud, color_by: Literal["rgb", "instance", "semantic"] = "rgb") -> np.ndarray:
    """Per-point colours of a :class:`~sem3r.scene.PointCloud`.

    Args:
        cloud: ``M`` points with ``rgb``, ``instance_ids`` and ``semantic_ids``.
        color_by: ``"rgb"`` (image colours), ``"instance"`` (:func:`instance_colors`) or
            ``"semantic"`` (:func:`semantic_colors`).

    Returns:
        ``(M, 3) uint8``.

    Example:
        >>> from sem3r.scene import PointCloud
        >>> c = PointCloud(np.zeros((1, 3), np.float32), np.full((1, 3), 9, np.uint8),
        ...                np.array([-1], np.int32), np.array([-1], np.int32), np.zeros(1, np.int32))
        >>> cloud_colors(c, "instance").tolist()
        [[128, 128, 128]]
    """
    if color_by == "rgb":
        return np.asarray(cloud.rgb, np.uint8).reshape(-1, 3)
    if color_by == "instance":
        return instance_colors(np.asarray(cloud.instance_ids)).reshape(-1, 3)
    if color_by == "semantic":
        return semantic_colors(np.asarray(cloud.semantic_ids)).reshape(-1, 3)
    raise Sem3RError(f"unknown color_by '{color_by}' (expected rgb, instance or semantic)")
