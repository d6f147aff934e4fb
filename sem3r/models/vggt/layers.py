"""Transformer building blocks shared by the DINOv2 patch embedder, the aggregator and the camera head.

The module and parameter names (``norm1``, ``attn.qkv``, ``attn.q_norm``, ``ls1.gamma``, ``mlp.fc1``,
...) are the ones of the official VGGT checkpoint, so its weights load unchanged.

A :class:`Block` is the pre-norm transformer layer

    x = x + ls1(attn(norm1(x)))
    x = x + ls2(mlp(norm2(x)))

with LayerScale (a learned per-channel gain) on both residual branches. The attention can normalise
queries and keys per head (qk-norm, a LayerNorm over the head dimension, applied before RoPE) and
rotate them with a 2D rotary position embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.models.vggt.rope import RotaryPositionEmbedding2D


class LayerScale(nn.Module):
    """Per-channel residual gain ``x * gamma``, ``gamma`` initialised to ``init_values``.

    Args:
        dim: channel count C.
        init_values: initial value of every gain.
    """

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., C)`` -> ``(..., C)``."""
        return x * self.gamma


class Mlp(nn.Module):
    """Two linear layers with an exact (erf) GELU between them: ``fc2(gelu(fc1(x)))``.

    Args:
        in_features: input channels.
        hidden_features: channels after ``fc1``.
        out_features: output channels (default ``in_features``).
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., in_features)`` -> ``(..., out_features)``."""
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with optional qk-norm and 2D RoPE.

    Queries, keys and values come from one ``qkv`` projection laid out as ``[q | k | v]`` with the
    heads contiguous inside each part. When ``qk_norm`` is set, ``q_norm`` and ``k_norm`` (LayerNorm
    over the head dimension, eps 1e-5) normalise every head's query and key; the rotary embedding is
    applied after that normalisation. Scores are scaled by ``head_dim ** -0.5``.

    Args:
        dim: channel count C (a multiple of ``num_heads``).
        num_heads: number of heads.
        qkv_bias: bias in the ``qkv`` projection.
        qk_norm: LayerNorm queries and keys per head.
        rope: rotary embedding applied to queries and keys, or ``None``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_norm: bool = False,
        rope: RotaryPositionEmbedding2D | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over the N tokens of every sequence.

        Args:
            x: ``(B, N, C)`` tokens.
            pos: ``(B, N, 2)`` integer (row, column) positions, needed when the layer has RoPE.

        Returns:
            ``(B, N, C)``.
        """
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None:
            q, k = self.rope(q, pos), self.rope(k, pos)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches.

    Args:
        dim: channel count C.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        init_values: LayerScale initial gain (0.01 in the aggregator and camera head, 1.0 in DINOv2).
        qkv_bias: bias in the ``qkv`` projection.
        qk_norm: per-head LayerNorm of queries and keys.
        rope: rotary embedding for the attention, or ``None``.
        norm_eps: epsilon of ``norm1`` / ``norm2`` (1e-5 in VGGT's own blocks, 1e-6 in DINOv2).

    Example:
        >>> from sem3r.models.vggt.rope import RotaryPositionEmbedding2D, patch_positions
        >>> block = Block(32, num_heads=2, qk_norm=True, rope=RotaryPositionEmbedding2D(100.0))
        >>> block(torch.randn(3, 6, 32), pos=patch_positions(3, 2, 3)).shape
        torch.Size([3, 6, 32])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        init_values: float = 0.01,
        qkv_bias: bool = True,
        qk_norm: bool = False,
        rope: RotaryPositionEmbedding2D | None = None,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm, rope=rope)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(B, N, C)``, ``pos``: ``(B, N, 2)`` or ``None`` -> ``(B, N, C)``."""
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos))
        return x + self.ls2(self.mlp(self.norm2(x)))
