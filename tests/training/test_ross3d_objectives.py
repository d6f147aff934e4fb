"""ROSS3D objectives' model-free parts checked by hand."""

import math

import torch

from sem3r.training.ross3d_objectives import (
    bev_loss,
    bev_valid_mask,
    cosine_alphas_cumprod,
    cross_view_loss,
    fold_2x2,
    q_sample,
    view_mask,
)


def test_cosine_schedule_by_hand():
    abar = cosine_alphas_cumprod(10)
    f = [math.cos((s / 10 + 0.008) / 1.008 * math.pi / 2) ** 2 for s in range(11)]
    expect = 1.0
    for i in range(10):
        expect *= 1 - min(1 - f[i + 1] / f[i], 0.999)
        assert abs(float(abar[i]) - expect) < 1e-12


def test_q_sample_by_hand():
    abar = cosine_alphas_cumprod(1000)
    z0, noise = torch.ones(2, 1, 1, 1), torch.full((2, 1, 1, 1), 2.0)
    out = q_sample(z0, torch.tensor([0, 500]), noise, abar)
    for i, t in enumerate((0, 500)):
        a = float(abar[t])
        assert abs(float(out[i]) - (math.sqrt(a) + 2 * math.sqrt(1 - a))) < 1e-6


def test_fold_2x2_layout():
    x = torch.randn(2, 3, 4, 6)
    y = fold_2x2(x)
    assert y.shape == (2, 12, 2, 3)
    for c, dy, dx, i, j in [(0, 0, 0, 0, 0), (1, 1, 0, 1, 2), (2, 1, 1, 0, 1)]:
        assert y[1, 4 * c + 2 * dy + dx, i, j] == x[1, c, 2 * i + dy, 2 * j + dx]


def test_view_mask_keeps_the_smallest_draws():
    u = torch.rand(32, generator=torch.Generator().manual_seed(0))
    masked = view_mask(u, 0.25)
    assert int(masked.sum()) == 8
    assert float(u[masked].min()) > float(u[~masked].max())
    assert not view_mask(torch.rand(3), 0.0).any()


def test_bev_mask_and_loss_by_hand():
    bev = torch.zeros(1, 3, 8, 8)
    bev[:, :, :4, :4] = 0.5
    valid = bev_valid_mask(bev, 2)
    assert valid[0, 0].tolist() == [[True, False], [False, False]]
    pred, noise = torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    pred[:, :, 0, 0] = 1.0
    pred[:, :, 1, 1] = 5.0  # an invalid cell: ignored
    assert float(bev_loss(pred, noise, valid)) == 1.0
    assert float(cross_view_loss(pred, noise)) == (4 * 1 + 4 * 25) / 16
    assert float(cross_view_loss(torch.zeros(0, 4, 2, 2), torch.zeros(0, 4, 2, 2))) == 0.0


def test_pixel_targets_by_hand():
    from sem3r.training.ross3d_objectives import pixel_targets

    img = torch.rand(1, 3, 8, 8)
    t = pixel_targets(img, 4, 2)  # no resize: 4 cells of 2 px
    assert t.shape == (1, 12, 4, 4)
    assert torch.allclose(t[0, 4 * 1 + 2 * 1 + 0, 2, 3], img[0, 1, 5, 6] * 2 - 1)
    assert torch.allclose(fold_2x2(img * 2 - 1), t)


def test_latent_targets_shift_scale_and_even_side():
    from sem3r.training.ross3d_objectives import FLUX_SCALE, FLUX_SHIFT, latent_targets

    raw = torch.full((1, 16, 4, 4), FLUX_SHIFT + 2.0)
    t = latent_targets(raw)
    assert t.shape == (1, 64, 2, 2) and torch.allclose(t, torch.full_like(t, 2.0 * FLUX_SCALE))
    assert latent_targets(torch.zeros(2, 16, 27, 27)).shape == (2, 64, 14, 14)
