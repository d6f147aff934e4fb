"""Input checks shared by the geometry modules; each failure is a one-line :class:`Sem3RError`."""

from __future__ import annotations

import numpy as np

from sem3r.errors import Sem3RError


def finite_array(value, name: str, trailing: tuple[int, ...] = (), dtype=np.float64) -> np.ndarray:
    """``value`` as a finite array whose last dimensions are ``trailing``; raises :class:`Sem3RError`.

    Example:
        >>> finite_array([[1, 2, 3]], "points", (3,)).shape
        (1, 3)
    """
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim < len(trailing) or (trailing and arr.shape[arr.ndim - len(trailing):] != trailing):
        want = "(..., " + ", ".join(map(str, trailing)) + ")"
        raise Sem3RError(f"{name} must have shape {want}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise Sem3RError(f"{name} contains NaN or infinite values")
    return arr


def point_array(value, name: str, min_points: int = 0) -> np.ndarray:
    """``value`` as a finite ``(N, 3) float64`` array with ``N >= min_points``; raises :class:`Sem3RError`."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise Sem3RError(f"{name} must have shape (N, 3), got {arr.shape}")
    if len(arr) < min_points:
        raise Sem3RError(f"{name} needs at least {min_points} points, got {len(arr)}")
    if not np.isfinite(arr).all():
        raise Sem3RError(f"{name} contains NaN or infinite values")
    return arr
