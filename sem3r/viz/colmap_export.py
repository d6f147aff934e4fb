"""Export a Scene as a COLMAP dataset that Gaussian splatting and nerfstudio's COLMAP dataparser train on.

Layout written under ``out_dir`` (``OUT/colmap`` for ``sem3r export --formats colmap``)::

    images/<name>.png          the exported views, lossless (names from
                               :func:`~sem3r.viz.dataset_frames.frame_file_names`)
    sparse/0/cameras.bin       one camera per distinct (model, size, parameters)
    sparse/0/images.bin        one image per exported view: cam_from_world as quaternion w x y z + t
    sparse/0/points3D.bin      points with RGB colours and empty tracks
    sparse_text/0/*.txt        the same model as text, with ``ColmapExportConfig(text=True)``
                               (CLI ``--colmap-text``); kept out of ``sparse/`` so that tools which
                               take every folder of ``sparse/`` as a model see one model only

Cameras are ``PINHOLE`` with the principal point moved to COLMAP's pixel convention (plus 0.5;
Sem3R's intrinsics put the top-left pixel's centre at 0, COLMAP at 0.5). A view whose Scene
metadata names a COLMAP camera that still matches it (a Scene from the ``colmap`` backend or the
COLMAP reader, whose images were never undistorted) keeps that camera's model and distortion
(:func:`~sem3r.viz.dataset_frames.scene_colmap_cameras`).

Views without a pose (``metadata['registered']`` False, from the ``colmap`` backend) are skipped and
counted in the result. Points: the Scene's sparse points when it has them, otherwise the fused
dense cloud, voxel-downsampled and capped (:func:`~sem3r.viz.dataset_frames.dataset_point_cloud`).
Tracks are empty: COLMAP and pycolmap read points without observations, the splatting trainers
only read positions and colours, and fabricated observations would mislead a bundle adjustment.
The files are written by the model writers of :mod:`sem3r.data.readers.colmap`.

Example:
    >>> import tempfile
    >>> from sem3r.data.synthetic import SynthConfig, generate_scene
    >>> scene = generate_scene(SynthConfig(num_views=2, height=24, width=32, num_points=0)).scene
    >>> result = export_colmap(scene, tempfile.mkdtemp())
    >>> result.num_views, (result.path / "sparse" / "0" / "images.bin").is_file()
    (2, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sem3r.data.readers.colmap import (
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    write_colmap_binary,
    write_colmap_text,
)
from sem3r.errors import Sem3RError
from sem3r.geometry.transforms import quat_from_matrix
from sem3r.scene import PointCloud, Scene
from sem3r.viz.dataset_frames import (
    DatasetExport,
    DatasetPointsConfig,
    dataset_point_cloud,
    exportable_views,
    frame_file_names,
    pinhole_camera,
    scene_colmap_cameras,
    write_pngs,
)


@dataclass
class ColmapExportConfig(DatasetPointsConfig):
    """Options of :func:`export_colmap`.

    Attributes:
        text: also write the model as text files into ``sparse_text/0``.
        keep_camera_models: keep a view's COLMAP camera model and distortion from the Scene's
            metadata when it matches the view (else every camera is ``PINHOLE``).
        voxel_size: voxel size in metres of the dense cloud used when the Scene has no sparse points.
        max_points: at most this many dense points (seeded subsample; sparse points are all kept).
        seed: seed of that subsample.
    """

    text: bool = False
    keep_camera_models: bool = True


def scene_to_colmap_model(
    scene: Scene, indices: np.ndarray, names: list[str], cloud: PointCloud, keep_camera_models: bool = True
) -> ColmapModel:
    """The COLMAP model of the views ``indices`` and the points ``cloud``.

    Args:
        scene: the Scene.
        indices: ``(V,)`` views to include, in order (image ids ``1..V``).
        names: ``V`` image file names.
        cloud: ``P`` points (``xyz (P, 3)``, ``rgb (P, 3) uint8``); point ids ``1..P``, error 0, no track.
        keep_camera_models: see :class:`ColmapExportConfig`.

    Returns:
        The :class:`~sem3r.data.readers.colmap.ColmapModel` (COLMAP conventions).
    """
    given = scene_colmap_cameras(scene) if keep_camera_models else [None] * scene.num_views
    cameras: dict[int, ColmapCamera] = {}
    ids: dict[tuple, int] = {}
    camera_of_view = []
    for i in indices:
        camera = given[i] or pinhole_camera(scene.intrinsics[i], scene.width, scene.height)
        key = (camera.model, camera.width, camera.height, tuple(camera.params.tolist()))
        if key not in ids:
            ids[key] = len(ids) + 1
            cameras[ids[key]] = ColmapCamera(ids[key], camera.model, camera.width, camera.height, camera.params)
        camera_of_view.append(ids[key])
    poses = scene.cam_from_world[indices]
    xyzw = quat_from_matrix(poses[:, :, :3])
    wxyz = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
    images = {
        k + 1: ColmapImage(k + 1, wxyz[k], poses[k, :, 3], camera_of_view[k], names[k]) for k in range(len(indices))
    }
    p = len(cloud.xyz)
    return ColmapModel(
        cameras=cameras,
        images=images,
        point_ids=np.arange(1, p + 1),
        xyz=np.asarray(cloud.xyz, np.float64),
        rgb=cloud.rgb,
        errors=np.zeros(p),
        track_lengths=np.zeros(p, np.int64),
    )


def export_colmap(
    scene: Scene, out_dir: str | Path, config: ColmapExportConfig | None = None, dense: PointCloud | None = None
) -> DatasetExport:
    """Write the COLMAP dataset of ``scene`` into ``out_dir`` (see the module docstring).

    Args:
        scene: ``N`` views with ``images (N, H, W, 3) uint8``, ``intrinsics (N, 3, 3)`` and
            ``cam_from_world (N, 3, 4)``; ``sparse_points (P, 3)`` or depth / world points for
            ``points3D``.
        out_dir: the dataset folder (created).
        config: options (default :class:`ColmapExportConfig`).
        dense: an already fused dense cloud to use when the Scene has no sparse points.

    Returns:
        A :class:`~sem3r.viz.dataset_frames.DatasetExport` (``summary()`` is one line for the user).

    Raises:
        Sem3RError: invalid options, or no view has a pose.
    """
    config = config or ColmapExportConfig()
    config.validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise Sem3RError(f"cannot export a COLMAP dataset to '{out_dir}': it is a file")
    indices, skipped = exportable_views(scene)
    names = frame_file_names([scene.image_names[i] for i in indices])
    cloud, points_from = dataset_point_cloud(scene, dense, config)
    model = scene_to_colmap_model(scene, indices, names, cloud, config.keep_camera_models)
    write_pngs(scene.images[indices], out_dir / "images", names, desc="writing COLMAP images")
    write_colmap_binary(model, out_dir / "sparse" / "0")
    if config.text:
        write_colmap_text(model, out_dir / "sparse_text" / "0")
    return DatasetExport(out_dir, len(indices), skipped, len(cloud.xyz), points_from)
