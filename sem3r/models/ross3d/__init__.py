"""ROSS3D: a video LMM with 3D-aware visual tokens and reconstructive (cross-view, BEV) training objectives.

With :class:`Ross3DConfig` defaults (vocabulary rows from the checkpoint via :func:`config_for_state_dict`) the
module tree matches ``HaochenWang/llava-video-qwen2-7b-ross3d`` key for key; ``Ross3D(config, training=True)``
adds the training-only denoiser; :meth:`Ross3DConfig.small` is the CPU-sized variant.
"""

from sem3r._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Ross3D": "model",
        "Ross3DOutput": "model",
        "VisualTokens": "model",
        "TRAINING_ONLY_PREFIXES": "model",
        "split_training_only": "model",
        "Ross3DConfig": "config",
        "SigLIPConfig": "config",
        "config_for_state_dict": "config",
        "KVCache": "decoder",
        "Ross3DDenoiser": "denoiser",
        "LatentTeacher": "denoiser",
        "WorldPositionEmbedding": "position_encoding",
        "world_points_from_depth": "position_encoding",
        "resize_crop_points": "position_encoding",
        "token_coordinates": "position_encoding",
        "discretize": "position_encoding",
        "sine_3d_embedding": "position_encoding",
        "frame_pixel_values": "preprocess",
        "chat_ids": "prompt",
        "IMAGE_TOKEN_INDEX": "prompt",
        "infonce_loss": "grounding",
    },
)
