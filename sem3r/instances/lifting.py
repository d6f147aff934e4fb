"""Lift per-view 2D masks into 3D through the reconstruction and associate them across views.

The training-free baselines IGGT compares with (SAM3D / MaskClustering-style lifting; OVSeg3R
section 3.1.1 lifts 2D masks through the same pixel-to-point correspondences). Input: per-view
masks whose ids mean nothing across views (:mod:`sem3r.instances.mask_sources`). Output: ids
shared by all views. The association follows MaskClustering (Yan et al., CVPR 2024):

1. **Lift.** Every mask with at least ``min_mask_pixels`` pixels of valid geometry is a node. The
   valid labelled pixels' world points are voxelised (packed ``int64`` keys); the mask-voxel
   incidence is a sparse ``(G, V)`` matrix and every voxel is represented by its points' centroid.
2. **Look from every view.** Each voxel centroid is projected into each view ``j``; it is *visible*
   there when it lands inside the image in front of the camera and its depth agrees with view
   ``j``'s own geometry at that pixel within ``depth_abs_tol + depth_rel_tol * depth`` (a z-buffer
   test: occluded voxels are not visible). A visible voxel takes the mask of view ``j`` at its
   pixel (or none). One sparse product gives, for every mask ``a`` and every mask ``b``, how many
   of ``a``'s voxels land on ``b``.
3. **Containment.** Mask ``a`` is *observed* by view ``j`` when at least ``visible_threshold`` of
   its voxels are visible there on some mask; it is then *contained* by the mask ``b`` of view
   ``j`` that holds at least ``contained_threshold`` of those voxels, or *split* when no mask
   does. A mask split in more than ``undersegment_threshold`` of the views observing it is
   under-segmented (it spans several objects): it is dropped (its pixels become -1) and its votes
   as a container are removed. As in MaskClustering, only views where a mask is contained count
   as its observers.
4. **View consensus.** For two nodes, the *observers* are the views containing both (each by some
   mask) and the *supporters* the views where one mask contains both. The consensus rate is
   supporters / observers. Every mask observes itself in its own view, so two masks of one view
   always disagree there.
5. **Iterative clustering** (MaskClustering's scheme): for observer-count thresholds that
   decrease level by level (the ``observer_percentiles`` percentiles of the positive observer
   counts between masks, never below ``min_observers``), node pairs with at least that many
   observers and a consensus rate ``>= consensus_threshold`` are merged; a merged node observes
   and is contained by the union of its members' views and containers, and rates are recomputed
   at the next level. Reliable pairs (seen together by many views) merge first.

Two deliberate differences from MaskClustering: supporters are counted per view (a merged node
contained by two masks of one view counts that view once, so the rate stays in ``[0, 1]``), and,
with ``separate_same_view`` (default), two nodes holding masks of the same view never merge:
masks of one view are disjoint by construction, so they are different objects (or parts). Pairs
are then merged greedily, highest rate first (more observers first on ties), with a union-find
that checks this; without it a level merges the connected components of its pair graph, exactly
as MaskClustering does. Output ids ``0 .. K-1`` are numbered by each instance's first pixel
(views in order, pixels in raster order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from sem3r.errors import Sem3RError
from sem3r.geometry.voxels import voxel_keys
from sem3r.instances.mask_sources import view_masks
from sem3r.scene import Scene


@dataclass
class LiftConfig:
    """Thresholds of :func:`lift_masks` (see the module docstring for where each one acts).

    Lengths are in the Scene's units (metres for metric reconstructions). ``contained_threshold``,
    ``undersegment_threshold`` and ``consensus_threshold`` are MaskClustering's (ScanNet
    configuration). ``visible_threshold`` is lower than its 0.3 and ``min_mask_pixels`` lower than
    its 25 points: a handful of wide-baseline views overlap far less than consecutive video frames,
    and on synthetic rooms (exact geometry, ground-truth 2D masks, 8 views of 128 x 160 pixels, 4
    rooms) they raise the mean T-mIoU from 0.74 to 0.97 without merging distinct objects. Raise
    them for noisy mask sources.

    Attributes:
        voxel_size: edge of the voxels the masks' points are grouped into.
        depth_abs_tol: absolute part of the depth tolerance of the visibility test.
        depth_rel_tol: part of the depth tolerance proportional to the depth.
        min_mask_pixels: masks with fewer pixels of valid geometry are dropped (-1).
        visible_threshold: fraction of a mask's voxels that must be visible on masks of a view for
            that view to observe it.
        contained_threshold: fraction of those voxels one mask must hold to contain it.
        undersegment_threshold: a mask split in more than this fraction of its observing views
            is dropped as under-segmented (1.0 disables the filter).
        consensus_threshold: minimum view-consensus rate of a merged pair.
        min_observers: minimum number of observer views of a merged pair.
        observer_percentiles: percentiles (descending) of the positive observer counts between
            masks that set the observer threshold of each clustering level.
        separate_same_view: never merge two nodes that hold masks of the same view.
        point_source: ``"auto"``, ``"depth"`` or ``"points"`` (see :meth:`Scene.points`).
    """

    voxel_size: float = 0.02
    depth_abs_tol: float = 0.02
    depth_rel_tol: float = 0.01
    min_mask_pixels: int = 1
    visible_threshold: float = 0.1
    contained_threshold: float = 0.8
    undersegment_threshold: float = 0.3
    consensus_threshold: float = 0.9
    min_observers: int = 1
    observer_percentiles: tuple[float, ...] = field(default_factory=lambda: tuple(float(p) for p in range(95, -5, -5)))
    separate_same_view: bool = True
    point_source: str = "auto"

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid option."""
        if not self.voxel_size > 0:
            raise Sem3RError(f"lift voxel_size must be positive, got {self.voxel_size}")
        if not (self.depth_abs_tol >= 0 and self.depth_rel_tol >= 0):
            raise Sem3RError(f"lift depth tolerances must be non-negative, got {self.depth_abs_tol}, {self.depth_rel_tol}")
        for name in ("visible_threshold", "contained_threshold", "undersegment_threshold", "consensus_threshold"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise Sem3RError(f"lift {name} must lie in [0, 1], got {value}")
        if self.min_observers < 1:
            raise Sem3RError(f"lift min_observers must be at least 1, got {self.min_observers}")
        if self.min_mask_pixels < 1:
            raise Sem3RError(f"lift min_mask_pixels must be at least 1, got {self.min_mask_pixels}")
        percentiles = np.asarray(self.observer_percentiles, np.float64)
        if percentiles.ndim != 1 or not len(percentiles) or not ((percentiles >= 0) & (percentiles <= 100)).all():
            raise Sem3RError(f"lift observer_percentiles must be a non-empty list of values in [0, 100], got {self.observer_percentiles}")


@numba.njit(cache=True)
def _root(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True)
def _merge_pairs(src: np.ndarray, dst: np.ndarray, views: np.ndarray, check_views: bool) -> np.ndarray:
    """Union-find over node pairs in the given order; with ``check_views`` a pair whose
    components share a source view is skipped. Returns the root of every node."""
    num = views.shape[0]
    parent = np.arange(num)
    size = np.ones(num, np.int64)
    views = views.copy()
    for e in range(len(src)):
        a = _root(parent, src[e])
        b = _root(parent, dst[e])
        if a == b:
            continue
        if check_views and np.any(views[a] & views[b]):
            continue
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        views[a] |= views[b]
    roots = np.empty(num, np.int64)
    for i in range(num):
        roots[i] = _root(parent, i)
    return roots


def _check_masks(scene: Scene, view_masks: np.ndarray) -> np.ndarray:
    """``view_masks`` as ``(N, H, W) int64``; raises :class:`Sem3RError` on a bad shape, dtype or id."""
    masks = np.asarray(view_masks)
    expected = (scene.num_views, scene.height, scene.width)
    if masks.shape != expected:
        raise Sem3RError(f"view_masks must have shape {expected} to match the scene, got {masks.shape}")
    if not np.issubdtype(masks.dtype, np.integer):
        raise Sem3RError(f"view_masks must hold integer ids, got {masks.dtype}")
    if masks.size and masks.min() < -1:
        raise Sem3RError(f"view_masks ids must be >= -1 (-1 = unlabelled), got {masks.min()}")
    return masks.astype(np.int64)


def _camera_depth(points: np.ndarray, valid: np.ndarray, cam_from_world: np.ndarray) -> np.ndarray:
    """Depth ``(N, H, W) float64`` of every view's own points in its own camera, 0 where invalid."""
    z = np.einsum("nj,nhwj->nhw", cam_from_world[:, 2, :3], points.astype(np.float64)) + cam_from_world[:, 2, 3][:, None, None]
    return np.where(valid, z, 0.0)


def _lookups(centroids: np.ndarray, scene: Scene, depth: np.ndarray, mask_map: np.ndarray, config: LiftConfig):
    """For every voxel centroid ``(V, 3)`` and view: the mask (global index) it is visible on.

    Returns ``(voxel, mask)`` index arrays of all visible, labelled hits (one per voxel and view).
    """
    n, h, w = mask_map.shape
    voxels, hits = [], []
    for j in range(n):
        projection = scene.intrinsics[j] @ scene.cam_from_world[j]  # (3, 4): pixel homogeneous coords, z last
        hom = centroids @ projection[:, :3].T + projection[:, 3]
        front = np.flatnonzero(hom[:, 2] > 0)
        z = hom[front, 2]
        col = np.rint(hom[front, 0] / z).astype(np.int64)
        row = np.rint(hom[front, 1] / z).astype(np.int64)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        front, z, row, col = front[inside], z[inside], row[inside], col[inside]
        d = depth[j][row, col]
        label = mask_map[j][row, col]
        ok = (d > 0) & (label >= 0) & (np.abs(z - d) <= config.depth_abs_tol + config.depth_rel_tol * d)
        voxels.append(front[ok])
        hits.append(label[ok])
    return np.concatenate(voxels), np.concatenate(hits)


def _containment(overlap: sp.coo_matrix, mask_view: np.ndarray, mask_voxels: np.ndarray, num_views: int, config: LiftConfig):
    """Observed / contained / split decisions from the ``(G, G)`` voxel-landing counts.

    Returns ``(a, b)`` pairs "mask ``a`` is contained by mask ``b``" and the ``(G,) bool``
    under-segmented flags (see the module docstring, steps 3).
    """
    g = len(mask_view)
    a, b, cnt = overlap.row.astype(np.int64), overlap.col.astype(np.int64), overlap.data.astype(np.int64)
    view = mask_view[b]
    covered = np.bincount(a * num_views + view, weights=cnt, minlength=g * num_views).reshape(g, num_views)
    order = np.lexsort((b, -cnt, view, a))  # per (a, view): largest count first, then smallest b
    a, b, cnt, view = a[order], b[order], cnt[order], view[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (view[1:] != view[:-1])]
    a, b, cnt, view = a[first], b[first], cnt[first], view[first]
    total = covered[a, view]
    observed = total >= config.visible_threshold * mask_voxels[a]
    contained = observed & (cnt >= config.contained_threshold * total)
    n_observed = np.bincount(a[observed], minlength=g)
    n_split = np.bincount(a[observed & ~contained], minlength=g)
    under = n_split > config.undersegment_threshold * n_observed
    keep = contained & ~under[a] & ~under[b]
    return a[keep], b[keep], under


def _observer_thresholds(observed: sp.csr_matrix, config: LiftConfig) -> list[float]:
    """Observer-count thresholds of the clustering levels (percentiles of positive pair counts)."""
    counts = (observed @ observed.T).tocoo()
    off = counts.row != counts.col
    values = counts.data[off]
    if not len(values):
        return [float(config.min_observers)]
    levels = np.percentile(values, np.asarray(config.observer_percentiles, np.float64))
    return [float(max(v, config.min_observers)) for v in levels]


def _cluster(node_of_mask: np.ndarray, observed: sp.csr_matrix, contained: sp.csr_matrix, source_view: sp.csr_matrix,
             mask_view: np.ndarray, thresholds: list[float], config: LiftConfig) -> np.ndarray:
    """Iterative view-consensus clustering (module docstring, steps 4-5); returns the new ``node_of_mask``."""
    num_views = observed.shape[1]
    view_columns = [np.flatnonzero(mask_view == j) for j in range(num_views)]
    for threshold in thresholds:
        kept = np.flatnonzero(node_of_mask >= 0)
        k = int(node_of_mask.max()) + 1 if len(kept) else 0
        if k < 2:
            break
        member = sp.csr_matrix((np.ones(len(kept)), (node_of_mask[kept], kept)), shape=(k, len(node_of_mask)))
        node_obs = (member @ observed).toarray() > 0
        node_cont = sp.csr_matrix((member @ contained) > 0, dtype=np.float64)
        node_src = (member @ source_view).toarray() > 0
        support = sp.csr_matrix((k, k))
        for cols in view_columns:
            part = node_cont[:, cols]
            support = support + sp.csr_matrix((part @ part.T) > 0, dtype=np.float64)
        support = sp.triu(support, k=1).tocoo()
        i, j, sup = support.row.astype(np.int64), support.col.astype(np.int64), support.data
        obs = np.count_nonzero(node_obs[i] & node_obs[j], axis=1)
        rate = sup / np.maximum(obs, 1)
        ok = (obs >= threshold) & (rate >= config.consensus_threshold)
        if not ok.any():
            continue
        i, j, rate, obs = i[ok], j[ok], rate[ok], obs[ok]
        order = np.lexsort((j, i, -obs, -rate))
        roots = _merge_pairs(i[order], j[order], node_src, config.separate_same_view)
        _, relabel = np.unique(roots, return_inverse=True)
        node_of_mask = np.where(node_of_mask >= 0, relabel.reshape(-1)[np.maximum(node_of_mask, 0)], -1)
    return node_of_mask


def lift_masks(scene: Scene, view_masks: np.ndarray, config: LiftConfig | None = None) -> np.ndarray:
    """Associate per-view 2D masks across views through the reconstruction (see the module docstring).

    Args:
        scene: views with geometry: ``depth`` or ``world_points`` (:meth:`Scene.points`), cameras.
        view_masks: ``(N, H, W) int`` per-view mask ids (ids local to each view), -1 = unlabelled.
        config: thresholds (default :class:`LiftConfig`).

    Returns:
        ``(N, H, W) int32`` instance ids ``0 .. K-1`` shared across views, -1 = unlabelled
        (unlabelled input, masks with too little geometry, under-segmented masks). Every pixel
        of a kept mask gets its instance's id, including pixels without valid geometry.

    Raises:
        Sem3RError: masks of the wrong shape or dtype, ids below -1, a Scene without geometry, or
            a view without any valid point.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(num_views=4, height=48, width=64, num_points=0)).scene
        >>> ids = lift_masks(scene, view_masks(scene, "gt", seed=0))
        >>> from sem3r.eval.tracking import tracking_metrics
        >>> tracking_metrics(ids, scene.instance_masks)["t_miou"] > 0.9
        True
    """
    config = config or LiftConfig()
    config.validate()
    masks = _check_masks(scene, view_masks)
    n, h, w = masks.shape
    points, valid = scene.points(config.point_source)
    empty = ~valid.reshape(n, -1).any(axis=1)
    if empty.any():
        i = int(np.argmax(empty))
        raise Sem3RError(f"view {i} ('{scene.image_names[i]}') has no valid points to lift its masks into 3D")

    # 1. Global mask index of every pixel (masks with too few valid pixels become -1).
    flat = masks.reshape(-1)
    pixel_view = np.repeat(np.arange(n, dtype=np.int64), h * w)
    labelled = np.flatnonzero(flat >= 0)
    keys, inverse = np.unique((pixel_view[labelled] << 32) | flat[labelled], return_inverse=True)
    valid_flat = valid.reshape(-1)
    big = np.bincount(inverse[valid_flat[labelled]], minlength=len(keys)) >= config.min_mask_pixels
    new_index = np.where(big, np.cumsum(big) - 1, -1)
    pixel_mask = np.full(flat.shape, -1, np.int64)
    pixel_mask[labelled] = new_index[inverse]
    mask_view = (keys >> 32)[big]
    g = len(mask_view)
    if g == 0:
        return np.full((n, h, w), -1, np.int32)

    # 2. Voxels of the labelled points, mask-voxel incidence, centroids.
    sel = np.flatnonzero((pixel_mask >= 0) & valid_flat)
    pts = points.reshape(-1, 3)[sel].astype(np.float64)
    _, voxel_of_point = np.unique(voxel_keys(pts, config.voxel_size), return_inverse=True)
    voxel_of_point = voxel_of_point.reshape(-1)
    num_voxels = int(voxel_of_point.max()) + 1
    counts = np.bincount(voxel_of_point, minlength=num_voxels)
    centroids = np.stack([np.bincount(voxel_of_point, weights=pts[:, c], minlength=num_voxels) for c in range(3)], axis=1)
    centroids /= counts[:, None]
    pairs = np.unique(pixel_mask[sel] * num_voxels + voxel_of_point)
    incidence = sp.csr_matrix((np.ones(len(pairs)), (pairs // num_voxels, pairs % num_voxels)), shape=(g, num_voxels))
    mask_voxels = np.diff(incidence.indptr)

    # 3. Where every voxel lands in every view, and the resulting containment.
    depth = _camera_depth(points, valid, scene.cam_from_world)
    hit_voxel, hit_mask = _lookups(centroids, scene, depth, pixel_mask.reshape(n, h, w), config)
    landing = sp.csr_matrix((np.ones(len(hit_voxel)), (hit_voxel, hit_mask)), shape=(num_voxels, g))
    overlap = (incidence @ landing).tocoo()
    a, b, under = _containment(overlap, mask_view, mask_voxels, n, config)
    ones = np.ones(len(a))
    contained = sp.csr_matrix((ones, (a, b)), shape=(g, g))
    observed = sp.csr_matrix((ones, (a, mask_view[b])), shape=(g, n))
    source_view = sp.csr_matrix((np.ones(g), (np.arange(g), mask_view)), shape=(g, n))

    # 4-5. Iterative view-consensus clustering.
    node_of_mask = np.where(under, -1, np.cumsum(~under) - 1)
    node_of_mask = _cluster(node_of_mask, observed, contained, source_view, mask_view,
                            _observer_thresholds(observed, config), config)

    # Number instances by their first pixel and paint them.
    node_of_pixel = np.where(pixel_mask >= 0, node_of_mask[np.maximum(pixel_mask, 0)], -1)
    painted = np.flatnonzero(node_of_pixel >= 0)
    if not len(painted):
        return np.full((n, h, w), -1, np.int32)
    nodes, first = np.unique(node_of_pixel[painted], return_index=True)
    rank = np.empty(int(nodes.max()) + 1, np.int64)
    rank[nodes] = np.argsort(np.argsort(first))
    out = np.where(node_of_pixel >= 0, rank[np.maximum(node_of_pixel, 0)], -1)
    return out.reshape(n, h, w).astype(np.int32)


def lift_scene(scene: Scene, source: str = "gt", config: LiftConfig | None = None, source_config: Any = None,
               **source_options: Any) -> np.ndarray:
    """2D masks from a source (:func:`sem3r.instances.mask_sources.view_masks`) lifted and associated across views.

    Args:
        scene: views with geometry (and ground-truth masks for ``source="gt"``).
        source: ``gt``, ``oversegment``, ``sam`` or a registered mask source.
        config: lifting thresholds (default :class:`LiftConfig`).
        source_config: the source's config instance (default: its defaults).
        **source_options: fields of the source's config to override, e.g. ``model=...`` for ``sam``.

    Returns:
        ``(N, H, W) int32`` instance ids shared across views, -1 = unlabelled.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(num_views=3, height=32, width=40, num_points=0)).scene
        >>> lift_scene(scene, "oversegment", min_size=16).shape
        (3, 32, 40)
    """
    return lift_masks(scene, view_masks(scene, source, source_config, **source_options), config)
