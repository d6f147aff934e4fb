"""G2VLM's geometry decoders and heads (pi^3-style): local points, camera poses, global points.

All decoders read the geometry expert's final hidden states of the DINO tokens, ``(S, h*w, D)`` per frame
(frames are the batch axis), with row-major patch positions and RoPE2D (base 100) on queries and keys.

* :class:`Pi3Decoder` (``point_decoder``, ``camera_decoder``): pre-norm blocks ``x += Attn(LN1 x)``,
  ``x += MLP(LN2 x)`` (no layer scale, no q/k norm, exact GELU), then ``linear_out``.
* :class:`GlobalPointsDecoder`: blocks add a cross-attention to a context: ``x += CrossAttn(LN2 x,
  LN_y(ctx))`` between the self-attention and the MLP; the context is frame 0's hidden states for
  every frame.
* :class:`PointHead`: ``Linear(C, 3 * 14 * 14)`` per patch and a pixel shuffle by 14 to full resolution.
  Local points ``(x e^z, y e^z, e^z)``; global points are the raw channels.
* :class:`CameraHead`: residual MLP blocks, mean over patches, two Linear-ReLU, translation (3) and a
  3x3 matrix (9) whose rows are L2-normalised and projected to the closest rotation by SVD; the pose is
  camera-to-world.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.models.vggt.layers import Attention, Mlp
from sem3r.models.vggt.rope import RotaryPositionEmbedding2D


class DecoderBlock(nn.Module):
    """Pre-norm self-attention + MLP block (LayerNorm eps 1e-6, fused qkv with bias, RoPE2D)."""

    def __init__(self, dim: int, num_heads: int, rope: RotaryPositionEmbedding2D) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, rope=rope)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``x``: ``(S, N, C)``, ``pos``: ``(S, N, 2)`` -> ``(S, N, C)``."""
        x = x + self.attn(self.norm1(x), pos=pos)
        return x + self.mlp(self.norm2(x))


class CrossAttention(nn.Module):
    """Multi-head cross-attention with separate q / k / v projections and RoPE2D on queries and keys."""

    def __init__(self, dim: int, num_heads: int, rope: RotaryPositionEmbedding2D) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: torch.Tensor, context: torch.Tensor, pos: torch.Tensor, context_pos: torch.Tensor) -> torch.Tensor:
        """``x``: ``(S, N, C)`` queries, ``context``: ``(S, M, C)`` -> ``(S, N, C)``."""
        S, N, C = x.shape
        heads = self.num_heads
        q = self.q_proj(x).view(S, N, heads, C // heads).transpose(1, 2)
        k = self.k_proj(context).view(S, -1, heads, C // heads).transpose(1, 2)
        v = self.v_proj(context).view(S, -1, heads, C // heads).transpose(1, 2)
        q, k = self.rope(q, pos), self.rope(k, context_pos)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(S, N, C))


class GlobalDecoderBlock(DecoderBlock):
    """:class:`DecoderBlock` with a cross-attention to a (normalised) context before the MLP."""

    def __init__(self, dim: int, num_heads: int, rope: RotaryPositionEmbedding2D) -> None:
        super().__init__(dim, num_heads, rope)
        self.norm_y = nn.LayerNorm(dim, eps=1e-6)
        self.cross_attn = CrossAttention(dim, num_heads, rope)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``x``, ``context``: ``(S, N, C)``; ``pos``: ``(S, N, 2)`` (shared by both) -> ``(S, N, C)``."""
        x = x + self.attn(self.norm1(x), pos=pos)
        x = x + self.cross_attn(self.norm2(x), self.norm_y(context), pos, pos)
        return x + self.mlp(self.norm3(x))


class Pi3Decoder(nn.Module):
    """``depth`` decoder blocks then ``linear_out`` to ``out_dim`` channels.

    Args:
        dim: token width (the language model's hidden size).
        out_dim: output channels.
        depth, num_heads: block count and heads.
        rope_frequency: RoPE2D base.
        cross_attention: use :class:`GlobalDecoderBlock` (the global-points decoder).
    """

    def __init__(self, dim: int, out_dim: int, depth: int, num_heads: int, rope_frequency: float = 100.0,
                 cross_attention: bool = False) -> None:
        super().__init__()
        rope = RotaryPositionEmbedding2D(rope_frequency)
        block = GlobalDecoderBlock if cross_attention else DecoderBlock
        self.blocks = nn.ModuleList(block(dim, num_heads, rope) for _ in range(depth))
        self.linear_out = nn.Linear(dim, out_dim)
        self.cross_attention = cross_attention

    def forward(self, x: torch.Tensor, pos: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(S, N, C)``, ``pos``: ``(S, N, 2)``, ``context``: ``(S, N, C)`` -> ``(S, N, out_dim)``."""
        for blk in self.blocks:
            x = blk(x, pos, context) if self.cross_attention else blk(x, pos)
        return self.linear_out(x)


class PointHead(nn.Module):
    """Per-patch ``Linear(C, 3 p^2)`` then pixel shuffle by ``p``: ``(S, h*w, C)`` -> ``(S, h p, w p, 3)``."""

    def __init__(self, dim: int, patch_size: int = 14) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 3 * patch_size * patch_size)
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """``x``: ``(S, h*w, C)`` -> ``(S, h*p, w*p, 3)`` raw channels."""
        S = x.shape[0]
        feat = self.proj(x).transpose(1, 2).reshape(S, -1, h, w)
        return F.pixel_shuffle(feat, self.patch_size).permute(0, 2, 3, 1)


def local_points_activation(raw: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` raw ``(x, y, z)`` -> camera-frame points ``(x e^z, y e^z, e^z)``."""
    depth = raw[..., 2:].exp()
    return torch.cat((raw[..., :2] * depth, depth), dim=-1)


class _ResBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.res_conv1 = nn.Linear(dim, dim)
        self.res_conv2 = nn.Linear(dim, dim)
        self.res_conv3 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.res_conv1(x))
        y = F.relu(self.res_conv2(y))
        return x + F.relu(self.res_conv3(y))


def closest_rotation(m: torch.Tensor) -> torch.Tensor:
    """Rows of ``m`` ``(..., 3, 3)`` L2-normalised, then the proper rotation closest to it by SVD."""
    m = F.normalize(m.float(), dim=-1)
    u, _, vh = torch.linalg.svd(m)
    det = torch.det(u @ vh)
    d = torch.ones_like(m[..., 0])
    d[..., 2] = det
    return u @ torch.diag_embed(d) @ vh


class CameraHead(nn.Module):
    """Residual MLP blocks, mean pool over patches, MLPs, translation and rotation (fp32).

    Returns camera-to-world poses ``(S, 4, 4)``.
    """

    def __init__(self, dim: int, blocks: int = 2) -> None:
        super().__init__()
        self.res_conv = nn.ModuleList(_ResBlock(dim) for _ in range(blocks))
        self.more_mlps = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
        self.fc_t = nn.Linear(dim, 3)
        self.fc_rot = nn.Linear(dim, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(S, N, C)`` -> ``(S, 4, 4)`` camera-to-world."""
        x = x.float()
        for blk in self.res_conv:
            x = blk(x)
        x = self.more_mlps(x.mean(dim=1))
        t = self.fc_t(x)
        R = closest_rotation(self.fc_rot(x).view(-1, 3, 3))
        pose = torch.eye(4, device=x.device, dtype=x.dtype).repeat(x.shape[0], 1, 1)
        pose[:, :3, :3] = R
        pose[:, :3, 3] = t
        return pose
