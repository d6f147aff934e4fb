"""The Scene: the one object every Sem3R stage reads and extends.

A Scene holds ``N`` views of size ``H x W`` and what has been inferred about them:

=================  =========================  ================================================
field              shape / dtype              meaning
=================  =========================  ================================================
images             (N, H, W, 3) uint8         RGB
intrinsics         (N, 3, 3) float64          OpenCV ``K`` (pixel centres at integers)
cam_from_world     (N, 3, 4) float64          OpenCV extrinsics, world -> camera, metres
depth              (N, H, W) float32          camera z-depth, 0 = invalid (optional)
depth_conf         (N, H, W) float32          depth confidence, higher is better (optional)
world_points       (N, H, W, 3) float32       per-pixel world points, e.g. a point head (optional)
point_conf         (N, H, W) float32          confidence of ``world_points`` (optional)
instance_masks     (N, H, W) int32            3D-consistent instance ids, -1 = unlabelled (optional)
semantic_masks     (N, H, W) int32            class ids into ``metadata['class_names']``, -1 (optional)
instance_features  (N, H, W, C) float16       per-pixel instance features, e.g. IGGT's (optional)
instances          InstanceTable              one row per 3D instance
image_names        list[str] (N)              source file names or frame ids
metadata           dict (JSON)                free-form; ``class_names``, ``source``, ``metric`` ...
sparse_points      (P, 3) float32             sparse world points, e.g. SfM's triangulated points,
                                              same frame as ``cam_from_world`` (optional)
sparse_colors      (P, 3) uint8               their RGB colours (optional; grey when not given)
=================  =========================  ================================================

Sparse points are not dense geometry: a Scene with only ``sparse_points`` (the ``colmap``
backend's output) can be exported and viewed, but the stages that need per-pixel points say so
through :meth:`Scene.require_dense_geometry` (one message, :data:`DENSE_GEOMETRY_HINT`). A
backend that replaces the cameras drops the sparse points unless it gives new ones (they belong to
the old frame).

On disk a Scene is a directory: ``scene.json`` (format version, metadata, names, labels) and two
``.npz`` files written without pickle. The JSON is written last and names the array files it
belongs to, so an interrupted save leaves the previous Scene readable.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from sem3r.errors import FormatVersionError, Sem3RError
from sem3r.geometry.camera import unproject_depth
from sem3r.geometry.voxels import VoxelGrid
from sem3r.io import read_json, write_json_atomic, write_npz_atomic

FORMAT_VERSION = 1
"""Version of the on-disk layout written by :meth:`Scene.save`.

The optional sparse point arrays (``sparse_points``, ``sparse_colors``) were added without a new
version: they are optional keys of the views file, absent in older folders, which load unchanged.
"""

DENSE_GEOMETRY_HINT = "rgbd (with sensor depth), feedforward or g2vlm"
"""The geometry backends that give per-pixel (dense) geometry, named by the sparse-scene message."""

# Upgrades from an older on-disk layout: version -> function(json_dict, arrays) -> (json_dict, arrays)
# producing the next version. Version 1 is the first released layout, so nothing older exists.
_MIGRATIONS: dict[int, Callable[[dict, dict], tuple[dict, dict]]] = {}

_DENSE_FIELDS = ("depth", "depth_conf", "world_points", "point_conf", "instance_masks", "semantic_masks",
                 "instance_features")
_DENSE_DTYPES = {
    "depth": np.float32,
    "depth_conf": np.float32,
    "world_points": np.float32,
    "point_conf": np.float32,
    "instance_masks": np.int32,
    "semantic_masks": np.int32,
    "instance_features": np.float16,
}


@dataclass
class InstanceTable:
    """One row per 3D instance.

    Attributes:
        ids: ``(K,) int32`` instance ids as used in ``Scene.instance_masks``.
        labels: ``K`` class names (``""`` when unknown).
        semantic_ids: ``(K,) int32`` index into ``metadata['class_names']``, -1 when unknown.
        scores: ``(K,) float32`` confidence in ``[0, 1]``.
        box_min: ``(K, 3) float32`` axis-aligned 3D box lower corner, world frame.
        box_max: ``(K, 3) float32`` upper corner.
        centroids: ``(K, 3) float32`` mean of the instance's points.
        point_counts: ``(K,) int64`` number of points the row was computed from.
    """

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    labels: list[str] = field(default_factory=list)
    semantic_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    box_min: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    box_max: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    point_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, np.int32).reshape(-1)
        k = len(self.ids)
        if len(np.unique(self.ids)) != k:
            raise Sem3RError("instance table has duplicate ids")
        self.labels = [str(x) for x in self.labels] if len(self.labels) else [""] * k
        self.semantic_ids = np.asarray(self.semantic_ids, np.int32).reshape(-1) if len(self.semantic_ids) else np.full(k, -1, np.int32)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1) if len(self.scores) else np.ones(k, np.float32)
        self.box_min = np.asarray(self.box_min, np.float32).reshape(-1, 3)
        self.box_max = np.asarray(self.box_max, np.float32).reshape(-1, 3)
        self.centroids = np.asarray(self.centroids, np.float32).reshape(-1, 3)
        self.point_counts = np.asarray(self.point_counts, np.int64).reshape(-1)
        for name in ("labels", "semantic_ids", "scores", "box_min", "box_max", "centroids", "point_counts"):
            if len(getattr(self, name)) != k:
                raise Sem3RError(f"instance table column '{name}' has {len(getattr(self, name))} rows, expected {k}")

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, instance_id: int) -> int:
        """Row index of ``instance_id``; raises :class:`Sem3RError` when absent."""
        hit = np.flatnonzero(self.ids == instance_id)
        if not len(hit):
            raise Sem3RError(f"instance id {instance_id} is not in the instance table")
        return int(hit[0])

    @classmethod
    def from_points(
        cls,
        points: np.ndarray,
        instance_ids: np.ndarray,
        semantic_ids: np.ndarray | None = None,
        class_names: list[str] | None = None,
        scores: dict[int, float] | None = None,
    ) -> "InstanceTable":
        """Build the table from a labelled point cloud.

        Args:
            points: ``(M, 3)`` world points.
            instance_ids: ``(M,)`` instance id per point, -1 ignored.
            semantic_ids: ``(M,)`` class id per point; an instance takes its majority class.
            class_names: names for class ids (labels are ``""`` without them).
            scores: optional id -> score (default 1.0).

        Returns:
            One row per distinct non-negative id, sorted by id.
        """
        points = np.asarray(points, np.float64).reshape(-1, 3)
        inst = np.asarray(instance_ids, np.int64).reshape(-1)
        keep = inst >= 0
        points, inst = points[keep], inst[keep]
        ids, inverse, counts = np.unique(inst, return_inverse=True, return_counts=True)
        k = len(ids)
        box_min = np.full((k, 3), np.inf)
        box_max = np.full((k, 3), -np.inf)
        np.minimum.at(box_min, inverse, points)
        np.maximum.at(box_max, inverse, points)
        sums = np.zeros((k, 3))
        np.add.at(sums, inverse, points)
        sem = np.full(k, -1, np.int64)
        if semantic_ids is not None and k:
            sem_pts = np.asarray(semantic_ids, np.int64).reshape(-1)[keep]
            grid = VoxelGrid(keys=ids, inverse=inverse, counts=counts, voxel_size=1.0)
            sem = grid.majority(sem_pts)
        labels = [class_names[s] if class_names is not None and 0 <= s < len(class_names) else "" for s in sem]
        score = np.array([1.0 if scores is None else scores.get(int(i), 1.0) for i in ids], np.float32)
        return cls(ids, labels, sem, score, box_min, box_max, sums / np.maximum(counts, 1)[:, None], counts)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Numeric columns as a dict for ``.npz`` storage (labels go to JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "labels"}


@dataclass
class PointCloud:
    """A fused, labelled point cloud.

    Attributes:
        xyz: ``(M, 3) float32`` world points.
        rgb: ``(M, 3) uint8`` colours.
        instance_ids: ``(M,) int32``, -1 = unlabelled.
        semantic_ids: ``(M,) int32``, -1 = unlabelled.
        view_ids: ``(M,) int32`` view a point came from (-1 after voxel merging across views).
    """

    xyz: np.ndarray
    rgb: np.ndarray
    instance_ids: np.ndarray
    semantic_ids: np.ndarray
    view_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.xyz)


@dataclass
class Scene:
    """Views of a scene plus everything inferred about them (see the module docstring for fields).

    Example:
        >>> import numpy as np
        >>> s = Scene(images=np.zeros((2, 4, 5, 3), np.uint8),
        ...           intrinsics=np.tile(np.eye(3), (2, 1, 1)),
        ...           cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)))
        >>> s.num_views, s.height, s.width
        (2, 4, 5)
    """

    images: np.ndarray
    intrinsics: np.ndarray
    cam_from_world: np.ndarray
    depth: np.ndarray | None = None
    depth_conf: np.ndarray | None = None
    world_points: np.ndarray | None = None
    point_conf: np.ndarray | None = None
    instance_masks: np.ndarray | None = None
    semantic_masks: np.ndarray | None = None
    instance_features: np.ndarray | None = None
    instances: InstanceTable = field(default_factory=InstanceTable)
    image_names: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    sparse_points: np.ndarray | None = None
    sparse_colors: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images)
        self.intrinsics = np.asarray(self.intrinsics, np.float64)
        self.cam_from_world = np.asarray(self.cam_from_world, np.float64)
        for name in _DENSE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value, _DENSE_DTYPES[name]))
        if self.sparse_points is not None:
            self.sparse_points = np.asarray(self.sparse_points, np.float32)
            if self.sparse_colors is None:
                self.sparse_colors = np.full((len(self.sparse_points), 3), 128, np.uint8)
        if self.sparse_colors is not None:
            self.sparse_colors = np.asarray(self.sparse_colors, np.uint8)
        if not self.image_names:
            self.image_names = [f"view_{i:04d}" for i in range(len(self.images))]
        self.validate()

    # ------------------------------------------------------------------ shape and content checks
    @property
    def num_views(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def class_names(self) -> list[str]:
        """``metadata['class_names']`` (empty list when absent)."""
        return list(self.metadata.get("class_names", []))

    def validate(self) -> None:
        """Check shapes, dtypes and finiteness; raise :class:`Sem3RError` naming the first problem."""
        img = self.images
        if img.ndim != 4 or img.shape[-1] != 3 or img.dtype != np.uint8:
            raise Sem3RError(f"images must be uint8 (N, H, W, 3), got {img.dtype} {img.shape}")
        n, h, w = img.shape[:3]
        if n == 0:
            raise Sem3RError("a Scene needs at least one view, got 0")
        if self.intrinsics.shape != (n, 3, 3):
            raise Sem3RError(f"intrinsics must be ({n}, 3, 3), got {self.intrinsics.shape}")
        if self.cam_from_world.shape != (n, 3, 4):
            raise Sem3RError(f"cam_from_world must be ({n}, 3, 4), got {self.cam_from_world.shape}")
        for name, arr in (("intrinsics", self.intrinsics), ("cam_from_world", self.cam_from_world)):
            bad = ~np.isfinite(arr).reshape(n, -1).all(axis=1)
            if bad.any():
                raise Sem3RError(f"{name} of view '{self.image_names[int(np.argmax(bad))]}' contains NaN or inf")
        for name in _DENSE_FIELDS:
            arr = getattr(self, name)
            if arr is None:
                continue
            expected = (n, h, w, 3) if name == "world_points" else (n, h, w)
            if name == "instance_features":
                expected = (n, h, w, arr.shape[-1] if arr.ndim == 4 else "C")
            if arr.shape != expected:
                raise Sem3RError(f"{name} must have shape {expected} to match the images, got {arr.shape}")
        if self.depth is not None and not np.isfinite(self.depth).all():
            raise Sem3RError("depth contains NaN or inf; mark invalid pixels with 0")
        if self.instance_features is not None and not np.isfinite(self.instance_features).all():
            raise Sem3RError("instance_features contains NaN or inf")
        if len(self.image_names) != n:
            raise Sem3RError(f"{len(self.image_names)} image names for {n} views")
        if self.sparse_points is not None or self.sparse_colors is not None:
            if self.sparse_points is None:
                raise Sem3RError("sparse_colors were given without sparse_points")
            if self.sparse_points.ndim != 2 or self.sparse_points.shape[1] != 3:
                raise Sem3RError(f"sparse_points must have shape (P, 3), got {self.sparse_points.shape}")
            if self.sparse_colors.shape != self.sparse_points.shape:
                raise Sem3RError(f"sparse_colors must have shape {self.sparse_points.shape}, got {self.sparse_colors.shape}")
            if not np.isfinite(self.sparse_points).all():
                raise Sem3RError("sparse_points contain NaN or inf")

    @property
    def has_dense_geometry(self) -> bool:
        """True when the Scene has per-pixel geometry (``depth`` or ``world_points``)."""
        return self.depth is not None or self.world_points is not None

    def require_dense_geometry(self, message: str) -> None:
        """Raise :class:`Sem3RError` unless the Scene has ``depth`` or ``world_points``.

        Args:
            message: the error for a Scene without any geometry (e.g. "the scene has no depth or
                world points; reconstruct it first"). A Scene that has sparse points instead gets
                one line naming the backends that give dense geometry (:data:`DENSE_GEOMETRY_HINT`).

        Example:
            >>> s = Scene(images=np.zeros((1, 2, 2, 3), np.uint8), intrinsics=np.eye(3)[None],
            ...           cam_from_world=np.eye(3, 4)[None], sparse_points=np.zeros((5, 3)))
            >>> s.require_dense_geometry("no geometry")  # doctest: +IGNORE_EXCEPTION_DETAIL
            Traceback (most recent call last):
            sem3r.errors.Sem3RError: ...
        """
        if self.has_dense_geometry:
            return
        if self.sparse_points is not None:
            raise Sem3RError(
                f"the scene has only {len(self.sparse_points)} sparse points (structure from motion), no depth or world points; "
                f"this needs dense geometry: reconstruct it with {DENSE_GEOMETRY_HINT}"
            )
        raise Sem3RError(message)

    # ------------------------------------------------------------------ derived geometry
    def points(self, source: Literal["auto", "depth", "points"] = "auto") -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel world points and validity.

        Args:
            source: ``"depth"`` unprojects ``depth`` with the cameras, ``"points"`` uses
                ``world_points``; ``"auto"`` follows ``metadata['point_source']`` when set (a
                backend's choice) and otherwise prefers depth when present.

        Returns:
            ``points (N, H, W, 3) float32`` and ``valid (N, H, W) bool``.
        """
        source = self._point_source(source)
        if source == "depth":
            if self.depth is None:
                message = "the scene has no depth; reconstruct it first or use source='points'"
                self.require_dense_geometry(message)
                raise Sem3RError(message)
            return unproject_depth(self.depth, self.intrinsics, self.cam_from_world), self.depth > 0
        if source == "points":
            if self.world_points is None:
                message = "the scene has no world points; reconstruct it first or use source='depth'"
                self.require_dense_geometry(message)
                raise Sem3RError(message)
            return self.world_points, np.isfinite(self.world_points).all(axis=-1)
        raise Sem3RError(f"unknown point source '{source}' (expected auto, depth or points)")

    def confidence(self, source: Literal["auto", "depth", "points"] = "auto") -> np.ndarray | None:
        """The confidence map ``(N, H, W)`` belonging to ``source`` (``None`` if there is none)."""
        return self.depth_conf if self._point_source(source) == "depth" else self.point_conf

    def _point_source(self, source: str) -> str:
        """Resolve ``"auto"``: ``metadata['point_source']`` when set, else depth when present."""
        if source != "auto":
            return source
        preferred = self.metadata.get("point_source")
        if preferred == "points" and self.world_points is not None or preferred == "depth" and self.depth is not None:
            return preferred
        return "depth" if self.depth is not None else "points"

    def fused_point_cloud(
        self,
        source: Literal["auto", "depth", "points"] = "auto",
        conf_threshold: float | None = None,
        conf_percentile: float | None = None,
        voxel_size: float | None = None,
        max_points: int | None = None,
        seed: int = 0,
    ) -> PointCloud:
        """Fuse all views into one point cloud.

        Args:
            source: which per-pixel points to use (see :meth:`points`).
            conf_threshold: drop pixels with confidence below this value.
            conf_percentile: drop the lowest ``p`` percent of valid pixels by confidence (0-100).
            voxel_size: when set, average points per voxel (packed int64 keys); colours are
                averaged, labels take the per-voxel majority and ``view_ids`` become -1.
            max_points: randomly keep at most this many points (after voxelisation).
            seed: seed of that subsampling.

        Returns:
            A :class:`PointCloud` with ``M`` points.
        """
        pts, valid = self.points(source)
        conf = self.confidence(source)
        if conf is not None and conf_threshold is not None:
            valid = valid & (conf >= conf_threshold)
        if conf is not None and conf_percentile is not None and valid.any():
            valid = valid & (conf >= np.percentile(conf[valid], conf_percentile))
        n = self.num_views
        views = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None, None], valid.shape)
        minus_one = np.full(valid.shape, -1, np.int32)
        inst = self.instance_masks if self.instance_masks is not None else minus_one
        sem = self.semantic_masks if self.semantic_masks is not None else minus_one
        cloud = PointCloud(pts[valid], self.images[valid], inst[valid], sem[valid], views[valid])
        if voxel_size is not None and len(cloud):
            grid = VoxelGrid.from_points(cloud.xyz, voxel_size)
            cloud = PointCloud(
                grid.mean(cloud.xyz).astype(np.float32),
                np.clip(np.rint(grid.mean(cloud.rgb)), 0, 255).astype(np.uint8),
                grid.majority(cloud.instance_ids).astype(np.int32),
                grid.majority(cloud.semantic_ids).astype(np.int32),
                np.full(len(grid.keys), -1, np.int32),
            )
        if max_points is not None and len(cloud) > max_points:
            keep = np.sort(np.random.default_rng(seed).choice(len(cloud), max_points, replace=False))
            cloud = PointCloud(*(getattr(cloud, f.name)[keep] for f in fields(PointCloud)))
        return cloud

    def sparse_point_cloud(self) -> PointCloud:
        """The sparse points as a :class:`PointCloud` (``P`` points, ids -1); empty when there are none."""
        if self.sparse_points is None:
            return PointCloud(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), *(np.zeros(0, np.int32) for _ in range(3)))
        minus_one = np.full(len(self.sparse_points), -1, np.int32)
        return PointCloud(self.sparse_points.copy(), self.sparse_colors.copy(), minus_one, minus_one.copy(), minus_one.copy())

    def update_instances(self, voxel_size: float | None = 0.02, source: Literal["auto", "depth", "points"] = "auto") -> InstanceTable:
        """Recompute :attr:`instances` from ``instance_masks`` and the fused points; returns it.

        Scores of instances already in the table are kept.
        """
        if self.instance_masks is None:
            raise Sem3RError("the scene has no instance masks; run a segmentation first")
        cloud = self.fused_point_cloud(source=source, voxel_size=voxel_size)
        old = dict(zip(self.instances.ids.tolist(), self.instances.scores.tolist()))
        self.instances = InstanceTable.from_points(cloud.xyz, cloud.instance_ids, cloud.semantic_ids, self.class_names, old)
        return self.instances

    def select_views(self, indices) -> "Scene":
        """A new Scene with the views ``indices`` (list, array or slice); instances are kept."""
        idx = np.arange(self.num_views)[indices]
        idx = np.atleast_1d(idx)
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("images", "intrinsics", "cam_from_world") + _DENSE_FIELDS:
            if kw[name] is not None:
                kw[name] = kw[name][idx]
        kw["image_names"] = [self.image_names[i] for i in idx]
        kw["metadata"] = json.loads(json.dumps(self.metadata))
        return Scene(**kw)

    def describe(self) -> str:
        """A short multi-line human-readable summary (views, size, fields present, instances)."""
        present = [name for name in _DENSE_FIELDS if getattr(self, name) is not None]
        lines = [
            f"views: {self.num_views} at {self.height}x{self.width}",
            f"source: {self.metadata.get('source', 'unknown')}, metric: {self.metadata.get('metric', 'unknown')}",
            f"fields: {', '.join(['images', 'intrinsics', 'cam_from_world'] + present)}",
            f"instances: {len(self.instances)}",
        ]
        if self.sparse_points is not None:
            lines.insert(3, f"sparse points: {len(self.sparse_points)}")
        if len(self.instances):
            labels, counts = np.unique([lab or "?" for lab in self.instances.labels], return_counts=True)
            lines.append("labels: " + ", ".join(f"{lab} x{c}" for lab, c in zip(labels, counts)))
        return "\n".join(lines)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the Scene to ``directory`` (created if needed) and return the path.

        Files: ``views-<token>.npz`` (dense arrays), ``instances-<token>.npz`` (instance table) and
        ``scene.json`` (format version, metadata, names, labels, file names). The array files are
        written first under fresh names and ``scene.json`` is replaced last, atomically; array
        files of the previous save are removed only after that, so a Scene on disk is never a mix
        of two saves.
        """
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise Sem3RError(f"cannot save a Scene to '{directory}': it is a file, not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        self.validate()
        try:
            meta_text = json.dumps(self.metadata)
        except TypeError as exc:
            raise Sem3RError(f"scene metadata is not JSON-serialisable: {exc}") from None
        token = uuid.uuid4().hex[:12]
        views_file, inst_file = f"views-{token}.npz", f"instances-{token}.npz"
        arrays = {"images": self.images, "intrinsics": self.intrinsics, "cam_from_world": self.cam_from_world}
        arrays.update({k: getattr(self, k) for k in _DENSE_FIELDS if getattr(self, k) is not None})
        if self.sparse_points is not None:
            arrays.update(sparse_points=self.sparse_points, sparse_colors=self.sparse_colors)
        doc = {
            "format": "sem3r.scene",
            "format_version": FORMAT_VERSION,
            "files": {"views": views_file, "instances": inst_file},
            "num_views": self.num_views,
            "image_size": [self.height, self.width],
            "image_names": self.image_names,
            "instance_labels": self.instances.labels,
            "metadata": json.loads(meta_text),
        }
        try:
            write_npz_atomic(directory / views_file, arrays)
            write_npz_atomic(directory / inst_file, self.instances.to_arrays())
            write_json_atomic(directory / "scene.json", doc)
        except BaseException:  # a failed or interrupted save leaves the old Scene as it was, no stray array files
            for new in (views_file, inst_file):
                (directory / new).unlink(missing_ok=True)
            raise
        for stale in list(directory.glob("views-*.npz")) + list(directory.glob("instances-*.npz")):
            if stale.name not in (views_file, inst_file):
                stale.unlink(missing_ok=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Scene":
        """Read a Scene written by :meth:`save`.

        Raises:
            Sem3RError: missing or corrupt files.
            FormatVersionError: the directory was written by a format version this release cannot
                read; the message names the version it needs.
        """
        directory = Path(directory)
        doc_path = directory / "scene.json"
        if not doc_path.is_file():
            raise Sem3RError(f"'{directory}' is not a Sem3R scene directory (no scene.json)")
        doc = read_json(doc_path)
        if not isinstance(doc, dict) or doc.get("format") != "sem3r.scene":
            raise Sem3RError(f"'{doc_path}' is not a Sem3R scene file")
        version = doc.get("format_version")
        if not isinstance(version, int):
            raise Sem3RError(f"'{doc_path}' has no integer format_version")
        if version > FORMAT_VERSION:
            raise FormatVersionError(
                f"'{doc_path}' was written with scene format version {version}; this sem3r reads up to "
                f"version {FORMAT_VERSION}: upgrade sem3r"
            )
        files = doc.get("files", {})
        for key, kind in (("files", dict), ("metadata", dict), ("image_names", list), ("instance_labels", list)):
            if key in doc and not isinstance(doc[key], kind):
                raise Sem3RError(f"'{doc_path}' is corrupt: '{key}' must be a JSON {'object' if kind is dict else 'list'}, "
                                 f"not {type(doc[key]).__name__}")
        arrays = {}
        for key in ("views", "instances"):
            if not isinstance(files.get(key), str) or not files[key]:
                raise Sem3RError(f"'{doc_path}' is corrupt: it names no {key} file (files.{key})")
            path = directory / files[key]
            if not path.is_file():
                raise Sem3RError(f"scene '{directory}' is incomplete: missing {path.name or key + ' file'}")
            try:
                with np.load(path, allow_pickle=False) as z:
                    arrays[key] = {k: z[k] for k in z.files}
            except Exception as exc:  # noqa: BLE001 (truncated or foreign files: BadZipFile, EOFError, zlib, ValueError)
                raise Sem3RError(f"cannot read '{path}' (truncated or not a Sem3R array file): "
                                 f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}") from None
        while version < FORMAT_VERSION:
            if version not in _MIGRATIONS:
                raise FormatVersionError(
                    f"'{doc_path}' has scene format version {version}, which no sem3r release reads; "
                    f"this one needs version {FORMAT_VERSION}"
                )
            doc, arrays = _MIGRATIONS[version](doc, arrays)
            version += 1
        views, inst = arrays["views"], arrays["instances"]
        missing = [k for k in ("images", "intrinsics", "cam_from_world") if k not in views]
        if missing:
            raise Sem3RError(f"'{directory / files['views']}' is corrupt: no array {', '.join(missing)}")
        unknown = sorted(set(inst) - {f.name for f in fields(InstanceTable) if f.name != "labels"})
        if unknown:
            raise Sem3RError(f"'{directory / files['instances']}' is corrupt: unknown arrays {unknown}")
        try:
            table = InstanceTable(labels=doc.get("instance_labels", []), **inst)
            return cls(
                images=views["images"],
                intrinsics=views["intrinsics"],
                cam_from_world=views["cam_from_world"],
                **{k: views.get(k) for k in _DENSE_FIELDS},
                instances=table,
                image_names=[str(name) for name in doc.get("image_names", [])],
                metadata=doc.get("metadata", {}),
                sparse_points=views.get("sparse_points"),
                sparse_colors=views.get("sparse_colors"),
            )
        except Sem3RError as exc:
            raise Sem3RError(f"scene '{directory}' is corrupt: {exc}") from None
        except (TypeError, ValueError) as exc:  # arrays of a wrong kind, e.g. strings where numbers belong
            raise Sem3RError(f"scene '{directory}' is corrupt: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}") from None
