"""Point-to-point ICP (Besl & McKay 1992) with Umeyama updates on a scipy ``cKDTree``.

Protocol of :func:`icp`:

1. Build one KD-tree over ``target``; start from ``init`` (identity when ``None``).
2. Each iteration: move ``source`` by the current transform, find every moved point's nearest
   target point, drop pairs farther apart than ``max_correspondence_distance``, and re-estimate the
   transform from the *original* source points to their matches with :func:`umeyama` (rigid, or a
   similarity with ``with_scale``). Solving from the original points, rather than composing
   increments, keeps round-off from accumulating.
3. Stop when the RMS displacement of the source points between two iterations falls to
   ``tolerance`` times the source's RMS radius (``converged = True``), or after ``max_iterations``.
4. Report ``rmse`` and ``fitness`` from a final nearest-neighbour query at the returned transform:
   ``rmse`` over the inlier pairs, ``fitness`` = inlier pairs / source points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import point_array
from sem3r.geometry.knn import knn
from sem3r.geometry.transforms import Sim3, umeyama


@dataclass
class ICPResult:
    """Outcome of :func:`icp`.

    Attributes:
        transform: the :class:`Sim3` mapping source points onto the target.
        rmse: root-mean-square distance of inlier pairs at ``transform`` (metres).
        fitness: fraction of source points with a target neighbour within the correspondence
            distance, in ``[0, 1]`` (1 when no maximum distance is set).
        iterations: Umeyama updates performed.
        converged: the update became smaller than the tolerance before ``max_iterations``.
    """

    transform: Sim3
    rmse: float
    fitness: float
    iterations: int
    converged: bool


def _matches(tree: cKDTree, moved: np.ndarray, max_distance: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dist, idx = knn(tree, moved, 1, max_distance=max_distance)
    dist, idx = dist[:, 0], idx[:, 0]
    inliers = np.isfinite(dist)
    return dist, idx, inliers


def icp(
    source: np.ndarray,
    target: np.ndarray,
    init: Sim3 | None = None,
    max_iterations: int = 50,
    tolerance: float = 1e-6,
    max_correspondence_distance: float | None = None,
    with_scale: bool = False,
) -> ICPResult:
    """Align ``source`` to ``target`` with point-to-point ICP (protocol in the module docstring).

    Args:
        source: ``(N, 3)`` points to move, ``N >= 3``.
        target: ``(M, 3)`` fixed points, ``M >= 1``.
        init: initial guess of the source-to-target transform (identity when ``None``). ICP only
            finds the nearest local optimum, so the guess must be roughly right.
        max_iterations: upper bound on Umeyama updates.
        tolerance: relative convergence threshold on the per-iteration RMS point displacement,
            in units of the source's RMS radius about its centroid.
        max_correspondence_distance: pairs farther apart (metres) are rejected as outliers;
            ``None`` keeps every pair.
        with_scale: estimate a similarity (scale too) instead of a rigid motion.

    Returns:
        :class:`ICPResult`.

    Raises:
        Sem3RError: bad shapes or NaNs, or fewer than 3 pairs within the correspondence distance.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> src = rng.uniform(size=(200, 3)) * [1.0, 0.6, 0.3]
        >>> res = icp(src, src + [0.01, 0.0, 0.0])
        >>> res.converged, res.transform.translation.round(6).tolist()
        (True, [0.01, 0.0, 0.0])
    """
    source = point_array(source, "icp source", min_points=3)
    target = point_array(target, "icp target", min_points=1)
    if max_iterations < 1:
        raise Sem3RError(f"icp max_iterations must be at least 1, got {max_iterations}")
    if not tolerance >= 0:
        raise Sem3RError(f"icp tolerance must be non-negative, got {tolerance}")
    if init is not None and not isinstance(init, Sim3):
        raise Sem3RError(f"icp init must be a Sim3 or None, got {type(init).__name__}")
    transform = Sim3.identity() if init is None else init
    tree = cKDTree(target)
    radius = np.sqrt(np.mean(np.sum((source - source.mean(axis=0)) ** 2, axis=1)))
    moved = transform.apply(source)
    converged = False
    iterations = 0
    while iterations < max_iterations:
        _, idx, inliers = _matches(tree, moved, max_correspondence_distance)
        if np.count_nonzero(inliers) < 3:
            raise Sem3RError(
                f"icp found {np.count_nonzero(inliers)} pairs within max_correspondence_distance="
                f"{max_correspondence_distance}; needs 3 (give a closer init or a larger distance)"
            )
        transform = umeyama(source[inliers], target[idx[inliers]], with_scale=with_scale)
        iterations += 1
        updated = transform.apply(source)
        step = np.sqrt(np.mean(np.sum((updated - moved) ** 2, axis=1)))
        moved = updated
        if step <= tolerance * radius:
            converged = True
            break
    dist, _, inliers = _matches(tree, moved, max_correspondence_distance)
    rmse = float(np.sqrt(np.mean(dist[inliers] ** 2))) if inliers.any() else float("inf")
    return ICPResult(transform, rmse, float(inliers.mean()), iterations, converged)
