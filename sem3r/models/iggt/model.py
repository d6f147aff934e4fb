"""IGGT: VGGT's geometry transformer plus an instance branch (IGGT paper, section 3.2).

:class:`IGGT` is a :class:`~sem3r.models.vggt.VGGT` (same aggregator, camera, depth, point and track
heads, same key names) with two more modules: ``part_adaptor``
(:class:`~sem3r.models.iggt.adaptor.PartAdaptor`) turns the aggregator's tokens into four instance
maps, and ``part_head`` (:class:`~sem3r.models.iggt.part_head.PartHead`) fuses them, attending to the
point head's multi-scale maps, into per-pixel instance features, L2-normalised over channels.

With the default :class:`IGGTConfig` the state dict has exactly the keys and shapes of the official
IGGT checkpoint (2,053 tensors, 1,299,499,573 numbers including BatchNorm statistics and the
relative position index buffers), so ``IGGT().load_state_dict(official, strict=True)`` works, and
with the default options the forward pass computes what the official IGGT code (github
lifuguan/IGGT_official) computes, including its quirks in the instance head (the coarse
cross-attention replaces the map, ``cross_attention_1`` is discarded, the window cross-attention
scrambles its query windows and lets zero-padded border keys into its softmax): checked with
identical random weights, instance features agree to float tolerance. Corrected variants of those
four are options (``cross_attention_residual``, ``use_cross_attention_1``, ``query_window_order``,
``border_keys``), described in :mod:`~sem3r.models.iggt.part_head` and
:mod:`~sem3r.models.iggt.window_attention`; they change what the official weights compute.

The point head runs ``frames_chunk_size`` frames at a time together with the instance branch, so
the point head's intermediate maps are never held for all frames at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sem3r.errors import Sem3RError
from sem3r.models.iggt.adaptor import PartAdaptor
from sem3r.models.iggt.part_head import PartHead
from sem3r.models.iggt.window_attention import BORDER_KEYS, QUERY_WINDOW_ORDERS, WindowAttentionConfig
from sem3r.models.vggt.model import VGGT, VGGTConfig


@dataclass
class IGGTConfig(VGGTConfig):
    """Sizes of :class:`IGGT`: every :class:`~sem3r.models.vggt.VGGTConfig` field plus the instance branch.

    The defaults are the official IGGT (VGGT-1B backbone and heads).

    Attributes:
        adaptor_channels: width of the four adaptor maps (256).
        part_features: fusion width of the part head (256); must equal ``dpt_features`` because the
            part head attends to the point head's fused maps.
        feature_dim: instance feature channels (8).
        cross_attention_heads: heads of the two global cross-attentions (8).
        window_size: window side of both window blocks (8).
        overlap_ratio: key windows of the window cross-attention are
            ``window_size * (1 + overlap_ratio)`` wide (0.5 -> 12).
        window_heads: heads of both window blocks (4).
        window_mlp_ratio: MLP width multiple of both window blocks (4).
        window_hidden: channels between ``conv_before_upsample`` and ``conv_last`` (64).
        cab_compress_ratio, cab_squeeze_factor: widths of the hybrid block's channel-attention
            conv branch (``dim // 3`` and ``dim // 30``).
        conv_scale: weight of that branch (0.01).
        cross_attention_residual: the global cross-attentions are added to the map (``True``)
            instead of replacing it (``False``, official).
        use_cross_attention_1: apply ``cross_attention_1`` (``True``) instead of discarding its
            output (``False``, official).
        query_window_order: ``"official"`` (scrambled query windows, as the official code and
            checkpoint; needs ``part_features`` to be a multiple of ``window_size``) or
            ``"correct"`` (spatial query windows).
        border_keys: ``"zero_pad"`` (official: zero keys/values beyond the map take part in the
            window cross-attention's softmax) or ``"masked"`` (they are left out).
    """

    adaptor_channels: int = 256
    part_features: int = 256
    feature_dim: int = 8
    cross_attention_heads: int = 8
    window_size: int = 8
    overlap_ratio: float = 0.5
    window_heads: int = 4
    window_mlp_ratio: float = 4.0
    window_hidden: int = 64
    cab_compress_ratio: int = 3
    cab_squeeze_factor: int = 30
    conv_scale: float = 0.01
    cross_attention_residual: bool = False
    use_cross_attention_1: bool = False
    query_window_order: str = "official"
    border_keys: str = "zero_pad"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.enable_point:
            raise Sem3RError("IGGT needs the point head (enable_point=True): the instance head reads its fused maps")
        if self.part_features != self.dpt_features:
            raise Sem3RError(
                f"part_features ({self.part_features}) must equal dpt_features ({self.dpt_features}): "
                "the part head attends to the point head's fused maps"
            )
        if self.part_features % 2 or self.part_features % self.cross_attention_heads:
            raise Sem3RError(
                f"part_features {self.part_features} must be even and split into {self.cross_attention_heads} heads"
            )
        if self.part_features % self.window_heads or (self.part_features // 2) % self.window_heads:
            raise Sem3RError(
                f"part_features {self.part_features} and its half must split into {self.window_heads} window heads"
            )
        if self.window_size < 1 or int(self.window_size * self.overlap_ratio) % 2:
            raise Sem3RError(
                f"window_size {self.window_size} with overlap_ratio {self.overlap_ratio} must give an even, "
                "positive overlap margin"
            )
        if self.feature_dim < 1:
            raise Sem3RError(f"feature_dim must be positive, got {self.feature_dim}")
        if self.query_window_order not in QUERY_WINDOW_ORDERS:
            raise Sem3RError(
                f"query_window_order must be one of {QUERY_WINDOW_ORDERS}, got {self.query_window_order!r}"
            )
        if self.border_keys not in BORDER_KEYS:
            raise Sem3RError(f"border_keys must be one of {BORDER_KEYS}, got {self.border_keys!r}")
        if self.query_window_order == "official" and self.part_features % self.window_size:
            raise Sem3RError(
                f"query_window_order='official' needs part_features ({self.part_features}) to be a multiple of "
                f"window_size ({self.window_size}); use query_window_order='correct'"
            )

    @classmethod
    def small(cls, **overrides) -> IGGTConfig:
        """A small IGGT for CPU tests and synthetic-data training (about 7M parameters).

        The backbone and geometry heads of :meth:`VGGTConfig.small`; an adaptor and part head of
        width 32, 4-head window blocks with 8-pixel windows and a 16-channel conv tail, 8-dim features.

        Args:
            overrides: any field to change, e.g. ``enable_track=False``.

        Example:
            >>> cfg = IGGTConfig.small(enable_track=False)
            >>> cfg.embed_dim, cfg.part_features, cfg.feature_dim
            (128, 32, 8)
        """
        sizes = {"adaptor_channels": 32, "part_features": 32, "window_hidden": 16}
        return super().small(**{**sizes, **overrides})

    def window_config(self) -> WindowAttentionConfig:
        """The window blocks' sizes."""
        return WindowAttentionConfig(
            window_size=self.window_size,
            overlap_ratio=self.overlap_ratio,
            num_heads=self.window_heads,
            mlp_ratio=self.window_mlp_ratio,
            hidden=self.window_hidden,
            compress_ratio=self.cab_compress_ratio,
            squeeze_factor=self.cab_squeeze_factor,
            conv_scale=self.conv_scale,
            query_window_order=self.query_window_order,
            border_keys=self.border_keys,
        )


class IGGT(VGGT):
    """Geometry and 3D-consistent instance features from images (VGGT + ``part_adaptor`` + ``part_head``).

    Args:
        config: sizes (default: the official IGGT).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = IGGT(IGGTConfig.small(enable_track=False)).eval()
        >>> with torch.no_grad():
        ...     out = model(torch.rand(1, 2, 3, 28, 42))
        >>> out["instance_features"].shape, out["world_points"].shape
        (torch.Size([1, 2, 28, 42, 8]), torch.Size([1, 2, 28, 42, 3]))
        >>> bool(torch.allclose(out["instance_features"].norm(dim=-1), torch.ones(1, 2, 28, 42)))
        True
    """

    config: IGGTConfig

    def __init__(self, config: IGGTConfig | None = None) -> None:
        config = config or IGGTConfig()
        if not isinstance(config, IGGTConfig):
            raise Sem3RError(f"IGGT needs an IGGTConfig, got {type(config).__name__}")
        super().__init__(config)
        self.part_adaptor = PartAdaptor(2 * config.embed_dim, config.adaptor_channels, config.intermediate_layer_idx)
        self.part_head = PartHead(
            dim_in=2 * config.embed_dim,
            patch_size=config.patch_size,
            adaptor_channels=config.adaptor_channels,
            features=config.part_features,
            out_channels=config.dpt_out_channels,
            intermediate_layer_idx=config.intermediate_layer_idx,
            feature_dim=config.feature_dim,
            cross_attention_heads=config.cross_attention_heads,
            window=config.window_config(),
            cross_attention_residual=config.cross_attention_residual,
            use_cross_attention_1=config.use_cross_attention_1,
        )

    def forward(
        self, images: torch.Tensor, query_points: torch.Tensor | None = None, frames_chunk_size: int = 8
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Geometry and instance features for every frame of every scene.

        Args:
            images: ``(B, S, 3, H, W)`` or ``(S, 3, H, W)``, RGB in [0, 1], H and W multiples of the
                patch size; frame 0 is the reference.
            query_points: ``(B, N, 2)`` or ``(N, 2)`` pixels of frame 0 to track (needs the track head).
            frames_chunk_size: frames the dense heads process at once (memory only).

        Returns:
            :meth:`VGGT.forward`'s dict plus ``instance_features``: ``(B, S, H, W, feature_dim)``
            float, unit length along the last axis.
        """
        return super().forward(images, query_points, frames_chunk_size)

    def _point_predictions(
        self, tokens: list[torch.Tensor | None], images: torch.Tensor, patch_start_idx: int, chunk: int | None
    ) -> dict[str, torch.Tensor]:
        """Point head and instance branch, ``chunk`` frames at a time.

        Returns:
            ``world_points (B, S, H, W, 3)``, ``world_points_conf (B, S, H, W)`` and
            ``instance_features (B, S, H, W, feature_dim)`` (unit length along the last axis).
        """
        num_frames = images.shape[1]
        step = num_frames if chunk is None else max(1, min(chunk, num_frames))
        parts = []
        for start in range(0, num_frames, step):
            frames = slice(start, min(start + step, num_frames))
            chunk_tokens = [None if t is None else t[:, frames] for t in tokens]
            parts.append(self._chunk_predictions(chunk_tokens, images[:, frames], patch_start_idx))
        keys = ("world_points", "world_points_conf", "instance_features")
        return {key: torch.cat(values, dim=1) for key, values in zip(keys, zip(*parts))}

    def _chunk_predictions(
        self, tokens: list[torch.Tensor | None], images: torch.Tensor, patch_start_idx: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Points, confidences and instance features of the frames of ``images (B, S, 3, H, W)``."""
        batch, frames, _, height, width = images.shape
        p = self.config.patch_size
        points, conf, point_maps = self.point_head(
            tokens, images, patch_start_idx, frames_chunk_size=None, return_intermediates=True
        )
        levels = self.part_adaptor(tokens, patch_start_idx, (height // p, width // p))
        raw = self.part_head(levels, [m.flatten(0, 1) for m in point_maps], (height // p * p, width // p * p))
        features = F.normalize(raw, dim=1).permute(0, 2, 3, 1)
        return points, conf, features.reshape(batch, frames, *features.shape[1:])

    def instance_features(self, images: torch.Tensor, frames_chunk_size: int = 8) -> torch.Tensor:
        """Only the instance features (skips the camera, depth and track heads).

        Args:
            images: ``(B, S, 3, H, W)`` or ``(S, 3, H, W)`` in [0, 1], H and W multiples of the patch size.
            frames_chunk_size: frames the point head and the instance branch process at once.

        Returns:
            ``(B, S, H, W, feature_dim)`` float, unit length along the last axis.
        """
        images, _ = self._check_inputs(images, None)
        tokens, patch_start_idx = self.aggregator(images, keep_layers=self.config.intermediate_layer_idx)
        with torch.autocast(device_type=images.device.type, enabled=False):
            return self._point_predictions(tokens, images, patch_start_idx, frames_chunk_size)["instance_features"]
