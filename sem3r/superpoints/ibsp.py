"""2D Instance Boundary-aware Superpoints (IBSp, OVSeg3R section 3.3, Algorithm 1): cut graph edges
that cross a 2D instance boundary.

Reconstructed geometry is over-smoothed, so a painting on a wall or a rug on the floor is
geometrically continuous with its support and a purely geometric superpoint would span both. IBSp
reads both endpoints of every graph edge in the 2D instance masks, through the reconstruction's
2D-3D correspondence (:class:`~sem3r.reconstruct.correspondence.Correspondence`), and removes the
edge when they carry different instance ids. Felzenszwalb then runs on the remaining edges, so two
points on different sides of a 2D boundary end up in one superpoint only if another, uncut path
joins them (its min-size pass also uses the uncut edges only).
"""

from __future__ import annotations

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.reconstruct.correspondence import NOT_VISIBLE, Correspondence

IBSP_VIEWS = ("all", "endpoints")
"""Which views IBSp reads an edge in: every view, or only the views that reconstructed its endpoints."""


def instance_boundary_cut(corr: Correspondence, edges: np.ndarray, view_masks: np.ndarray,
                          lifted: np.ndarray | None = None, views: str = "all") -> np.ndarray:
    """Which edges survive IBSp: ``False`` for edges whose endpoints carry different 2D instance ids.

    For the edge ``(i, j)`` both endpoints are read in ``view(i)`` and in ``view(j)``, the views
    that reconstructed them (``corr.view``), with :meth:`Correspondence.labels_in_views`: the lifted
    label where the view reconstructed the point, else the label at its projection if it passes the
    z-buffer test. The edge is cut when, in either view, both endpoints are visible and their ids
    differ. ``-1`` (unlabelled) counts as an id, so the boundary between an object and unlabelled
    background is a boundary. An endpoint a view does not see (:data:`NOT_VISIBLE`: outside the
    image, behind the camera, or occluded) gives no evidence in that view, and an edge without
    evidence is kept: cutting it would fragment every surface at the border of each view's field
    of view, while a real boundary is seen by the view that reconstructed either of its endpoints.
    Ids are compared only within one view, so per-view ids need not agree across views.

    ``views="endpoints"`` is the paper's Algorithm 1, where every point comes from one pixel: the
    edge is read in ``view(i)`` and ``view(j)`` only. With voxel-merged points that is not enough:
    a point near a boundary merges pixels of several views and its representative view may see
    it on the other side of a 2 cm boundary (a poster on its wall), so about 10% of the boundary
    edges survive and one surviving zero-weight edge merges the poster into the wall.
    ``views="all"`` (default) reads both endpoints in every view
    (:meth:`Correspondence.labels_in_all_views`) and cuts the edge when any view that sees both
    disagrees. On a synthetic room at 5 cm voxels it recovers such a poster (best superpoint IoU
    0.08 -> 0.99) and lowers the under-segmentation error from 0.022 to 0.0035, at about 1.5x the
    superpoints and a few times the cost of the cut (one projection of all points per view).

    Args:
        corr: the correspondence record of the points the edges join.
        edges: ``(E, 2) int`` point pairs.
        view_masks: ``(N, H, W) int`` per-view 2D instance ids (-1 = unlabelled) of ``corr``'s views.
        lifted: ``(N, M) int`` :meth:`Correspondence.lift_view_masks` of ``view_masks``, if already
            computed (it is computed once otherwise).
        views: ``"all"`` or ``"endpoints"`` (see above).

    Returns:
        ``(E,) bool`` keep mask (``False`` = cut).

    Raises:
        Sem3RError: malformed edges or point ids, or masks that do not match the views.

    Example:
        >>> from sem3r.reconstruct.correspondence import Correspondence
        >>> corr = Correspondence(
        ...     points=np.array([[0.0, 0, 2], [0.1, 0, 2], [0.2, 0, 2]], np.float32),
        ...     colors=np.zeros((3, 3), np.uint8), view=np.zeros(3, np.int32),
        ...     pixel=np.array([[0, 0], [1, 0], [2, 0]], np.float32),
        ...     point_of_pixel=np.array([[[0, 1, 2]]]), intrinsics=np.eye(3)[None],
        ...     cam_from_world=np.eye(3, 4)[None], view_depth=np.full((1, 1, 3), 2.0, np.float32))
        >>> instance_boundary_cut(corr, np.array([[0, 1], [1, 2]]), np.array([[[4, 4, -1]]])).tolist()
        [True, False]
    """
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[1] != 2 or (edges.size and not np.issubdtype(edges.dtype, np.integer)):
        raise Sem3RError(f"edges must be (E, 2) integer point pairs, got {edges.dtype} {edges.shape}")
    edges = edges.astype(np.int64)
    if edges.size and (edges.min() < 0 or edges.max() >= corr.num_points):
        raise Sem3RError(f"edge point ids must lie in [0, {corr.num_points})")
    view_masks = np.asarray(view_masks)
    if lifted is None:
        lifted = corr.lift_view_masks(view_masks)
    elif np.shape(lifted) != (corr.num_views, corr.num_points):
        raise Sem3RError(f"lifted must have shape ({corr.num_views}, {corr.num_points}), got {np.shape(lifted)}")
    if views not in IBSP_VIEWS:
        raise Sem3RError(f"unknown IBSp views '{views}' (expected one of {', '.join(IBSP_VIEWS)})")
    num = len(edges)
    if not num:
        return np.ones(0, bool)
    i, j = edges[:, 0], edges[:, 1]
    if views == "all":
        table = corr.labels_in_all_views(view_masks, lifted=lifted)
        cut = np.zeros(num, bool)
        for labels in table:
            cut |= _differ(labels[i], labels[j])
        return ~cut
    view_i, view_j = corr.view[i], corr.view[j]
    second = np.flatnonzero(view_i != view_j)  # view(j) adds evidence only where it differs
    labels = corr.labels_in_views(
        view_masks,
        np.concatenate([i, j, i[second], j[second]]),
        np.concatenate([view_i, view_i, view_j[second], view_j[second]]),
        lifted=lifted,
    )
    cut = _differ(labels[:num], labels[num : 2 * num])
    extra = labels[2 * num :]
    cut[second] |= _differ(extra[: len(second)], extra[len(second) :])
    return ~cut


def _differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Both visible and different: ``(K,) bool`` from two ``(K,)`` label arrays."""
    return (a != NOT_VISIBLE) & (b != NOT_VISIBLE) & (a != b)
