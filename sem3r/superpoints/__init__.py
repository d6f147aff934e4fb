"""Superpoints: Felzenszwalb segments of a KNN (or mesh) graph with ScanNet Segmentator weights, and
2D Instance Boundary-aware Superpoints (IBSp, OVSeg3R) that cut the graph at 2D instance boundaries.

========================  ====================================================================
module                    what it does
========================  ====================================================================
``graph``                 KNN / mesh edges, vertex normals, ScanNet-style geometric weights,
                          ScanNet Segmentator's own mesh graph (``compat="scannet"``)
``ibsp``                  cut the edges whose endpoints carry different 2D instance ids
``segment``               :class:`SuperpointConfig`, point / scene / mesh superpoints
========================  ====================================================================

Names are imported lazily from their submodules.
"""

from sem3r._lazy import lazy_exports

_SUBMODULE = {
    "edges_from_neighbours": "graph",
    "geometric_weights": "graph",
    "knn_edges": "graph",
    "knn_neighbours": "graph",
    "mesh_edges": "graph",
    "scannet_mesh_graph": "graph",
    "vertex_normals": "graph",
    "IBSP_VIEWS": "ibsp",
    "instance_boundary_cut": "ibsp",
    "COMPAT": "segment",
    "WEIGHTS": "segment",
    "SuperpointConfig": "segment",
    "compute_superpoints": "segment",
    "knn_graph": "segment",
    "mesh_superpoints": "segment",
    "scene_superpoints": "segment",
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.superpoints", _SUBMODULE)
