
import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.models.vggt import VGGT, Aggregator, CameraHead, LayerScale, VGGTConfig

OFFICIAL_KEYS = 1797
OFFICIAL_PARAMS = 1_256_537_516
PER_FRAME = ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf")



def test_official_layout_full_model(official_layout, assert_official_layout):
    assert len(official_layout("vggt")) == OFFICIAL_KEYS
    with torch.device("meta"):
        model = VGGT(VGGTConfig())
    assert_official_layout(model)
    assert sum(v.numel() for v in model.state_dict().values()) == OFFICIAL_PARAMS
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS


@pytest.mark.parametrize("prefix", ["aggregator.", "camera_head."])
def test_official_layout_aggregator_and_camera_head(prefix, assert_official_layout):
    with torch.device("meta"):
        module = Aggregator() if prefix == "aggregator." else CameraHead()
    assert_official_layout(module, prefix)


def test_disabled_heads_are_absent():
    with torch.device("meta"):
        model = VGGT(VGGTConfig(enable_depth=False, enable_track=False))
    prefixes = {k.split(".")[0] for k in model.state_dict()}
    assert prefixes == {"aggregator", "camera_head", "point_head"}


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = VGGT(VGGTConfig.small()).eval()
    with torch.no_grad():  # a distinct reference frame and strong cross-token mixing, as after training
        model.aggregator.camera_token.normal_()
        model.aggregator.register_token.normal_()
        for module in model.modules():
            if isinstance(module, LayerScale):
                module.gamma.fill_(1.0)
    return model


def _run(model, images, **kw):
    with torch.no_grad():
        return model(images, **kw)


def test_small_forward_shapes(small_model):
    S, H, W = 3, 56, 84
    out = _run(small_model, torch.rand(S, 3, H, W))  # batch dim added
    assert out["pose_enc"].shape == (1, S, 9)
    assert len(out["pose_enc_list"]) == 4 and out["pose_enc_list"][-1] is out["pose_enc"]
    assert out["depth"].shape == (1, S, H, W, 1) and out["depth_conf"].shape == (1, S, H, W)
    assert out["world_points"].shape == (1, S, H, W, 3) and out["world_points_conf"].shape == (1, S, H, W)
    assert out["images"].shape == (1, S, 3, H, W)
    assert torch.all(out["depth"] > 0)
    assert torch.all(out["depth_conf"] >= 1) and torch.all(out["world_points_conf"] >= 1)
    assert torch.all(out["pose_enc"][..., 7:] >= 0)
    assert "track" not in out


def test_small_forward_tracks(small_model):
    query = torch.tensor([[10.0, 20.0], [30.0, 5.0], [40.0, 40.0]])
    out = _run(small_model, torch.rand(1, 2, 3, 56, 56), query_points=query)
    assert out["track"].shape == (1, 2, 3, 2)
    assert out["vis"].shape == (1, 2, 3) and out["conf"].shape == (1, 2, 3)


def test_single_frame_scenes(small_model):
    out = _run(small_model, torch.rand(2, 1, 3, 28, 56), query_points=torch.rand(2, 3, 2) * 20)
    assert out["pose_enc"].shape == (2, 1, 9) and out["depth"].shape == (2, 1, 28, 56, 1)
    assert out["track"].shape == (2, 1, 3, 2)


def test_save_and_reload_is_bit_identical(small_model, tmp_path):
    path = tmp_path / "small.pt"
    torch.save(small_model.state_dict(), path)
    torch.manual_seed(123)
    reloaded = VGGT(VGGTConfig.small()).eval()
    reloaded.load_state_dict(torch.load(path, weights_only=True), strict=True)
    images = torch.rand(1, 2, 3, 56, 56)
    query = torch.tensor([[[12.0, 30.0]]])
    a = _run(small_model, images, query_points=query)
    b = _run(reloaded, images, query_points=query)
    for key in (*PER_FRAME, "track", "vis", "conf"):
        assert torch.equal(a[key], b[key]), key


def test_permuting_later_frames_permutes_outputs(small_model):
    images = torch.rand(1, 4, 3, 56, 56)
    order = torch.tensor([0, 3, 1, 2])
    a = _run(small_model, images)
    b = _run(small_model, images[:, order])
    for key in PER_FRAME:
        torch.testing.assert_close(b[key], a[key][:, order], rtol=1e-4, atol=1e-5, msg=key)


def test_first_frame_is_the_reference(small_model):
    images = torch.rand(1, 4, 3, 56, 56)
    a = _run(small_model, images)
    swapped = _run(small_model, images[:, [1, 0, 2, 3]])
    changed = images.clone()
    changed[:, 0] = torch.rand(3, 56, 56)
    b = _run(small_model, changed)
    # frames 2 and 3 hold the same images in the same slots; only the reference frame differs
    # (permutation noise is ~1e-7; the random-weight dense heads are weakly sensitive, hence 1e-5)
    for other in (swapped, b):
        assert (other["pose_enc"][:, 2:] - a["pose_enc"][:, 2:]).abs().max() > 1e-3
        for key in ("depth", "world_points"):
            assert (other[key][:, 2:] - a[key][:, 2:]).abs().max() > 1e-5, key


def test_scenes_in_a_batch_are_independent(small_model):
    images = torch.rand(2, 2, 3, 56, 56)
    both = _run(small_model, images)
    for i in range(2):
        alone = _run(small_model, images[i : i + 1])
        for key in PER_FRAME:
            torch.testing.assert_close(both[key][i : i + 1], alone[key], rtol=1e-4, atol=1e-5, msg=key)


def test_frames_chunk_size_does_not_change_results(small_model):
    images = torch.rand(1, 3, 3, 28, 28)
    a = _run(small_model, images, frames_chunk_size=1)
    b = _run(small_model, images, frames_chunk_size=8)
    for key in PER_FRAME:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_training_step_reaches_every_enabled_head():
    torch.manual_seed(0)
    model = VGGT(VGGTConfig.small(enable_track=False, gradient_checkpointing=True)).train()
    out = model(torch.rand(1, 2, 3, 28, 28))
    loss = out["pose_enc"].square().mean() + out["depth"].mean() + out["world_points"].square().mean()
    loss.backward()
    for name in ("camera_head.embed_pose.weight", "depth_head.norm.weight", "point_head.norm.weight",
                 "aggregator.frame_blocks.0.attn.qkv.weight", "aggregator.patch_embed.patch_embed.proj.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "shape, match",
    [
        ((3, 28, 28), "shape"),
        ((1, 2, 4, 28, 28), "shape"),
        ((2, 3, 30, 28), "multiples of 14"),
        ((1, 0, 3, 28, 28), "multiples"),
    ],
)
def test_bad_images_raise(small_model, shape, match):
    with pytest.raises(Sem3RError, match=match):
        small_model(torch.rand(shape))


def test_bad_inputs_raise(small_model):
    with pytest.raises(Sem3RError, match="floating-point"):
        small_model(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(Sem3RError, match="query_points"):
        small_model(torch.rand(2, 3, 28, 28), query_points=torch.rand(1, 4, 3))


def test_config_validation():
    with pytest.raises(Sem3RError, match="heads"):
        VGGTConfig(embed_dim=100, num_heads=3)
    with pytest.raises(Sem3RError, match="intermediate_layer_idx"):
        VGGTConfig.small(intermediate_layer_idx=(0, 1, 2, 9))
