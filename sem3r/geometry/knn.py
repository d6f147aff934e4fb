"""K-nearest-neighbour queries on scipy's ``cKDTree`` (Sem3R never reimplements what scipy does)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import point_array


def knn(
    points: np.ndarray | cKDTree,
    queries: np.ndarray,
    k: int,
    max_distance: float | None = None,
    workers: int = -1,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest ``points`` of every query point.

    Args:
        points: ``(M, 3)`` reference points, or a prebuilt ``cKDTree`` over them (reuse one tree for
            repeated queries, as ICP does).
        queries: ``(Q, 3)`` query points. Pass ``points`` itself for a self-query; each point is
            then its own first neighbour (distance 0).
        k: neighbours per query, ``1 <= k <= M``.
        max_distance: only neighbours within this Euclidean distance are returned; missing ones
            get distance ``inf`` and index ``M``.
        workers: threads for the query (``-1``: all cores).

    Returns:
        ``distances (Q, k) float64`` sorted ascending and ``indices (Q, k) int64`` into ``points``.

    Example:
        >>> d, i = knn(np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]]), np.array([[0.9, 0, 0]]), k=2)
        >>> i.tolist(), d.round(6).tolist()
        ([[1, 0]], [[0.1, 0.9]])
    """
    tree = points if isinstance(points, cKDTree) else cKDTree(point_array(points, "knn points", min_points=1))
    queries = point_array(queries, "knn queries")
    k = int(k)
    if not 1 <= k <= tree.n:
        raise Sem3RError(f"knn k must be in [1, {tree.n}] (the number of points), got {k}")
    bound = np.inf if max_distance is None else float(max_distance)
    if not bound > 0:
        raise Sem3RError(f"knn max_distance must be positive, got {max_distance}")
    dist, idx = tree.query(queries, k=k, distance_upper_bound=bound, workers=workers)
    return dist.reshape(len(queries), k), idx.reshape(len(queries), k).astype(np.int64, copy=False)
