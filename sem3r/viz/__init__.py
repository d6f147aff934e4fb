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

from sem3r._lazy import lazy_exports

# Names -> submodule, imported on first use (trimesh, torch and pycolmap stay out of `import sem3r.viz`).
_SUBMODULE = {
    "UNLABELLED_COLOR": "colors",
    "cloud_colors": "colors",
    "instance_colors": "colors",
    "label_palette": "colors",
    "semantic_colors": "colors",
    "default_frustum_depth": "common",
    "frustum_segments": "common",
    "frustum_vertices": "common",
    "viewer_frame": "common",
    "ColmapExportConfig": "colmap_export",
    "export_colmap": "colmap_export",
    "export_scene": "export",
    "export_glb": "glb",
    "export_html": "html",
    "viewer_payload": "html",
    "NerfstudioExportConfig": "nerfstudio_export",
    "export_nerfstudio": "nerfstudio_export",
    "PCAColorMap": "pca",
    "pca_colors": "pca",
    "export_ply": "ply",
    "read_ply": "ply",
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.viz", _SUBMODULE)
