"""VGGT-compatible unified geometry transformer: aggregator, heads and the full model.

With the default :class:`VGGTConfig` the module tree matches the official VGGT-1B checkpoint key for
key, so its weights load with ``strict=True``; :meth:`VGGTConfig.small` is the CPU-sized variant.
"""

from sem3r.models.vggt.aggregator import Aggregator
from sem3r.models.vggt.camera_head import CameraHead, activate_pose
from sem3r.models.vggt.dpt_head import DPTHead
from sem3r.models.vggt.layers import Attention, Block, LayerScale, Mlp
from sem3r.models.vggt.model import VGGT, VGGTConfig
from sem3r.models.vggt.patch_embed import DINOv2Encoder, PatchEmbed
from sem3r.models.vggt.rope import RotaryPositionEmbedding2D, patch_positions
from sem3r.models.vggt.track_head import TrackHead

__all__ = [
    "VGGT",
    "VGGTConfig",
    "Aggregator",
    "CameraHead",
    "DPTHead",
    "TrackHead",
    "DINOv2Encoder",
    "PatchEmbed",
    "RotaryPositionEmbedding2D",
    "patch_positions",
    "Attention",
    "Block",
    "LayerScale",
    "Mlp",
    "activate_pose",
]
