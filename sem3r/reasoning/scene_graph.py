"""The scene graph: the reconstructed objects with gravity-aligned oriented 3D boxes.

:func:`build_scene_graph` turns a :class:`~sem3r.scene.Scene` with geometry (depth or world points)
and 3D-consistent ``instance_masks`` into a :class:`SceneGraph`, the structure a spatial QA engine
reads to answer VSI-Bench / SPAR-Bench questions: object counts per label, object sizes, closest-point
distances between objects, the floor area of the room, object depths in a camera, camera centres and
viewing directions, per-view visibility and the order in which objects first appear.

Choices (the papers leave them open):

* **Up direction.** The rule of the BEV renderer (:func:`sem3r.reasoning.bev.resolve_up`):
  ``SceneGraphConfig.up`` when given (a vector or an axis name such as ``"+z"``), else
  ``metadata['up']`` / ``metadata['up_axis']``, else ``+z`` for synthetic scenes, else the mean of
  the cameras' up directions (the ``-y`` axis of every OpenCV camera in the world).
* **Object points** are the fused per-pixel points of each instance id, averaged per voxel of
  ``voxel_size``, so dense and sparse views weigh the same and closest-point queries stay small.
  The centroid is the mean of these voxel points (an area-weighted mean of the *visible* surface).
* **Oriented boxes** are gravity aligned: one axis is the up direction, the other two come from the
  minimum-area rectangle of the points projected on the ground plane (rotating calipers over the
  edges of their 2D convex hull; PCA when the projection is degenerate). The extents along the
  three axes are the ``box_percentile`` / ``100 - box_percentile`` percentiles, so a few stray
  points (flying pixels at depth edges) do not inflate a box; 0 keeps the exact bounds.
* **Floor height** is the ``floor_percentile`` percentile of all scene points along up.
* **Floor area** (VSI-Bench "room size") is the area of the 2D occupancy of *all* scene points on a
  ground grid of ``floor_cell`` metres, closed morphologically and with holes filled: unlike the
  convex hull it follows L-shaped rooms, and filling closes the floor hidden under furniture.
* **Object depth** in a view is the camera ``z`` of the object's centroid (``reduce="centroid"``)
  or the median camera ``z`` of its points (``reduce="median"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry.voxels import voxel_keys
from sem3r.instances.structure import ground_basis
from sem3r.reasoning.bev import resolve_up
from sem3r.scene import Scene


@dataclass
class SceneObject:
    """One object of the scene graph.

    Attributes:
        id: instance id as in ``Scene.instance_masks``.
        label: class name (``""`` when the instance table does not know it).
        score: confidence in ``[0, 1]`` from the instance table (1 when absent).
        points: ``(M, 3) float32`` world points, one per occupied voxel.
        centroid: ``(3,) float64`` mean of ``points``.
        box_center: ``(3,) float64`` centre of the oriented box, world frame.
        box_size: ``(3,) float64`` extents along the box axes: length >= width, then height along up.
        box_rotation: ``(3, 3) float64`` ``world_from_box``; columns are box x (length), box y
            (width) and up, a right-handed rotation.
        visible_pixels: ``(N,) int64`` labelled pixels of this id in every view.
        first_view: first view in which the object is visible, -1 when none.
    """

    id: int
    label: str
    score: float
    points: np.ndarray
    centroid: np.ndarray
    box_center: np.ndarray
    box_size: np.ndarray
    box_rotation: np.ndarray
    visible_pixels: np.ndarray
    first_view: int

    def corners(self) -> np.ndarray:
        """The 8 box corners ``(8, 3) float64``; corner ``i`` takes the ``+`` side of box axis ``k``
        when bit ``k`` of ``i`` is set (bit 0: x, bit 1: y, bit 2: up)."""
        bits = (np.arange(8)[:, None] >> np.arange(3)) & 1
        local = (bits - 0.5) * self.box_size
        return self.box_center + local @ self.box_rotation.T

    @cached_property
    def kdtree(self):
        """A ``scipy.spatial.cKDTree`` over :attr:`points` (built on first use)."""
        from scipy.spatial import cKDTree

        return cKDTree(np.asarray(self.points, np.float64))


@dataclass
class SceneGraph:
    """Objects, cameras and room geometry of a reconstructed scene.

    Attributes:
        objects: the objects, sorted by id.
        up: ``(3,) float64`` unit up direction in the world frame.
        ground_basis: ``(3, 3) float64`` ``world_from_ground``; columns ``e1, e2, up`` with
            ``e1, e2`` spanning the ground plane (right-handed).
        floor_height: floor position along ``up`` (metres, ``points @ up`` units).
        floor_area: area of the room's footprint in square metres (see the module docstring).
        cam_from_world: ``(N, 3, 4) float64`` OpenCV extrinsics.
        intrinsics: ``(N, 3, 3) float64``.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> syn = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64, num_points=0))
        >>> graph = build_scene_graph(syn.scene)
        >>> graph.up.round(3).tolist(), len(graph.objects) > 0
        ([0.0, 0.0, 1.0], True)
    """

    objects: list[SceneObject]
    up: np.ndarray
    ground_basis: np.ndarray
    floor_height: float
    floor_area: float
    cam_from_world: np.ndarray
    intrinsics: np.ndarray
    _by_id: dict[int, SceneObject] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {o.id: o for o in self.objects}

    @property
    def num_views(self) -> int:
        return len(self.cam_from_world)

    def object(self, instance_id: int) -> SceneObject:
        """The object with ``instance_id``; raises :class:`Sem3RError` when absent."""
        if instance_id not in self._by_id:
            raise Sem3RError(f"instance id {instance_id} is not in the scene graph")
        return self._by_id[instance_id]

    def by_label(self, label: str) -> list[SceneObject]:
        """Objects whose label equals ``label`` (exact match), sorted by id."""
        return [o for o in self.objects if o.label == label]

    def labels(self) -> list[str]:
        """Sorted unique non-empty labels."""
        return sorted({o.label for o in self.objects if o.label})

    def distance(self, a: SceneObject, b: SceneObject) -> float:
        """Closest-point distance between two objects in metres (0 when their points touch)."""
        small, large = (a, b) if len(a.points) <= len(b.points) else (b, a)
        dist, _ = large.kdtree.query(np.asarray(small.points, np.float64), k=1)
        return float(dist.min())

    def _check_view(self, view: int) -> int:
        if not -self.num_views <= view < self.num_views:
            raise Sem3RError(f"view {view} is out of range for {self.num_views} views")
        return int(view)

    def camera_center(self, view: int) -> np.ndarray:
        """Centre ``(3,) float64`` of camera ``view`` in the world: ``-R^T t``."""
        pose = self.cam_from_world[self._check_view(view)]
        return -pose[:, :3].T @ pose[:, 3]

    def camera_forward(self, view: int) -> np.ndarray:
        """Unit viewing direction ``(3,) float64`` (the camera's +z axis) in the world."""
        return self.cam_from_world[self._check_view(view), 2, :3].copy()

    def object_depth(self, obj: SceneObject, view: int, reduce: Literal["centroid", "median"] = "centroid") -> float:
        """Camera ``z`` (metres) of ``obj`` in ``view``: of its centroid, or the median over its points.

        Negative values mean the object is behind the camera.
        """
        pose = self.cam_from_world[self._check_view(view)]
        if reduce == "centroid":
            return float(pose[2, :3] @ obj.centroid + pose[2, 3])
        if reduce == "median":
            return float(np.median(np.asarray(obj.points, np.float64) @ pose[2, :3] + pose[2, 3]))
        raise Sem3RError(f"unknown depth reduction '{reduce}' (expected centroid or median)")


@dataclass
class SceneGraphConfig:
    """Settings of :func:`build_scene_graph`.

    Attributes:
        voxel_size: voxel edge (m) of the per-object point downsampling.
        min_points: objects with fewer voxel points are left out.
        up: ``"auto"`` (see the module docstring) or a world up vector ``(3,)``.
        source: per-pixel points to use: ``"auto"``, ``"depth"`` or ``"points"`` (see ``Scene.points``).
        box_percentile: trimmed percentile (0-50) of the box extents; 0 keeps the exact bounds.
        floor_percentile: percentile of all points along up taken as the floor height.
        floor_cell: ground grid cell (m) of the floor-area occupancy.
        floor_closing: cells of morphological closing that bridge gaps in the occupancy.
    """

    voxel_size: float = 0.02
    min_points: int = 20
    up: str | Sequence[float] = "auto"
    source: Literal["auto", "depth", "points"] = "auto"
    box_percentile: float = 0.5
    floor_percentile: float = 1.0
    floor_cell: float = 0.1
    floor_closing: int = 2

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if not self.voxel_size > 0:
            raise Sem3RError(f"voxel_size must be positive, got {self.voxel_size}")
        if self.min_points < 1:
            raise Sem3RError(f"min_points must be at least 1, got {self.min_points}")
        if not 0 <= self.box_percentile < 50:
            raise Sem3RError(f"box_percentile must be in [0, 50), got {self.box_percentile}")
        if not 0 <= self.floor_percentile <= 100:
            raise Sem3RError(f"floor_percentile must be in [0, 100], got {self.floor_percentile}")
        if not self.floor_cell > 0:
            raise Sem3RError(f"floor_cell must be positive, got {self.floor_cell}")
        if self.floor_closing < 0:
            raise Sem3RError(f"floor_closing must be non-negative, got {self.floor_closing}")


def _min_area_axis(q: np.ndarray) -> np.ndarray:
    """Unit 2D direction ``(2,)`` of one side of the minimum-area rectangle around ``q (M, 2)``.

    Rotating calipers: the optimal rectangle has a side along a convex-hull edge, so every hull edge
    direction is tried at once. Falls back to the principal axis when the hull is degenerate.
    """
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = q[ConvexHull(q).vertices]
    except (QhullError, ValueError):
        centred = q - q.mean(axis=0)
        return np.linalg.eigh(centred.T @ centred)[1][:, -1]
    edges = np.roll(hull, -1, axis=0) - hull
    dirs = edges / np.maximum(np.linalg.norm(edges, axis=1, keepdims=True), 1e-12)
    perp = np.stack([-dirs[:, 1], dirs[:, 0]], axis=1)
    area = np.ptp(hull @ dirs.T, axis=0) * np.ptp(hull @ perp.T, axis=0)
    return dirs[int(np.argmin(area))]


def oriented_box(points: np.ndarray, basis: np.ndarray, percentile: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gravity-aligned oriented box of ``points (M, 3)``.

    Args:
        points: world points, ``M >= 1``.
        basis: ``(3, 3)`` ``world_from_ground`` from :func:`ground_basis` (last column is up).
        percentile: the extents span the ``percentile`` to ``100 - percentile`` percentiles.

    Returns:
        ``center (3,)``, ``size (3,)`` (length >= width, height) and ``world_from_box (3, 3)``.

    Example:
        >>> import numpy as np
        >>> pts = np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0], [0, 0, 3]], float)
        >>> c, s, r = oriented_box(pts, ground_basis(np.array([0, 0, 1.0])))
        >>> c.round(6).tolist(), s.round(6).tolist()
        ([1.0, 0.5, 1.5], [2.0, 1.0, 3.0])
    """
    g = np.asarray(points, np.float64) @ basis
    a = _min_area_axis(g[:, :2]) if len(g) >= 3 else np.array([1.0, 0.0])
    b = np.array([-a[1], a[0]])
    local = np.stack([g[:, :2] @ a, g[:, :2] @ b, g[:, 2]], axis=1)
    lo, hi = np.percentile(local, [percentile, 100.0 - percentile], axis=0)
    if hi[1] - lo[1] > hi[0] - lo[0]:
        a, b = b, -a
        lo, hi = np.array([lo[1], -hi[0], lo[2]]), np.array([hi[1], -lo[0], hi[2]])
    mid = 0.5 * (lo + hi)
    rot = basis @ np.array([[a[0], b[0], 0.0], [a[1], b[1], 0.0], [0.0, 0.0, 1.0]])
    return rot @ mid, hi - lo, rot


def floor_area(points: np.ndarray, basis: np.ndarray, cell: float = 0.1, closing: int = 2) -> float:
    """Footprint area (m^2) of ``points (P, 3)``: occupied ground cells, closed and hole-filled.

    Example:
        >>> import numpy as np
        >>> g = np.stack(np.meshgrid(np.arange(0, 3, 0.05), np.arange(0, 2, 0.05), [0.0]), -1).reshape(-1, 3)
        >>> round(floor_area(g + 0.025, ground_basis(np.array([0, 0, 1.0]))), 2)
        6.0
    """
    from scipy import ndimage

    if not len(points):
        return 0.0
    q = np.asarray(points, np.float64) @ basis[:, :2]
    pad = closing + 1
    ij = np.floor((q - q.min(axis=0)) / cell).astype(np.int64) + pad
    grid = np.zeros(tuple(ij.max(axis=0) + pad + 1), bool)
    grid[ij[:, 0], ij[:, 1]] = True
    if closing:
        grid = ndimage.binary_closing(grid, structure=np.ones((3, 3), bool), iterations=closing)
    return float(ndimage.binary_fill_holes(grid).sum() * cell * cell)


def _group_voxels(points: np.ndarray, ids: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Average ``points (P, 3)`` per (id, voxel); returns ``(V, 3)`` means and ``(V,)`` ids, sorted by id."""
    if not len(points):
        return np.zeros((0, 3)), np.zeros(0, np.int64)
    keys = voxel_keys(points, voxel_size)
    order = np.lexsort((keys, ids))
    ids, keys, pts = ids[order], keys[order], points[order]
    start = np.flatnonzero(np.r_[True, (ids[1:] != ids[:-1]) | (keys[1:] != keys[:-1])])
    counts = np.diff(np.r_[start, len(ids)])
    return np.add.reduceat(pts, start, axis=0) / counts[:, None], ids[start]


def build_scene_graph(scene: Scene, config: SceneGraphConfig | None = None) -> SceneGraph:
    """Build the :class:`SceneGraph` of a scene with geometry and 3D-consistent instance masks.

    Args:
        scene: needs ``instance_masks`` and depth or world points; labels and scores come from
            ``scene.instances`` (ids missing there get label ``""`` and score 1).
        config: the settings (defaults when ``None``).

    Returns:
        The graph; objects with fewer than ``config.min_points`` voxel points are left out.

    Raises:
        Sem3RError: no instance masks, no geometry, an invalid config or up vector.
    """
    config = config or SceneGraphConfig()
    config.validate()
    if scene.instance_masks is None:
        raise Sem3RError("the scene has no instance masks; run an instance segmentation first")
    scene.require_dense_geometry("the scene has no geometry (depth or world points); reconstruct it first")
    up = resolve_up(scene, config.up)
    basis = ground_basis(up)
    world, valid = scene.points(config.source)
    all_points = np.asarray(world[valid], np.float64)
    inst = scene.instance_masks
    labelled = valid & (inst >= 0)
    means, owner = _group_voxels(np.asarray(world[labelled], np.float64), inst[labelled].astype(np.int64), config.voxel_size)
    obj_ids, first, sizes = np.unique(owner, return_index=True, return_counts=True)

    n = scene.num_views
    masks = inst.reshape(n, -1)
    seen = masks >= 0
    all_ids = np.unique(masks[seen])
    slot = np.searchsorted(all_ids, masks[seen])
    views = np.broadcast_to(np.arange(n)[:, None], masks.shape)[seen]
    visible = np.bincount(views * len(all_ids) + slot, minlength=n * len(all_ids)).reshape(n, len(all_ids))

    table = scene.instances
    rows = dict(zip(table.ids.tolist(), range(len(table))))
    objects = []
    for oid, start, size in zip(obj_ids.tolist(), first.tolist(), sizes.tolist()):
        if size < config.min_points:
            continue
        pts = means[start:start + size]
        center, extent, rot = oriented_box(pts, basis, config.box_percentile)
        counts = visible[:, int(np.searchsorted(all_ids, oid))].astype(np.int64)
        row = rows.get(oid)
        objects.append(SceneObject(
            id=int(oid),
            label=table.labels[row] if row is not None else "",
            score=float(table.scores[row]) if row is not None else 1.0,
            points=pts.astype(np.float32),
            centroid=pts.mean(axis=0),
            box_center=center,
            box_size=extent,
            box_rotation=rot,
            visible_pixels=counts,
            first_view=int(np.argmax(counts > 0)) if counts.any() else -1,
        ))
    heights = all_points @ up
    return SceneGraph(
        objects=objects,
        up=up,
        ground_basis=basis,
        floor_height=float(np.percentile(heights, config.floor_percentile)) if len(heights) else 0.0,
        floor_area=floor_area(all_points, basis, config.floor_cell, config.floor_closing),
        cam_from_world=scene.cam_from_world.copy(),
        intrinsics=scene.intrinsics.copy(),
    )
