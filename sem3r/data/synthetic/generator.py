"""Generate one synthetic scene: room layout, mesh, cameras, rendered views and ground truth.

The same :class:`SynthConfig` always gives bit-identical arrays. Randomness comes from three
independent numpy streams derived from ``seed`` (layout, cameras, surface sampling), so changing
the number of views, the image size or the camera path leaves the room itself unchanged.

Example:
    >>> syn = generate_scene(SynthConfig(seed=3, num_views=2, height=32, width=40, num_points=1000))
    >>> syn.scene.images.shape, syn.scene.depth.dtype.name, len(syn.cloud)
    ((2, 32, 40, 3), 'float32', 1000)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from sem3r.data.synthetic.cameras import CAMERA_PATHS, camera_path, intrinsics_from_fov
from sem3r.data.synthetic.categories import CATEGORIES, CATEGORY_SPLITS, CLASS_NAMES, NUM_STRUCTURE_CLASSES
from sem3r.data.synthetic.layout import RoomLayout, sample_layout
from sem3r.data.synthetic.mesh import Paint, SceneMesh, build_mesh, sample_surface
from sem3r.data.synthetic.rasterizer import rasterize
from sem3r.data.synthetic.sensor import SensorConfig, apply_sensor, resolve_sensor
from sem3r.errors import Sem3RError
from sem3r.scene import InstanceTable, PointCloud, Scene

GENERATOR_VERSION = 1
"""Bumped whenever the output for a given config changes."""

_STREAM_LAYOUT, _STREAM_CAMERAS, _STREAM_POINTS = 0, 1, 2


@dataclass
class SynthConfig:
    """Settings of a synthetic scene.

    Attributes:
        seed: seeds everything; the same config gives bit-identical output.
        num_views: number of rendered views ``N``.
        height: image height ``H`` in pixels.
        width: image width ``W`` in pixels.
        fov_deg: horizontal field of view of the pinhole cameras (degrees, square pixels).
        camera_path: ``"orbit"``, ``"walk"`` or ``"random_large"`` (see ``cameras``).
        camera_height: ``(lo, hi)`` camera heights above the floor (m).
        min_clearance: smallest distance of a camera to walls and furniture footprints (m).
        room_size_min: ``(Lx, Ly, Lz)`` lower bounds of the room extent (m).
        room_size_max: upper bounds of the room extent (m).
        min_instances: lower bound on the instances requested for a category present in a room.
        max_instances: upper bound on it (objects that do not fit are dropped).
        categories: object categories allowed in the room (``None``: all of ``CATEGORIES``).
        num_points: ``M``, points of the ground-truth cloud sampled on the mesh by area.
        near: near clipping plane of the rasteriser (m).
        sensor: sensor model applied after rendering: a preset name (``"none"``, ``"kinect"``),
            a :class:`~sem3r.data.synthetic.sensor.SensorConfig` or a dict of its fields. With
            ``"none"`` (default) the output is the perfect render, bit-identical to before the
            field existed, and ``to_dict`` leaves the field out. Other sensors add noise, holes
            and colour noise and may move the scene to another world frame (see ``sensor.py``).
    """

    seed: int = 0
    num_views: int = 8
    height: int = 256
    width: int = 256
    fov_deg: float = 60.0
    camera_path: str = "orbit"
    camera_height: tuple[float, float] = (1.2, 1.8)
    min_clearance: float = 0.4
    room_size_min: tuple[float, float, float] = (4.0, 4.0, 2.5)
    room_size_max: tuple[float, float, float] = (8.0, 7.0, 3.0)
    min_instances: int = 1
    max_instances: int = 6
    categories: tuple[str, ...] | None = None
    num_points: int = 200_000
    near: float = 0.02
    sensor: str | SensorConfig = "none"

    def __post_init__(self) -> None:
        if isinstance(self.sensor, dict):
            self.sensor = resolve_sensor(self.sensor)
        self.camera_height = tuple(float(v) for v in self.camera_height)
        self.room_size_min = tuple(float(v) for v in self.room_size_min)
        self.room_size_max = tuple(float(v) for v in self.room_size_max)
        if self.categories is not None:
            self.categories = tuple(str(c) for c in self.categories)

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.num_views < 1:
            raise Sem3RError(f"num_views must be at least 1, got {self.num_views}")
        if self.height < 8 or self.width < 8:
            raise Sem3RError(f"image size must be at least 8x8, got {self.height}x{self.width}")
        if not 1.0 < self.fov_deg < 170.0:
            raise Sem3RError(f"fov_deg must be in (1, 170), got {self.fov_deg}")
        if self.camera_path not in CAMERA_PATHS:
            raise Sem3RError(f"unknown camera_path '{self.camera_path}' (expected one of {', '.join(CAMERA_PATHS)})")
        if len(self.room_size_min) != 3 or len(self.room_size_max) != 3:
            raise Sem3RError("room_size_min and room_size_max need three values (Lx, Ly, Lz)")
        if any(a > b for a, b in zip(self.room_size_min, self.room_size_max)):
            raise Sem3RError(f"room_size_min {self.room_size_min} exceeds room_size_max {self.room_size_max}")
        if min(self.room_size_min[:2]) < 2.5 or self.room_size_min[2] < 2.3:
            raise Sem3RError(f"rooms must be at least 2.5 x 2.5 x 2.3 m, got room_size_min {self.room_size_min}")
        lo, hi = self.camera_height
        if not 0.2 <= lo <= hi <= self.room_size_min[2] - 0.2:
            raise Sem3RError(f"camera_height {self.camera_height} must lie in [0.2, room height - 0.2]")
        if not 0 <= self.min_instances <= self.max_instances:
            raise Sem3RError(f"need 0 <= min_instances <= max_instances, got {self.min_instances}, {self.max_instances}")
        if self.num_points < 0:
            raise Sem3RError(f"num_points must be non-negative, got {self.num_points}")
        if not 0 < self.near < 1.0:
            raise Sem3RError(f"near must be in (0, 1) m, got {self.near}")
        if self.min_clearance < self.near:
            raise Sem3RError(f"min_clearance ({self.min_clearance}) must exceed near ({self.near})")
        unknown = sorted(set(self.categories or ()) - set(CATEGORIES))
        if unknown:
            raise Sem3RError(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
        resolve_sensor(self.sensor)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists; ``sensor`` only when it is not ``"none"``)."""
        d = asdict(self)
        if isinstance(self.sensor, str) and self.sensor == "none":
            del d["sensor"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass
class RenderedViews:
    """Per-view renders.

    Attributes:
        images: ``(N, H, W, 3) uint8``.
        depth: ``(N, H, W) float32`` camera z-depth, 0 where nothing was hit.
        instance_masks: ``(N, H, W) int32``, -1 for structure and background.
        semantic_masks: ``(N, H, W) int32`` index into ``CLASS_NAMES``, -1 for background.
        face_ids: ``(N, H, W) int64`` visible mesh face, -1 for background.
    """

    images: np.ndarray
    depth: np.ndarray
    instance_masks: np.ndarray
    semantic_masks: np.ndarray
    face_ids: np.ndarray


def render_views(mesh: SceneMesh, paint: Paint, intrinsics: np.ndarray, cam_from_world: np.ndarray,
                 height: int, width: int, near: float = 0.02) -> RenderedViews:
    """Rasterise and shade ``N`` views of a mesh.

    Args:
        mesh: labelled mesh.
        paint: its materials and lights.
        intrinsics: ``(N, 3, 3)``.
        cam_from_world: ``(N, 3, 4)``.
        height, width: image size.
        near: near clipping plane (m).

    Returns:
        :class:`RenderedViews`; a pixel's colour is the shaded colour of the surface point its
        depth unprojects to.
    """
    n = len(cam_from_world)
    tris, normals = mesh.triangles, paint.normals
    images = np.zeros((n, height, width, 3), np.uint8)
    depth = np.zeros((n, height, width), np.float32)
    faces = np.full((n, height, width), -1, np.int64)
    for i in range(n):
        K, pose = intrinsics[i], cam_from_world[i]
        raster = rasterize(tris, normals, K, pose, height, width, near)
        pix = np.flatnonzero(raster.face_ids >= 0)
        z = raster.depth.reshape(-1)[pix]
        cam = np.stack([(pix % width - K[0, 2]) / K[0, 0] * z, (pix // width - K[1, 2]) / K[1, 1] * z, z], axis=1)
        world = (cam - pose[:, 3]) @ pose[:, :3]
        f = raster.face_ids.reshape(-1)[pix]
        images[i].reshape(-1, 3)[pix] = paint.shade(world, f)
        depth[i] = raster.depth
        faces[i] = raster.face_ids
    hit = faces >= 0
    inst = np.where(hit, mesh.face_instance_ids[np.maximum(faces, 0)], -1).astype(np.int32)
    sem = np.where(hit, mesh.face_semantic_ids[np.maximum(faces, 0)], -1).astype(np.int32)
    return RenderedViews(images, depth, inst, sem, faces)


@dataclass
class SyntheticScene:
    """A generated scene with full ground truth.

    Attributes:
        scene: the rendered views as a :class:`~sem3r.scene.Scene` (images, intrinsics,
            cam_from_world, depth, instance/semantic masks, the instance table from the mesh,
            metadata with ``class_names``, ``source='synthetic'``, ``seed``, ``metric=True``,
            ``category_splits``, ``objects``, ``room_size``).
        cloud: ground-truth labelled point cloud sampled on the mesh by area (``view_ids`` -1).
        normals: ``(M, 3) float32`` unit normals of the cloud's points.
        mesh: the labelled mesh.
        face_ids: ``(N, H, W) int64`` mesh face seen at each pixel, -1 for none: exact surface
            correspondences between views (not saved to disk).
        layout: the sampled room (object models, poses, materials), always in the synthetic
            frame (``+z`` up), also when a sensor moved the scene to another world frame.
        clean: with a sensor, the perfect render (images, depth, masks, face ids) before the
            sensor degraded it; ``None`` without one.
        holes: with a sensor, ``(N, H, W) uint16`` bitmask of why a depth pixel is missing
            (``sensor.HOLE_CAUSES``); ``None`` without one.
    """

    scene: Scene
    cloud: PointCloud
    normals: np.ndarray
    mesh: SceneMesh
    face_ids: np.ndarray = field(repr=False)
    layout: RoomLayout = field(repr=False)
    clean: RenderedViews | None = field(default=None, repr=False)
    holes: np.ndarray | None = field(default=None, repr=False)


def instance_table(mesh: SceneMesh, layout: RoomLayout, point_instance_ids: np.ndarray) -> InstanceTable:
    """One row per object of the layout, computed from the mesh.

    Boxes are the axis-aligned bounds of the instance's mesh vertices, centroids the area-weighted
    centroid of its surface, ``point_counts`` its number of ground-truth cloud points, scores 1.
    Every object is listed, also those no view sees.
    """
    k = len(layout.objects)
    inst = mesh.face_instance_ids
    sel = np.flatnonzero(inst >= 0)
    tri = mesh.triangles[sel]
    box_min = np.full((k, 3), np.inf)
    box_max = np.full((k, 3), -np.inf)
    np.minimum.at(box_min, inst[sel], tri.min(axis=1))
    np.maximum.at(box_max, inst[sel], tri.max(axis=1))
    area = mesh.face_areas()[sel]
    weighted = np.zeros((k, 3))
    np.add.at(weighted, inst[sel], area[:, None] * tri.mean(axis=1))
    total = np.bincount(inst[sel], weights=area, minlength=k)
    pts = np.asarray(point_instance_ids)
    counts = np.bincount(pts[pts >= 0], minlength=k) if len(pts) else np.zeros(k, np.int64)
    return InstanceTable(
        ids=np.arange(k, dtype=np.int32),
        labels=[o.category for o in layout.objects],
        semantic_ids=np.array([CLASS_NAMES.index(o.category) for o in layout.objects], np.int32),
        scores=np.ones(k, np.float32),
        box_min=box_min,
        box_max=box_max,
        centroids=weighted / np.maximum(total, 1e-12)[:, None],
        point_counts=counts,
    )


def generate_scene(config: SynthConfig) -> SyntheticScene:
    """Generate a furnished room, render its views and sample its ground truth.

    Args:
        config: the settings (validated here).

    Returns:
        A :class:`SyntheticScene`. With ``config.sensor`` other than ``"none"`` the views are
        degraded by the sensor after rendering and the scene (cameras, cloud, mesh, instance
        table) is re-expressed in the sensor's world frame; the masks and the cloud stay exact.

    Raises:
        Sem3RError: an invalid config.
    """
    config.validate()
    sensor = resolve_sensor(config.sensor)
    layout = sample_layout(
        np.random.default_rng([config.seed, _STREAM_LAYOUT]),
        config.room_size_min,
        config.room_size_max,
        config.min_instances,
        config.max_instances,
        config.categories,
    )
    mesh, paint = build_mesh(layout)
    poses = camera_path(config.camera_path, layout, config.num_views, np.random.default_rng([config.seed, _STREAM_CAMERAS]),
                        config.camera_height, config.min_clearance)
    K = np.broadcast_to(intrinsics_from_fov(config.fov_deg, config.height, config.width), (config.num_views, 3, 3)).copy()
    views = render_views(mesh, paint, K, poses, config.height, config.width, config.near)

    points, face_ids = sample_surface(mesh, config.num_points, np.random.default_rng([config.seed, _STREAM_POINTS]))
    cloud = PointCloud(
        xyz=points.astype(np.float32),
        rgb=paint.shade(points, face_ids),
        instance_ids=mesh.face_instance_ids[face_ids],
        semantic_ids=mesh.face_semantic_ids[face_ids],
        view_ids=np.full(len(points), -1, np.int32),
    )
    metadata = {
        "source": "synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": int(config.seed),
        "metric": True,
        "intrinsics_known": True,
        "poses_known": True,
        "class_names": list(CLASS_NAMES),
        "num_structure_classes": NUM_STRUCTURE_CLASSES,
        "category_splits": {k: list(v) for k, v in CATEGORY_SPLITS.items()},
        "camera_path": config.camera_path,
        "up_axis": "+z",
        "room_size": [float(v) for v in layout.size],
        "objects": [o.describe() for o in layout.objects],
        "config": config.to_dict(),
    }
    scene = Scene(
        images=views.images,
        intrinsics=K,
        cam_from_world=poses,
        depth=views.depth,
        instance_masks=views.instance_masks,
        semantic_masks=views.semantic_masks,
        instances=instance_table(mesh, layout, cloud.instance_ids),
        image_names=[f"view_{i:04d}" for i in range(config.num_views)],
        metadata=metadata,
    )
    syn = SyntheticScene(scene, cloud, paint.normals[face_ids].astype(np.float32), mesh, views.face_ids, layout)
    if not sensor.is_identity:
        syn = apply_sensor(syn, paint, sensor, seed=config.seed)
    return syn
