"""Iterative point tracker of VGGT's track head (CoTracker2 / VGGSfM style).

Given dense feature maps of ``S`` frames and ``N`` query points in frame 0, the tracker keeps a
coordinate and a feature vector per (frame, point) and refines both ``iters`` times. Each iteration:

1. **Correlation**: the track features are correlated with every frame's feature map at
   ``corr_levels`` pyramid levels (2x average pooling per level, dot product / ``sqrt(C)``); each
   correlation map is sampled bilinearly on a ``(2r+1)^2`` window around the current coordinate and
   the concatenated samples go through ``corr_mlp``.
2. **Tokens**: ``[flow embedding (C + 4), correlation (C), track features (C)]`` per (point, frame),
   plus the sin/cos embedding of the query position and a learned query-frame / other-frame token.
3. **Update transformer** (``updateformer``): time attention along each track alternating with space
   attention through ``64`` learned virtual tracks (virtual <- points, virtual self-attention,
   points <- virtual), predicting a coordinate delta and a feature delta.
4. Coordinates move by the delta (frame 0 is pinned to the query), features by
   ``ffeat_updater(ffeat_norm(delta))``.

Visibility and confidence are sigmoids of linear maps of the final track features.

Facts reproduced from the official implementation (they matter for its weights):

- Coordinates live on the feature map (``pixel / stride``); sampling uses ``align_corners=True``
  (pixel centres at integers); query features and positions are sampled with border padding,
  correlations with zero padding. Sampling does not propagate gradients into the coordinates.
- The correlation window is flattened x-major: entry ``i * (2r+1) + j`` is the offset
  ``(dx, dy) = (i - r, j - r)``.
- The flow embedding uses the CoTracker frequencies ``k * 1000 / C'`` (``k = 0, 2, 4, ...``) with
  sin/cos interleaved, then appends ``flow / 518`` twice.
- The query position embedding is a 2D sin/cos grid (base 10000, x then y) over the feature map,
  *bilinearly sampled* at the query (not evaluated at the fractional position). The grid is
  computed in float64 (frequencies, angles, sin and cos) and rounded to float32 once, as the
  official ``get_2d_sincos_pos_embed`` does; a float32 computation differs by roundoff, which the
  iterations amplify.
- Attention blocks normalise first and add the attention output to the *normalised* input
  (``x = norm1(x); x = x + attn(x); x = x + mlp(norm2(x))``); attention is ``nn.MultiheadAttention``
  called as the official code calls it, with ``need_weights`` left at its default (``True``).
  PyTorch then computes ``softmax(q k^T / sqrt(d)) v`` explicitly (``bmm``, ``softmax``, ``bmm``
  in ``F.multi_head_attention_forward``, or the same computation inside the fused
  ``torch._native_multi_head_attention`` when its fast path applies: self-attention in eval mode
  without autograd), instead of ``scaled_dot_product_attention`` as with ``need_weights=False``.
  The two agree only to roundoff, which the iterations amplify. The averaged attention weights are
  discarded.

With these, the tracker's coordinates, visibility and confidence are bit-identical to the official
``BaseTrackerPredictor``'s on CPU (same feature maps and weights).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sem3r.models.vggt.layers import Mlp

# Flows are divided by this (the official image size) before being appended to the flow embedding.
_FLOW_SCALE = 518.0


class AttnBlock(nn.Module):
    """Self-attention block ``x = norm1(x); x += attn(x); x += mlp(norm2(x))`` on ``(N, L, C)``."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.attn = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x)
        x = x + self.attn(x, x, x)[0]  # need_weights left at True: the official computation path
        return x + self.mlp(self.norm2(x))


class CrossAttnBlock(nn.Module):
    """Cross-attention block: ``x (N, L, C)`` attends to ``context (N, M, C)``, same residual layout."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size)
        self.norm_context = nn.LayerNorm(hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.cross_attn = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = self.norm1(x)
        context = self.norm_context(context)
        x = x + self.cross_attn(x, context, context)[0]  # need_weights left at True, as officially
        return x + self.mlp(self.norm2(x))


class EfficientUpdateFormer(nn.Module):
    """CoTracker2's update transformer: time attention + space attention via virtual tracks.

    Args:
        depth: number of time blocks (and of each kind of space block; space attention follows
            every time block).
        input_dim: token size in.
        hidden_size: transformer width.
        num_heads: attention heads.
        output_dim: token size out (2 coordinate deltas + feature delta).
        num_virtual_tracks: learned tracks that carry information between points.
    """

    def __init__(
        self,
        depth: int = 6,
        input_dim: int = 388,
        hidden_size: int = 384,
        num_heads: int = 8,
        output_dim: int = 130,
        mlp_ratio: float = 4.0,
        num_virtual_tracks: int = 64,
    ) -> None:
        super().__init__()
        self.num_virtual_tracks = num_virtual_tracks
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_transform = nn.Linear(input_dim, hidden_size)
        self.output_norm = nn.LayerNorm(hidden_size)
        self.flow_head = nn.Linear(hidden_size, output_dim)
        self.virual_tracks = nn.Parameter(torch.randn(1, num_virtual_tracks, 1, hidden_size))  # sic, checkpoint name
        self.time_blocks = nn.ModuleList([AttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.space_virtual_blocks = nn.ModuleList([AttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.space_point2virtual_blocks = nn.ModuleList(
            [CrossAttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self.space_virtual2point_blocks = nn.ModuleList(
            [CrossAttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)]
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform linear weights with zero bias; a near-zero flow head (small first updates)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.flow_head.weight, std=0.001)

    def forward(self, tokens: Tensor) -> Tensor:
        """``(B, N, T, input_dim)`` track tokens -> ``(B, N, T, output_dim)`` updates."""
        tokens = self.input_transform(self.input_norm(tokens))
        init_tokens = tokens
        batch, num_points, num_frames, width = tokens.shape
        virtual = self.virual_tracks.repeat(batch, 1, num_frames, 1)
        tokens = torch.cat([tokens, virtual], dim=1)
        total = num_points + self.num_virtual_tracks
        space_blocks = (self.space_virtual2point_blocks, self.space_virtual_blocks, self.space_point2virtual_blocks)
        blocks = zip(self.time_blocks, *space_blocks)
        for time_block, virtual2point, virtual_block, point2virtual in blocks:
            tokens = time_block(tokens.reshape(batch * total, num_frames, width))  # attention along each track
            space = tokens.reshape(batch, total, num_frames, width).transpose(1, 2)
            space = space.reshape(batch * num_frames, total, width)  # attention across tracks, per frame
            points, virtual = space[:, :num_points], space[:, num_points:]
            virtual = virtual_block(virtual2point(virtual, points))
            points = point2virtual(points, virtual)
            space = torch.cat([points, virtual], dim=1)
            tokens = space.reshape(batch, num_frames, total, width).transpose(1, 2)
        tokens = tokens[:, :num_points] + init_tokens
        return self.flow_head(self.output_norm(tokens))


def bilinear_sample(inputs: Tensor, coords: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Sample ``inputs (N, C, H, W)`` at pixel coordinates ``coords (N, h, w, 2)`` (x, y).

    Pixel centres are at integer coordinates (``align_corners=True``); no gradient flows into
    ``coords``. Returns ``(N, C, h, w)``.
    """
    height, width = inputs.shape[-2:]
    scale = coords.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    grid = coords.detach().to(inputs.dtype) * scale.to(inputs.dtype) - 1.0
    return F.grid_sample(inputs, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def sample_features(fmap: Tensor, points: Tensor) -> Tensor:
    """Features of ``fmap (B, C, H, W)`` at ``points (B, N, 2)`` (border padding) -> ``(B, N, C)``."""
    return bilinear_sample(fmap, points[:, :, None], padding_mode="border")[..., 0].transpose(1, 2)


def flow_embedding(flows: Tensor, channels: int) -> Tensor:
    """CoTracker's sin/cos embedding of 2D flows, interleaved per frequency.

    Args:
        flows: ``(..., 2)`` displacements in feature-map pixels.
        channels: embedding size per axis (even).

    Returns:
        ``(..., 2 * channels)``: ``[sin(x f_0), cos(x f_0), sin(x f_1), ...,  same for y]`` with
        ``f_k = 2k * 1000 / channels``.
    """
    freqs = torch.arange(0, channels, 2, device=flows.device, dtype=torch.float32) * (1000.0 / channels)
    angles = flows.float()[..., None] * freqs  # (..., 2, channels / 2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-3)


def grid_sincos_embedding(channels: int, height: int, width: int, device=None) -> Tensor:
    """2D sin/cos embedding (base 10000) of integer grid positions: ``(1, channels, height, width)`` float32.

    The first half of the channels encodes the column (x), the second the row (y), each as
    ``[sin(p w_0), ..., sin(p w_{n-1}), cos(p w_0), ..., cos(p w_{n-1})]`` with
    ``w_k = 1 / 10000 ** (k / n)``, ``n = channels / 4``. Everything is computed in float64 and
    rounded to float32 at the end, as in the official code (the values differ from a float32
    computation by roundoff, which matters for bit-exact tracks). Like the official code it runs
    on the CPU (some accelerators have no float64) and the result is moved to ``device``.
    """
    if channels % 4:
        raise ValueError(f"channels must be a multiple of 4, got {channels}")
    quarter = channels // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / float(quarter))
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    angles = torch.stack([xs, ys], dim=-1)[..., None] * omega  # (H, W, 2, quarter) float64
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (H, W, channels)
    return emb.float().permute(2, 0, 1)[None].to(device)


class CorrelationPyramid:
    """Multi-scale feature maps for on-the-fly correlation sampling.

    Args:
        fmaps: ``(B, S, C, H, W)`` normalised feature maps.
        num_levels: pyramid levels (level ``l`` is ``2^l`` times coarser, by 2x2 average pooling).
        radius: the sampling window is ``(2 * radius + 1)^2`` around each coordinate.
    """

    def __init__(self, fmaps: Tensor, num_levels: int, radius: int) -> None:
        if min(fmaps.shape[-2:]) < 2 ** (num_levels - 1):
            raise ValueError(
                f"feature maps of size {tuple(fmaps.shape[-2:])} are too small for {num_levels} pyramid levels "
                f"(need at least {2 ** (num_levels - 1)} pixels per side)"
            )
        self.radius = radius
        self.levels = [fmaps]
        for _ in range(num_levels - 1):
            b, s, c, h, w = self.levels[-1].shape
            pooled = F.avg_pool2d(self.levels[-1].reshape(b * s, c, h, w), kernel_size=2, stride=2)
            self.levels.append(pooled.reshape(b, s, c, *pooled.shape[-2:]))
        offsets = torch.arange(-radius, radius + 1, device=fmaps.device, dtype=fmaps.dtype)
        # delta[i, j] = (offsets[i], offsets[j]) added to (x, y): x-major window order.
        self.delta = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1)

    def sample(self, targets: Tensor, coords: Tensor) -> Tensor:
        """Correlations of ``targets (B, S, N, C)`` around ``coords (B, S, N, 2)`` (level-0 pixels).

        Returns ``(B, S, N, num_levels * (2r + 1)^2)``.
        """
        b, s, n, c = targets.shape
        side = 2 * self.radius + 1
        samples = []
        for level, fmaps in enumerate(self.levels):
            h, w = fmaps.shape[-2:]
            corr = torch.matmul(targets, fmaps.reshape(b, s, c, h * w)) / math.sqrt(c)  # (B, S, N, h*w)
            window = coords.reshape(b * s * n, 1, 1, 2) / 2**level + self.delta.to(coords.dtype).view(1, side, side, 2)
            sampled = bilinear_sample(corr.reshape(b * s * n, 1, h, w), window, padding_mode="zeros")
            samples.append(sampled.reshape(b, s, n, side * side))
        return torch.cat(samples, dim=-1)


class TrackerPredictor(nn.Module):
    """Iterative tracker on dense feature maps (the ``track_head.tracker`` of VGGT).

    Args:
        latent_dim: feature map channels ``C`` (a multiple of 4: tokens are ``3C + 4`` wide and
            carry a 2D sin/cos embedding).
        stride: feature map pixels per image pixel is ``1 / stride``.
        corr_levels, corr_radius: correlation pyramid levels and window radius.
        hidden_size: update transformer width.
        depth, num_heads, num_virtual_tracks: update transformer size.
        predict_conf: also predict a per-(frame, point) confidence.

    Example:
        >>> tracker = TrackerPredictor(latent_dim=16, corr_levels=2, corr_radius=1, hidden_size=32,
        ...                            depth=1, num_heads=4, num_virtual_tracks=4)
        >>> preds, vis, conf = tracker(torch.rand(1, 5, 2) * 20, torch.randn(1, 3, 16, 12, 12), iters=2)
        >>> len(preds), preds[-1].shape, vis.shape, conf.shape
        (2, torch.Size([1, 3, 5, 2]), torch.Size([1, 3, 5]), torch.Size([1, 3, 5]))
    """

    def __init__(
        self,
        latent_dim: int = 128,
        stride: int = 2,
        corr_levels: int = 7,
        corr_radius: int = 4,
        hidden_size: int = 384,
        depth: int = 6,
        num_heads: int = 8,
        num_virtual_tracks: int = 64,
        predict_conf: bool = True,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.stride = stride
        self.corr_levels = corr_levels
        self.corr_radius = corr_radius
        self.predict_conf = predict_conf
        self.transformer_dim = 3 * latent_dim + 4

        self.corr_mlp = Mlp(corr_levels * (2 * corr_radius + 1) ** 2, hidden_size, latent_dim)
        self.query_ref_token = nn.Parameter(torch.randn(1, 2, self.transformer_dim))
        self.updateformer = EfficientUpdateFormer(
            depth=depth,
            input_dim=self.transformer_dim,
            hidden_size=hidden_size,
            num_heads=num_heads,
            output_dim=latent_dim + 2,
            num_virtual_tracks=num_virtual_tracks,
        )
        self.fmap_norm = nn.LayerNorm(latent_dim)
        self.ffeat_norm = nn.GroupNorm(1, latent_dim)
        self.ffeat_updater = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent_dim, 1))
        if predict_conf:
            self.conf_predictor = nn.Sequential(nn.Linear(latent_dim, 1))

    def forward(
        self, query_points: Tensor, fmaps: Tensor, iters: int = 4, apply_sigmoid: bool = True
    ) -> tuple[list[Tensor], Tensor, Tensor | None]:
        """Track ``query_points`` of frame 0 through all frames.

        Args:
            query_points: ``(B, N, 2)`` pixel coordinates (x, y) in frame 0 of the image.
            fmaps: ``(B, S, C, H / stride, W / stride)`` feature maps.
            iters: refinement iterations.
            apply_sigmoid: return probabilities (else logits) for visibility and confidence.

        Returns:
            ``coord_preds``: one ``(B, S, N, 2)`` image-pixel prediction per iteration (frame 0 is the
            query), ``vis (B, S, N)`` and ``conf (B, S, N)`` (``None`` without ``predict_conf``).
        """
        batch, num_points, _ = query_points.shape
        _, num_frames, channels, fh, fw = fmaps.shape
        fmaps = self.fmap_norm(fmaps.permute(0, 1, 3, 4, 2)).permute(0, 1, 4, 2, 3)

        queries = query_points / float(self.stride)
        coords = queries[:, None].repeat(1, num_frames, 1, 1)  # (B, S, N, 2)
        query_feats = sample_features(fmaps[:, 0], queries)  # (B, N, C)
        track_feats = query_feats[:, None].repeat(1, num_frames, 1, 1)  # (B, S, N, C)
        pyramid = CorrelationPyramid(fmaps, self.corr_levels, self.corr_radius)

        grid_emb = grid_sincos_embedding(self.transformer_dim, fh, fw, device=fmaps.device).to(fmaps.dtype)
        query_pos = sample_features(grid_emb.expand(batch, -1, -1, -1), queries).reshape(batch * num_points, 1, -1)
        ref_token = torch.cat(
            [self.query_ref_token[:, :1], self.query_ref_token[:, 1:].expand(-1, num_frames - 1, -1)], dim=1
        )

        coord_preds = []
        for _ in range(iters):
            coords = coords.detach()
            corr = pyramid.sample(track_feats, coords)  # (B, S, N, L)
            corr = self.corr_mlp(corr.transpose(1, 2).reshape(batch * num_points, num_frames, -1))
            flows = (coords - coords[:, :1]).transpose(1, 2).reshape(batch * num_points, num_frames, 2)
            flows_emb = torch.cat(
                [flow_embedding(flows, channels // 2), flows / _FLOW_SCALE, flows / _FLOW_SCALE], dim=-1
            )
            feats = track_feats.transpose(1, 2).reshape(batch * num_points, num_frames, channels)
            tokens = torch.cat([flows_emb, corr, feats], dim=-1) + query_pos
            tokens = (tokens + ref_token.to(tokens.dtype)).reshape(batch, num_points, num_frames, -1)

            delta = self.updateformer(tokens).reshape(batch * num_points * num_frames, channels + 2)
            feats = feats.reshape(-1, channels) + self.ffeat_updater(self.ffeat_norm(delta[:, 2:]))
            track_feats = feats.reshape(batch, num_points, num_frames, channels).transpose(1, 2)
            coords = coords + delta[:, :2].reshape(batch, num_points, num_frames, 2).transpose(1, 2)
            coords = torch.cat([queries[:, None], coords[:, 1:]], dim=1)
            coord_preds.append(coords * self.stride)

        vis = self.vis_predictor(track_feats).squeeze(-1)
        conf = self.conf_predictor(track_feats).squeeze(-1) if self.predict_conf else None
        if apply_sigmoid:
            vis = torch.sigmoid(vis)
            conf = torch.sigmoid(conf) if conf is not None else None
        return coord_preds, vis, conf
