"""Neural network modules (no I/O): the VGGT-compatible geometry transformer and its heads, and IGGT
(the same transformer with the instance head)."""

from sem3r.models.iggt import IGGT, IGGTConfig
from sem3r.models.segmenter3d import Segmenter3D, Segmenter3DConfig
from sem3r.models.vggt import VGGT, VGGTConfig

__all__ = ["IGGT", "VGGT", "IGGTConfig", "Segmenter3D", "Segmenter3DConfig", "VGGTConfig"]
