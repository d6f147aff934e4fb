"""G2VLM: geometric and semantic perception experts sharing one attention (Mixture-of-Transformers).

With the configs of the official ``G2VLM-2B-MoT`` folder (:meth:`G2VLMConfig.from_folder`) the module
tree matches its checkpoint key for key; :meth:`G2VLMConfig.small` is the CPU-sized variant.
"""

from sem3r._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "G2VLM": "model",
        "G2VLMConfig": "config",
        "TextConfig": "config",
        "VisionConfig": "config",
        "DinoConfig": "config",
        "DinoEncoder": "dino",
        "MoTLanguageModel": "mot",
        "MoTDecoderLayer": "mot",
        "KVCache": "mot",
        "PackedSequence": "sequence",
        "Pi3Decoder": "heads",
        "PointHead": "heads",
        "CameraHead": "heads",
        "dino_images": "preprocess",
        "vit_pixel_values": "preprocess",
    },
)
