"""Quality of a superpoint over-segmentation against ground-truth instances.

Protocol (every point counts once; the ground-truth label ``-1``, unlabelled points and structure
such as walls and floors, is a label like any other, so merging a painting into its wall is an
error):

- ``undersegmentation_error``: the fraction of points whose ground-truth label differs from the
  majority ground-truth label of their superpoint (ties: the smallest label). 0 for a partition
  that refines the ground truth; the fraction of points a superpoint "leaks" otherwise.
- ``boundary_recall`` / ``boundary_precision`` (Landrieu & Boussaha, CVPR 2019, on the edges of an
  adjacency graph): a ground-truth boundary is an edge whose endpoints carry different ground-truth
  labels, a predicted one an edge whose endpoints lie in different superpoints. Recall is the
  fraction of ground-truth boundary edges that are predicted boundaries, precision the fraction of
  predicted boundary edges that are ground-truth boundaries (strictly on the edge itself, without
  the one-edge tolerance some papers allow). ``nan`` when there is no edge of the kind to count.
- ``num_superpoints`` and ``mean_size`` (points per superpoint).
- ``recovered`` (:func:`instance_recovery`): the fraction of ground-truth instances (ids ``>= 0``)
  for which the superpoints whose majority label is the instance cover at least half its points.
  An object absorbed into a larger neighbour (a poster merged into its wall) is not recovered.
"""

from __future__ import annotations

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry.voxels import group_majority


def superpoint_metrics(superpoints: np.ndarray, gt_instance: np.ndarray, edges: np.ndarray | None = None,
                       points: np.ndarray | None = None, k: int = 10,
                       instance_ids: np.ndarray | None = None) -> dict[str, float]:
    """Under-segmentation error, boundary recall and precision, size and instance recovery.

    Args:
        superpoints: ``(M,) int`` superpoint id of every point (any ids).
        gt_instance: ``(M,) int`` ground-truth instance id of every point, -1 = unlabelled / structure.
        edges: ``(E, 2) int`` adjacency graph of the points for the boundary metrics.
        points: ``(M, 3)`` positions to build that graph from instead (``k`` nearest neighbours,
            :func:`sem3r.superpoints.graph.knn_edges`); give exactly one of ``edges`` and ``points``.
        k: neighbours of that graph.
        instance_ids: ``(K,) int`` instances ``recovered`` scores (default: every id ``>= 0``), e.g.
            the wall-flat objects.

    Returns:
        ``undersegmentation_error``, ``boundary_recall``, ``boundary_precision``, ``num_superpoints``,
        ``mean_size``, ``recovered`` (see the module docstring).

    Raises:
        Sem3RError: shapes disagree, neither or both of ``edges`` and ``points``, bad edges.

    Example:
        >>> sp = np.array([0, 0, 0, 1, 1, 2])
        >>> gt = np.array([5, 5, 7, 7, 7, -1])  # a chain 0-1-2-3-4-5
        >>> m = superpoint_metrics(sp, gt, edges=np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]))
        >>> round(m["undersegmentation_error"], 4), m["boundary_recall"], m["boundary_precision"], m["recovered"]
        (0.1667, 0.5, 0.5, 1.0)
    """
    sp, gt = _labels(superpoints, gt_instance)
    if (edges is None) == (points is None):
        raise Sem3RError("superpoint_metrics needs exactly one of edges and points")
    if edges is None:
        from sem3r.superpoints.graph import knn_edges

        pts = np.asarray(points)
        if pts.shape != (len(sp), 3):
            raise Sem3RError(f"points must have shape ({len(sp)}, 3), got {pts.shape}")
        edges = knn_edges(pts, k)
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[1] != 2 or (edges.size and not np.issubdtype(edges.dtype, np.integer)):
        raise Sem3RError(f"edges must be (E, 2) integer point pairs, got {edges.dtype} {edges.shape}")
    if edges.size and (edges.min() < 0 or edges.max() >= len(sp)):
        raise Sem3RError(f"edge point ids must lie in [0, {len(sp)})")
    sp_ids, sp_index = np.unique(sp, return_inverse=True)
    _, majority_count = _majority(sp_index, gt, len(sp_ids))
    true_boundary = gt[edges[:, 0]] != gt[edges[:, 1]]
    predicted_boundary = sp[edges[:, 0]] != sp[edges[:, 1]]
    hits = int((true_boundary & predicted_boundary).sum())
    return {
        "undersegmentation_error": float(1.0 - majority_count.sum() / len(sp)) if len(sp) else float("nan"),
        "boundary_recall": _ratio(hits, int(true_boundary.sum())),
        "boundary_precision": _ratio(hits, int(predicted_boundary.sum())),
        "num_superpoints": len(sp_ids),
        "mean_size": float(len(sp) / len(sp_ids)) if len(sp_ids) else float("nan"),
        "recovered": instance_recovery(sp, gt, instance_ids),
    }


def instance_recovery(superpoints: np.ndarray, gt_instance: np.ndarray, instance_ids: np.ndarray | None = None,
                      min_coverage: float = 0.5, per_instance: bool = False):
    """Fraction of ground-truth instances that their majority-assigned superpoints recover.

    Each superpoint is assigned to its majority ground-truth label (-1 included, ties: the smallest
    label). Instance ``g`` is recovered when the superpoints assigned to ``g`` hold at least
    ``min_coverage`` of ``g``'s points. Superpoints that mix ``g`` into a larger neighbour are
    assigned to the neighbour, so an object merged into the wall it hangs on is not recovered.

    Args:
        superpoints: ``(M,) int`` superpoint ids.
        gt_instance: ``(M,) int`` ground-truth instance ids, -1 = unlabelled / structure.
        instance_ids: ``(K,) int`` instances to score (e.g. the wall-flat objects); default all ids
            ``>= 0`` present. Ids with no point are skipped.
        min_coverage: the coverage an instance needs, in ``(0, 1]``.
        per_instance: also return the scored ids and their coverage.

    Returns:
        The fraction in ``[0, 1]`` (``nan`` when no listed instance has a point); with
        ``per_instance``, ``(fraction, ids (K',) int64, coverage (K',) float64)``.

    Example:
        >>> sp = np.array([0, 0, 0, 0, 1, 1])
        >>> gt = np.array([-1, -1, -1, 3, 3, 4])  # instance 3 half in the wall's superpoint
        >>> instance_recovery(sp, gt, per_instance=True)
        (0.5, array([3, 4]), array([0.5, 0. ]))
    """
    sp, gt = _labels(superpoints, gt_instance)
    if not 0 < min_coverage <= 1:
        raise Sem3RError(f"min_coverage must be in (0, 1], got {min_coverage}")
    sp_ids, sp_index = np.unique(sp, return_inverse=True)
    majority, _ = _majority(sp_index, gt, len(sp_ids))
    present, sizes = np.unique(gt[gt >= 0], return_counts=True)
    ids = present if instance_ids is None else np.intersect1d(np.asarray(instance_ids, np.int64), present)
    if len(ids):
        ok = (gt >= 0) & (majority[sp_index] == gt)
        covered = np.bincount(np.searchsorted(present, gt[ok]), minlength=len(present))
        coverage = covered[np.searchsorted(present, ids)] / sizes[np.searchsorted(present, ids)]
        fraction = float((coverage >= min_coverage).mean())
    else:
        coverage, fraction = np.zeros(0), float("nan")
    return (fraction, ids.astype(np.int64), coverage.astype(np.float64)) if per_instance else fraction


def _labels(superpoints: np.ndarray, gt_instance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sp = np.asarray(superpoints)
    gt = np.asarray(gt_instance)
    if sp.ndim != 1 or gt.shape != sp.shape:
        raise Sem3RError(f"superpoints and gt_instance must be (M,) arrays of one length, got {sp.shape} and {gt.shape}")
    if sp.size and not (np.issubdtype(sp.dtype, np.integer) and np.issubdtype(gt.dtype, np.integer)):
        raise Sem3RError(f"superpoints and gt_instance must hold integer ids, got {sp.dtype} and {gt.dtype}")
    return sp.astype(np.int64), gt.astype(np.int64)


def _majority(group: np.ndarray, labels: np.ndarray, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Majority label of each group ``0 .. G-1`` (ties: the smallest) and its count."""
    groups, winner, winner_count, _ = group_majority(group, labels)
    majority = np.zeros(num_groups, np.int64)
    majority_count = np.zeros(num_groups, np.int64)
    majority[groups] = winner
    majority_count[groups] = winner_count
    return majority, majority_count


def _ratio(num: int, den: int) -> float:
    return float(num / den) if den else float("nan")
