"""Export and viewing: PLY and GLB files, a standalone offline HTML viewer, PCA feature images,
COLMAP and nerfstudio training datasets.

Example:
    >>> import numpy as np, tempfile, os
    >>> from sem3r.scene import Scene
    >>> from sem3r.viz import export_glb, export_html, export_ply
    >>> s = Scene(images=np.zeros((2, 4, 6, 3), np.uint8), intrinsics=np.tile(np.eye(3), (2, 1, 1)),
    ...           cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)), depth=np.ones((2, 4, 6), np.float32))
    >>> out = tempfile.mkdtemp()
    >>> paths = [export_ply(s.fused_point_cloud(), os.path.join(out, "scene.ply")),
    ...          export_glb(s, os.path.join(out, "scene.glb")),
    ...          export_html(s, os.path.join(out, "scene.html"))]
    >>> sorted(p.name for p in paths)
    ['scene.glb', 'scene.html', 'scene.ply']
"""

from sem3r.viz.colors import UNLABELLED_COLOR, cloud_colors, instance_colors, label_palette, semantic_colors
from sem3r.viz.common import default_frustum_depth, frustum_segments, frustum_vertices, viewer_frame
from sem3r.viz.colmap_export import ColmapExportConfig, export_colmap
from sem3r.viz.export import export_scene
from sem3r.viz.glb import export_glb
from sem3r.viz.html import export_html, viewer_payload
from sem3r.viz.nerfstudio_export import NerfstudioExportConfig, export_nerfstudio
from sem3r.viz.pca import PCAColorMap, pca_colors
from sem3r.viz.ply import export_ply, read_ply

__all__ = [
    "UNLABELLED_COLOR",
    "ColmapExportConfig",
    "NerfstudioExportConfig",
    "PCAColorMap",
    "cloud_colors",
    "default_frustum_depth",
    "export_colmap",
    "export_glb",
    "export_html",
    "export_nerfstudio",
    "export_ply",
    "export_scene",
    "frustum_segments",
    "frustum_vertices",
    "instance_colors",
    "label_palette",
    "pca_colors",
    "read_ply",
    "semantic_colors",
    "viewer_frame",
    "viewer_payload",
]
