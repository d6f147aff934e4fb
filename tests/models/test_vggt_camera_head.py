import pytest
import torch

from sem3r.models.vggt.camera_head import CameraHead, activate_pose

D = 32



@pytest.fixture(scope="module")
def head():
    torch.manual_seed(0)
    head = CameraHead(dim_in=D, trunk_depth=2, num_heads=2).eval()
    with torch.no_grad():  # a non-trivial start and strong cross-frame mixing, as after training
        head.empty_pose_tokens.normal_()
        for block in head.trunk:
            block.ls1.gamma.fill_(1.0)
            block.ls2.gamma.fill_(1.0)
    return head


def test_activation_relu_on_fields_of_view_only():
    raw = torch.linspace(-4, 4, 9)
    out = activate_pose(raw)
    torch.testing.assert_close(out[:7], raw[:7])
    torch.testing.assert_close(out[7:], raw[7:].clamp(min=0))


def test_iterations_and_shapes(head):
    tokens = [torch.randn(2, 3, 6, D)]
    poses = head(tokens)
    assert len(poses) == 4 and all(p.shape == (2, 3, 9) for p in poses)
    assert all(torch.all(p[..., 7:] >= 0) for p in poses)
    # refinement steps actually change the estimate, and the steps are a deterministic prefix
    assert not torch.allclose(poses[0], poses[-1])
    torch.testing.assert_close(head(tokens, num_iterations=2), poses[:2])


def test_reads_only_the_camera_token_of_the_last_layer(head):
    tokens = torch.randn(1, 2, 6, D)
    other = tokens.clone()
    other[:, :, 1:] = torch.randn(1, 2, 5, D)
    torch.testing.assert_close(head([torch.randn(1, 2, 6, D), tokens])[-1], head([other])[-1])


def test_trunk_attends_across_frames_equivariantly(head):
    tokens = torch.randn(1, 4, 6, D)
    order = torch.tensor([2, 0, 3, 1])
    out = head([tokens])[-1]
    torch.testing.assert_close(head([tokens[:, order]])[-1], out[:, order], rtol=1e-5, atol=1e-6)
    changed = tokens.clone()
    changed[:, 0, 0] = torch.randn(D)
    assert not torch.allclose(head([changed])[-1][:, 1:], out[:, 1:], atol=1e-5)


def test_feedback_is_detached():
    """The previous estimate is fed back detached: the empty pose token reaches the second
    (linear part of the) estimate only through the first delta, not through ``embed_pose(raw_1)``."""
    torch.manual_seed(0)
    head = CameraHead(dim_in=D, trunk_depth=1, num_heads=2)
    poses = head([torch.randn(1, 2, 6, D)], num_iterations=2)
    (first,) = torch.autograd.grad(poses[0][..., :7].sum(), head.empty_pose_tokens, retain_graph=True)
    (second,) = torch.autograd.grad(poses[1][..., :7].sum(), head.empty_pose_tokens)
    assert first.abs().sum() > 0
    torch.testing.assert_close(second, first)
