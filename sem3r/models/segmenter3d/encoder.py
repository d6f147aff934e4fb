"""Superpoint encoder of the 3D instance segmenter: point MLP, mean pooling to superpoints, self-attention.

OVSeg3R (section 3.1.3) sends the point cloud and the 2D features sampled for every point through a
3D backbone, then mean-pools the point features into superpoint features (its eq. 3). At CPU scale
the backbone is a per-point MLP (no sparse convolutions): the superpoint self-attention blocks that
follow the pooling provide the context a 3D U-Net would. Choices:

* Coordinates are centred on their mean and divided by their RMS distance to it
  (:func:`normalize_points`), so the model is invariant to translating (and uniformly scaling) the
  scene; both statistics are taken in float64 so that far-from-origin coordinates lose nothing.
* Positions enter as NeRF-style Fourier features ``[x, sin(2^k pi x), cos(2^k pi x)]``
  (:func:`fourier_features`): points through the point MLP, superpoint centroids through a small
  MLP (:class:`PositionEncoding`) added to the pooled features.
* Blocks are pre-norm (``x + attn(norm(x))``, ``x + ffn(norm(x))``) with GELU feed-forward
  networks; a final LayerNorm closes the encoder. Empty superpoints (ids below ``S`` that no point
  carries) get zero pooled features and the centroid of the scene, and are excluded as attention
  keys so that they never leak into real superpoints.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.models.segmenter3d.config import Segmenter3DConfig


def normalize_points(xyz: torch.Tensor) -> torch.Tensor:
    """Centre points on their mean and divide by their RMS distance to it (computed in float64).

    Args:
        xyz: ``(P, 3)`` float points, ``P >= 1``.

    Returns:
        ``(P, 3)`` in ``xyz``'s dtype; RMS norm 1 (all zeros when every point is the same).

    Example:
        >>> x = normalize_points(torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]))
        >>> x.tolist()
        [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    """
    points = xyz.double()
    centred = points - points.mean(0)
    radius = centred.square().sum(1).mean().sqrt().clamp_min(1e-12)
    return (centred / radius).to(xyz.dtype)


def fourier_features(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """NeRF-style positional features ``[x, sin(2^k pi x), cos(2^k pi x)]`` for ``k = 0 .. L-1``.

    Args:
        x: ``(..., D)`` float coordinates.
        frequencies: ``L``, the number of octaves (0: ``x`` alone).

    Returns:
        ``(..., D * (1 + 2 L))``: ``x``, then all sines, then all cosines (octave-major).

    Example:
        >>> fourier_features(torch.tensor([[0.5, 0.0, 1.0]]), 2).shape
        torch.Size([1, 15])
    """
    scales = math.pi * 2.0 ** torch.arange(frequencies, dtype=x.dtype, device=x.device)
    angles = (x[..., None, :] * scales[:, None]).flatten(-2)
    return torch.cat([x, angles.sin(), angles.cos()], dim=-1)


def pool_superpoints(values: torch.Tensor, superpoints: torch.Tensor, num_superpoints: int) -> torch.Tensor:
    """Mean of ``values`` over the points of every superpoint (OVSeg3R eq. 3); empty superpoints give 0.

    Differentiable with respect to ``values``.

    Args:
        values: ``(P, C)`` float per-point values.
        superpoints: ``(P,)`` integer superpoint id of every point, in ``[0, S)``.
        num_superpoints: ``S``.

    Returns:
        ``(S, C)`` in ``values``' dtype.

    Raises:
        Sem3RError: mismatched lengths or ids out of range.

    Example:
        >>> v = torch.tensor([[1.0], [3.0], [5.0]])
        >>> pool_superpoints(v, torch.tensor([0, 0, 2]), 3).flatten().tolist()
        [2.0, 0.0, 5.0]
    """
    if values.ndim != 2 or superpoints.shape != values.shape[:1]:
        raise Sem3RError(
            f"pool_superpoints needs values (P, C) and superpoints (P,), got {tuple(values.shape)} and {tuple(superpoints.shape)}"
        )
    if superpoints.numel() and (int(superpoints.min()) < 0 or int(superpoints.max()) >= num_superpoints):
        raise Sem3RError(
            f"superpoint ids must lie in [0, {num_superpoints}), got [{int(superpoints.min())}, {int(superpoints.max())}]"
        )
    index = superpoints.long()
    sums = values.new_zeros(num_superpoints, values.shape[1]).index_add(0, index, values)
    counts = torch.bincount(index, minlength=num_superpoints).clamp_min(1).to(values.dtype)
    return sums / counts[:, None]


class FeedForward(nn.Module):
    """``fc2(dropout(gelu(fc1(x))))`` with hidden width ``ratio * dim``, then dropout.

    Args:
        dim: channels ``D`` in and out.
        ratio: hidden width multiple.
        dropout: dropout probability.
    """

    def __init__(self, dim: int, ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = max(1, round(dim * ratio))
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., D)`` -> ``(..., D)``."""
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))


class Attention(nn.Module):
    """Multi-head attention of one unbatched sequence of queries over one of keys/values.

    Separate ``q``, ``k``, ``v`` projections (so it serves self- and cross-attention), scores scaled
    by ``head_dim ** -0.5``, an output projection ``proj``.

    Args:
        dim: channels ``D`` (a multiple of ``heads``).
        heads: number of heads.
        dropout: dropout on the attention weights (training only).

    Example:
        >>> attn = Attention(8, 2)
        >>> attn(torch.rand(3, 8), torch.rand(5, 8), torch.rand(5, 8)).shape
        torch.Size([3, 8])
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                allowed: torch.Tensor | None = None) -> torch.Tensor:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``(Lq, D)``.
            key: ``(Lk, D)``.
            value: ``(Lk, D)``.
            allowed: ``(Lq, Lk)`` or ``(Lk,)`` bool, True where a query may attend to a key; every
                query must be allowed at least one key. ``None``: all.

        Returns:
            ``(Lq, D)``.
        """
        def split(x: torch.Tensor) -> torch.Tensor:
            return x.unflatten(-1, (self.heads, -1)).transpose(0, 1)

        mask = None if allowed is None else allowed.expand(query.shape[0], key.shape[0])
        out = F.scaled_dot_product_attention(
            split(self.q(query)), split(self.k(key)), split(self.v(value)),
            attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(out.transpose(0, 1).flatten(1))


class SelfAttentionBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x) + pos)``, then ``x + ffn(norm2(x))``.

    The position embedding is added to queries and keys, not to values.

    Args:
        dim: channels ``D``.
        heads: attention heads.
        ffn_ratio: feed-forward width multiple.
        dropout: dropout probability.
    """

    def __init__(self, dim: int, heads: int, ffn_ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_ratio, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """``x``, ``pos``: ``(L, D)``; ``allowed``: ``(L,)`` bool keys that may be attended (None: all) -> ``(L, D)``."""
        h = self.norm1(x)
        x = x + self.dropout(self.attn(h + pos, h + pos, h, allowed))
        return x + self.ffn(self.norm2(x))


class PositionEncoding(nn.Module):
    """Embedding of normalised 3D positions: Fourier features, ``Linear -> GELU -> Linear``.

    Args:
        dim: output channels ``D``.
        frequencies: octaves of :func:`fourier_features`.

    Example:
        >>> PositionEncoding(16, 4)(torch.zeros(5, 3)).shape
        torch.Size([5, 16])
    """

    def __init__(self, dim: int, frequencies: int) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.fc1 = nn.Linear(3 * (1 + 2 * frequencies), dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        """``xyz``: ``(..., 3)`` normalised positions -> ``(..., D)``."""
        return self.fc2(F.gelu(self.fc1(fourier_features(xyz, self.frequencies))))


class SuperpointEncoder(nn.Module):
    """Per-point MLP, mean pooling into superpoints, centroid position embedding, self-attention blocks.

    The point MLP reads ``[fourier(xyz_norm), colors?, normals?, features]`` and is
    ``Linear -> LayerNorm -> GELU -> Linear``; the pooled features plus :class:`PositionEncoding` of
    the centroids go through ``encoder_layers`` :class:`SelfAttentionBlock` (full attention among
    superpoints, the centroid embedding added to queries and keys of every block) and a LayerNorm.

    Args:
        config: sizes (``feature_dim``, ``dim``, ``encoder_layers``, ``heads``, ``ffn_ratio``,
            ``dropout``, ``pos_frequencies``, ``use_colors``, ``use_normals``).

    Example:
        >>> cfg = Segmenter3DConfig(feature_dim=4, dim=16, heads=2, pos_frequencies=2)
        >>> enc = SuperpointEncoder(cfg)
        >>> x = torch.rand(10, 3)
        >>> sp = torch.arange(10) % 3
        >>> cen = pool_superpoints(x, sp, 3)
        >>> enc(x, x, x, torch.rand(10, 4), sp, cen, torch.ones(3, dtype=torch.bool)).shape
        torch.Size([3, 16])
    """

    def __init__(self, config: Segmenter3DConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        in_dim = 3 * (1 + 2 * config.pos_frequencies) + 3 * config.use_colors + 3 * config.use_normals + config.feature_dim
        self.point_mlp = nn.Sequential(nn.Linear(in_dim, dim), nn.LayerNorm(dim), nn.GELU(), nn.Linear(dim, dim))
        self.pos_embed = PositionEncoding(dim, config.pos_frequencies)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(dim, config.heads, config.ffn_ratio, config.dropout) for _ in range(config.encoder_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, xyz: torch.Tensor, colors: torch.Tensor | None, normals: torch.Tensor | None,
                features: torch.Tensor, superpoints: torch.Tensor, centroids: torch.Tensor,
                nonempty: torch.Tensor) -> torch.Tensor:
        """Superpoint features of one scene.

        Args:
            xyz: ``(P, 3)`` normalised points (:func:`normalize_points`).
            colors: ``(P, 3)`` in ``[0, 1]`` (ignored, may be None, unless ``use_colors``).
            normals: ``(P, 3)`` (ignored, may be None, unless ``use_normals``).
            features: ``(P, F)`` sampled 2D features.
            superpoints: ``(P,)`` int64 ids in ``[0, S)``.
            centroids: ``(S, 3)`` normalised superpoint centroids (0 for empty superpoints).
            nonempty: ``(S,)`` bool, True for superpoints with at least one point.

        Returns:
            ``(S, D)`` superpoint features.
        """
        parts = [fourier_features(xyz, self.config.pos_frequencies)]
        if self.config.use_colors:
            parts.append(colors)
        if self.config.use_normals:
            parts.append(normals)
        parts.append(features)
        pooled = pool_superpoints(self.point_mlp(torch.cat(parts, dim=1)), superpoints, centroids.shape[0])
        pos = self.pos_embed(centroids)
        allowed = None if bool(nonempty.all()) else nonempty
        x = pooled + pos
        for block in self.blocks:
            x = block(x, pos, allowed)
        return self.norm(x)
