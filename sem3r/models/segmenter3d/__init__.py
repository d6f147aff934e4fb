"""The OVSeg3R-style open-vocabulary 3D instance segmenter (SegDINO3D-VL at CPU scale).

:class:`Segmenter3D` maps one scene's points (with colours, normals, sampled 2D features and
superpoint ids), a set of seed superpoints and the text embeddings of a vocabulary to per-query
superpoint masks and sigmoid class logits; :func:`pool_superpoints` is the mean pooling it uses.
"""

from sem3r.models.segmenter3d.config import Segmenter3DConfig
from sem3r.models.segmenter3d.decoder import (
    DecoderLayer,
    PredictionHead,
    QueryDecoder,
    attention_mask_from_logits,
)
from sem3r.models.segmenter3d.encoder import (
    Attention,
    PositionEncoding,
    SuperpointEncoder,
    fourier_features,
    normalize_points,
    pool_superpoints,
)
from sem3r.models.segmenter3d.model import Segmenter3D

__all__ = [
    "Attention",
    "DecoderLayer",
    "PositionEncoding",
    "PredictionHead",
    "QueryDecoder",
    "Segmenter3D",
    "Segmenter3DConfig",
    "SuperpointEncoder",
    "attention_mask_from_logits",
    "fourier_features",
    "normalize_points",
    "pool_superpoints",
]
