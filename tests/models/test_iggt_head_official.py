"""IGGT's instance head computes what the official code computes (github lifuguan/IGGT_official).

Four properties of the official forward pass are pinned here, each on a small hand-checked case:
(a) at the coarse scale ``cross_attention_2`` *replaces* the map before ``refinenet3`` (no residual);
(b) ``cross_attention_1`` is computed and discarded (``refinenet2`` reads ``refinenet3``'s output);
(c) the window cross-attention cuts its queries with the channels-last partition applied to the
channels-first map (scrambled query windows);
(d) key windows reaching over the border hold zero keys and values that take part in the softmax.
The corrected variants are options, checked here too.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from sem3r.errors import Sem3RError
from sem3r.models.iggt import IGGTConfig, WindowAttentionConfig
from sem3r.models.iggt.part_head import PartHead
from sem3r.models.iggt.window_attention import (
    OverlappingCrossAttentionBlock,
    official_query_windows,
    relative_position_index_oca,
    window_partition,
)
from sem3r.models.vggt.dpt_head import interpolate_bilinear

C = 16  # fusion width of the small head


def _small_head(**kw) -> PartHead:
    torch.manual_seed(0)
    head = PartHead(dim_in=32, adaptor_channels=8, features=C, out_channels=(8, 16, 32, 32),
                    intermediate_layer_idx=(0, 1, 2, 3), window=kw.pop("window", WindowAttentionConfig(hidden=8)),
                    **kw)
    with torch.no_grad():  # no zero/one initialisations left that could hide a missing term
        for p in head.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return head.eval()


def _inputs(h: int = 2, w: int = 3):
    g = torch.Generator().manual_seed(1)
    levels = [torch.randn(2, 8, 4 * h, 4 * w, generator=g), torch.randn(2, 8, 2 * h, 2 * w, generator=g),
              torch.randn(2, 8, h, w, generator=g), torch.randn(2, 8, (h + 1) // 2, (w + 1) // 2, generator=g)]
    point_maps = [torch.randn(2, C, s * h, s * w, generator=g) for s in (4, 2, 1)]
    return levels, point_maps, (14 * h, 14 * w)


def _cross_attention_by_hand(attention, x, context):
    """softmax(q k^T / sqrt(d)) v per head, written out; ``x (N, C, h, w)``, ``context (N, C, h', w')``."""
    n, c, h, w = x.shape
    heads = attention.num_heads
    q = attention.projq(x.flatten(2).transpose(1, 2)).reshape(n, h * w, heads, -1).transpose(1, 2)
    ctx = context.flatten(2).transpose(1, 2)
    k = attention.projk(ctx).reshape(n, ctx.shape[1], heads, -1).transpose(1, 2)
    v = attention.projv(ctx).reshape(n, ctx.shape[1], heads, -1).transpose(1, 2)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)
    out = attention.proj((weights @ v).transpose(1, 2).reshape(n, h * w, c))
    return out.transpose(1, 2).reshape(n, c, h, w)


def _head_by_hand(head, levels, point_maps, out_size, coarse, after_refinenet3=lambda out: out):
    """The head assembled step by step; ``coarse(r4_out, attention_out)`` is the map fed to ``refinenet3``."""
    s = head.scratch
    l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(x) for i, x in enumerate(levels, start=1))
    r4 = s.refinenet4(l4, size=l3.shape[-2:])
    out = s.refinenet3(coarse(r4, _cross_attention_by_hand(head.cross_attention_2, r4, point_maps[2])), l3,
                       size=l2.shape[-2:])
    out = s.refinenet2(after_refinenet3(out), l2, size=l1.shape[-2:])
    out = head.window_cross_attention(out, point_maps[0])
    out = head.window_self_atten(s.output_conv1(s.refinenet1(out, l1)))
    return s.output_conv2(interpolate_bilinear(out, out_size))


# ------------------------------------------------------------------ (a) coarse scale: replace, no residual


def test_coarse_cross_attention_replaces_the_map_by_default():
    head = _small_head()
    levels, point_maps, size = _inputs()
    with torch.no_grad():
        out = head(levels, point_maps, size)
        replaced = _head_by_hand(head, levels, point_maps, size, coarse=lambda r4, att: att)
        residual = _head_by_hand(head, levels, point_maps, size, coarse=lambda r4, att: r4 + att)
    torch.testing.assert_close(out, replaced, rtol=1e-5, atol=1e-5)
    assert (out - residual).abs().max() > 1e-3  # the residual form is a different computation


def test_residual_cross_attention_option():
    head = _small_head(cross_attention_residual=True)
    levels, point_maps, size = _inputs()
    with torch.no_grad():
        out = head(levels, point_maps, size)
        residual = _head_by_hand(head, levels, point_maps, size, coarse=lambda r4, att: r4 + att)
    torch.testing.assert_close(out, residual, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ (b) cross_attention_1 is discarded


def test_cross_attention_1_does_not_change_the_features_by_default():
    head = _small_head()
    levels, point_maps, size = _inputs()
    with torch.no_grad():
        before = head(levels, point_maps, size)
        for p in head.cross_attention_1.parameters():
            p.mul_(-3.0).add_(1.0)
        point_maps[1].normal_()  # its keys/values are not read either
        after = head(levels, point_maps, size)
    assert torch.equal(before, after)


def test_use_cross_attention_1_option():
    head = _small_head(use_cross_attention_1=True)
    levels, point_maps, size = _inputs()
    with torch.no_grad():
        out = head(levels, point_maps, size)
        by_hand = _head_by_hand(
            head, levels, point_maps, size, coarse=lambda r4, att: att,
            after_refinenet3=lambda x: _cross_attention_by_hand(head.cross_attention_1, x, point_maps[1]),
        )
        torch.testing.assert_close(out, by_hand, rtol=1e-5, atol=1e-5)
        for p in head.cross_attention_1.parameters():
            p.mul_(-3.0).add_(1.0)
        assert (head(levels, point_maps, size) - out).abs().max() > 1e-3


# ------------------------------------------------------------------ (c) scrambled query windows


def _official_windows_by_hand(q, window):
    """The official partition with the index arithmetic written out.

    The official code views the ``(N, C, H, W)`` map as ``(N, C/w, w, H/w, w, W)`` (c1, c2, y1, y2, x),
    permutes it to (c1, y1, c2, y2, x), flattens it and cuts the stream into windows of ``w^2``
    tokens of ``C`` channels: entry ``f = (i * w^2 + t) * C + c`` of a frame's stream is window
    ``i``, token ``t``, channel ``c``.
    """
    n, height, width, channels = q.shape
    windows = height * width // window**2
    out = torch.empty(n, windows, window * window, channels)
    for b in range(n):
        for i in range(windows):
            for t in range(window * window):
                for c in range(channels):
                    f = (i * window * window + t) * channels + c
                    x = f % width
                    f //= width
                    y2 = f % window
                    f //= window
                    c2 = f % window
                    f //= window
                    y1 = f % (height // window)
                    c1 = f // (height // window)
                    out[b, i, t, c] = q[b, y1 * window + y2, x, c1 * window + c2]
    return out


def test_official_query_windows_on_a_hand_built_tensor():
    # q[n, y, x, c] = 1000 n + 100 y + 10 x + c: every value names its position
    n, y, x, c = torch.meshgrid(torch.arange(2), torch.arange(4), torch.arange(6), torch.arange(4), indexing="ij")
    q = (1000 * n + 100 * y + 10 * x + c).float()
    got = official_query_windows(q, 2)
    assert torch.equal(got, _official_windows_by_hand(q, 2))
    # written out: window 0, token 0 takes channel 0 of the pixels (0, 0), (0, 1), (0, 2), (0, 3) ...
    assert got[0, 0, 0].tolist() == [0.0, 10.0, 20.0, 30.0]
    # ... token 1 continues along row 0 into the next window's columns and wraps to row 1
    assert got[0, 0, 1].tolist() == [40.0, 50.0, 100.0, 110.0]
    # token 2: the rest of row 1, still channel 0
    assert got[0, 0, 2].tolist() == [120.0, 130.0, 140.0, 150.0]
    # frame 1, last window, last token: f = (5 * 4 + 3) * 4 = 92 = ((((c1 * 2 + y1) * 2 + c2) * 2 + y2) * 6 + x
    # with c1 = y1 = c2 = y2 = 1, x = 2: pixel (3, 2..5), channel 3
    assert got[1, 5, 3].tolist() == [1323.0, 1333.0, 1343.0, 1353.0]
    correct = window_partition(q, 2)
    assert correct[0, 0, 1].tolist() == [10.0, 11.0, 12.0, 13.0]  # spatial: pixel (0, 1), all channels
    for i in range(correct.shape[1]):  # every window differs from the spatial partition
        assert not torch.equal(got[:, i], correct[:, i])


def test_official_query_windows_need_channels_multiple_of_window():
    with pytest.raises(ValueError, match="multiples of the window"):
        official_query_windows(torch.zeros(1, 4, 4, 6), 4)
    with pytest.raises(ValueError, match="multiple of the window"):
        OverlappingCrossAttentionBlock(12, WindowAttentionConfig(window_size=8))
    OverlappingCrossAttentionBlock(12, WindowAttentionConfig(window_size=8, query_window_order="correct"))


def _attend(q, k, v, heads, bias):
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(0, 1) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
    return (scores.softmax(-1) @ v).transpose(0, 1).flatten(1)


@pytest.mark.parametrize("size", [(16, 8), (8, 24), (10, 19)])
def test_official_window_cross_attention_matches_a_per_window_reference(size):
    """Defaults: window i's scrambled queries attend to the zero-padded key window at position i."""
    torch.manual_seed(0)
    block = OverlappingCrossAttentionBlock(16, WindowAttentionConfig(window_size=8, overlap_ratio=0.5, num_heads=4))
    with torch.no_grad():
        block.relative_position_bias_table.normal_()
    rpi = relative_position_index_oca(8, 12)
    x, ctx = torch.randn(2, *size, 16), torch.randn(2, *size, 16)
    height, width = size
    hp, wp = -(-height // 8) * 8, -(-width // 8) * 8  # sizes that are no multiple: zero-padded first
    with torch.no_grad():
        out = block(x, ctx, rpi)
        q = F.pad(block.q(block.norm1(x)), (0, 0, 0, wp - width, 0, hp - height))
        k = F.pad(block.k(block.norm1(ctx)), (0, 0, 2, 2 + wp - width, 2, 2 + hp - height))  # zero keys
        v = F.pad(block.v(block.norm1(ctx)), (0, 0, 2, 2 + wp - width, 2, 2 + hp - height))
        q_windows = _official_windows_by_hand(q, 8)
        bias = block.relative_position_bias_table[rpi % 361].permute(2, 0, 1)  # no mask
        attended = torch.empty(2, hp, wp, 16)
        for n in range(2):
            for i in range(hp * wp // 64):
                y0, x0 = (i // (wp // 8)) * 8, (i % (wp // 8)) * 8
                keys = k[n, y0 : y0 + 12, x0 : x0 + 12].reshape(144, 16)  # padded map: y0 - 2 .. y0 + 10
                values = v[n, y0 : y0 + 12, x0 : x0 + 12].reshape(144, 16)
                window_out = _attend(q_windows[n, i], keys, values, 4, bias)
                attended[n, y0 : y0 + 8, x0 : x0 + 8] = window_out.reshape(8, 8, 16)
        y = x + block.proj(attended[:, :height, :width])
        expected = y + block.mlp(block.norm2(y))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ (d) zero-padded border keys


def _one_window_block(border_keys):
    """One head, 4 channels, 2 x 2 windows with 4 x 4 key windows (margin 1); q, k, v, proj = identity,
    no position bias, an MLP that adds nothing: the block computes ``x + attention``."""
    config = WindowAttentionConfig(window_size=2, overlap_ratio=1.0, num_heads=1, query_window_order="correct",
                                   border_keys=border_keys)
    block = OverlappingCrossAttentionBlock(4, config)
    with torch.no_grad():
        for linear in (block.q, block.k, block.v, block.proj):
            linear.weight.copy_(torch.eye(4))
            linear.bias.zero_()
        block.relative_position_bias_table.zero_()
        block.mlp.fc2.weight.zero_()
        block.mlp.fc2.bias.zero_()
    return block.eval()


def test_border_keys_are_zero_padded_into_the_softmax_by_default():
    x = torch.tensor([[1.0, 0.0, 2.0, -1.0], [0.5, 1.5, -2.0, 0.0], [3.0, -1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 2.0]])
    ctx = torch.tensor([[2.0, 1.0, 0.0, -1.0], [1.0, -2.0, 0.5, 0.5], [0.0, 3.0, -1.0, 1.0], [-1.0, 0.0, 2.0, 1.0]])
    x, ctx = x.reshape(1, 2, 2, 4), ctx.reshape(1, 2, 2, 4)  # a 2 x 2 map of 4 channels
    rpi = relative_position_index_oca(2, 4)
    # by hand: the single 2 x 2 query window sees a 4 x 4 key window = the 4 real pixels + 12 zero keys
    qn, kn = F.layer_norm(x, (4,)).reshape(4, 4), F.layer_norm(ctx, (4,)).reshape(4, 4)
    scores = qn @ kn.T / 2.0  # sqrt(head dim 4)
    zero_pad = x.reshape(4, 4) + scores.exp() @ kn / (scores.exp().sum(-1, keepdim=True) + 12 * math.exp(0.0))
    masked = x.reshape(4, 4) + scores.exp() @ kn / scores.exp().sum(-1, keepdim=True)
    with torch.no_grad():
        got_default = _one_window_block("zero_pad")(x, ctx, rpi).reshape(4, 4)
        got_masked = _one_window_block("masked")(x, ctx, rpi).reshape(4, 4)
    torch.testing.assert_close(got_default, zero_pad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_masked, masked, rtol=1e-5, atol=1e-6)
    assert (zero_pad - masked).abs().max() > 0.1


def test_interior_windows_do_not_see_the_border_option():
    """Only windows whose key window crosses the border change with ``border_keys``."""
    torch.manual_seed(0)
    blocks = [OverlappingCrossAttentionBlock(16, WindowAttentionConfig(window_size=4, overlap_ratio=0.5, num_heads=2,
                                                                        query_window_order="correct", border_keys=b))
              for b in ("zero_pad", "masked")]
    blocks[1].load_state_dict(blocks[0].state_dict())
    x, ctx = torch.randn(1, 12, 12, 16), torch.randn(1, 12, 12, 16)
    rpi = relative_position_index_oca(4, 6)
    with torch.no_grad():
        a, b = (block(x, ctx, rpi) for block in blocks)
    torch.testing.assert_close(a[:, 4:8, 4:8], b[:, 4:8, 4:8], rtol=0, atol=1e-6)  # the centre window
    assert (a[:, :4] - b[:, :4]).abs().min() > 0  # every pixel of the top windows
    assert (a[:, :, :4] - b[:, :, :4]).abs().min() > 0  # and of the left ones


# ------------------------------------------------------------------ defaults and configuration


def test_defaults_are_the_official_computation():
    cfg = IGGTConfig()
    assert (cfg.cross_attention_residual, cfg.use_cross_attention_1) == (False, False)
    assert (cfg.query_window_order, cfg.border_keys) == ("official", "zero_pad")
    window = cfg.window_config()
    assert (window.query_window_order, window.border_keys) == ("official", "zero_pad")
    head = _small_head()
    assert not head.cross_attention_residual and not head.use_cross_attention_1
    block = head.window_cross_attention.atten_block
    assert (block.query_window_order, block.border_keys) == ("official", "zero_pad")


def test_config_options_are_validated():
    with pytest.raises(Sem3RError, match="query_window_order"):
        IGGTConfig.small(query_window_order="spatial")
    with pytest.raises(Sem3RError, match="border_keys"):
        IGGTConfig.small(border_keys="reflect")
    with pytest.raises(Sem3RError, match="multiple of window_size"):
        IGGTConfig.small(window_size=12)  # 32 channels cannot be scrambled into 12-pixel windows
    IGGTConfig.small(window_size=12, query_window_order="correct")
    with pytest.raises(ValueError, match="border_keys"):
        WindowAttentionConfig(border_keys="none")
