"""Per-view 2D instance masks from a pluggable source (ids are NOT shared across views).

A mask source is a function ``(scene, config) -> (N, H, W) int32`` (-1 = unlabelled) with a config
dataclass beside it, registered by name in a :class:`~sem3r.registry.Registry`. The masks of one
view are disjoint (a label map); the same id in two views means nothing: associating masks across
views is the job of :mod:`sem3r.instances.lifting`. Built-in sources:

* ``gt``: the Scene's ground-truth ``instance_masks`` with the ids of every view replaced by a
  seeded random permutation, which keeps each view's partition and destroys cross-view identity:
  lifting these masks measures the association step alone (perfect 2D masks).
* ``oversegment``: a classical over-segmentation, Felzenszwalb-Huttenlocher on the pixel grid with
  edge weights from colour difference, depth discontinuity and normal change (the last two when
  the Scene has geometry). Every pixel gets a segment; nothing is filtered by size or by kind
  (walls and floors are segments like any other), so the output is a pure partition.
* ``sam``: a SAM-family automatic mask generator through ``transformers`` (the ``vlm`` extra):
  a regular grid of point prompts, masks filtered by predicted IoU and stability, then assigned to
  pixels greedily by predicted IoU without overlap.

A user adds a source with :func:`register_mask_source` and requests it by name in
:func:`view_masks` (or :func:`sem3r.instances.lifting.lift_scene`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import gaussian_filter
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

from sem3r.errors import Sem3RError, require
from sem3r.geometry.camera import camera_centers
from sem3r.geometry.felzenszwalb import felzenszwalb_segment, image_grid_edges
from sem3r.registry import Entry, Registry
from sem3r.scene import Scene

MaskSourceFn = Callable[[Scene, Any], np.ndarray]

_REGISTRY = Registry("2D mask source", noun="mask source")

MASK_SOURCES = _REGISTRY.entries
"""Read-only, live view ``name -> Entry`` of the registered mask sources."""


def register_mask_source(name: str, fn: MaskSourceFn | str, config_cls: type | str, replace: bool = False) -> None:
    """Register a 2D mask source.

    Args:
        name: the name passed to :func:`view_masks`.
        fn: ``(scene, config) -> (N, H, W) int32`` per-view masks (-1 unlabelled), or
            ``"module:attribute"`` imported on first use.
        config_cls: its config dataclass (or ``"module:attribute"``); a ``validate()`` method is
            called when present.
        replace: allow replacing a source of the same name.

    Raises:
        Sem3RError: the name is taken (and ``replace`` is False) or empty.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class WholeImageConfig:
        ...     pass
        >>> register_mask_source("whole", lambda s, c: np.zeros(s.images.shape[:3], np.int32), WholeImageConfig)
        >>> "whole" in MASK_SOURCES
        True
        >>> unregister_mask_source("whole")
    """
    _REGISTRY.register(name, fn, config_cls, replace)


def unregister_mask_source(name: str) -> None:
    """Remove a registered mask source (unknown names raise :class:`Sem3RError`)."""
    _REGISTRY.unregister(name)


def get_mask_source(name: str) -> Entry:
    """The registered mask source ``name`` (an :class:`~sem3r.registry.Entry`; ``.load()`` gives ``(fn, config_cls)``).

    Raises:
        Sem3RError: unknown name; the message lists the registered sources.
    """
    return _REGISTRY.get(name)


def make_mask_config(name: str, config: Any = None, **options: Any) -> Any:
    """Build and validate the config of source ``name`` (``options`` override ``config``'s fields).

    Example:
        >>> make_mask_config("oversegment", k=2.0).k
        2.0
    """
    return _REGISTRY.make_config(name, config, **options)


def view_masks(scene: Scene, source: str = "gt", config: Any = None, **options: Any) -> np.ndarray:
    """Per-view 2D instance masks of ``scene`` from the named source.

    Args:
        scene: the views (and, for some sources, geometry or ground truth).
        source: a name in :data:`MASK_SOURCES` (``gt``, ``oversegment``, ``sam`` or a registered one).
        config: the source's config instance (default: its defaults).
        **options: config fields to override, e.g. ``k=2.0``.

    Returns:
        ``(N, H, W) int32`` masks, -1 = unlabelled; ids are local to each view.

    Raises:
        Sem3RError: unknown source or option, input the source cannot use, or a source that
            returned masks of the wrong shape.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(num_views=2, height=24, width=32, num_points=0)).scene
        >>> masks = view_masks(scene, "gt", seed=1)
        >>> masks.shape, masks.dtype.name, bool(((masks >= 0) == (scene.instance_masks >= 0)).all())
        ((2, 24, 32), 'int32', True)
    """
    if not isinstance(scene, Scene):
        raise Sem3RError(f"view_masks needs a Scene, got {type(scene).__name__}")
    fn, _ = get_mask_source(source).load()
    masks = np.asarray(fn(scene, make_mask_config(source, config, **options)))
    expected = (scene.num_views, scene.height, scene.width)
    if masks.shape != expected or not np.issubdtype(masks.dtype, np.integer):
        raise Sem3RError(f"mask source '{source}' returned {masks.dtype} {masks.shape}, expected int {expected}")
    if masks.size and masks.min() < -1:
        raise Sem3RError(f"mask source '{source}' returned ids below -1 (min {masks.min()})")
    return masks.astype(np.int32)


# ---------------------------------------------------------------------------------------------- gt
@dataclass
class GTMaskConfig:
    """Options of the ``gt`` source.

    The error rates turn the ground truth into what a real 2D instance segmenter gives, to measure
    how a method copes with it: each view independently misses objects, merges touching ones and
    drops small ones.

    Attributes:
        seed: seeds the per-view permutations of the ids and the errors.
        miss_rate: probability that a view misses an object (its pixels become -1).
        merge_rate: probability that two objects touching in a view are merged into one mask.
        min_area: objects covering fewer pixels in a view are missed there.
    """

    seed: int = 0
    miss_rate: float = 0.0
    merge_rate: float = 0.0
    min_area: int = 0

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        for name in ("miss_rate", "merge_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise Sem3RError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.min_area < 0:
            raise Sem3RError(f"min_area must be non-negative, got {self.min_area}")


def _touching_pairs(view: np.ndarray) -> np.ndarray:
    """``(K, 2)`` distinct pairs of labels >= 0 that touch (4-neighbourhood) in an ``(H, W)`` map."""
    pairs = [np.stack([view[:, :-1].reshape(-1), view[:, 1:].reshape(-1)], 1),
             np.stack([view[:-1, :].reshape(-1), view[1:, :].reshape(-1)], 1)]
    pairs = np.concatenate(pairs)
    pairs = pairs[(pairs >= 0).all(1) & (pairs[:, 0] != pairs[:, 1])]
    return np.unique(np.sort(pairs, axis=1), axis=0)


def _degrade(view: np.ndarray, config: GTMaskConfig, rng: np.random.Generator) -> np.ndarray:
    """One view's ids ``0..k-1`` (-1 none) after misses, small-object drops and merges."""
    labelled = view >= 0
    ids, inverse, counts = np.unique(view[labelled], return_inverse=True, return_counts=True)
    keep = (counts >= config.min_area) & (rng.random(len(ids)) >= config.miss_rate)
    dense = np.full(view.shape, -1, np.int64)
    dense[labelled] = np.where(keep[inverse], inverse, -1)
    pairs = _touching_pairs(dense)
    merged = pairs[rng.random(len(pairs)) < config.merge_rate]
    graph = sp.coo_matrix((np.ones(len(merged)), (merged[:, 0], merged[:, 1])), shape=(len(ids), len(ids)))
    _, component = connected_components(graph, directed=False)
    out = np.full(view.shape, -1, np.int64)
    hit = dense >= 0
    out[hit] = component[dense[hit]]
    return out


def gt_masks(scene: Scene, config: GTMaskConfig) -> np.ndarray:
    """The Scene's ground-truth instance masks with per-view random ids (the ``gt`` source).

    In every view the ids present are mapped to a random permutation of ``0 .. k-1`` (``k`` ids in
    that view), so each view's partition is unchanged and nothing links two views. With error
    rates (:class:`GTMaskConfig`) each view first loses and merges objects independently.

    Args:
        scene: a Scene with ``instance_masks (N, H, W) int32``.
        config: the seed and error rates.

    Returns:
        ``(N, H, W) int32``, -1 where the ground truth is -1 (or the object was missed).

    Raises:
        Sem3RError: the Scene has no instance masks.

    Example:
        >>> s = Scene(images=np.zeros((1, 1, 4, 3), np.uint8), intrinsics=np.eye(3)[None],
        ...           cam_from_world=np.eye(3, 4)[None], instance_masks=np.array([[[5, 5, -1, 9]]]))
        >>> out = gt_masks(s, GTMaskConfig(seed=0))
        >>> bool(out[0, 0, 0] == out[0, 0, 1]), int(out[0, 0, 2]), sorted(out[0, 0, [0, 3]].tolist())
        (True, -1, [0, 1])
    """
    if scene.instance_masks is None:
        raise Sem3RError("the 'gt' mask source needs the scene's ground-truth instance_masks, which it lacks")
    config.validate()
    rng = np.random.default_rng(config.seed)
    out = np.full(scene.instance_masks.shape, -1, np.int32)
    for i, view in enumerate(scene.instance_masks):
        degraded = _degrade(view, config, rng)
        labelled = degraded >= 0
        ids, inverse = np.unique(degraded[labelled], return_inverse=True)
        out[i][labelled] = rng.permutation(len(ids)).astype(np.int32)[inverse]
    return out


# ------------------------------------------------------------------------------------- oversegment
@dataclass
class OversegmentConfig:
    """Options of the ``oversegment`` source (Felzenszwalb-Huttenlocher on the pixel grid).

    The weight of the edge between neighbouring pixels ``p`` and ``q`` is

    ``color_weight * |rgb_p - rgb_q| + normal_weight * (1 - n_p . n_q) + depth_weight * plane``,

    with colours in ``[0, 1]`` after a Gaussian blur of ``sigma`` pixels. ``plane = max(0, offset -
    depth_noise * r^2) / r`` is the relative distance of a neighbour from a pixel's tangent plane
    beyond what sensor noise explains: ``offset = max(|n_p . (x_q - x_p)|, |n_q . (x_q - x_p)|)``
    (scene units) with ``n`` the unit normals of the per-pixel 3D points (cross product of
    image-space point differences, each taken toward the neighbour with the smaller jump so that
    normals next to an occlusion edge come from their own surface) and ``r`` the mean distance of
    the two points to the camera. It is zero on any smooth surface and the size of the jump at an
    occlusion edge. An edge between two pixels with geometry and ``plane > depth_cut`` is removed
    from the graph, so no segment crosses a depth discontinuity larger than ``depth_noise * r^2 +
    depth_cut * r`` (on exact depth 1 % of the distance, 3 cm at 3 m; on the 7-Scenes Kinect frames
    2.3 + 2 = 4.3 cm at 2 m). The normals are those of the points smoothed over ``normal_sigma``
    pixels along rows and columns up to the next jump in distance larger than that threshold.

    Pixels without geometry (depth 0 or non-finite points: Kinect shadows beside occlusion edges,
    black or shiny surfaces, out of range) are *unknown*, never a cut: their edges are weighted by
    colour alone and kept, so holes join a neighbouring segment; but they never bridge two segments
    that hold pixels with geometry (``anchored`` in
    :func:`~sem3r.geometry.felzenszwalb.felzenszwalb_segment`), so a shadow along an occlusion edge
    cannot glue an object to the wall behind it. A segment made only of such pixels (a large hole
    of its own colour) is returned as ``-1``. Without any geometry in the Scene the segmentation is
    by colour alone and every pixel is labelled.

    Defaults, chosen on the 7-Scenes sample (20 Kinect v1 frames, 640 x 480, ~10 % invalid depth)
    and on ``sem3r synth`` rooms (exact depth, and ``--sensor kinect``):

    * ``depth_noise = None`` estimates the noise per view (:func:`estimate_depth_noise`): on Kinect
      frames the depth of neighbours on a flat wall differs by one disparity step, ``~2.85e-3 r^2``
      (1.1 cm at 2 m; the sensor's noise is ``~1.4e-3 r^2``, Khoshelham & Oude Elberink 2012), and
      the 99.5th percentile of the offsets on locally planar parts of those frames is ``0.0055 r^2``;
      the estimate gives ``0.0057`` there and 0 on exact depth, where the cut stays at 1 %. With a
      fixed ``depth_noise = 0`` (the former behaviour) the real frames shatter (470 segments per
      view, 7 % of the pixels in lifted instances).
    * ``normal_sigma = 2``: normals from single-pixel differences of quantised depth are noise
      (over flat-wall edges the 90th percentile of ``1 - n_p . n_q`` is 0.85, which swamps the colour
      term); smoothing over 2 pixels brings it to 0.015. On synthetic rooms it also raised AP25.
    * ``k`` scales with the image area, so that a segment covers the same fraction of the image at
      any resolution, and ``min_size`` with it (a fraction of the area) but never below 16 pixels,
      below which small images shatter into slivers along the blurred colour edges. At 256 x 320 both
      are the former constants (``k = 0.5``, ``min_size = 32``); a 640 x 480 Kinect frame gets
      ``k = 1.875``, ``min_size = 120`` and ~150 segments.

    Attributes:
        k: Felzenszwalb scale (larger: larger segments), in edge-weight units times pixels, for an
            image of ``reference_pixels`` pixels; the scale used is ``k * H * W / reference_pixels``.
        reference_pixels: the image area (pixels) at which ``k`` applies as given (``None``: ``k``
            is used as given at every image size).
        min_size: segments smaller than this many pixels merge into a neighbour (``None``:
            ``min_fraction`` of the image area, at least 16 pixels).
        min_fraction: minimum segment area as a fraction of the image area, used when ``min_size``
            is ``None`` (3.9e-4: 32 pixels at 256 x 320, 120 at 640 x 480).
        color_weight: weight of the colour difference (colours in [0, 1], Euclidean in RGB).
        normal_weight: weight of the normal change ``1 - n_p . n_q`` (in [0, 2]).
        depth_weight: weight of the relative tangent-plane distance beyond the noise (unitless).
        depth_cut: relative tangent-plane distance beyond the noise above which an edge between two
            pixels with geometry is cut (a fraction of the distance to the camera; ``None``: never).
        depth_noise: depth noise allowance in 1 / scene unit (1/m): offsets up to
            ``depth_noise * r^2`` from the tangent plane count as noise (0 for exact depth;
            ``None``: estimated per view).
        normal_sigma: smoothing of the point map before the normals of the normal term, in pixels
            (0: none).
        sigma: Gaussian blur of the image before colour differences, in pixels (0: none).
        connectivity: pixel neighbourhood, 4 or 8.
        point_source: ``"auto"``, ``"depth"`` or ``"points"`` (see :meth:`Scene.points`).
    """

    k: float = 0.5
    reference_pixels: int | None = 256 * 320
    min_size: int | None = None
    min_fraction: float = 3.9e-4
    color_weight: float = 1.0
    normal_weight: float = 1.0
    depth_weight: float = 20.0
    depth_cut: float | None = 0.01
    depth_noise: float | None = None
    normal_sigma: float = 2.0
    sigma: float = 0.8
    connectivity: int = 8
    point_source: str = "auto"

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid option."""
        for name in ("k", "color_weight", "normal_weight", "depth_weight", "sigma", "normal_sigma"):
            if not getattr(self, name) >= 0:
                raise Sem3RError(f"oversegment option {name} must be non-negative, got {getattr(self, name)}")
        if self.depth_noise is not None and not self.depth_noise >= 0:
            raise Sem3RError(f"oversegment depth_noise must be non-negative or None, got {self.depth_noise}")
        if self.depth_cut is not None and not self.depth_cut > 0:
            raise Sem3RError(f"oversegment depth_cut must be positive or None, got {self.depth_cut}")
        if self.reference_pixels is not None and not self.reference_pixels >= 1:
            raise Sem3RError(f"oversegment reference_pixels must be at least 1 or None, got {self.reference_pixels}")
        if self.min_size is not None and self.min_size < 0:
            raise Sem3RError(f"oversegment min_size must be non-negative or None, got {self.min_size}")
        if not 0 <= self.min_fraction < 1:
            raise Sem3RError(f"oversegment min_fraction must lie in [0, 1), got {self.min_fraction}")
        if self.connectivity not in (4, 8):
            raise Sem3RError(f"oversegment connectivity must be 4 or 8, got {self.connectivity}")

    def scale_for(self, height: int, width: int) -> tuple[float, int]:
        """The Felzenszwalb ``(k, min_size)`` used on a ``height x width`` image.

        Example:
            >>> OversegmentConfig().scale_for(256, 320), OversegmentConfig().scale_for(480, 640)
            ((0.5, 32), (1.875, 120))
            >>> OversegmentConfig().scale_for(48, 64), OversegmentConfig(min_size=10, reference_pixels=None).scale_for(480, 640)
            ((0.01875, 16), (0.5, 10))
        """
        area = int(height) * int(width)
        k = self.k * area / self.reference_pixels if self.reference_pixels else self.k
        min_size = self.min_size if self.min_size is not None else max(_MIN_SEGMENT_PIXELS, round(self.min_fraction * area))
        return float(k), int(min_size)


_MIN_SEGMENT_PIXELS = 16
"""Floor of the automatic ``min_size`` of :class:`OversegmentConfig` (a 4 x 4 patch)."""


def _grid_normals(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Unit normals ``(H, W, 3) float64`` of a per-pixel point map ``(H, W, 3)``; NaN where undefined.

    Along each image axis the difference to the neighbour with the smaller jump is used (forward or
    backward), so a pixel next to an occlusion edge takes its tangent from its own surface.
    """
    p = np.where(valid[..., None], points.astype(np.float64), np.nan)
    tangents = []
    for axis in (1, 0):
        step = np.diff(p, axis=axis)
        forward = np.pad(step, [(0, 1) if a == axis else (0, 0) for a in range(3)], constant_values=np.nan)
        backward = np.pad(step, [(1, 0) if a == axis else (0, 0) for a in range(3)], constant_values=np.nan)
        fn, bn = np.linalg.norm(forward, axis=-1), np.linalg.norm(backward, axis=-1)
        use_forward = np.isnan(bn) | (fn <= bn)
        tangents.append(np.where(use_forward[..., None], forward, backward))
    normal = np.cross(tangents[0], tangents[1])
    length = np.linalg.norm(normal, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(length > 0, normal / length, np.nan)


def _smooth_points(points: np.ndarray, valid: np.ndarray, right: np.ndarray, down: np.ndarray, sigma: float) -> np.ndarray:
    """Edge-stopping Gaussian smoothing ``(H, W, 3) float64`` of a point map, along rows then columns.

    A pixel averages the valid points reachable along its row (then its column) within ``3 sigma``
    pixels without crossing a cut: ``right (H, W)`` / ``down (H, W)`` say whether pixel ``(r, c)``
    is linked to ``(r, c + 1)`` / ``(r + 1, c)`` (the last column / row is ignored). Pixels without
    a valid point are NaN.
    """
    radius = max(1, int(np.ceil(3 * sigma)))
    out = np.where(valid[..., None], points.astype(np.float64), 0.0)
    weight = valid.astype(np.float64)
    for transpose, link in ((False, right), (True, down)):
        if transpose:  # work along the last image axis
            out, weight, link = out.transpose(1, 0, 2), weight.T, link.T
        n = out.shape[1]
        acc, total = out * weight[..., None], weight.copy()
        forward, backward = np.ones(weight.shape, bool), np.ones(weight.shape, bool)
        for d in range(1, min(radius, n - 1) + 1):
            g = np.exp(-0.5 * (d / sigma) ** 2)
            forward = forward[:, : n - d] & link[:, d - 1 : n - 1]  # column c reaches c + d
            backward = backward[:, 1:] & link[:, : n - d]  # column c + d reaches c
            gf = g * forward * weight[:, d:]
            acc[:, : n - d] += gf[..., None] * out[:, d:]
            total[:, : n - d] += gf
            gb = g * backward * weight[:, : n - d]
            acc[:, d:] += gb[..., None] * out[:, : n - d]
            total[:, d:] += gb
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(total[..., None] > 0, acc / total[..., None], 0.0)
        weight = (total > 0).astype(np.float64)
        if transpose:
            out, weight = out.transpose(1, 0, 2), weight.T
    return np.where(valid[..., None], out, np.nan)


def _plane_offsets(points: np.ndarray, normals: np.ndarray, valid: np.ndarray, center: np.ndarray,
                   edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangent-plane offsets of the grid ``edges (E, 2)`` of one view (see :class:`OversegmentConfig`).

    Returns:
        ``offset (E,)`` in scene units (0 unless both ends are valid), the mean distance ``r (E,)``
        of the two ends to the camera (1 unless both are valid), and the ``(E,)`` both-valid mask.
    """
    a, b = edges[:, 0], edges[:, 1]
    pts = points.reshape(-1, 3).astype(np.float64)
    normals = normals.reshape(-1, 3)
    ok = valid.reshape(-1)
    both = ok[a] & ok[b]
    with np.errstate(invalid="ignore"):
        r = np.sqrt(((pts - center) ** 2).sum(axis=1))
        delta = pts[b] - pts[a]
        delta[~both] = 0.0
        first, second = np.abs((normals[a] * delta).sum(axis=1)), np.abs((normals[b] * delta).sum(axis=1))
    offset = np.fmax(first, second)  # the larger of the two where both are defined
    missing = np.isnan(offset)
    offset[missing] = np.sqrt((delta[missing] ** 2).sum(axis=1))  # no tangent plane: the raw jump
    offset[~both] = 0.0
    dist = np.where(both, np.maximum(0.5 * (r[a] + r[b]), 1e-12), 1.0)
    return offset, dist, both


def estimate_depth_noise(offset: np.ndarray, dist: np.ndarray, both: np.ndarray) -> float:
    """The ``depth_noise`` of one view when it is not given: 2.5 times the 75th percentile of ``offset / r^2`` over the edges between pixels with geometry.

    On the 7-Scenes Kinect v1 frames that percentile is ``0.0023`` in every view (most neighbours on
    a surface are one disparity step, ``2.85e-3 r^2``, apart or on the same step), so the allowance
    is ``0.0057 r^2``, just above the 99.5th percentile of the offsets on their flat walls. On exact
    (synthetic) depth the offsets are zero except at occlusion edges, creases and curved surfaces,
    6 - 14 % of the edges from 256 x 320 down to 96 x 128 pixels, so the estimate is 0. It fails
    (too low) on a view where fewer than a quarter of the edges see the noise; pass ``depth_noise``
    explicitly then. :func:`oversegment_masks` passes every third edge of the 8-neighbourhood.

    Example:
        >>> estimate_depth_noise(np.array([0.0, 0.008, 0.008, 0.008, 0.5]), np.full(5, 2.0), np.array([True] * 4 + [False]))
        0.005
    """
    if not both.any():
        return 0.0
    return float(2.5 * np.percentile(offset[both] / dist[both] ** 2, 75))


def _edge_weights(image: np.ndarray, points: np.ndarray | None, valid: np.ndarray | None, center: np.ndarray | None,
                  edges: np.ndarray, config: OversegmentConfig) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(E,)`` of the grid ``edges (E, 2)`` of one view and a ``(E,) bool`` keep mask (see :class:`OversegmentConfig`).

    Edges touching a pixel without geometry keep their colour weight and are never cut. The normals
    of both geometric terms come from the points smoothed along rows and columns up to the next
    jump in distance larger than the cut threshold (``depth_noise * r^2 + depth_cut * r``): single-
    pixel differences of quantised sensor depth give normals tilted by tens of degrees, which hide
    occlusion edges from the tangent-plane test.
    """
    rgb = image.astype(np.float64) / 255.0
    if config.sigma > 0:
        rgb = gaussian_filter(rgb, sigma=(config.sigma, config.sigma, 0))
    rgb = rgb.reshape(-1, 3)
    a, b = edges[:, 0], edges[:, 1]
    weights = config.color_weight * np.linalg.norm(rgb[a] - rgb[b], axis=1)
    keep = np.ones(len(edges), bool)
    if points is None:
        return weights, keep
    h, w = valid.shape
    normals = _grid_normals(points, valid)
    if config.depth_noise is None:
        noise = estimate_depth_noise(*_plane_offsets(points, normals, valid, center, edges[::3]))  # a percentile: a third will do
    else:
        noise = config.depth_noise
    if config.normal_sigma > 0:
        ok = valid.reshape(-1)
        with np.errstate(invalid="ignore"):
            r = np.linalg.norm(points.reshape(-1, 3).astype(np.float64) - center, axis=1)
        mean = 0.5 * (r[a] + r[b])
        cut = np.inf if config.depth_cut is None else config.depth_cut
        linked = ok[a] & ok[b] & (np.abs(r[a] - r[b]) <= noise * mean**2 + cut * mean)
        right, down = np.zeros(h * w, bool), np.zeros(h * w, bool)
        horizontal = (b - a == 1) & (a // w == b // w)
        right[a[horizontal]] = linked[horizontal]
        down[a[b - a == w]] = linked[b - a == w]
        smoothed = _smooth_points(points, valid, right.reshape(h, w), down.reshape(h, w), config.normal_sigma)
        normals = _grid_normals(smoothed, valid)
    offset, dist, both = _plane_offsets(points, normals, valid, center, edges)
    plane = np.where(both, np.maximum(offset - noise * dist**2, 0.0) / dist, 0.0)
    normals = normals.reshape(-1, 3)
    with np.errstate(invalid="ignore"):
        bend = 1.0 - np.einsum("ij,ij->i", normals[a], normals[b])
    bend = np.where(both & np.isfinite(bend), np.clip(bend, 0.0, 2.0), 0.0)
    weights = weights + config.normal_weight * bend + config.depth_weight * plane
    if config.depth_cut is not None:
        keep = ~both | (plane <= config.depth_cut)
    return weights, keep


def oversegment_masks(scene: Scene, config: OversegmentConfig) -> np.ndarray:
    """Classical over-segmentation of every view (the ``oversegment`` source; see :class:`OversegmentConfig`).

    Args:
        scene: images, and depth or world points when available.
        config: graph weights and Felzenszwalb parameters.

    Returns:
        ``(N, H, W) int32`` segment ids ``0 .. L_i-1`` per view, numbered in raster order of each
        segment's first pixel; ``-1`` on segments without a single pixel with geometry (only when the
        scene has geometry; without it every pixel is labelled).

    Example:
        >>> img = np.zeros((1, 8, 8, 3), np.uint8)
        >>> img[0, :, 4:] = 255
        >>> s = Scene(images=img, intrinsics=np.eye(3)[None], cam_from_world=np.eye(3, 4)[None])
        >>> oversegment_masks(s, OversegmentConfig(min_size=4, sigma=0.0))[0, 0].tolist()
        [0, 0, 0, 0, 1, 1, 1, 1]
    """
    n, h, w = scene.num_views, scene.height, scene.width
    has_geometry = scene.depth is not None or scene.world_points is not None
    points, valid = scene.points(config.point_source) if has_geometry else (None, None)
    centers = camera_centers(scene.cam_from_world)
    edges = image_grid_edges(h, w, config.connectivity)
    k, min_size = config.scale_for(h, w)
    out = np.empty((n, h, w), np.int32)
    for i in tqdm(range(n), desc="2D over-segmentation", unit="view", delay=1.0, leave=False):
        weights, keep = _edge_weights(scene.images[i], None if points is None else points[i],
                                      None if valid is None else valid[i], centers[i], edges, config)
        anchored = None if valid is None else valid[i].reshape(-1)
        labels = felzenszwalb_segment(h * w, edges[keep], weights[keep], k, min_size, anchored=anchored)
        if anchored is not None:  # segments made only of pixels without geometry: unlabelled
            solid = np.bincount(labels, weights=anchored, minlength=labels.max() + 1) > 0
            labels = np.where(solid[labels], np.cumsum(solid)[labels] - 1, -1)
        out[i] = labels.reshape(h, w)
    return out


# --------------------------------------------------------------------------------------------- sam
@dataclass
class SamMaskConfig:
    """Options of the ``sam`` source (automatic masks from a SAM-family model via ``transformers``).

    Every view is prompted with a ``points_per_side x points_per_side`` grid of single foreground
    points at the centres of a regular grid; each point yields ``3`` candidate masks
    (``multimask_output``). Candidates are kept when their predicted IoU is at least
    ``pred_iou_threshold`` and their stability score (area of ``logits > +stability_offset`` over
    area of ``logits > -stability_offset``) at least ``stability_threshold`` (the thresholds of
    SAM's automatic mask generator). Kept masks, best predicted IoU first, take the pixels no
    earlier mask took; a mask survives when at least ``min_area`` pixels and ``min_keep_fraction``
    of its own area remain, which removes duplicates and masks mostly covered by better ones.

    Attributes:
        model: local folder or hub id of a ``SamModel`` with its ``SamProcessor``.
        points_per_side: prompt grid size per view.
        points_per_batch: prompts per forward pass of the mask decoder.
        pred_iou_threshold: minimum predicted IoU of a candidate.
        stability_threshold: minimum stability score of a candidate.
        stability_offset: logit offset of the stability score.
        min_area: minimum pixels a mask keeps after the greedy assignment.
        min_keep_fraction: minimum fraction of its own area a mask keeps after the assignment.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    """

    model: str = "facebook/sam-vit-base"
    points_per_side: int = 16
    points_per_batch: int = 64
    pred_iou_threshold: float = 0.88
    stability_threshold: float = 0.95
    stability_offset: float = 1.0
    min_area: int = 64
    min_keep_fraction: float = 0.5
    device: str = "auto"

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid option."""
        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise Sem3RError(f"sam points_per_side and points_per_batch must be positive, got {self.points_per_side}, {self.points_per_batch}")
        if not 0 <= self.min_keep_fraction <= 1:
            raise Sem3RError(f"sam min_keep_fraction must lie in [0, 1], got {self.min_keep_fraction}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise Sem3RError(f"sam device must be auto, cpu or cuda, got '{self.device}'")


def assign_masks(masks: np.ndarray, scores: np.ndarray, min_area: int = 1, min_keep_fraction: float = 0.0) -> np.ndarray:
    """Greedy non-overlapping assignment of candidate masks to pixels, best score first.

    Args:
        masks: ``(M, H, W) bool`` candidates.
        scores: ``(M,) float`` higher is better (ties: lower index first).
        min_area: a mask survives with at least this many pixels left.
        min_keep_fraction: and at least this fraction of its own area left.

    Returns:
        ``(H, W) int32`` label map ``0 .. K-1`` in order of decreasing score, -1 where no surviving
        mask covers a pixel.

    Example:
        >>> m = np.zeros((3, 1, 6), bool)
        >>> m[0, 0, :4] = True; m[1, 0, 2:] = True; m[2, 0, :4] = True
        >>> assign_masks(m, np.array([0.5, 0.9, 0.7]), min_keep_fraction=0.5)[0].tolist()
        [1, 1, 0, 0, 0, 0]
    """
    masks = np.asarray(masks, bool)
    if masks.ndim != 3 or np.shape(scores) != (len(masks),):
        raise Sem3RError(f"assign_masks needs masks (M, H, W) and scores (M,), got {masks.shape} and {np.shape(scores)}")
    out = np.full(masks.shape[1:], -1, np.int32)
    free = np.ones(masks.shape[1:], bool)
    areas = masks.sum(axis=(1, 2))
    label = 0
    for m in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        take = masks[m] & free
        left = int(take.sum())
        if left >= max(min_area, 1) and left >= min_keep_fraction * areas[m]:
            out[take] = label
            free &= ~take
            label += 1
    return out


def sam_masks(scene: Scene, config: SamMaskConfig) -> np.ndarray:
    """Automatic SAM masks of every view (the ``sam`` source; see :class:`SamMaskConfig`).

    Needs ``transformers`` (``pip install 'sem3r[vlm]'``) and the model weights (local folder, or
    a hub id with network access).

    Args:
        scene: the views (only the images are used).
        config: model and mask-generation options.

    Returns:
        ``(N, H, W) int32`` masks ``0 .. K_i-1`` per view, -1 where no mask survived.

    Raises:
        Sem3RError: ``transformers`` is missing or the model cannot be loaded.
    """
    require("transformers", "vlm", "SAM masks")
    import torch
    from transformers import SamModel, SamProcessor

    from sem3r.hub import resolve_pretrained

    device = ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
    name = resolve_pretrained(config.model, what="the SAM model", use="pass a local model folder with --sam-model")
    try:
        model = SamModel.from_pretrained(name).to(device).eval()
        processor = SamProcessor.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise Sem3RError(f"cannot load the SAM model '{config.model}': {str(exc).splitlines()[0]}") from None
    n, h, w = scene.num_views, scene.height, scene.width
    side = config.points_per_side
    grid = (np.arange(side) + 0.5) / side
    gx, gy = np.meshgrid(grid * w - 0.5, grid * h - 0.5)
    prompts = np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1)  # (P, 2) pixel (x, y)
    out = np.full((n, h, w), -1, np.int32)
    for i in range(n):
        inputs = processor(images=scene.images[i], return_tensors="pt")
        resized = inputs["reshaped_input_sizes"][0].numpy().astype(np.float64)  # (h', w')
        scaled = (prompts + 0.5) * np.array([resized[1] / w, resized[0] / h]) - 0.5
        candidates, scores = [], []
        with torch.no_grad():
            embeddings = model.get_image_embeddings(inputs["pixel_values"].to(device))
            for start in range(0, len(scaled), config.points_per_batch):
                batch = torch.as_tensor(scaled[start : start + config.points_per_batch], dtype=torch.float32, device=device)
                result = model(image_embeddings=embeddings, input_points=batch[None, :, None, :],
                               input_labels=torch.ones((1, len(batch), 1), dtype=torch.long, device=device),
                               multimask_output=True)
                logits = processor.image_processor.post_process_masks(
                    result.pred_masks.cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"], binarize=False
                )[0].reshape(-1, h, w)
                iou = result.iou_scores.cpu().reshape(-1)
                hi = (logits > config.stability_offset).flatten(1).sum(1).float()
                lo = (logits > -config.stability_offset).flatten(1).sum(1).float()
                stability = torch.where(lo > 0, hi / lo.clamp(min=1), torch.zeros_like(lo))
                keep = (iou >= config.pred_iou_threshold) & (stability >= config.stability_threshold) & (lo > 0)
                candidates.append((logits[keep] > 0).numpy())
                scores.append(iou[keep].numpy())
        masks = np.concatenate(candidates) if candidates else np.zeros((0, h, w), bool)
        out[i] = assign_masks(masks, np.concatenate(scores), config.min_area, config.min_keep_fraction)
    return out


register_mask_source("gt", gt_masks, GTMaskConfig)
register_mask_source("oversegment", oversegment_masks, OversegmentConfig)
register_mask_source("sam", sam_masks, SamMaskConfig)
