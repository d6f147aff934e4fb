"""Export a Scene to every viewable format in one call (used by ``sem3r export`` and ``sem3r demo``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from sem3r.errors import Sem3RError
from sem3r.scene import Scene
from sem3r.viz.glb import export_glb
from sem3r.viz.html import export_html
from sem3r.viz.ply import export_ply

FORMATS = ("ply", "glb", "html")
FILE_NAMES = {"ply": "scene.ply", "glb": "scene.glb", "html": "viewer.html"}


def export_scene(
    scene: Scene,
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    color_by: Literal["rgb", "instance", "semantic"] = "rgb",
    voxel_size: float | None = 0.01,
    conf_percentile: float | None = None,
    max_points: int = 200_000,
) -> list[Path]:
    """Fuse the Scene's points once and write ``scene.ply``, ``scene.glb`` and ``viewer.html``.

    Args:
        scene: a Scene with depth or world points.
        out_dir: output folder (created if needed).
        formats: subset of ``("ply", "glb", "html")``.
        color_by: colouring of the GLB point cloud (the HTML viewer switches at run time; the PLY
            keeps RGB plus ``instance_id`` / ``semantic_id`` fields).
        voxel_size: voxel downsampling of the fused cloud in metres, ``None`` keeps every pixel.
        conf_percentile: drop the lowest P percent of points by confidence.
        max_points: points embedded in the HTML viewer (seeded subsample above it).

    Returns:
        The written paths, in the order of ``formats``.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise Sem3RError(f"unknown export format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    if scene.depth is None and scene.world_points is None:
        raise Sem3RError("the scene has no depth or world points to export; reconstruct it first")
    cloud = scene.fused_point_cloud(voxel_size=voxel_size, conf_percentile=conf_percentile)
    out_dir = Path(out_dir)
    writers = {
        "ply": lambda p: export_ply(cloud, p),
        "glb": lambda p: export_glb(scene, p, cloud=cloud, color_by=color_by),
        "html": lambda p: export_html(scene, p, cloud=cloud, max_points=max_points),
    }
    return [writers[fmt](out_dir / FILE_NAMES[fmt]) for fmt in formats]
