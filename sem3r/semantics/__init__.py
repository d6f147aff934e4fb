"""Semantics: open-vocabulary classification and 3D instance segmentation.

========================  ====================================================================
module                    what it does
========================  ====================================================================
``text``                  text encoders (CLIP / SigLIP through transformers, an offline hash)
``point_inputs``          a Scene -> points, IBSp superpoints, sampled 2D features (OVSeg3R 3.1)
``checkpoint``            trained 3D segmenter files: save, load
``segment3d``             open-vocabulary 3D instances: trained segmenter or lift + superpoints
========================  ====================================================================

Names are imported lazily from their submodules.
"""

from sem3r._lazy import lazy_exports

_SUBMODULE = {
    "HashTextEncoder": "text",
    "HashTextEncoderConfig": "text",
    "SiglipTextEncoderConfig": "text",
    "TEXT_ENCODERS": "text",
    "TextEncoder": "text",
    "TransformersTextEncoder": "text",
    "TransformersTextEncoderConfig": "text",
    "get_text_encoder": "text",
    "make_text_encoder": "text",
    "normalize_class_name": "text",
    "register_text_encoder": "text",
    "unregister_text_encoder": "text",
    "validate_class_names": "text",
    "PointInputs": "point_inputs",
    "PointInputsConfig": "point_inputs",
    "detection_classes": "point_inputs",
    "detection_feature_maps": "point_inputs",
    "prepare_point_inputs": "point_inputs",
    "scene_annotations": "point_inputs",
    "TrainedSegmenter": "checkpoint",
    "load_segmenter": "checkpoint",
    "save_segmenter": "checkpoint",
    "Segment3DConfig": "segment3d",
    "Segment3DResult": "segment3d",
    "farthest_point_sampling": "segment3d",
    "segment3d": "segment3d",
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.semantics", _SUBMODULE)
