"""Export a Scene as a nerfstudio dataset (``transforms.json`` + images, optional depth and points).

Layout written under ``out_dir`` (``OUT/nerfstudio`` for ``sem3r export --formats nerfstudio``)::

    transforms.json            cameras and frames (below)
    images/<name>.png          the exported views, lossless
    depths/<name>.png          16-bit depth in millimetres (only when the Scene has ``depth``)
    sparse_pc.ply              the points splatfacto initialises from (only when there are points)

Convention of ``transforms.json`` (nerfstudio's documented data format):

* ``transform_matrix``: the ``4 x 4`` camera-to-world matrix in the OpenGL / Blender camera
  convention (x right, y up, z backward, the camera looks along -z). From Sem3R's OpenCV
  ``cam_from_world = [R | t]``: ``c2w = [[R^T, -R^T t], [0, 1]]``, then its y and z columns are
  negated. The world frame is the Scene's, unchanged (nerfstudio's dataparser re-orients and
  re-centres it itself), so no ``applied_transform`` is written and the PLY is in the same frame.
* Intrinsics ``fl_x, fl_y, cx, cy, w, h`` at the top level when every exported view shares them,
  else in every frame. nerfstudio puts the top-left pixel's centre at ``(0.5, 0.5)`` (it shoots
  the ray of pixel ``(i, j)`` through ``(j + 0.5, i + 0.5)``), Sem3R at ``(0, 0)``, so
  ``cx = K[0, 2] + 0.5`` and ``cy = K[1, 2] + 0.5``.
* ``camera_model: "OPENCV"`` with ``k1, k2, p1, p2``: zero, or the radial / tangential terms of the
  view's COLMAP camera when the Scene came from COLMAP with distortion that was never removed
  (``SIMPLE_RADIAL``, ``RADIAL`` and ``OPENCV`` map exactly; other models raise
  :class:`~sem3r.errors.Sem3RError`: undistort the images first).
* Depth: ``depth_file_path`` per frame and ``depth_unit_scale_factor: 0.001`` at the top level;
  the PNG holds camera z-depth in millimetres (``uint16``), 0 where the depth is invalid or beyond
  65.535 m.
* ``ply_file_path: "sparse_pc.ply"``: the Scene's sparse points, else its fused dense cloud
  (:func:`~sem3r.viz.dataset_frames.dataset_point_cloud`), written by :func:`~sem3r.viz.ply.export_ply`.

Views without a pose (``metadata['registered']`` False) are skipped and counted.

Example:
    >>> import json, tempfile
    >>> from sem3r.data.synthetic import SynthConfig, generate_scene
    >>> scene = generate_scene(SynthConfig(num_views=2, height=24, width=32, num_points=0)).scene
    >>> result = export_nerfstudio(scene, tempfile.mkdtemp())
    >>> doc = json.loads((result.path / "transforms.json").read_text())
    >>> doc["camera_model"], len(doc["frames"]), doc["depth_unit_scale_factor"]
    ('OPENCV', 2, 0.001)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.io import write_json_atomic
from sem3r.scene import PointCloud, Scene
from sem3r.viz.dataset_frames import (
    DatasetExport,
    DatasetPointsConfig,
    dataset_point_cloud,
    exportable_views,
    frame_file_names,
    scene_colmap_cameras,
    write_pngs,
)
from sem3r.viz.ply import export_ply

PLY_NAME = "sparse_pc.ply"
"""File name of the points PLY (nerfstudio's own name for it)."""

DEPTH_UNIT = 0.001
"""``depth_unit_scale_factor``: the depth PNGs hold millimetres."""

# COLMAP model -> index of k1, k2, p1, p2 in its parameters (None: the term is zero)
_OPENCV_TERMS = {
    "SIMPLE_PINHOLE": (None, None, None, None),
    "PINHOLE": (None, None, None, None),
    "SIMPLE_RADIAL": (3, None, None, None),
    "RADIAL": (3, 4, None, None),
    "OPENCV": (4, 5, 6, 7),
}


@dataclass
class NerfstudioExportConfig(DatasetPointsConfig):
    """Options of :func:`export_nerfstudio`.

    Attributes:
        depth: write ``depths/`` when the Scene has depth.
        ply: write the points PLY and ``ply_file_path``.
        keep_distortion: take ``k1, k2, p1, p2`` from the Scene's COLMAP cameras (else zeros).
        voxel_size: voxel size in metres of the dense cloud used when the Scene has no sparse points.
        max_points: at most this many dense points (seeded subsample).
        seed: seed of that subsample.
    """

    depth: bool = True
    ply: bool = True
    keep_distortion: bool = True


def opengl_camera_to_world(cam_from_world: np.ndarray) -> np.ndarray:
    """OpenCV world -> camera poses to nerfstudio's OpenGL camera -> world matrices.

    Args:
        cam_from_world: ``(V, 3, 4)`` OpenCV extrinsics.

    Returns:
        ``(V, 4, 4) float64`` camera-to-world with the camera's y and z axes flipped (y up, z back).

    Example:
        >>> opengl_camera_to_world(np.eye(3, 4)[None])[0].tolist()
        [[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    """
    pose = np.asarray(cam_from_world, np.float64)
    R_t = np.swapaxes(pose[:, :, :3], 1, 2)
    out = np.zeros((len(pose), 4, 4))
    out[:, :3, :3] = R_t
    out[:, :3, 3] = -np.einsum("vij,vj->vi", R_t, pose[:, :, 3])
    out[:, 3, 3] = 1.0
    out[:, :3, 1:3] *= -1.0
    return out + 0.0  # no negative zeros in the JSON


def _distortion(scene: Scene, indices: np.ndarray, keep: bool) -> np.ndarray:
    """``(V, 4)`` k1, k2, p1, p2 of the exported views."""
    out = np.zeros((len(indices), 4))
    if not keep:
        return out
    cameras = scene_colmap_cameras(scene)
    for row, i in enumerate(indices):
        camera = cameras[i]
        if camera is None:
            continue
        if camera.model not in _OPENCV_TERMS:
            if camera.is_pinhole:
                continue
            raise Sem3RError(
                f"view '{scene.image_names[i]}' has a COLMAP {camera.model} camera, which nerfstudio's OPENCV model cannot "
                "express; undistort the images first (COLMAP's image_undistorter) or pass keep_distortion=False"
            )
        out[row] = [camera.params[j] if j is not None else 0.0 for j in _OPENCV_TERMS[camera.model]]
    return out


def _depth_millimetres(depth: np.ndarray) -> np.ndarray:
    """``(V, H, W) float32`` metres to ``uint16`` millimetres, 0 where invalid or out of range."""
    mm = np.rint(np.asarray(depth, np.float64) * 1000.0)
    mm[(mm < 0) | (mm > np.iinfo(np.uint16).max)] = 0
    return mm.astype(np.uint16)


def _camera_fields(K: np.ndarray, dist: np.ndarray, width: int, height: int) -> dict:
    return {
        "fl_x": float(K[0, 0]),
        "fl_y": float(K[1, 1]),
        "cx": float(K[0, 2] + 0.5),
        "cy": float(K[1, 2] + 0.5),
        "w": int(width),
        "h": int(height),
        "k1": float(dist[0]),
        "k2": float(dist[1]),
        "p1": float(dist[2]),
        "p2": float(dist[3]),
    }


def export_nerfstudio(
    scene: Scene, out_dir: str | Path, config: NerfstudioExportConfig | None = None, dense: PointCloud | None = None
) -> DatasetExport:
    """Write the nerfstudio dataset of ``scene`` into ``out_dir`` (see the module docstring).

    Args:
        scene: ``N`` views with ``images (N, H, W, 3) uint8``, ``intrinsics (N, 3, 3)``,
            ``cam_from_world (N, 3, 4)`` and optionally ``depth (N, H, W)`` and sparse or dense points.
        out_dir: the dataset folder (created).
        config: options (default :class:`NerfstudioExportConfig`).
        dense: an already fused dense cloud to use when the Scene has no sparse points.

    Returns:
        A :class:`~sem3r.viz.dataset_frames.DatasetExport` (``summary()`` is one line for the user).

    Raises:
        Sem3RError: invalid options, no view with a pose, or a distortion model OPENCV cannot express.
    """
    config = config or NerfstudioExportConfig()
    config.validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise Sem3RError(f"cannot export a nerfstudio dataset to '{out_dir}': it is a file")
    indices, skipped = exportable_views(scene)
    names = frame_file_names([scene.image_names[i] for i in indices])
    dist = _distortion(scene, indices, config.keep_distortion)
    K = scene.intrinsics[indices]
    c2w = opengl_camera_to_world(scene.cam_from_world[indices])
    shared = bool(np.all(K == K[0]) and np.all(dist == dist[0]))
    frames = []
    for row, name in enumerate(names):
        frame = {"file_path": f"images/{name}", "transform_matrix": c2w[row].tolist()}
        if not shared:
            frame.update(_camera_fields(K[row], dist[row], scene.width, scene.height))
        frames.append(frame)
    doc: dict = {"camera_model": "OPENCV"}
    if shared:
        doc.update(_camera_fields(K[0], dist[0], scene.width, scene.height))
    write_pngs(scene.images[indices], out_dir / "images", names, desc="writing nerfstudio images")
    if config.depth and scene.depth is not None:
        write_pngs(_depth_millimetres(scene.depth[indices]), out_dir / "depths", names, desc="writing depth images")
        for frame, name in zip(frames, names):
            frame["depth_file_path"] = f"depths/{name}"
        doc["depth_unit_scale_factor"] = DEPTH_UNIT
    num_points, points_from = 0, "none"
    if config.ply:
        cloud, points_from = dataset_point_cloud(scene, dense, config)
        num_points = len(cloud.xyz)
        if num_points:
            export_ply(cloud, out_dir / PLY_NAME)
            doc["ply_file_path"] = PLY_NAME
    doc["frames"] = frames
    write_json_atomic(out_dir / "transforms.json", doc)
    return DatasetExport(out_dir, len(indices), skipped, num_points, points_from)
