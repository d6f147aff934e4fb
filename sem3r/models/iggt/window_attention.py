"""Window attention blocks of IGGT's instance head (HAT-style, "Activating More Pixels", Chen et al. 2023).

Two blocks refine the instance features at fine scales where global attention would be too costly:

* :class:`OverlappingWindowCrossAttention` (``part_head.window_cross_attention``, official class
  ``SwinCA``): HAT's overlapping cross-attention block (OCAB) turned into a cross-attention. Queries
  come from the instance features and are cut into ``window x window`` windows; keys and values come
  from the point head's fused map and are cut into ``overlap x overlap`` windows
  (``overlap = window + int(window * overlap_ratio)``, 8 and 12 by default, an ``nn.Unfold`` with
  stride ``window`` and zero padding ``(overlap - window) / 2``) centred on the query window
  positions. A learned relative position bias (``(window + overlap - 1)^2`` entries per head) is
  added to the scores.
* :class:`HybridWindowSelfAttention` (``part_head.window_self_atten``, official class ``SwinSA``):
  HAT's hybrid attention block (HAB): window self-attention plus a channel-attention convolution
  branch (CAB) scaled by ``conv_scale``, then an MLP.

Both wrap their block like HAT wraps its body: a per-pixel LayerNorm (``patch_embed.norm``, patch
size 1), the block, a LayerNorm (``norm``), ``conv_after_body`` (3x3) plus a skip from the block's
input, then ``conv_before_upsample`` (3x3 to ``hidden`` channels, LeakyReLU 0.01) and ``conv_last``
(3x3 back to the input width). No upsampler follows (the scale is 1).

What the official IGGT code computes (github lifuguan/IGGT_official, ``iggt/heads/window_sa.py``;
checked against it with identical random weights), and what Sem3R does by default because the
official checkpoint was trained with it:

- **Query windows are scrambled** (:func:`official_query_windows`): OCAB projects the queries,
  moves them to channels-first ``(N, C, H, W)`` and then applies the channels-last window
  partition to that tensor, i.e. it treats ``C`` as the height, ``H`` as the width and ``W`` as the
  channels, and regroups the resulting stream into ``window^2`` tokens of ``C`` channels. A query
  "token" is then a run of ``C`` consecutive values of *one* channel along a row of the map
  (wrapping into the next row), not a pixel; query window ``i`` is a fixed, reproducible set of
  such runs, it attends to the key window at position ``i`` and its result is written back to
  position ``i``. Every window is affected.
  ``WindowAttentionConfig.query_window_order = "correct"`` partitions the queries spatially
  instead (query window ``i`` = the pixels at window position ``i``).
- **Border key windows hold zero keys and values that take part in the softmax**: the unfold pads
  the *projected* keys and values with zeros, so a padded key scores ``0 + bias`` and adds
  ``exp(bias)`` to the softmax denominator without adding to the numerator; there is no mask.
  Only windows touching the border are affected. ``border_keys = "masked"`` removes padded keys
  from the softmax instead (each pixel attends only to real pixels).
- The self-attention of the hybrid block has no relative position bias (it is a plain multi-head
  attention; the checkpoint holds no bias table for it). The ``relative_position_index_SA``
  buffers are kept for the checkpoint but not used; ``relative_position_index_OCA`` indexes the
  OCAB bias table. Its entries include negative numbers, which index the table from its end (as
  PyTorch's negative indexing does in the official code), so the official buffer works unchanged.
- Windows are not shifted (``shift_size = 0`` in both blocks).
- OCAB normalises the queries and the keys/values with the same ``norm1`` (and the same
  ``patch_embed.norm``); its residual adds the projected attention to the block's input (the
  ``patch_embed``-normalised tokens, before ``norm1``): ``x + proj(attn)``, then
  ``x + mlp(norm2(x))``. HAB: ``x + attn(norm1(x)) + conv_scale * cab(norm1(x))``, then
  ``x + mlp(norm2(x))``.
- Stochastic depth (``drop_path_rate = 0.1``) and dropout are left out; they are no-ops at inference.

Sizes the official code cannot run: it needs the map to be a whole number of windows (at 4x the
patch grid that is an even patch grid, e.g. the official demo's 504 x 336 images) and, for the
scrambled queries, ``C`` a multiple of the window (256 / 8). Sem3R accepts any map size: the maps
are zero-padded at the bottom and right to a multiple of the window (and by ``(overlap - window) / 2``
on every side for the key windows) and the options above apply to the padded map (with
``"zero_pad"`` the extra bottom/right keys are zeros like the border ones; with ``"official"`` the
padded zero queries are scrambled like the rest). There is no official result to match at those
sizes. The hybrid block's window self-attention masks padded keys (the official code never pads
there: the 8x map is always a multiple of the default window). The convolutions (CAB, the 3x3
convolutions around the block) run on the unpadded map with zero padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sem3r.models.vggt.layers import Mlp


QUERY_WINDOW_ORDERS = ("official", "correct")
BORDER_KEYS = ("zero_pad", "masked")


@dataclass
class WindowAttentionConfig:
    """Sizes of the two window-attention blocks of the instance head (defaults: official IGGT).

    Attributes:
        window_size: side of the (query) windows.
        overlap_ratio: key windows of the cross-attention are ``window_size + int(window_size * overlap_ratio)``
            pixels wide; ``int(window_size * overlap_ratio)`` must be even.
        num_heads: attention heads of both blocks.
        mlp_ratio: MLP width multiple of both blocks.
        hidden: channels between ``conv_before_upsample`` and ``conv_last``.
        compress_ratio: the CAB's first convolution has ``dim // compress_ratio`` channels.
        squeeze_factor: the CAB's channel attention squeezes to ``max(1, dim // squeeze_factor)`` channels.
        conv_scale: weight of the CAB branch in the hybrid block.
        query_window_order: how the cross-attention cuts its queries into windows: ``"official"``
            (default, what the official code computes and the checkpoint was trained with: the
            scrambled partition of :func:`official_query_windows`; needs the channels to be a
            multiple of ``window_size``) or ``"correct"`` (spatial windows, :func:`window_partition`).
        border_keys: the cross-attention's key windows beyond the map: ``"zero_pad"`` (default,
            official: zero keys and values that take part in the softmax) or ``"masked"`` (left
            out of the softmax).
    """

    window_size: int = 8
    overlap_ratio: float = 0.5
    num_heads: int = 4
    mlp_ratio: float = 4.0
    hidden: int = 64
    compress_ratio: int = 3
    squeeze_factor: int = 30
    conv_scale: float = 0.01
    query_window_order: str = "official"
    border_keys: str = "zero_pad"

    def __post_init__(self) -> None:
        if self.query_window_order not in QUERY_WINDOW_ORDERS:
            raise ValueError(
                f"query_window_order must be one of {QUERY_WINDOW_ORDERS}, got {self.query_window_order!r}"
            )
        if self.border_keys not in BORDER_KEYS:
            raise ValueError(f"border_keys must be one of {BORDER_KEYS}, got {self.border_keys!r}")

    @property
    def overlap_size(self) -> int:
        """Side of the key windows of the cross-attention."""
        return self.window_size + int(self.window_size * self.overlap_ratio)


def _grid(n: int) -> Tensor:
    """``(2, n * n) int64`` (row, column) of the pixels of an ``n x n`` window, row-major."""
    return torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")).flatten(1)


def relative_position_index_sa(window: int) -> Tensor:
    """Swin/HAT relative position index of a ``window x window`` window onto itself.

    Returns:
        ``(window^2, window^2) int64``, values in ``[0, (2 window - 1)^2)``.

    Example:
        >>> relative_position_index_sa(2).tolist()
        [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    """
    coords = _grid(window)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def relative_position_index_oca(window: int, overlap: int) -> Tensor:
    """HAT's relative position index from a ``window`` query window to its ``overlap`` key window.

    Entry ``[i, j]`` encodes the offset between query pixel ``i`` and key pixel ``j`` (both row-major
    in their windows) as ``(dy + c) * (window + overlap - 1) + (dx + c)`` with ``d = key - query``
    in window coordinates and ``c = window - overlap + 1``. Some entries are negative; they are used
    modulo the table length ``(window + overlap - 1)^2``, which maps the offsets one to one.

    Returns:
        ``(window^2, overlap^2) int64``.

    Example:
        >>> idx = relative_position_index_oca(8, 12)
        >>> idx.shape, len(set((idx % 361).flatten().tolist()))
        (torch.Size([64, 144]), 361)
    """
    rel = (_grid(overlap)[:, None, :] - _grid(window)[:, :, None]).permute(1, 2, 0) + (window - overlap + 1)
    return rel[..., 0] * (window + overlap - 1) + rel[..., 1]


def _pad_to_windows(x: Tensor, window: int) -> tuple[Tensor, Tensor | None]:
    """Zero-pad ``(N, H, W, C)`` at the bottom/right to multiples of ``window``.

    Returns the padded map and a ``(H_p, W_p)`` bool map of real pixels (``None`` when nothing was padded).
    """
    height, width = x.shape[1:3]
    pad_h, pad_w = -height % window, -width % window
    if not (pad_h or pad_w):
        return x, None
    valid = torch.zeros(height + pad_h, width + pad_w, dtype=torch.bool, device=x.device)
    valid[:height, :width] = True
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h)), valid


def window_partition(x: Tensor, window: int) -> Tensor:
    """``(N, H, W, C)`` (H, W multiples of ``window``) -> ``(N, nW, window^2, C)``, windows row-major."""
    n, height, width, channels = x.shape
    x = x.reshape(n, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, -1, window * window, channels)


def official_query_windows(x: Tensor, window: int) -> Tensor:
    """The official OCAB's query windows: the channels-last partition applied to the channels-first map.

    The official code calls its window partition (written for ``(N, H, W, C)``) on the
    ``(N, C, H, W)`` queries and reshapes the result to ``window^2`` tokens of ``C`` channels. Per
    frame, with ``C = c1 * window + c2``, ``y = y1 * window + y2`` and ``x`` the column, the value
    ``q[y, x, c]`` lands at position ``(((c1 * (H / window) + y1) * window + c2) * window + y2) * W + x``
    of a stream that is then cut into ``nW`` windows of ``window^2`` tokens of ``C`` channels
    (``nW = H W / window^2``, row-major window positions as for :func:`window_partition`). Query
    window ``i`` is attended with the key window at position ``i`` and written back there.

    Args:
        x: ``(N, H, W, C)`` channels-last queries, ``H`` and ``W`` multiples of ``window``, ``C`` a
            multiple of ``window``.
        window: window side.

    Returns:
        ``(N, nW, window^2, C)``, the same shape as :func:`window_partition`'s.

    Example:
        >>> q = torch.arange(16.0).reshape(1, 2, 2, 4)  # one 2 x 2 window, q[0, y, x, c] = 8 y + 4 x + c
        >>> official_query_windows(q, 2)[0, 0].tolist()  # token t: channel t of the four pixels
        [[0.0, 4.0, 8.0, 12.0], [1.0, 5.0, 9.0, 13.0], [2.0, 6.0, 10.0, 14.0], [3.0, 7.0, 11.0, 15.0]]
        >>> window_partition(q, 2)[0, 0].tolist()[1]  # spatial partition: token 1 is pixel (0, 1)
        [4.0, 5.0, 6.0, 7.0]
    """
    n, height, width, channels = x.shape
    if channels % window or height % window or width % window:
        raise ValueError(
            f"the official query windows need channels and size multiples of the window {window}, "
            f"got {channels} channels, {height} x {width}"
        )
    return window_partition(x.permute(0, 3, 1, 2), window).reshape(n, -1, window * window, channels)


def window_reverse(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(N, nW, window^2, C)`` -> ``(N, H, W, C)``."""
    n, _, _, channels = windows.shape
    x = windows.reshape(n, height // window, width // window, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, height, width, channels)


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """``(..., L, C)`` -> ``(..., num_heads, L, C / num_heads)``."""
    return x.unflatten(-1, (num_heads, -1)).transpose(-3, -2)


def _merge_heads(x: Tensor) -> Tensor:
    """``(..., heads, L, d)`` -> ``(..., L, heads * d)``."""
    return x.transpose(-3, -2).flatten(-2)


class WindowSelfAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows (no position bias).

    Args:
        dim: channels C.
        num_heads: heads (C must be a multiple).
        window_size: window side.

    Example:
        >>> attn = WindowSelfAttention(16, num_heads=4, window_size=8)
        >>> attn(torch.randn(2, 11, 13, 16)).shape
        torch.Size([2, 11, 13, 16])
    """

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(N, H, W, C)`` -> ``(N, H, W, C)``; each pixel attends to the real pixels of its window."""
        height, width = x.shape[1:3]
        padded, valid = _pad_to_windows(x, self.window_size)
        windows = window_partition(padded, self.window_size)  # (N, nW, w2, C)
        q, k, v = (_heads(t, self.num_heads) for t in self.qkv(windows).chunk(3, dim=-1))
        mask = None
        if valid is not None:  # (nW, 1, 1, w2): keys that are real pixels
            mask = window_partition(valid[None, :, :, None], self.window_size)[0, :, None, None, :, 0]
        out = _merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
        out = window_reverse(out, self.window_size, *padded.shape[1:3])[:, :height, :width]
        return self.proj(out)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation gate: ``x * sigmoid(conv(relu(conv(avgpool(x)))))``.

    Args:
        dim: channels C.
        squeeze: channels of the bottleneck.
    """

    def __init__(self, dim: int, squeeze: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dim, squeeze, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(squeeze, dim, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, C, H, W)``."""
        return x * self.attention(x)


class ChannelAttentionBlock(nn.Module):
    """HAT's CAB: 3x3 conv to ``dim // compress_ratio``, GELU, 3x3 conv back, channel attention.

    Args:
        dim: channels C.
        compress_ratio: width divisor of the middle layer.
        squeeze_factor: width divisor of the channel attention bottleneck (at least 1 channel).
    """

    def __init__(self, dim: int, compress_ratio: int, squeeze_factor: int) -> None:
        super().__init__()
        mid = max(1, dim // compress_ratio)
        self.cab = nn.Sequential(
            nn.Conv2d(dim, mid, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv2d(mid, dim, kernel_size=3, padding=1),
            ChannelAttention(dim, max(1, dim // squeeze_factor)),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, C, H, W)``."""
        return self.cab(x)


class HybridAttentionBlock(nn.Module):
    """HAT's HAB without shift: window self-attention and a channel-attention conv branch, then an MLP.

    Args:
        dim: channels C.
        config: window, heads, MLP and CAB sizes.
    """

    def __init__(self, dim: int, config: WindowAttentionConfig) -> None:
        super().__init__()
        self.conv_scale = config.conv_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowSelfAttention(dim, config.num_heads, config.window_size)
        self.conv_block = ChannelAttentionBlock(dim, config.compress_ratio, config.squeeze_factor)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(N, H, W, C)`` -> ``(N, H, W, C)``."""
        y = self.norm1(x)
        conv = self.conv_block(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = x + self.attn(y) + self.conv_scale * conv
        return x + self.mlp(self.norm2(x))


class OverlappingCrossAttentionBlock(nn.Module):
    """HAT's OCAB as a cross-attention: query windows attend to larger, overlapping context windows.

    Args:
        dim: channels C of queries and context.
        config: window and overlap sizes, heads, MLP width, query window order and border keys.
    """

    def __init__(self, dim: int, config: WindowAttentionConfig) -> None:
        super().__init__()
        if config.query_window_order == "official" and dim % config.window_size:
            raise ValueError(
                f"the official query window order needs the channels ({dim}) to be a multiple of the window "
                f"({config.window_size}); use query_window_order='correct'"
            )
        self.window_size = config.window_size
        self.overlap_size = config.overlap_size
        self.num_heads = config.num_heads
        self.query_window_order = config.query_window_order
        self.border_keys = config.border_keys
        side = config.window_size + config.overlap_size - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(side * side, config.num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio))

    def _key_windows(self, x: Tensor) -> Tensor:
        """``(N, Hk, Wk, C)`` padded key map -> ``(N, nW, overlap^2, C)`` overlapping windows."""
        o, w = self.overlap_size, self.window_size
        win = x.unfold(1, o, w).unfold(2, o, w)  # (N, nh, nw, C, o, o)
        return win.permute(0, 1, 2, 4, 5, 3).flatten(1, 2).flatten(2, 3)

    def forward(self, x: Tensor, context: Tensor, relative_position_index: Tensor) -> Tensor:
        """Cross-attend the pixels of ``x`` to the context around them.

        Args:
            x: ``(N, H, W, C)`` queries.
            context: ``(N, H, W, C)`` keys and values.
            relative_position_index: ``(window^2, overlap^2)`` int64 index into the bias table.

        Returns:
            ``(N, H, W, C)``.
        """
        height, width = x.shape[1:3]
        w, margin = self.window_size, (self.overlap_size - self.window_size) // 2
        q = self.q(self.norm1(x))
        ctx = self.norm1(context)
        kv = torch.cat((self.k(ctx), self.v(ctx)), dim=-1)
        pad_h, pad_w = -height % w, -width % w
        q = F.pad(q, (0, 0, 0, pad_w, 0, pad_h))
        kv = F.pad(kv, (0, 0, margin, margin + pad_w, margin, margin + pad_h))

        partition = official_query_windows if self.query_window_order == "official" else window_partition
        q = _heads(partition(q, w), self.num_heads)  # (N, nW, h, w2, d)
        k, v = (_heads(t, self.num_heads) for t in self._key_windows(kv).chunk(2, dim=-1))  # (N, nW, h, o2, d)
        table = self.relative_position_bias_table
        bias = table[relative_position_index.reshape(-1) % table.shape[0]]
        mask = bias.reshape(w * w, self.overlap_size**2, -1).permute(2, 0, 1).to(q.dtype)  # (h, w2, o2)
        if self.border_keys == "masked":  # else padded keys are zeros that score 0 + bias
            real = torch.zeros(kv.shape[1:3], dtype=torch.bool, device=x.device)
            real[margin : margin + height, margin : margin + width] = True
            key_ok = self._key_windows(real[None, :, :, None])[0, :, None, None, :, 0]  # (nW, 1, 1, o2)
            mask = mask.masked_fill(~key_ok, float("-inf"))  # (nW, h, w2, o2)
        out = _merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
        out = window_reverse(out, w, height + pad_h, width + pad_w)[:, :height, :width]
        x = x + self.proj(out)
        return x + self.mlp(self.norm2(x))


class PatchNorm(nn.Module):
    """HAT's patch embedding with patch size 1: a LayerNorm over the channels of every pixel.

    Args:
        dim: channels C.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., C) -> (..., C)``."""
        return self.norm(x)


class _WindowBody(nn.Module):
    """The HAT shell shared by both blocks: ``patch_embed``, block, ``norm``, convolutions."""

    def __init__(self, dim: int, config: WindowAttentionConfig) -> None:
        super().__init__()
        self.register_buffer("relative_position_index_SA", relative_position_index_sa(config.window_size))
        self.patch_embed = PatchNorm(dim)
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = nn.Conv2d(dim, dim, kernel_size=3, padding=1)
        self.conv_before_upsample = nn.Sequential(
            nn.Conv2d(dim, config.hidden, kernel_size=3, padding=1), nn.LeakyReLU(0.01)
        )
        self.conv_last = nn.Conv2d(config.hidden, dim, kernel_size=3, padding=1)

    def _tail(self, body: Tensor, x: Tensor) -> Tensor:
        """``body (N, H, W, C)`` block output, ``x (N, C, H, W)`` block input -> ``(N, C, H, W)``."""
        body = self.norm(body).permute(0, 3, 1, 2)
        x = self.conv_after_body(body) + x
        return self.conv_last(self.conv_before_upsample(x))


class HybridWindowSelfAttention(_WindowBody):
    """``window_self_atten``: a HAT body with one hybrid attention block (window SA + CAB).

    Args:
        dim: channels C (128 in IGGT: after ``output_conv1``).
        config: window, heads and widths.

    Example:
        >>> block = HybridWindowSelfAttention(16, WindowAttentionConfig(hidden=8))
        >>> block(torch.randn(2, 16, 10, 19)).shape
        torch.Size([2, 16, 10, 19])
    """

    def __init__(self, dim: int, config: WindowAttentionConfig | None = None) -> None:
        config = config or WindowAttentionConfig()
        super().__init__(dim, config)
        self.atten_block = HybridAttentionBlock(dim, config)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(N, C, H, W)`` of any size -> ``(N, C, H, W)``."""
        body = self.atten_block(self.patch_embed(x.permute(0, 2, 3, 1)))
        return self._tail(body, x)


class OverlappingWindowCrossAttention(_WindowBody):
    """``window_cross_attention``: a HAT body with one overlapping cross-attention block.

    Args:
        dim: channels C of the queries and of the context (256 in IGGT).
        config: window, overlap, heads and widths.

    Example:
        >>> block = OverlappingWindowCrossAttention(16, WindowAttentionConfig(hidden=8))
        >>> block(torch.randn(2, 16, 10, 19), torch.randn(2, 16, 10, 19)).shape
        torch.Size([2, 16, 10, 19])
    """

    def __init__(self, dim: int, config: WindowAttentionConfig | None = None) -> None:
        config = config or WindowAttentionConfig()
        if (config.overlap_size - config.window_size) % 2:
            raise ValueError(
                f"window_size * overlap_ratio must give an even margin, got window {config.window_size}, "
                f"overlap {config.overlap_size}"
            )
        super().__init__(dim, config)
        self.register_buffer(
            "relative_position_index_OCA", relative_position_index_oca(config.window_size, config.overlap_size)
        )
        self.atten_block = OverlappingCrossAttentionBlock(dim, config)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """Refine ``x`` with the ``context`` around every window.

        Args:
            x: ``(N, C, H, W)`` queries (instance features), any size.
            context: ``(N, C, H, W)`` keys and values (the point head's fused map).

        Returns:
            ``(N, C, H, W)``.
        """
        if context.shape != x.shape:
            raise ValueError(f"context {tuple(context.shape)} must have the shape of x {tuple(x.shape)}")
        tokens = self.patch_embed(x.permute(0, 2, 3, 1))
        ctx = self.patch_embed(context.permute(0, 2, 3, 1))
        body = self.atten_block(tokens, ctx, self.relative_position_index_OCA)
        return self._tail(body, x)
