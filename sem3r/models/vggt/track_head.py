"""Track head of VGGT: a feature-only DPT head followed by the iterative tracker.

The DPT feature extractor turns the aggregator tokens into ``features``-channel maps at half the
image resolution; :class:`~sem3r.models.vggt.tracker.TrackerPredictor` then follows query points
of the first frame through every frame (CoTracker2-style correlation + update transformer).

The official VGGT and IGGT track heads build their feature extractor with ``pos_embed=False``: unlike
the depth and point heads, it adds no UV position embedding (neither to the projected tokens nor to
the fused map). ``TrackHead(pos_embed=False)`` is therefore the default; checked against the
official code with identical random weights, feature maps, tracks, visibility and confidence are
bit-identical on CPU. ``pos_embed=True`` is an option for heads trained that way.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from sem3r.models.vggt.dpt_head import DPTHead
from sem3r.models.vggt.tracker import TrackerPredictor


class TrackHead(nn.Module):
    """Point tracking from aggregator tokens (``track_head`` of the VGGT checkpoint).

    Args:
        dim_in: aggregator token channels.
        patch_size: pixels per patch side.
        features: feature map channels (the tracker's latent size).
        iters: default number of refinement iterations.
        predict_conf: also predict a per-point confidence.
        stride: image pixels per feature map pixel; also the DPT extractor's ``down_ratio`` (the
            official model fixes both to 2).
        corr_levels, corr_radius: correlation pyramid levels and window radius.
        hidden_size: update transformer width.
        pos_embed: add the UV position embedding in the feature extractor (official: ``False``).
        out_channels, intermediate_layer_idx: DPT extractor configuration (official defaults).
        depth, num_heads, num_virtual_tracks: update transformer configuration (official defaults).

    Example:
        >>> import torch
        >>> head = TrackHead(dim_in=32, features=16, corr_levels=2, corr_radius=1, hidden_size=32,
        ...                  out_channels=(8, 16, 32, 32), intermediate_layer_idx=(0, 1, 2, 3),
        ...                  depth=1, num_heads=4, num_virtual_tracks=4)
        >>> tokens = [torch.randn(1, 2, 1 + 2 * 2, 32) for _ in range(4)]
        >>> preds, vis, conf = head(tokens, torch.rand(1, 2, 3, 28, 28), 1, torch.tensor([[[5.0, 9.0]]]), iters=2)
        >>> len(preds), preds[-1].shape, preds[-1][0, 0].tolist(), vis.shape
        (2, torch.Size([1, 2, 1, 2]), [[5.0, 9.0]], torch.Size([1, 2, 1]))
    """

    def __init__(
        self,
        dim_in: int = 2048,
        patch_size: int = 14,
        features: int = 128,
        iters: int = 4,
        predict_conf: bool = True,
        stride: int = 2,
        corr_levels: int = 7,
        corr_radius: int = 4,
        hidden_size: int = 384,
        pos_embed: bool = False,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23),
        depth: int = 6,
        num_heads: int = 8,
        num_virtual_tracks: int = 64,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.iters = iters
        self.feature_extractor = DPTHead(
            dim_in=dim_in,
            patch_size=patch_size,
            features=features,
            out_channels=out_channels,
            intermediate_layer_idx=intermediate_layer_idx,
            pos_embed=pos_embed,
            feature_only=True,
            down_ratio=stride,
        )
        self.tracker = TrackerPredictor(
            latent_dim=features,
            stride=stride,
            corr_levels=corr_levels,
            corr_radius=corr_radius,
            hidden_size=hidden_size,
            depth=depth,
            num_heads=num_heads,
            num_virtual_tracks=num_virtual_tracks,
            predict_conf=predict_conf,
        )

    def forward(
        self,
        aggregated_tokens_list: Sequence[Tensor],
        images: Tensor,
        patch_start_idx: int,
        query_points: Tensor,
        iters: int | None = None,
        frames_chunk_size: int | None = 8,
    ) -> tuple[list[Tensor], Tensor, Tensor | None]:
        """Track ``query_points`` of the first frame through all frames.

        Args:
            aggregated_tokens_list: per aggregator layer, ``(B, S, P, dim_in)`` tokens.
            images: ``(B, S, 3, H, W)``; only the size is used.
            patch_start_idx: number of special tokens per frame.
            query_points: ``(B, N, 2)`` pixel coordinates (x, y) in frame 0.
            iters: refinement iterations (default: ``self.iters``).
            frames_chunk_size: frames per chunk in the feature extractor (does not change results).

        Returns:
            ``coord_preds``: one ``(B, S, N, 2)`` pixel prediction per iteration, ``vis (B, S, N)``
            and ``conf (B, S, N)`` probabilities (``conf`` is ``None`` without ``predict_conf``).
        """
        fmaps = self.feature_extractor(aggregated_tokens_list, images, patch_start_idx, frames_chunk_size)
        return self.tracker(query_points, fmaps, iters=self.iters if iters is None else iters)
