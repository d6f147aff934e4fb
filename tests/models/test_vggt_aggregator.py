import pytest
import torch

from sem3r.models.vggt.aggregator import IMAGENET_MEAN, IMAGENET_STD, Aggregator, expand_special_tokens

C = 32



@pytest.fixture(scope="module")
def aggregator():
    torch.manual_seed(0)
    agg = Aggregator(img_size=56, embed_dim=C, depth=3, num_heads=2, patch_embed_depth=1).eval()
    with torch.no_grad():  # make the first-frame tokens clearly different from the others
        agg.camera_token.normal_()
        agg.register_token.normal_()
    return agg


def test_special_tokens_index_zero_for_first_frame_only():
    tokens = torch.arange(2.0).reshape(1, 2, 1, 1).expand(1, 2, 3, 4)
    out = expand_special_tokens(tokens, batch=2, frames=3)
    assert out.shape == (6, 3, 4)
    assert out[:, 0, 0].tolist() == [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]


def test_output_layout(aggregator):
    layers, patch_start_idx = aggregator(torch.rand(2, 3, 3, 28, 42))
    assert patch_start_idx == 5
    assert len(layers) == 3
    for layer in layers:
        assert layer.shape == (2, 3, 5 + 2 * 3, 2 * C)


def test_frame_half_of_first_layer_sees_only_its_frame(aggregator):
    """Layer 0 = concat(frame block 0 output, global block 0 output): the frame half of frame 1
    depends only on frame 1, the global half on every frame."""
    images = torch.rand(1, 3, 3, 28, 28)
    changed = images.clone()
    changed[0, 2] = torch.rand(3, 28, 28)
    with torch.no_grad():
        a, _ = aggregator(images)
        b, _ = aggregator(changed)
    torch.testing.assert_close(a[0][0, 1, :, :C], b[0][0, 1, :, :C])
    assert not torch.allclose(a[0][0, 1, :, C:], b[0][0, 1, :, C:], atol=1e-4)


def test_keep_layers_drops_the_others(aggregator):
    images = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        full, _ = aggregator(images)
        kept, _ = aggregator(images, keep_layers=[0, -1])
    assert kept[1] is None
    torch.testing.assert_close(kept[0], full[0], rtol=0, atol=0)
    torch.testing.assert_close(kept[2], full[2], rtol=0, atol=0)


def test_images_in_unit_range_are_imagenet_normalised(aggregator):
    seen = []
    handle = aggregator.patch_embed.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    images = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        aggregator(images)
    handle.remove()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(seen[0], (images[0] - mean) / std)


def test_state_dict_has_no_buffers_and_gradient_checkpointing_matches():
    torch.manual_seed(1)
    plain = Aggregator(img_size=28, embed_dim=C, depth=2, num_heads=2, patch_embed_depth=1)
    ckpt = Aggregator(img_size=28, embed_dim=C, depth=2, num_heads=2, patch_embed_depth=1, gradient_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict(), strict=True)
    assert not any("mean" in k or "std" in k for k in plain.state_dict())
    images = torch.rand(1, 2, 3, 28, 28)
    grads = []
    for model in (plain, ckpt):
        model.train()
        model.zero_grad()
        layers, _ = model(images)
        layers[-1].square().mean().backward()
        grads.append(model.frame_blocks[0].attn.qkv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
