"""IGGT's ``part_head``: per-pixel instance features fused with the point head's geometry.

The head is a DPT fusion stack (``scratch.layer{1..4}_rn``, ``refinenet4..1``, ``output_conv1``,
``output_conv2``) fed by the four maps of :class:`~sem3r.models.iggt.adaptor.PartAdaptor` instead of
reassembled tokens. It attends to the point head's fused maps of the same size
(:meth:`~sem3r.models.vggt.dpt_head.DPTHead.forward` with ``return_intermediates``). What the official
IGGT code computes (github lifuguan/IGGT_official, ``iggt/heads/part_head.py``; checked against it
with identical random weights), which is what Sem3R computes by default:

=========================================  ======================================================
step                                       scale (patch grid = 1x)
=========================================  ======================================================
``layer_rn`` convs on the adaptor          4x, 2x, 1x, 1/2x
``refinenet4``                             -> 1x
``x = cross_attention_2(x, point r4)``     1x, global per frame; *replaces* ``x`` (no residual)
``refinenet3``                             -> 2x
(``cross_attention_1``)                    computed by the official code and discarded: not run
``refinenet2``                             -> 4x
``window_cross_attention(x, point r2)``    4x, overlapping windows (see :mod:`.window_attention`)
``refinenet1``                             -> 8x
``output_conv1``                           width -> width / 2
``window_self_atten``                      8x, hybrid window self-attention
bilinear resize (align corners)            image size (``patch grid * patch_size``)
``output_conv2``                           3x3 -> 32, ReLU, 1x1 -> ``feature_dim`` (8)
=========================================  ======================================================

(``point r4``, ``point r2``: the point head's ``refinenet4`` and ``refinenet2`` outputs.) The model
L2-normalises the output over channels. No UV position embedding is added.

The official forward pass thus (a) replaces the coarse map by the attention output and (b) drops
``cross_attention_1``'s output (``refinenet2`` reads the map from ``refinenet3`` directly): the
weights of ``cross_attention_1`` have no effect on the features. The checkpoint was trained that
way, so these are the defaults. Corrected variants are options:

- ``cross_attention_residual=True``: the global cross-attentions are residual,
  ``x = x + cross_attention(x, point_map)``.
- ``use_cross_attention_1=True``: ``cross_attention_1`` (at 2x, keys/values: the point head's
  ``refinenet3``) is applied after ``refinenet3``, replacing or (with the option above) added to
  the map.

Such a model does not compute what the official weights were trained for; the options are for
training new heads. The two further official quirks of the window cross-attention (scrambled query
windows, zero-padded border keys in the softmax) and their options are described in
:mod:`sem3r.models.iggt.window_attention`.

``cross_attention_{1,2}`` follow CroCo's ``CrossAttention``: separate ``projq``, ``projk``,
``projv`` (with bias), 8 heads, scores scaled by ``head_dim ** -0.5``, output ``proj``; no
normalisation before them (the checkpoint has none). The window blocks replace ``x`` by their
output (they contain their own skip connections).

The head also owns ``norm``, ``projects`` and ``resize_layers`` of a DPT head reading 2048-channel
tokens: the official checkpoint has them (IGGT's head is built as a subclass of VGGT's DPT head)
but the forward pass does not use them; they are kept so that the checkpoint loads strictly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from sem3r.models.iggt.window_attention import (
    HybridWindowSelfAttention,
    OverlappingWindowCrossAttention,
    WindowAttentionConfig,
)
from sem3r.models.vggt.dpt_head import DPTHead, interpolate_bilinear


class CrossAttention(nn.Module):
    """Multi-head cross-attention (CroCo layout): ``proj(attn(projq(x), projk(ctx), projv(ctx)))``.

    Args:
        dim: query channels C.
        num_heads: heads (C must be a multiple).
        context_dim: key/value channels (default ``dim``).

    Example:
        >>> import torch
        >>> CrossAttention(16, num_heads=4)(torch.randn(2, 5, 16), torch.randn(2, 7, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, dim: int, num_heads: int = 8, context_dim: int | None = None) -> None:
        super().__init__()
        context_dim = context_dim or dim
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim)
        self.projk = nn.Linear(context_dim, dim)
        self.projv = nn.Linear(context_dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """``x``: ``(N, Lq, C)`` queries, ``context``: ``(N, Lk, C_ctx)`` -> ``(N, Lq, C)``."""
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in
                   (self.projq(x), self.projk(context), self.projv(context)))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).flatten(2))


class PartHead(DPTHead):
    """Instance-feature head: DPT fusion of the adaptor maps with cross-attention to the point head.

    Args:
        dim_in: token channels of the (unused) DPT token path (2048).
        patch_size: pixels per patch side.
        adaptor_channels: channels of the four adaptor maps (256).
        features: fusion width (256); must equal the point head's fusion width.
        out_channels: widths of the unused DPT token projections (256, 512, 1024, 1024).
        intermediate_layer_idx: layers of the unused DPT token path.
        feature_dim: output channels (8).
        cross_attention_heads: heads of ``cross_attention_{1,2}`` (8).
        window: sizes and options of the two window blocks.
        cross_attention_residual: add the global cross-attentions' outputs to the map instead of
            replacing it (official: ``False``, replace).
        use_cross_attention_1: apply ``cross_attention_1`` after ``refinenet3`` (official:
            ``False``, its output is discarded).

    Example:
        >>> import torch
        >>> head = PartHead(dim_in=32, adaptor_channels=8, features=16, out_channels=(8, 16, 32, 32),
        ...                 intermediate_layer_idx=(0, 1, 2, 3), window=WindowAttentionConfig(hidden=8))
        >>> levels = [torch.randn(2, 8, 4 * s, 4 * s) for s in (4, 2, 1)] + [torch.randn(2, 8, 2, 2)]
        >>> point_maps = [torch.randn(2, 16, 4 * s, 4 * s) for s in (4, 2, 1)]
        >>> head(levels, point_maps, out_size=(56, 56)).shape
        torch.Size([2, 8, 56, 56])
    """

    def __init__(
        self,
        dim_in: int = 2048,
        patch_size: int = 14,
        adaptor_channels: int = 256,
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23),
        feature_dim: int = 8,
        cross_attention_heads: int = 8,
        window: WindowAttentionConfig | None = None,
        cross_attention_residual: bool = False,
        use_cross_attention_1: bool = False,
    ) -> None:
        super().__init__(
            dim_in=dim_in,
            patch_size=patch_size,
            output_dim=feature_dim,
            activation="linear",
            features=features,
            out_channels=out_channels,
            intermediate_layer_idx=intermediate_layer_idx,
            pos_embed=False,
        )
        window = window or WindowAttentionConfig()
        self.cross_attention_residual = cross_attention_residual
        self.use_cross_attention_1 = use_cross_attention_1
        for level in range(1, 5):
            conv = nn.Conv2d(adaptor_channels, features, kernel_size=3, padding=1, bias=False)
            setattr(self.scratch, f"layer{level}_rn", conv)
        self.cross_attention_1 = CrossAttention(features, cross_attention_heads)
        self.cross_attention_2 = CrossAttention(features, cross_attention_heads)
        self.window_self_atten = HybridWindowSelfAttention(features // 2, window)
        self.window_cross_attention = OverlappingWindowCrossAttention(features, window)

    def forward(self, levels: Sequence[Tensor], point_maps: Sequence[Tensor], out_size: Sequence[int]) -> Tensor:
        """Raw (not normalised) instance features of ``N`` frames.

        Args:
            levels: the adaptor's four maps ``(N, adaptor_channels, h_i, w_i)`` at 4x, 2x, 1x, 1/2x
                the patch grid.
            point_maps: the point head's ``refinenet2``, ``refinenet3``, ``refinenet4`` outputs
                ``(N, features, h_i, w_i)`` at 4x, 2x, 1x the patch grid (finest first).
            out_size: ``(H, W)`` of the output.

        Returns:
            ``(N, feature_dim, H, W)``.
        """
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(x) for i, x in enumerate(levels, start=1))
        out = s.refinenet4(l4, size=l3.shape[-2:])
        out = self._cross_attend(self.cross_attention_2, out, point_maps[2])
        out = s.refinenet3(out, l3, size=l2.shape[-2:])
        if self.use_cross_attention_1:  # the official head computes it and discards the result
            out = self._cross_attend(self.cross_attention_1, out, point_maps[1])
        out = s.refinenet2(out, l2, size=l1.shape[-2:])
        out = self.window_cross_attention(out, point_maps[0])
        out = s.output_conv1(s.refinenet1(out, l1))
        out = self.window_self_atten(out)
        return s.output_conv2(interpolate_bilinear(out, out_size))

    def _cross_attend(self, attention: CrossAttention, x: Tensor, context: Tensor) -> Tensor:
        """``attention(x, context)``, replacing ``x`` (official) or added to it (``cross_attention_residual``)."""
        out = _global_cross_attention(attention, x, context)
        return x + out if self.cross_attention_residual else out


def _global_cross_attention(attention: CrossAttention, x: Tensor, context: Tensor) -> Tensor:
    """Attend every pixel of ``x (N, C, h, w)`` to all pixels of ``context (N, C', h', w')``; ``(N, C, h, w)``."""
    out = attention(x.flatten(2).transpose(1, 2), context.flatten(2).transpose(1, 2))
    return out.transpose(1, 2).reshape(x.shape)
