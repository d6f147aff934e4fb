"""Export a Scene to every viewable format in one call (used by ``sem3r export`` and ``sem3r demo``).

Viewable files (``ply``, ``glb``, ``html``) draw the fused dense cloud, or the Scene's sparse
points when it has no depth or world points (a ``colmap`` backend Scene). Training datasets
(``colmap``: :mod:`sem3r.viz.colmap_export`, ``nerfstudio``: :mod:`sem3r.viz.nerfstudio_export`)
are folders ``OUT/colmap`` and ``OUT/nerfstudio``; they start from the sparse points when there
are any, else from the dense cloud capped at ``max_points``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from sem3r.errors import Sem3RError
from sem3r.scene import Scene

FORMATS = ("ply", "glb", "html", "colmap", "nerfstudio")
"""Every format :func:`export_scene` writes."""
DEFAULT_FORMATS = ("ply", "glb", "html")
"""The formats written when none are named."""
FILE_NAMES = {"ply": "scene.ply", "glb": "scene.glb", "html": "viewer.html", "colmap": "colmap", "nerfstudio": "nerfstudio"}
_VIEWABLE = ("ply", "glb", "html")


def export_scene(
    scene: Scene,
    out_dir: str | Path,
    formats: Sequence[str] = DEFAULT_FORMATS,
    color_by: Literal["rgb", "instance", "semantic"] = "rgb",
    voxel_size: float | None = 0.01,
    conf_percentile: float | None = None,
    max_points: int = 200_000,
    colmap_text: bool = False,
    report: Callable[[str], None] | None = None,
) -> list[Path]:
    """Fuse the Scene's points once and write ``scene.ply``, ``scene.glb``, ``viewer.html``, ``colmap/``, ``nerfstudio/``.

    Args:
        scene: a Scene with depth or world points, or sparse points (the viewable formats need
            one of them; the datasets also export cameras and images alone).
        out_dir: output folder (created if needed).
        formats: subset of :data:`FORMATS` (default :data:`DEFAULT_FORMATS`).
        color_by: colouring of the GLB point cloud (the HTML viewer switches at run time; the PLY
            keeps RGB plus ``instance_id`` / ``semantic_id`` fields).
        voxel_size: voxel downsampling of the fused cloud in metres, ``None`` keeps every pixel.
        conf_percentile: drop the lowest P percent of points by confidence.
        max_points: points embedded in the HTML viewer, and dense points in the datasets (seeded
            subsample above it).
        colmap_text: also write the COLMAP model as text (``colmap/sparse_text/0``).
        report: called with one line per dataset written (views, skipped views, points).

    Returns:
        The written paths (files, or the dataset folders), in the order of ``formats``.
    """
    from sem3r.viz.colmap_export import ColmapExportConfig, export_colmap
    from sem3r.viz.glb import export_glb
    from sem3r.viz.html import export_html
    from sem3r.viz.nerfstudio_export import NerfstudioExportConfig, export_nerfstudio
    from sem3r.viz.ply import export_ply

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise Sem3RError(f"unknown export format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    viewable = any(fmt in _VIEWABLE for fmt in formats)
    if viewable and not scene.has_dense_geometry and scene.sparse_points is None:
        raise Sem3RError("the scene has no depth or world points to export; reconstruct it first")
    cloud = None
    if scene.has_dense_geometry:
        cloud = scene.fused_point_cloud(voxel_size=voxel_size, conf_percentile=conf_percentile)
    view_cloud = cloud if cloud is not None else scene.sparse_point_cloud()
    out_dir = Path(out_dir)

    def dataset(write: Callable, config, path: Path) -> Path:
        result = write(scene, path, config, dense=cloud)
        if report is not None:
            report(result.summary())
        return result.path

    writers = {
        "ply": lambda p: export_ply(view_cloud, p),
        "glb": lambda p: export_glb(scene, p, cloud=view_cloud, color_by=color_by),
        "html": lambda p: export_html(scene, p, cloud=view_cloud, max_points=max_points),
        "colmap": lambda p: dataset(export_colmap, ColmapExportConfig(text=colmap_text, voxel_size=voxel_size, max_points=max_points), p),
        "nerfstudio": lambda p: dataset(export_nerfstudio, NerfstudioExportConfig(voxel_size=voxel_size, max_points=max_points), p),
    }
    return [writers[fmt](out_dir / FILE_NAMES[fmt]) for fmt in formats]
