"""Neural network modules (no I/O): the VGGT-compatible geometry transformer and its heads."""

from sem3r.models.vggt import VGGT, VGGTConfig

__all__ = ["VGGT", "VGGTConfig"]
