"""Reasoning over a reconstructed scene: renders and structures that language models read.

========================  ====================================================================
module                    what it does
========================  ====================================================================
``bev``                   top-down bird's-eye-view render (ROSS3D), z-buffer, object markers
``scene_graph``           objects with gravity-aligned oriented boxes, visibility, floor area
========================  ====================================================================

Names are imported lazily from their submodules.
"""

from sem3r._lazy import lazy_exports

_SUBMODULE = {
    "BEVConfig": "bev",
    "BEVImage": "bev",
    "render_bev": "bev",
    "resolve_up": "bev",
    "save_bev": "bev",
    "SceneGraph": "scene_graph",
    "SceneGraphConfig": "scene_graph",
    "SceneObject": "scene_graph",
    "build_scene_graph": "scene_graph",
    "floor_area": "scene_graph",
    "ground_basis": "scene_graph",
    "oriented_box": "scene_graph",
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.reasoning", _SUBMODULE)
