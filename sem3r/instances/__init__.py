"""Instances: per-view 2D mask sources, clustering of instance features into 3D-consistent masks,
lifting and association of 2D masks across views, and one entry point, :func:`segment`.

========================  ====================================================================
method                    what it does
========================  ====================================================================
``iggt``                  cluster IGGT instance features of all views jointly (HDBSCAN)
``perview``               the same clustering on each view alone (no cross-view association)
``lift``                  2D masks from a source, lifted into 3D and merged by view consensus
========================  ====================================================================

Names are imported lazily from their submodules.
"""

from sem3r._lazy import lazy_exports

_SUBMODULE = {
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.instances", _SUBMODULE)
