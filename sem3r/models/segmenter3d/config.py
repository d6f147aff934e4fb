"""Sizes and settings of the OVSeg3R-style 3D instance segmenter :class:`~sem3r.models.segmenter3d.Segmenter3D`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sem3r.config import dataclass_from_dict
from sem3r.errors import Sem3RError


@dataclass
class Segmenter3DConfig:
    """Sizes of :class:`~sem3r.models.segmenter3d.Segmenter3D` (defaults: a CPU-trainable model, ~0.6M parameters).

    Nothing here depends on the vocabulary size ``C`` or the query count ``Q``: both may change
    from call to call.

    Attributes:
        feature_dim: ``F``, channels of the per-point sampled 2D features (0: geometry and colour only).
        text_dim: ``D_t``, size of the text embeddings the queries are compared with.
        dim: model width (a multiple of ``heads``).
        encoder_layers: superpoint self-attention blocks after the point MLP and the pooling.
        decoder_layers: query decoder layers (masked cross-attention, self-attention, FFN).
        heads: attention heads of every attention layer.
        ffn_ratio: hidden width of every feed-forward network, as a multiple of ``dim``.
        dropout: dropout on attention weights and feed-forward outputs (training only).
        pos_frequencies: octaves ``L`` of the Fourier features of normalised coordinates
            (``sin/cos(2^k pi x)``, ``k = 0 .. L-1``).
        use_colors: feed the point colours to the point MLP.
        use_normals: feed the point normals to the point MLP.
        logit_scale_init: initial log of the class-logit temperature (``log(1 / 0.07)``, as CLIP).
        logit_scale_max: the log temperature is clamped to at most this (``log(100)``, as CLIP).
        class_bias_init: initial class-logit bias; ``-4`` gives initial sigmoid probabilities near
            0.018, as the prior-probability bias of sigmoid-focal detectors.

    Example:
        >>> cfg = Segmenter3DConfig.from_dict({"dim": 32, "heads": 2})
        >>> cfg.dim, Segmenter3DConfig.from_dict(cfg.to_dict()) == cfg
        (32, True)
    """

    feature_dim: int = 64
    text_dim: int = 64
    dim: int = 96
    encoder_layers: int = 2
    decoder_layers: int = 3
    heads: int = 4
    ffn_ratio: float = 2.0
    dropout: float = 0.0
    pos_frequencies: int = 8
    use_colors: bool = True
    use_normals: bool = True
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = math.log(100.0)
    class_bias_init: float = -4.0

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        counts = {"feature_dim": (self.feature_dim, 0), "text_dim": (self.text_dim, 1), "dim": (self.dim, 1),
                  "encoder_layers": (self.encoder_layers, 0), "decoder_layers": (self.decoder_layers, 1),
                  "heads": (self.heads, 1), "pos_frequencies": (self.pos_frequencies, 0)}
        for name, (value, low) in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise Sem3RError(f"segmenter3d {name} must be an integer >= {low}, got {value!r}")
        if self.dim % self.heads:
            raise Sem3RError(f"segmenter3d dim {self.dim} must be a multiple of heads {self.heads}")
        if not self.ffn_ratio > 0:
            raise Sem3RError(f"segmenter3d ffn_ratio must be positive, got {self.ffn_ratio}")
        if not 0 <= self.dropout < 1:
            raise Sem3RError(f"segmenter3d dropout must be in [0, 1), got {self.dropout}")
        if not self.logit_scale_init <= self.logit_scale_max:
            raise Sem3RError(
                f"segmenter3d logit_scale_init {self.logit_scale_init} exceeds logit_scale_max {self.logit_scale_max}"
            )

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Segmenter3DConfig:
        """Build and validate from a JSON object; unknown keys are an error."""
        return dataclass_from_dict(cls, doc, "segmenter3d config")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict, readable by :meth:`from_dict`."""
        return asdict(self)
