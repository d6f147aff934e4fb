"""VGGT: the unified geometry transformer (aggregator + camera, depth, point and track heads).

With the default :class:`VGGTConfig` the module tree, parameter names and shapes are those of the
official VGGT-1B checkpoint (1,797 tensors, 1,256,537,516 parameters), so
``VGGT().load_state_dict(official, strict=True)`` works and the forward pass computes what the
official implementation computes. :meth:`VGGTConfig.small` is a few-million-parameter version of the
same architecture (same module names, smaller shapes) for CPU tests and training on synthetic scenes.

Outputs for ``B`` scenes of ``S`` frames of ``H x W`` pixels (world frame = the first camera, up to
scale): the ``absT_quaR_FoV`` pose encoding of every frame (decode with
:func:`sem3r.geometry.pose_encoding.pose_encoding_to_extri_intri`), a depth map and a world point map
per frame with confidences (``1 + exp``, so >= 1), and, given query points in the first frame,
their tracks through all frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.models.vggt.aggregator import Aggregator
from sem3r.models.vggt.camera_head import CameraHead
from sem3r.models.vggt.dpt_head import DPTHead
from sem3r.models.vggt.track_head import TrackHead


@dataclass
class VGGTConfig:
    """Sizes and switches of :class:`VGGT`; the defaults are the official VGGT-1B.

    Attributes:
        img_size: image side the DINOv2 position embedding covers (518 -> a 37 x 37 grid).
        patch_size: patch side in pixels; input sizes must be multiples of it.
        embed_dim: aggregator token channels C (heads read ``2 C``).
        depth: frame blocks and global blocks (each).
        num_heads: attention heads of the DINOv2 encoder, the aggregator and the camera trunk.
        mlp_ratio: MLP width multiple of every transformer block.
        num_register_tokens: register tokens (DINOv2 and per frame).
        patch_embed_depth: DINOv2 blocks.
        rope_frequency: 2D RoPE base frequency.
        camera_trunk_depth: camera head trunk blocks.
        camera_iterations: camera refinement steps.
        dpt_features: fusion width of the depth / point heads.
        dpt_out_channels: per-level projection widths of the DPT heads (and of the track head's
            feature extractor).
        intermediate_layer_idx: aggregator layers the DPT heads read, shallow to deep.
        track_features: feature map channels of the track head.
        track_iterations: track refinement steps.
        track_hidden_size, track_depth, track_num_heads, track_virtual_tracks: the track head's
            update transformer.
        track_corr_levels, track_corr_radius: the track head's correlation pyramid.
        enable_camera, enable_depth, enable_point, enable_track: build (and run) the heads.
        gradient_checkpointing: recompute aggregator blocks in the backward pass while training.
    """

    img_size: int = 518
    patch_size: int = 14
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    patch_embed_depth: int = 24
    rope_frequency: float = 100.0
    camera_trunk_depth: int = 4
    camera_iterations: int = 4
    dpt_features: int = 256
    dpt_out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    intermediate_layer_idx: tuple[int, int, int, int] = (4, 11, 17, 23)
    track_features: int = 128
    track_iterations: int = 4
    track_hidden_size: int = 384
    track_depth: int = 6
    track_num_heads: int = 8
    track_virtual_tracks: int = 64
    track_corr_levels: int = 7
    track_corr_radius: int = 4
    enable_camera: bool = True
    enable_depth: bool = True
    enable_point: bool = True
    enable_track: bool = True
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads or (self.embed_dim // self.num_heads) % 4:
            raise Sem3RError(
                f"embed_dim {self.embed_dim} must split into {self.num_heads} heads of a size divisible by 4 (2D RoPE)"
            )
        if len(self.intermediate_layer_idx) != 4 or not all(0 <= i < self.depth for i in self.intermediate_layer_idx):
            raise Sem3RError(
                f"intermediate_layer_idx must be 4 layer indices below depth {self.depth}, "
                f"got {self.intermediate_layer_idx}"
            )
        if len(self.dpt_out_channels) != 4:
            raise Sem3RError(f"dpt_out_channels must have 4 entries, got {self.dpt_out_channels}")

    @classmethod
    def small(cls, **overrides) -> VGGTConfig:
        """A small VGGT for CPU tests and synthetic-data training (about 6M parameters).

        Embed dim 128, 4 heads, a 2-block DINOv2 encoder for 224 px (16 x 16 grid), 4 frame + 4
        global blocks, heads reading layers (0, 1, 2, 3), a 2-block camera trunk, DPT widths 32-128,
        a track head with 32-channel features, a 2-block width-64 update transformer and a 3-level
        correlation pyramid of radius 2.

        Args:
            overrides: any field to change, e.g. ``enable_track=False``.

        Example:
            >>> VGGTConfig.small(enable_track=False).embed_dim
            128
        """
        sizes = {
            "img_size": 224,
            "embed_dim": 128,
            "depth": 4,
            "num_heads": 4,
            "patch_embed_depth": 2,
            "camera_trunk_depth": 2,
            "dpt_features": 32,
            "dpt_out_channels": (32, 64, 128, 128),
            "intermediate_layer_idx": (0, 1, 2, 3),
            "track_features": 32,
            "track_iterations": 2,
            "track_hidden_size": 64,
            "track_depth": 2,
            "track_num_heads": 4,
            "track_virtual_tracks": 8,
            "track_corr_levels": 3,
            "track_corr_radius": 2,
        }
        return cls(**{**sizes, **overrides})


class VGGT(nn.Module):
    """Feed-forward multi-view reconstruction: cameras, depth, points and tracks from images.

    Args:
        config: sizes and enabled heads (default: official VGGT-1B).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = VGGT(VGGTConfig.small(enable_track=False)).eval()
        >>> with torch.no_grad():
        ...     out = model(torch.rand(2, 3, 28, 42))           # S=2 frames, batch dim added
        >>> out["pose_enc"].shape, out["depth"].shape, out["world_points_conf"].shape
        (torch.Size([1, 2, 9]), torch.Size([1, 2, 28, 42, 1]), torch.Size([1, 2, 28, 42]))
    """

    def __init__(self, config: VGGTConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or VGGTConfig()
        dim_in = 2 * cfg.embed_dim
        self.aggregator = Aggregator(
            img_size=cfg.img_size,
            patch_size=cfg.patch_size,
            embed_dim=cfg.embed_dim,
            depth=cfg.depth,
            num_heads=cfg.num_heads,
            mlp_ratio=cfg.mlp_ratio,
            num_register_tokens=cfg.num_register_tokens,
            patch_embed_depth=cfg.patch_embed_depth,
            rope_frequency=cfg.rope_frequency,
            gradient_checkpointing=cfg.gradient_checkpointing,
        )
        self.camera_head = (
            CameraHead(
                dim_in, cfg.camera_trunk_depth, cfg.num_heads, cfg.mlp_ratio, num_iterations=cfg.camera_iterations
            )
            if cfg.enable_camera
            else None
        )
        self.point_head = self._dpt_head(4, "inv_log") if cfg.enable_point else None
        self.depth_head = self._dpt_head(2, "exp") if cfg.enable_depth else None
        self.track_head = (
            TrackHead(
                dim_in=dim_in,
                patch_size=cfg.patch_size,
                features=cfg.track_features,
                iters=cfg.track_iterations,
                corr_levels=cfg.track_corr_levels,
                corr_radius=cfg.track_corr_radius,
                hidden_size=cfg.track_hidden_size,
                out_channels=cfg.dpt_out_channels,
                intermediate_layer_idx=cfg.intermediate_layer_idx,
                depth=cfg.track_depth,
                num_heads=cfg.track_num_heads,
                num_virtual_tracks=cfg.track_virtual_tracks,
            )
            if cfg.enable_track
            else None
        )

    def _dpt_head(self, output_dim: int, activation: str) -> DPTHead:
        cfg = self.config
        return DPTHead(
            dim_in=2 * cfg.embed_dim,
            patch_size=cfg.patch_size,
            output_dim=output_dim,
            activation=activation,
            conf_activation="expp1",
            features=cfg.dpt_features,
            out_channels=cfg.dpt_out_channels,
            intermediate_layer_idx=cfg.intermediate_layer_idx,
            pos_embed=True,
            feature_only=False,
            down_ratio=1,
        )

    def _check_inputs(self, images: torch.Tensor, query_points: torch.Tensor | None):
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise Sem3RError("images must be a floating-point tensor with values in [0, 1]")
        if images.ndim == 4:
            images = images.unsqueeze(0)
        if images.ndim != 5 or images.shape[2] != 3:
            raise Sem3RError(f"images must have shape (B, S, 3, H, W) or (S, 3, H, W), got {tuple(images.shape)}")
        B, S, _, H, W = images.shape
        p = self.config.patch_size
        if B == 0 or S == 0 or H == 0 or W == 0 or H % p or W % p:
            raise Sem3RError(
                f"image height and width must be positive multiples of {p}, got {H}x{W} ({B} scenes, {S} frames)"
            )
        if query_points is not None:
            if query_points.ndim == 2:
                query_points = query_points.unsqueeze(0)
            if query_points.ndim != 3 or query_points.shape[-1] != 2 or query_points.shape[0] != B:
                raise Sem3RError(
                    f"query_points must have shape (B, N, 2) or (N, 2) pixel (x, y), got {tuple(query_points.shape)}"
                )
        return images, query_points

    def _needed_layers(self, tracking: bool) -> set[int]:
        """Indices of the aggregator layers the heads that will run read."""
        needed = {self.config.depth - 1}
        if tracking or self.depth_head is not None or self.point_head is not None:
            needed.update(self.config.intermediate_layer_idx)
        return needed

    def _point_predictions(
        self, tokens: list[torch.Tensor | None], images: torch.Tensor, patch_start_idx: int, chunk: int | None
    ) -> dict[str, torch.Tensor]:
        """The point head's outputs, ``world_points (B, S, H, W, 3)`` and ``world_points_conf (B, S, H, W)``.

        Subclasses that attach more dense heads to the point head (IGGT) extend this.
        """
        points, points_conf = self.point_head(tokens, images, patch_start_idx, frames_chunk_size=chunk)
        return {"world_points": points, "world_points_conf": points_conf}

    def forward(
        self, images: torch.Tensor, query_points: torch.Tensor | None = None, frames_chunk_size: int = 8
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Predict geometry for every frame of every scene.

        Args:
            images: ``(B, S, 3, H, W)`` or ``(S, 3, H, W)``, RGB in [0, 1], H and W multiples of
                the patch size (14).
                Frame 0 of each scene is the reference: outputs are in its camera frame.
            query_points: ``(B, N, 2)`` or ``(N, 2)`` pixel (x, y) coordinates in frame 0 to track.
            frames_chunk_size: frames the DPT heads process at once (memory only).

        Returns:
            A dict with, for the enabled heads:

            - ``pose_enc``: ``(B, S, 9)`` ``[t, q_xyzw, fov_h, fov_w]`` (cam_from_world, radians);
              ``pose_enc_list``: the encoding after every refinement step.
            - ``depth``: ``(B, S, H, W, 1)`` (positive), ``depth_conf``: ``(B, S, H, W)``.
            - ``world_points``: ``(B, S, H, W, 3)``, ``world_points_conf``: ``(B, S, H, W)``.
            - with ``query_points``: ``track`` ``(B, S, N, 2)`` (last refinement), ``vis`` and
              ``conf`` ``(B, S, N)``.
            - ``images``: the ``(B, S, 3, H, W)`` input.
        """
        images, query_points = self._check_inputs(images, query_points)
        tracking = self.track_head is not None and query_points is not None
        tokens, patch_start_idx = self.aggregator(images, keep_layers=self._needed_layers(tracking))
        predictions: dict[str, torch.Tensor | list[torch.Tensor]] = {}
        chunk = frames_chunk_size
        with torch.autocast(device_type=images.device.type, enabled=False):
            if self.camera_head is not None:
                pose_enc_list = self.camera_head(tokens)
                predictions["pose_enc"] = pose_enc_list[-1]
                predictions["pose_enc_list"] = pose_enc_list
            if self.depth_head is not None:
                depth, depth_conf = self.depth_head(tokens, images, patch_start_idx, frames_chunk_size=chunk)
                predictions["depth"] = depth
                predictions["depth_conf"] = depth_conf
            if self.point_head is not None:
                predictions.update(self._point_predictions(tokens, images, patch_start_idx, chunk))
        if tracking:
            track_list, vis, conf = self.track_head(
                tokens, images, patch_start_idx, query_points, frames_chunk_size=chunk
            )
            predictions["track"] = track_list[-1]
            predictions["vis"] = vis
            predictions["conf"] = conf
        predictions["images"] = images
        return predictions
