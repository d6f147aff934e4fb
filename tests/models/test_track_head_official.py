"""The VGGT/IGGT track head computes what the official code computes (facebookresearch/vggt,
lifuguan/IGGT_official): no UV position embedding in the feature extractor, the sin/cos grid of the
tracker computed in float64 and rounded once, ``nn.MultiheadAttention`` called with its default
``need_weights`` (the explicit softmax path)."""

import math

import torch

from sem3r.models.vggt.dpt_head import interpolate_bilinear
from sem3r.models.vggt.track_head import TrackHead
from sem3r.models.vggt.tracker import AttnBlock, CrossAttnBlock, grid_sincos_embedding


def _tokens(frames=2, ph=2, pw=3, special=5):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, frames, special + ph * pw, 32, generator=g) for _ in range(4)]


def _extractor_by_hand(fe, tokens, ph, pw, special=5):
    """norm -> project -> resize -> DPT fusion -> resize to half the image: nothing added anywhere."""
    levels = []
    for i, layer in enumerate(fe.intermediate_layer_idx):
        x = fe.norm(tokens[layer][:, :, special:].flatten(0, 1))
        x = fe.projects[i](x.transpose(1, 2).reshape(x.shape[0], -1, ph, pw))
        levels.append(fe.resize_layers[i](x))
    out, _ = fe._fuse(levels)
    return interpolate_bilinear(out, (ph * 14 // 2, pw * 14 // 2))


def test_track_feature_extractor_has_no_uv_position_embedding_by_default(small_track):
    torch.manual_seed(0)
    head = TrackHead(**small_track).eval()
    assert head.feature_extractor.pos_embed is False
    tokens, images = _tokens(), torch.rand(1, 2, 3, 28, 42)
    with torch.no_grad():
        fmaps = head.feature_extractor(tokens, images, 5)
        by_hand = _extractor_by_hand(head.feature_extractor, tokens, 2, 3).reshape(fmaps.shape)
        torch.testing.assert_close(fmaps, by_hand, rtol=0, atol=0)
        # the option adds the embedding: a different map
        with_pe = TrackHead(**small_track, pos_embed=True).eval()
        with_pe.load_state_dict(head.state_dict())
        assert (with_pe.feature_extractor(tokens, images, 5) - fmaps).abs().max() > 1e-3


def test_grid_embedding_is_computed_in_float64_then_rounded():
    channels, height, width = 12, 3, 4
    grid = grid_sincos_embedding(channels, height, width)
    assert grid.dtype == torch.float32 and grid.shape == (1, channels, height, width)
    n = channels // 4
    # by hand in float64 (Python floats): channel k < 2n encodes x, the rest y; [sin x n, cos x n] each
    expected = torch.empty(channels, height, width, dtype=torch.float64)
    for k in range(channels):
        omega = 1.0 / 10000 ** ((k % n) / n)
        fn = math.sin if (k // n) % 2 == 0 else math.cos
        for y in range(height):
            for x in range(width):
                expected[k, y, x] = fn((x if k < 2 * n else y) * omega)
    assert torch.equal(grid[0], expected.float())
    # a float32 computation of the same formula is not bit-identical
    omega32 = 1.0 / 10000 ** (torch.arange(n, dtype=torch.float32) / n)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    angles = torch.stack([xs, ys], dim=-1)[..., None] * omega32
    float32 = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2).permute(2, 0, 1)
    assert not torch.equal(grid[0], float32)


def test_attention_blocks_keep_need_weights_at_its_default(monkeypatch):
    """The official blocks call ``attn(x, x, x)`` / ``cross_attn(x, c, c, attn_mask=None)``: the
    explicit-softmax path, which differs by roundoff from ``need_weights=False``'s SDPA path."""
    torch.manual_seed(0)
    calls = []
    original = torch.nn.MultiheadAttention.forward

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("need_weights", True))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.MultiheadAttention, "forward", spy)
    x, ctx = torch.randn(3, 5, 32), torch.randn(3, 7, 32)
    attn, cross = AttnBlock(32, 4), CrossAttnBlock(32, 4)
    for module in (attn, cross):  # training mode too: every call goes through the same path
        for mode in (True, False):
            module.train(mode)
            out = module(x) if module is attn else module(x, ctx)
            assert out.shape == x.shape
    assert calls == [True] * 4
    # and that path is the explicit computation: bmm, softmax, bmm
    attn.eval()
    with torch.no_grad():
        y = attn.norm1(x)
        mha = attn.attn
        qkv = torch.nn.functional.linear(y, mha.in_proj_weight, mha.in_proj_bias)
        q, k, v = (t.unflatten(-1, (4, 8)).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        weights = ((q * math.sqrt(1.0 / 8)) @ k.transpose(-1, -2)).softmax(-1)
        explicit = mha.out_proj((weights @ v).transpose(1, 2).flatten(2))
        y = y + explicit
        expected = y + attn.mlp(attn.norm2(y))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


def test_track_head_defaults_match_the_official_head(small_track):
    head = TrackHead(**small_track)
    assert head.feature_extractor.pos_embed is False and head.feature_extractor.down_ratio == 2
