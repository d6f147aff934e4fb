"""What the training-dataset exports (COLMAP, nerfstudio) share: views, file names, images, points.

* Views: every view with a usable pose. A Scene from the ``colmap`` backend marks the views COLMAP
  did not register in ``metadata['registered']`` (their identity pose is a placeholder); those,
  and any view whose pose is not finite, are skipped and counted.
* File names: the view's name reduced to a safe file stem (characters other than letters, digits,
  ``.``, ``_`` and ``-`` become ``_``, folders are dropped) plus ``.png``: the frames are written
  losslessly whatever their source format. When two stems collide, every name gets its view index
  as a prefix (``00003_name.png``) so that names stay unique and stable.
* Points: the Scene's sparse points when it has them (a COLMAP model's own points), else the
  fused dense cloud (voxel-downsampled, capped at ``max_points`` by a seeded subsample), else none.
* COLMAP cameras: a Scene read from a COLMAP model or made by the ``colmap`` backend names each
  view's COLMAP camera in its metadata; when that camera matches the view (same size, same pinhole
  part) its model and distortion are kept, since the images were not undistorted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sem3r.data.readers.colmap import ColmapCamera
from sem3r.data.readers.common import parallel_map
from sem3r.errors import Sem3RError
from sem3r.io import atomic_path
from sem3r.scene import PointCloud, Scene

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class DatasetExport:
    """What a dataset export wrote.

    Attributes:
        path: the dataset folder.
        num_views: views written.
        num_skipped: views skipped for lack of a pose (unregistered).
        num_points: points written (COLMAP ``points3D`` or the nerfstudio PLY).
        points_from: ``"sparse"``, ``"dense"`` or ``"none"`` (see :func:`dataset_point_cloud`).
    """

    path: Path
    num_views: int
    num_skipped: int
    num_points: int
    points_from: str

    def summary(self) -> str:
        """One line for the user, e.g. ``out/colmap: 5 views (1 unregistered view skipped), 812 sparse points``."""
        skipped = f" ({self.num_skipped} unregistered view{'s' if self.num_skipped != 1 else ''} skipped)" if self.num_skipped else ""
        points = "no points (the scene has no geometry)" if self.points_from == "none" else f"{self.num_points} {self.points_from} points"
        return f"{self.path}: {self.num_views} views{skipped}, {points}"


def exportable_views(scene: Scene) -> tuple[np.ndarray, int]:
    """Views with a usable pose.

    Args:
        scene: ``N`` views; ``metadata['registered']`` (``N`` bools) marks registered views when present.

    Returns:
        ``indices (V,) int64`` of the kept views in order, and the number of skipped views.

    Raises:
        Sem3RError: no view has a usable pose, or ``metadata['registered']`` has the wrong length.
    """
    n = scene.num_views
    keep = np.isfinite(scene.cam_from_world.reshape(n, -1)).all(axis=1)
    registered = scene.metadata.get("registered")
    if registered is not None:
        registered = np.asarray(registered, bool).reshape(-1)
        if len(registered) != n:
            raise Sem3RError(f"metadata['registered'] has {len(registered)} entries for {n} views")
        keep &= registered
    if not keep.any():
        raise Sem3RError("no view of the scene has a pose (none is registered); nothing to export")
    return np.flatnonzero(keep), int(n - keep.sum())


def frame_file_names(names: Sequence[str], suffix: str = ".png") -> list[str]:
    """Unique, safe file names for the views (see the module docstring).

    Args:
        names: ``V`` view names (``Scene.image_names``).
        suffix: file extension of every name.

    Returns:
        ``V`` file names without folders.

    Example:
        >>> frame_file_names(["a/rgb.jpg", "b/rgb.jpg", "c d.png"])
        ['00000_rgb.png', '00001_rgb.png', '00002_c_d.png']
        >>> frame_file_names(["view_0000", "view_0001"])
        ['view_0000.png', 'view_0001.png']
    """
    stems = []
    for name in names:
        stem = Path(str(name).replace("\\", "/")).stem
        stems.append(_UNSAFE.sub("_", stem).strip("._") or "view")
    if len(set(stems)) != len(stems):
        stems = [f"{i:05d}_{stem}" for i, stem in enumerate(stems)]
    return [stem + suffix for stem in stems]


def _write_png(item: tuple[Path, np.ndarray]) -> Path:
    path, array = item
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return path


def write_pngs(arrays: Sequence[np.ndarray], folder: str | Path, names: Sequence[str], desc: str = "writing images") -> list[Path]:
    """Write images losslessly (atomically, on a thread pool).

    Args:
        arrays: ``V`` images, ``(H, W, 3) uint8`` RGB or ``(H, W) uint16`` (16-bit grey).
        folder: destination folder (created).
        names: ``V`` file names inside ``folder``.
        desc: progress label.

    Returns:
        The ``V`` written paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return list(parallel_map(_write_png, [(folder / name, a) for name, a in zip(names, arrays)], desc))


@dataclass
class DatasetPointsConfig:
    """Options shared by the dataset exports: which dense points they start from.

    Attributes:
        voxel_size: voxel size in metres of the dense cloud used when the Scene has no sparse points
            (``None``: every pixel).
        max_points: at most this many dense points (seeded subsample; sparse points are all kept).
        seed: seed of that subsample.
    """

    voxel_size: float | None = 0.01
    max_points: int | None = 200_000
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid option."""
        if self.voxel_size is not None and not self.voxel_size > 0:
            raise Sem3RError(f"voxel_size must be positive or None, got {self.voxel_size}")
        if self.max_points is not None and self.max_points < 1:
            raise Sem3RError(f"max_points must be at least 1 or None, got {self.max_points}")


def dataset_point_cloud(
    scene: Scene,
    dense: PointCloud | None = None,
    config: DatasetPointsConfig | None = None,
) -> tuple[PointCloud, str]:
    """The points a training dataset starts from (see the module docstring).

    Args:
        scene: the Scene.
        dense: an already fused dense cloud to use instead of fusing again.
        config: voxel size, cap and seed of the dense points (defaults when ``None``).

    Returns:
        The ``P`` points (``xyz (P, 3) float32``, ``rgb (P, 3) uint8``) and where they came from:
        ``"sparse"``, ``"dense"`` or ``"none"``.
    """
    if scene.sparse_points is not None:
        return scene.sparse_point_cloud(), "sparse"
    if not scene.has_dense_geometry:
        return scene.sparse_point_cloud(), "none"
    config = config or DatasetPointsConfig()
    cloud = dense if dense is not None else scene.fused_point_cloud(voxel_size=config.voxel_size)
    if config.max_points is not None and len(cloud) > config.max_points:
        keep = np.sort(np.random.default_rng(config.seed).choice(len(cloud), config.max_points, replace=False))
        cloud = PointCloud(cloud.xyz[keep], cloud.rgb[keep], cloud.instance_ids[keep], cloud.semantic_ids[keep], cloud.view_ids[keep])
    return cloud, "dense"


def pinhole_camera(K: np.ndarray, width: int, height: int, camera_id: int = 1) -> ColmapCamera:
    """A COLMAP ``PINHOLE`` camera for an OpenCV ``K (3, 3)`` (principal point plus 0.5, COLMAP's pixel convention)."""
    return ColmapCamera(camera_id, "PINHOLE", width, height, [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5])


def scene_colmap_cameras(scene: Scene) -> list[ColmapCamera | None]:
    """Each view's COLMAP camera from the Scene's metadata, when it still describes the view.

    ``metadata['sfm']`` (the ``colmap`` backend) or ``metadata['colmap']`` (the COLMAP reader) holds
    ``camera_ids`` (one per view) and ``cameras`` (id -> model, width, height, params). A camera is
    used for a view when its size equals the images' and its pinhole part equals the view's
    intrinsics (to 1e-9 pixels); otherwise (resized images, edited intrinsics) the entry is ``None``.

    Returns:
        ``N`` cameras or ``None``.
    """
    out: list[ColmapCamera | None] = [None] * scene.num_views
    for key in ("sfm", "colmap"):
        info = scene.metadata.get(key)
        if not isinstance(info, dict) or not isinstance(info.get("camera_ids"), list) or not isinstance(info.get("cameras"), dict):
            continue
        if len(info["camera_ids"]) != scene.num_views:
            continue
        for i, camera_id in enumerate(info["camera_ids"]):
            entry = info["cameras"].get(str(camera_id))
            if out[i] is not None or not isinstance(entry, dict):
                continue
            try:
                camera = ColmapCamera(int(camera_id), str(entry["model"]), int(entry["width"]), int(entry["height"]), entry["params"])
            except (KeyError, TypeError, ValueError, Sem3RError):
                continue
            if (camera.height, camera.width) == (scene.height, scene.width) and np.allclose(
                camera.intrinsics(), scene.intrinsics[i], rtol=0, atol=1e-9
            ):
                out[i] = camera
    return out
