"""PLY export and import of labelled point clouds.

The vertex element carries ``x, y, z`` (float32), ``red, green, blue`` (uchar), ``instance_id``,
``semantic_id`` and ``view_id`` (int32, -1 = unlabelled / merged) and, when given, ``nx, ny, nz``
(float32). Those names are what MeshLab, CloudCompare and Open3D read for positions, colours and
normals; the id columns are extra scalar fields (CloudCompare shows them as scalar fields).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plyfile

from sem3r.errors import Sem3RError
from sem3r.io import atomic_path
from sem3r.scene import PointCloud


def export_ply(cloud: PointCloud, path: str | Path, normals: np.ndarray | None = None, binary: bool = True) -> Path:
    """Write a point cloud to a PLY file atomically.

    Args:
        cloud: ``M`` points (``xyz (M, 3)``, ``rgb (M, 3) uint8``, ``instance_ids``,
            ``semantic_ids`` and ``view_ids`` ``(M,) int32``).
        path: destination ``.ply`` file (parent directories are created).
        normals: optional ``(M, 3)`` unit normals, written as ``nx, ny, nz``.
        binary: little-endian binary (default, compact) or ASCII.

    Returns:
        ``path``.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from sem3r.scene import PointCloud
        >>> c = PointCloud(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.uint8),
        ...                np.array([0, -1], np.int32), np.array([3, -1], np.int32), np.zeros(2, np.int32))
        >>> p = export_ply(c, os.path.join(tempfile.mkdtemp(), "cloud.ply"))
        >>> read_ply(p).instance_ids.tolist()
        [0, -1]
    """
    m = len(cloud)
    columns = [
        ("x", "<f4", cloud.xyz[:, 0]),
        ("y", "<f4", cloud.xyz[:, 1]),
        ("z", "<f4", cloud.xyz[:, 2]),
    ]
    if normals is not None:
        normals = np.asarray(normals, np.float32)
        if normals.shape != (m, 3):
            raise Sem3RError(f"normals must have shape ({m}, 3) to match the cloud, got {normals.shape}")
        columns += [("nx", "<f4", normals[:, 0]), ("ny", "<f4", normals[:, 1]), ("nz", "<f4", normals[:, 2])]
    columns += [
        ("red", "u1", cloud.rgb[:, 0]),
        ("green", "u1", cloud.rgb[:, 1]),
        ("blue", "u1", cloud.rgb[:, 2]),
        ("instance_id", "<i4", cloud.instance_ids),
        ("semantic_id", "<i4", cloud.semantic_ids),
        ("view_id", "<i4", cloud.view_ids),
    ]
    vertex = np.empty(m, dtype=[(name, dt) for name, dt, _ in columns])
    for name, _, values in columns:
        if len(values) != m:
            raise Sem3RError(f"point cloud column '{name}' has {len(values)} rows, expected {m}")
        vertex[name] = values
    data = plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex")], text=not binary, byte_order="<")
    path = Path(path)
    with atomic_path(path) as tmp:
        data.write(str(tmp))
    return path


def read_ply(path: str | Path) -> PointCloud:
    """Read a PLY point cloud (ours, or any PLY with a ``vertex`` element holding ``x, y, z``).

    Missing colours read as grey ``(128, 128, 128)``, float colours are taken to be in ``[0, 1]``
    and missing id columns read as ``-1``.

    Args:
        path: a ``.ply`` file.

    Returns:
        A :class:`~sem3r.scene.PointCloud` with ``xyz (M, 3) float32``, ``rgb (M, 3) uint8`` and
        ``(M,) int32`` ids.

    Raises:
        Sem3RError: the file is missing, not a PLY file or has no vertex positions.
    """
    path = Path(path)
    if not path.is_file():
        raise Sem3RError(f"PLY file '{path}' does not exist")
    try:
        data = plyfile.PlyData.read(str(path))
    except (plyfile.PlyParseError, ValueError, OSError, EOFError) as exc:
        raise Sem3RError(f"cannot read PLY file '{path}': {exc}") from None
    names = [el.name for el in data.elements]
    if "vertex" not in names:
        raise Sem3RError(f"PLY file '{path}' has no vertex element (elements: {names})")
    v = data["vertex"].data
    fields = set(v.dtype.names or ())
    if not {"x", "y", "z"} <= fields:
        raise Sem3RError(f"PLY file '{path}' has no x, y, z vertex properties")
    m = len(v)

    def ids(name: str) -> np.ndarray:
        return v[name].astype(np.int32) if name in fields else np.full(m, -1, np.int32)

    xyz = np.stack([v["x"], v["y"], v["z"]], axis=-1).astype(np.float32)
    if {"red", "green", "blue"} <= fields:
        rgb = np.stack([v["red"], v["green"], v["blue"]], axis=-1)
        rgb = np.clip(np.rint(rgb * 255.0), 0, 255) if rgb.dtype.kind == "f" else np.clip(rgb, 0, 255)
        rgb = rgb.astype(np.uint8)
    else:
        rgb = np.full((m, 3), 128, np.uint8)
    return PointCloud(xyz, rgb, ids("instance_id"), ids("semantic_id"), ids("view_id"))
