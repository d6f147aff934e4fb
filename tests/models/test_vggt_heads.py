"""VGGT dense heads: checkpoint layout, shapes, chunking, activations, embeddings, tracker conventions."""

import math

import pytest
import torch

from sem3r.models.vggt.dpt_head import (
    DPTHead,
    FeatureFusionBlock,
    ResidualConvUnit,
    activate_head,
    add_uv_position_embedding,
    inverse_log_transform,
    uv_grid,
)
from sem3r.models.vggt.track_head import TrackHead
from sem3r.models.vggt.tracker import CorrelationPyramid, flow_embedding, grid_sincos_embedding


SMALL_DPT = dict(dim_in=32, features=16, out_channels=(8, 16, 32, 32), intermediate_layer_idx=(0, 1, 2, 3))


def random_tokens(batch: int, frames: int, height: int, width: int, dim: int = 32, special: int = 5, layers: int = 4):
    patches = (height // 14) * (width // 14)
    return [torch.randn(batch, frames, special + patches, dim) for _ in range(layers)]


@pytest.mark.parametrize(
    ("prefix", "output_dim", "activation"), [("depth_head.", 2, "exp"), ("point_head.", 4, "inv_log")]
)
def test_dpt_head_matches_reference_layout(prefix, output_dim, activation, assert_official_layout):
    with torch.device("meta"):
        head = DPTHead(output_dim=output_dim, activation=activation)
    assert_official_layout(head, prefix)


def test_track_head_matches_reference_layout(assert_official_layout):
    with torch.device("meta"):
        head = TrackHead()
    assert_official_layout(head, "track_head.")


def test_dpt_head_small_forward_shapes():
    torch.manual_seed(0)
    tokens = random_tokens(2, 3, 28, 42)
    images = torch.rand(2, 3, 3, 28, 42)
    values, conf = DPTHead(**SMALL_DPT, output_dim=4)(tokens, images, patch_start_idx=5)
    assert values.shape == (2, 3, 28, 42, 3)
    assert conf.shape == (2, 3, 28, 42)
    assert (conf > 1).all()  # expp1
    depth, _ = DPTHead(**SMALL_DPT, output_dim=2, activation="exp")(tokens, images, patch_start_idx=5)
    assert depth.shape == (2, 3, 28, 42, 1) and (depth > 0).all()
    feats = DPTHead(**SMALL_DPT, feature_only=True, down_ratio=2)(tokens, images, patch_start_idx=5)
    assert feats.shape == (2, 3, 16, 14, 21)


@pytest.mark.parametrize("feature_only", [False, True])
def test_dpt_head_chunking_does_not_change_results(feature_only):
    torch.manual_seed(0)
    head = DPTHead(**SMALL_DPT, feature_only=feature_only).eval()
    tokens = random_tokens(1, 5, 28, 28)
    images = torch.rand(1, 5, 3, 28, 28)
    with torch.no_grad():
        full = head(tokens, images, 5, frames_chunk_size=None)
        for chunk in (2, 8):
            torch.testing.assert_close(head(tokens, images, 5, frames_chunk_size=chunk), full, rtol=1e-5, atol=1e-5)


def test_dpt_head_reads_only_selected_layers_and_patch_tokens():
    torch.manual_seed(0)
    head = DPTHead(**{**SMALL_DPT, "intermediate_layer_idx": (1, 2, 4, 5)}).eval()
    tokens = random_tokens(1, 2, 28, 28, layers=6)
    images = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        reference = head(tokens, images, 5)
        changed = [t.clone() for t in tokens]
        changed[0].normal_()  # unselected layer
        changed[3].normal_()
        for t in changed:
            t[:, :, :5] = 7.0  # special tokens
        for a, b in zip(reference, head(changed, images, 5)):
            torch.testing.assert_close(a, b)


def test_activations_on_hand_values():
    x = torch.tensor([-1.0, 0.0, 2.0])
    torch.testing.assert_close(inverse_log_transform(x), torch.tensor([-(math.e - 1), 0.0, math.e**2 - 1]))
    out = torch.tensor([-1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    values, conf = activate_head(out, "inv_log", "expp1")
    torch.testing.assert_close(values.flatten(), torch.tensor([-(math.e - 1), 0.0]))
    torch.testing.assert_close(conf.flatten(), torch.tensor([2.0]))
    values, _ = activate_head(out, "exp", "expp1")
    torch.testing.assert_close(values.flatten(), torch.tensor([math.exp(-1), 1.0]))
    assert activate_head(out, "relu")[0].flatten().tolist() == [0.0, 0.0]
    assert activate_head(out, "linear")[0].flatten().tolist() == [-1.0, 0.0]
    with pytest.raises(ValueError):
        activate_head(out, "cubic")


def test_uv_grid_spans_the_unit_half_diagonal():
    uv = uv_grid(5, 3, aspect_ratio=5 / 3)
    assert uv.shape == (3, 5, 2)
    diag = math.hypot(5 / 3, 1.0)
    torch.testing.assert_close(uv[0, 0], torch.tensor([-(5 / 3) / diag * 4 / 5, -1 / diag * 2 / 3]))
    torch.testing.assert_close(uv[-1, -1], -uv[0, 0])
    assert (uv[:, 1:, 0] > uv[:, :-1, 0]).all() and (uv[1:, :, 1] > uv[:-1, :, 1]).all()


def test_uv_position_embedding_is_deterministic_and_aspect_aware():
    x = torch.zeros(2, 8, 3, 4)
    a = add_uv_position_embedding(x, image_width=56, image_height=42)
    torch.testing.assert_close(a, add_uv_position_embedding(x, image_width=56, image_height=42), rtol=0, atol=0)
    torch.testing.assert_close(a[0], a[1])
    b = add_uv_position_embedding(x, image_width=42, image_height=56)
    assert not torch.allclose(a, b)
    assert a.abs().max() <= 0.1 + 1e-6  # scaled by 0.1
    # channel layout: [sin u, cos u, sin v, cos v]; cos of the lowest frequency is cos(u)
    uv = uv_grid(4, 3, aspect_ratio=56 / 42)
    torch.testing.assert_close(a[0, 0], 0.1 * torch.sin(uv[..., 0]))
    torch.testing.assert_close(a[0, 4], 0.1 * torch.sin(uv[..., 1]))
    torch.testing.assert_close(a[0, 2], 0.1 * torch.cos(uv[..., 0]))


def test_residual_conv_unit_skip_carries_relu_of_input():
    unit = ResidualConvUnit(4)
    torch.nn.init.zeros_(unit.conv2.weight)
    torch.nn.init.zeros_(unit.conv2.bias)
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(unit(x), torch.relu(x))


def test_fusion_block_upsamples_to_size_or_twice():
    block = FeatureFusionBlock(8)
    x, skip = torch.randn(1, 8, 3, 4), torch.randn(1, 8, 3, 4)
    assert block(x, skip).shape == (1, 8, 6, 8)
    assert block(x, skip, size=(5, 7)).shape == (1, 8, 5, 7)
    assert not hasattr(FeatureFusionBlock(8, has_residual=False), "resConfUnit1")


def test_correlation_window_is_x_major_around_the_coordinate():
    height, width, radius = 9, 11, 1
    ys = torch.arange(height, dtype=torch.float32)[:, None]
    xs = torch.arange(width, dtype=torch.float32)[None, :]
    fmaps = (xs + 100 * ys).reshape(1, 1, 1, height, width)
    pyramid = CorrelationPyramid(fmaps, num_levels=1, radius=radius)
    coords = torch.tensor([[[[4.0, 3.0]]]])  # (B, S, N, 2) = (x, y)
    corr = pyramid.sample(torch.ones(1, 1, 1, 1), coords).reshape(3, 3)
    for i in range(3):
        for j in range(3):
            assert corr[i, j].item() == pytest.approx((4 + i - radius) + 100 * (3 + j - radius))


def test_correlation_pyramid_levels_and_size():
    fmaps = torch.randn(1, 2, 8, 16, 12)
    pyramid = CorrelationPyramid(fmaps, num_levels=3, radius=2)
    assert [lvl.shape[-2:] for lvl in pyramid.levels] == [(16, 12), (8, 6), (4, 3)]
    out = pyramid.sample(torch.randn(1, 2, 5, 8), torch.rand(1, 2, 5, 2) * 10)
    assert out.shape == (1, 2, 5, 3 * 25)


def test_flow_and_grid_embeddings_on_hand_values():
    emb = flow_embedding(torch.tensor([[1.0, 0.0]]), channels=4)  # frequencies 0, 500
    expected = [0.0, 1.0, math.sin(500.0), math.cos(500.0), 0.0, 1.0, 0.0, 1.0]
    torch.testing.assert_close(emb[0], torch.tensor(expected))
    grid = grid_sincos_embedding(8, height=3, width=4)
    assert grid.shape == (1, 8, 3, 4)
    # column 1, row 2; frequencies 1 and 10000 ** -0.5; [sin, sin, cos, cos] for x then y
    x_part = [math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01)]
    y_part = [math.sin(2), math.sin(0.02), math.cos(2), math.cos(0.02)]
    torch.testing.assert_close(grid[0, :, 2, 1], torch.tensor(x_part + y_part))


def test_track_head_small_forward_shapes_and_query_frame(small_track):
    torch.manual_seed(0)
    head = TrackHead(**small_track).eval()
    tokens = random_tokens(2, 3, 28, 42)
    query = torch.tensor([[[3.0, 4.0], [20.5, 10.25]], [[0.0, 0.0], [41.0, 27.0]]])
    with torch.no_grad():
        preds, vis, conf = head(tokens, torch.rand(2, 3, 3, 28, 42), 5, query, iters=3)
    assert len(preds) == 3 and all(p.shape == (2, 3, 2, 2) for p in preds)
    assert vis.shape == conf.shape == (2, 3, 2)
    assert ((vis > 0) & (vis < 1)).all() and ((conf > 0) & (conf < 1)).all()
    for p in preds:
        torch.testing.assert_close(p[:, 0], query)
    assert len(head(tokens, torch.rand(2, 3, 3, 28, 42), 5, query)[0]) == head.iters


def test_track_head_with_zero_updates_keeps_points_in_place(small_track):
    torch.manual_seed(0)
    head = TrackHead(**small_track).eval()
    torch.nn.init.zeros_(head.tracker.updateformer.flow_head.weight)
    torch.nn.init.zeros_(head.tracker.updateformer.flow_head.bias)
    tokens = [t[:, :1].expand(-1, 4, -1, -1) for t in random_tokens(1, 1, 28, 28)]  # identical frames
    query = torch.tensor([[[5.0, 7.0], [13.0, 2.5]]])
    with torch.no_grad():
        preds, vis, _ = head(tokens, torch.rand(1, 4, 3, 28, 28), 5, query)
    torch.testing.assert_close(preds[-1], query[:, None].expand(1, 4, 2, 2))
    # frames 1.. are identical and differ from the query frame only by the reference token
    torch.testing.assert_close(vis[:, 1:], vis[:, 1:2].expand(1, 3, 2))


def test_track_head_gradients_flow(small_track):
    torch.manual_seed(0)
    head = TrackHead(**small_track, predict_conf=True)
    tokens = random_tokens(1, 2, 28, 28)
    preds, vis, conf = head(tokens, torch.rand(1, 2, 3, 28, 28), 5, torch.rand(1, 3, 2) * 27, iters=2)
    (preds[-1].square().mean() + vis.mean() + conf.mean()).backward()
    for name in (
        "feature_extractor.projects.0.weight",
        "feature_extractor.scratch.output_conv1.weight",
        "tracker.corr_mlp.fc1.weight",
        "tracker.updateformer.flow_head.weight",
        "tracker.updateformer.virual_tracks",
        "tracker.query_ref_token",
        "tracker.vis_predictor.0.weight",
        "tracker.conf_predictor.0.weight",
    ):
        grad = head.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_track_head_state_dict_round_trip(small_track):
    torch.manual_seed(0)
    a, b = TrackHead(**small_track).eval(), TrackHead(**small_track).eval()
    b.load_state_dict(a.state_dict(), strict=True)
    tokens, query = random_tokens(1, 2, 28, 28), torch.rand(1, 2, 2) * 27
    images = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        for x, y in zip(a(tokens, images, 5, query)[0], b(tokens, images, 5, query)[0]):
            torch.testing.assert_close(x, y)
