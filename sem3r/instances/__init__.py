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
    "ClusterPreset": "clustering",
    "ClusteringConfig": "clustering",
    "CLUSTER_PRESETS": "clustering",
    "cluster_instance_features": "clustering",
    "cluster_per_view": "clustering",
    "cluster_scene": "clustering",
    "knn_graph": "clustering",
    "GTMaskConfig": "mask_sources",
    "MASK_SOURCES": "mask_sources",
    "OversegmentConfig": "mask_sources",
    "SamMaskConfig": "mask_sources",
    "assign_masks": "mask_sources",
    "get_mask_source": "mask_sources",
    "make_mask_config": "mask_sources",
    "register_mask_source": "mask_sources",
    "unregister_mask_source": "mask_sources",
    "view_masks": "mask_sources",
    "LiftConfig": "lifting",
    "lift_masks": "lifting",
    "lift_scene": "lifting",
    "FeatureSegmentConfig": "segmentation",
    "LiftSegmentConfig": "segmentation",
    "METHODS": "segmentation",
    "make_segment_config": "segmentation",
    "register_method": "segmentation",
    "segment": "segmentation",
    "with_instance_features": "segmentation",
    "predict_instance_features": "segmentation",
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.instances", _SUBMODULE)
