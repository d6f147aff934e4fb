import json
import math
from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from sem3r.errors import Sem3RError
from sem3r.models.iggt import (
    IGGT,
    HybridWindowSelfAttention,
    IGGTConfig,
    OverlappingWindowCrossAttention,
    ResidualProjection,
    WindowAttentionConfig,
)
from sem3r.models.iggt.window_attention import (
    OverlappingCrossAttentionBlock,
    WindowSelfAttention,
    relative_position_index_oca,
    relative_position_index_sa,
)
from sem3r.models.vggt import DPTHead, LayerScale, VGGTConfig

OFFICIAL_KEYS = 2053
OFFICIAL_PARAMS = 1_299_499_573
PER_FRAME = ("depth", "world_points", "world_points_conf", "instance_features")


def test_official_layout_full_model(official_layout, assert_official_layout):
    assert len(official_layout("iggt")) == OFFICIAL_KEYS
    with torch.device("meta"):
        model = IGGT(IGGTConfig())
    assert_official_layout(model, name="iggt")
    state = model.state_dict()
    assert sum(v.numel() for v in state.values()) == OFFICIAL_PARAMS
    for key in ("part_head.window_self_atten.relative_position_index_SA",
                "part_head.window_cross_attention.relative_position_index_OCA",
                "part_adaptor.resize_layers.0.1.input_proj.1.num_batches_tracked"):
        assert key in state, key  # persistent buffers travel with the checkpoint


def test_non_part_keys_are_vggts(official_layout):
    iggt = {k: v for k, v in official_layout("iggt").items() if not k.startswith(("part_adaptor.", "part_head."))}
    assert iggt == official_layout("vggt")
    with torch.device("meta"):
        model = IGGT(IGGTConfig(enable_track=False))
    assert {k.split(".")[0] for k in model.state_dict()} == {
        "aggregator", "camera_head", "point_head", "depth_head", "part_adaptor", "part_head"
    }


def test_config_round_trips_through_json():
    config = IGGTConfig.small(enable_track=False, feature_dim=16)
    fields = json.loads(json.dumps(asdict(config)))
    rebuilt = IGGTConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    assert rebuilt == config and isinstance(rebuilt, VGGTConfig)
    assert (config.embed_dim, config.part_features, config.adaptor_channels) == (128, 32, 32)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"enable_point": False}, "point head"),
        ({"part_features": 64}, "dpt_features"),
        ({"overlap_ratio": 0.25, "window_size": 4}, "even"),
        ({"feature_dim": 0}, "feature_dim"),
    ],
)
def test_config_validation(overrides, match):
    with pytest.raises(Sem3RError, match=match):
        IGGTConfig.small(**overrides)
    with pytest.raises(Sem3RError, match="IGGTConfig"):
        IGGT(VGGTConfig.small())


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = IGGT(IGGTConfig.small(enable_track=False))
    with torch.no_grad():  # a distinct reference frame and strong mixing, as after training
        model.aggregator.camera_token.normal_()
        model.aggregator.register_token.normal_()
        for module in model.modules():
            if isinstance(module, LayerScale):
                module.gamma.fill_(1.0)
            if isinstance(module, torch.nn.BatchNorm2d):  # non-trivial running statistics
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _run(model, images, **kw):
    with torch.no_grad():
        return model(images, **kw)


def test_small_forward_shapes_and_unit_features(small_model):
    S, H, W = 3, 56, 84
    out = _run(small_model, torch.rand(S, 3, H, W))
    assert out["instance_features"].shape == (1, S, H, W, 8)
    assert out["instance_features"].dtype == torch.float32
    assert out["world_points"].shape == (1, S, H, W, 3) and out["depth"].shape == (1, S, H, W, 1)
    norms = out["instance_features"].norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    # features vary across pixels (the head is not collapsed to a constant)
    assert out["instance_features"].flatten(0, 3).std(dim=0).min() > 1e-3


def test_instance_features_only_matches_forward(small_model):
    images = torch.rand(1, 2, 3, 42, 56)
    full = _run(small_model, images)["instance_features"]
    with torch.no_grad():
        only = small_model.instance_features(images)
    torch.testing.assert_close(only, full, rtol=0, atol=0)


def test_permuting_later_frames_permutes_instance_features(small_model):
    images = torch.rand(1, 4, 3, 42, 42)
    order = torch.tensor([0, 3, 1, 2])
    a = _run(small_model, images)
    b = _run(small_model, images[:, order])
    for key in PER_FRAME:
        torch.testing.assert_close(b[key], a[key][:, order], rtol=1e-4, atol=1e-5, msg=key)


def test_frames_chunk_size_and_batching_do_not_change_results(small_model):
    images = torch.rand(2, 3, 3, 28, 42)
    a = _run(small_model, images, frames_chunk_size=1)
    b = _run(small_model, images, frames_chunk_size=8)
    alone = _run(small_model, images[1:])  # eval-mode BatchNorm: scenes do not see each other
    for key in PER_FRAME:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
        torch.testing.assert_close(alone[key], b[key][1:], rtol=1e-4, atol=1e-5, msg=key)


def test_save_and_reload_is_bit_identical(small_model, tmp_path):
    path = tmp_path / "small_iggt.pt"
    torch.save(small_model.state_dict(), path)
    torch.manual_seed(123)
    reloaded = IGGT(IGGTConfig.small(enable_track=False)).eval()
    reloaded.load_state_dict(torch.load(path, weights_only=True), strict=True)
    images = torch.rand(1, 2, 3, 28, 56)
    a, b = _run(small_model, images), _run(reloaded, images)
    for key in (*PER_FRAME, "pose_enc"):
        assert torch.equal(a[key], b[key]), key


def test_training_step_reaches_the_instance_branch():
    torch.manual_seed(0)
    model = IGGT(IGGTConfig.small(enable_track=False)).train()
    out = model(torch.rand(1, 2, 3, 28, 28))
    out["instance_features"][..., 0].mean().backward()
    for name in ("part_adaptor.projects.0.weight", "part_adaptor.resize_layers.0.1.input_proj.0.weight",
                 "part_head.cross_attention_2.projv.weight",
                 "part_head.window_cross_attention.atten_block.relative_position_bias_table",
                 "part_head.window_self_atten.atten_block.attn.qkv.weight",
                 "part_head.scratch.output_conv2.2.weight", "point_head.scratch.refinenet2.out_conv.weight",
                 "aggregator.frame_blocks.0.attn.qkv.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # the official head computes cross_attention_1 and discards it: no gradient reaches it by default
    assert model.get_parameter("part_head.cross_attention_1.projq.weight").grad is None


def test_point_head_intermediates_keep_default_outputs():
    torch.manual_seed(0)
    head = DPTHead(dim_in=32, features=16, out_channels=(8, 16, 32, 32), intermediate_layer_idx=(0, 1, 2, 3))
    tokens = [torch.randn(1, 3, 1 + 2 * 3, 32) for _ in range(4)]
    images = torch.rand(1, 3, 3, 28, 42)
    values, conf = head(tokens, images, 1, frames_chunk_size=2)
    v2, c2, maps = head(tokens, images, 1, frames_chunk_size=2, return_intermediates=True)
    _, _, maps_one_chunk = head(tokens, images, 1, frames_chunk_size=None, return_intermediates=True)
    assert torch.equal(values, v2) and torch.equal(conf, c2)
    assert [tuple(m.shape) for m in maps] == [(1, 3, 16, 8, 12), (1, 3, 16, 4, 6), (1, 3, 16, 2, 3)]
    for a, b in zip(maps, maps_one_chunk):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- window attention


def test_relative_position_indices_encode_offsets_one_to_one():
    for window, overlap in ((8, 12), (4, 6)):
        side = window + overlap - 1
        idx = relative_position_index_oca(window, overlap) % side**2
        q = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        k = torch.stack(torch.meshgrid(torch.arange(overlap), torch.arange(overlap), indexing="ij")).flatten(1)
        # offset of key pixel j from query pixel i in image coordinates (key window starts margin earlier)
        offset = k[:, None, :] - q[:, :, None]
        code = offset[0] * 100 + offset[1]
        pairs = set(zip(code.flatten().tolist(), idx.flatten().tolist()))
        assert len(pairs) == len({c for c, _ in pairs}) == len({i for _, i in pairs}) == side**2
    sa = relative_position_index_sa(8)
    assert sa.shape == (64, 64) and sa.diagonal().unique().tolist() == [(2 * 8 - 1) ** 2 // 2]


def _attend(q, k, v, heads, bias=None):
    """Reference multi-head attention of ``q (L, C)`` to ``k, v (M, C)``; ``bias (heads, L, M)``."""
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(0, 1) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    return (scores.softmax(-1) @ v).transpose(0, 1).flatten(1)


@pytest.mark.parametrize("size", [(8, 16), (11, 13), (3, 5), (1, 1)])
def test_window_self_attention_matches_per_window_reference(size):
    torch.manual_seed(0)
    attn = WindowSelfAttention(16, num_heads=4, window_size=8)
    x = torch.randn(2, *size, 16)
    with torch.no_grad():
        out = attn(x)
        q, k, v = attn.qkv(x).chunk(3, dim=-1)
        expected = torch.empty_like(x)
        for n in range(2):
            for y0 in range(0, size[0], 8):
                for x0 in range(0, size[1], 8):
                    win = (n, slice(y0, y0 + 8), slice(x0, x0 + 8))
                    flat = [t[win].reshape(-1, 16) for t in (q, k, v)]
                    expected[win] = _attend(*flat, heads=4).reshape(x[win].shape)
        expected = attn.proj(expected)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(16, 8), (10, 19), (5, 3)])
def test_overlapping_cross_attention_matches_reference(size):
    """The corrected options: spatial query windows, padded keys masked out (official: see
    tests/models/test_iggt_head_official.py)."""
    torch.manual_seed(0)
    config = WindowAttentionConfig(window_size=8, overlap_ratio=0.5, num_heads=4,
                                   query_window_order="correct", border_keys="masked")
    block = OverlappingCrossAttentionBlock(16, config)
    with torch.no_grad():
        block.relative_position_bias_table.normal_()
    rpi = relative_position_index_oca(8, 12)
    x, ctx = torch.randn(2, *size, 16), torch.randn(2, *size, 16)
    height, width = size
    with torch.no_grad():
        out = block(x, ctx, rpi)
        q, k, v = block.q(block.norm1(x)), block.k(block.norm1(ctx)), block.v(block.norm1(ctx))
        attended = torch.empty_like(x)
        for n in range(2):
            for y0 in range(0, height, 8):
                for x0 in range(0, width, 8):
                    qy, qx = torch.meshgrid(torch.arange(y0, min(y0 + 8, height)), torch.arange(x0, min(x0 + 8, width)),
                                            indexing="ij")
                    ky, kx = torch.meshgrid(torch.arange(max(y0 - 2, 0), min(y0 + 10, height)),
                                            torch.arange(max(x0 - 2, 0), min(x0 + 10, width)), indexing="ij")
                    qy, qx, ky, kx = qy.flatten(), qx.flatten(), ky.flatten(), kx.flatten()
                    i = (qy - y0) * 8 + (qx - x0)  # position in the query window
                    j = (ky - y0 + 2) * 12 + (kx - x0 + 2)  # position in the 12 x 12 key window
                    bias = block.relative_position_bias_table[rpi[i][:, j] % 361].permute(2, 0, 1)
                    attended[n, qy, qx] = _attend(q[n, qy, qx], k[n, ky, kx], v[n, ky, kx], 4, bias)
        y = x + block.proj(attended)
        expected = y + block.mlp(block.norm2(y))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(8, 8), (9, 17), (2, 30)])
def test_window_blocks_work_on_any_size(size):
    torch.manual_seed(0)
    config = WindowAttentionConfig(hidden=8)
    sa, ca = HybridWindowSelfAttention(16, config), OverlappingWindowCrossAttention(16, config)
    x, ctx = torch.randn(2, 16, *size), torch.randn(2, 16, *size)
    with torch.no_grad():
        a, b = sa(x), ca(x, ctx)
        # frames are processed independently
        torch.testing.assert_close(sa(x[1:]), a[1:], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ca(x[1:], ctx[1:]), b[1:], rtol=1e-5, atol=1e-6)
    assert a.shape == b.shape == x.shape
    assert torch.isfinite(a).all() and torch.isfinite(b).all()


def test_window_self_attention_ignores_padding():
    """A map smaller than the window is padded to one window; padded pixels must not be attended
    to, so the result equals plain global attention over the real pixels."""
    torch.manual_seed(0)
    attn = WindowSelfAttention(16, num_heads=4, window_size=8)
    x = torch.randn(1, 3, 5, 16)
    with torch.no_grad():
        q, k, v = attn.qkv(x.reshape(15, 16)).chunk(3, dim=-1)
        expected = attn.proj(_attend(q, k, v, heads=4)).reshape(1, 3, 5, 16)
        torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)


def test_batchnorm_uses_running_statistics_in_eval_mode():
    torch.manual_seed(0)
    proj = ResidualProjection(4, 6)
    bn = proj.input_proj[1]
    with torch.no_grad():
        for module in proj.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_()
                module.bias.normal_()
    x = torch.randn(3, 4, 5, 7)
    proj.eval()
    with torch.no_grad():
        conv = proj.input_proj[0](x)
        by_hand = (conv - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
        by_hand = F.relu(by_hand * bn.weight[:, None, None] + bn.bias[:, None, None])
        torch.testing.assert_close(proj.input_proj(x), by_hand, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(proj(x[:1]), proj(x)[:1], rtol=1e-5, atol=1e-6)
        proj.train()
        assert not torch.allclose(proj(x[:1]), proj(x)[:1], atol=1e-3)  # batch statistics when training
