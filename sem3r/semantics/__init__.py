"""Semantics: open-vocabulary classification and 3D instance segmentation.

========================  ====================================================================
module                    what it does
========================  ====================================================================
``text``                  text encoders (CLIP / SigLIP through transformers, an offline hash)
``vlm``                   image encoders: dense (MaskCLIP-style) and crop features, CLIP / SigLIP
``instance_semantics``    mask pooling, multi-scale crops, labels, open-vocabulary queries, maps
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
    "IMAGE_ENCODERS": "vlm",
    "CLIPImageEncoder": "vlm",
    "CLIPImageEncoderConfig": "vlm",
    "ImageEncoder": "vlm",
    "SiglipImageEncoderConfig": "vlm",
    "get_image_encoder": "vlm",
    "make_image_encoder": "vlm",
    "register_image_encoder": "vlm",
    "unregister_image_encoder": "vlm",
    "CropConfig": "instance_semantics",
    "LabelSceneConfig": "instance_semantics",
    "MaskPoolConfig": "instance_semantics",
    "class_text_embeddings": "instance_semantics",
    "crop_boxes": "instance_semantics",
    "crop_embeddings": "instance_semantics",
    "instance_embeddings": "instance_semantics",
    "label_instances": "instance_semantics",
    "label_scene": "instance_semantics",
    "mask_pool": "instance_semantics",
    "query_instances": "instance_semantics",
    "semantic_maps": "instance_semantics",
    "semantic_points": "instance_semantics",
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
