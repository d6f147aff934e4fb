"""GLB (binary glTF 2.0) export: the point cloud plus one wire frustum per camera.

Coordinates. Vertex data is written in the Sem3R world frame unchanged (metres, whatever frame the
scene uses, e.g. the first camera's OpenCV frame: x right, y down, z forward). glTF is y-up and
viewers look along -z, so by default every geometry hangs under one scene-level node
``sem3r_world`` whose transform is the rotation :func:`~sem3r.viz.common.viewer_frame`: the
cameras' mean up direction becomes +y and their mean viewing direction -z. For a scene whose
world is the first camera's OpenCV frame this is exactly the OpenCV -> glTF flip
``diag(1, -1, -1)``. Tools that apply node transforms (Blender, three.js, ``trimesh.load(...)
.dump()``) see the scene upright; tools that read raw vertex arrays get world coordinates.
Pass ``align=False`` for an identity node transform.

Geometry names: ``points`` (a glTF ``POINTS`` primitive with per-vertex RGBA) and
``frustum_0000``, ``frustum_0001``, ... (``LINES``: four edges from the apex at the camera centre
to the image corners and four around the base). The first camera's frustum is orange, the
others light blue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import trimesh

from sem3r.io import write_bytes_atomic
from sem3r.scene import PointCloud, Scene
from sem3r.viz.colors import cloud_colors
from sem3r.viz.common import (
    FIRST_FRUSTUM_COLOR,
    FRUSTUM_COLOR,
    default_frustum_depth,
    frustum_vertices,
    resolve_cloud,
    viewer_frame,
)


def _frustum_path(vertices: np.ndarray, color: tuple[int, int, int]) -> trimesh.path.Path3D:
    entities = [trimesh.path.entities.Line([0, corner]) for corner in range(1, 5)]
    entities.append(trimesh.path.entities.Line([1, 2, 3, 4, 1]))
    colors = np.tile(np.array([*color, 255], np.uint8), (len(entities), 1))
    return trimesh.path.Path3D(entities=entities, vertices=vertices, colors=colors, process=False)


def export_glb(
    scene: Scene,
    path: str | Path,
    cloud: PointCloud | None = None,
    color_by: Literal["rgb", "instance", "semantic"] = "rgb",
    frustum_scale: float | None = None,
    max_points: int | None = 2_000_000,
    align: bool = True,
    seed: int = 0,
) -> Path:
    """Write the scene's point cloud and camera frusta to a ``.glb`` file atomically.

    Args:
        scene: cameras (``intrinsics (N, 3, 3)``, ``cam_from_world (N, 3, 4)``) and, when ``cloud``
            is ``None``, the points (``scene.fused_point_cloud()``; none if the scene has no depth
            or world points).
        path: destination ``.glb`` file.
        cloud: the ``M`` points to draw.
        color_by: point colours: ``"rgb"``, ``"instance"`` or ``"semantic"`` (see
            :func:`~sem3r.viz.colors.cloud_colors`).
        frustum_scale: camera-frame depth of the frustum bases in world units; ``None`` uses 5 % of
            the scene extent (:func:`~sem3r.viz.common.default_frustum_depth`).
        max_points: randomly keep at most this many points (seeded; ``None`` keeps all).
        align: rotate the root node to the y-up viewer frame (see the module docstring).
        seed: seed of the subsampling.

    Returns:
        ``path``.

    Example:
        >>> import numpy as np, tempfile, os
        >>> s = Scene(images=np.zeros((2, 4, 6, 3), np.uint8), intrinsics=np.tile(np.eye(3), (2, 1, 1)),
        ...           cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)), depth=np.ones((2, 4, 6), np.float32))
        >>> p = export_glb(s, os.path.join(tempfile.mkdtemp(), "scene.glb"), color_by="instance")
        >>> sorted(trimesh.load(p).geometry)
        ['frustum_0000', 'frustum_0001', 'points']
    """
    cloud = resolve_cloud(scene, cloud, max_points, seed)
    colors = cloud_colors(cloud, color_by)
    depth = default_frustum_depth(scene.cam_from_world, cloud.xyz) if frustum_scale is None else float(frustum_scale)
    frusta = frustum_vertices(scene.intrinsics, scene.cam_from_world, scene.height, scene.width, depth)

    out = trimesh.Scene()
    root = "sem3r_world"
    transform = np.eye(4)
    if align:
        transform[:3, :3] = viewer_frame(scene.cam_from_world)
    out.graph.update(frame_from=out.graph.base_frame, frame_to=root, matrix=transform)
    if len(cloud.xyz):
        rgba = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
        points = trimesh.PointCloud(cloud.xyz.astype(np.float64), colors=rgba)
        out.add_geometry(points, geom_name="points", node_name="points", parent_node_name=root)
    for i, vertices in enumerate(frusta):
        name = f"frustum_{i:04d}"
        geom = _frustum_path(vertices, FIRST_FRUSTUM_COLOR if i == 0 else FRUSTUM_COLOR)
        out.add_geometry(geom, geom_name=name, node_name=name, parent_node_name=root)
    return write_bytes_atomic(path, out.export(file_type="glb"))
