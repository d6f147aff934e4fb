"""IGGT: the VGGT geometry transformer plus an instance head giving 3D-consistent per-pixel features.

With the default :class:`IGGTConfig` the module tree matches the official IGGT checkpoint key for key
(``load_state_dict(strict=True)`` works); :meth:`IGGTConfig.small` is the CPU-sized variant.
"""

from sem3r.models.iggt.adaptor import PartAdaptor, ResidualProjection
from sem3r.models.iggt.model import IGGT, IGGTConfig
from sem3r.models.iggt.part_head import CrossAttention, PartHead
from sem3r.models.iggt.window_attention import (
    HybridWindowSelfAttention,
    OverlappingWindowCrossAttention,
    WindowAttentionConfig,
)

__all__ = [
    "IGGT",
    "CrossAttention",
    "HybridWindowSelfAttention",
    "IGGTConfig",
    "OverlappingWindowCrossAttention",
    "PartAdaptor",
    "PartHead",
    "ResidualProjection",
    "WindowAttentionConfig",
]
