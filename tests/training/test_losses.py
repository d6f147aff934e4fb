"""VGGT-style losses and the configurable GeometryLoss."""

import math

import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.training import (
    GeometryLoss,
    GeometryLossConfig,
    SyntheticGeometryDataset,
    camera_loss,
    collate_geometry,
    confidence_loss,
    gradient_loss,
    iteration_weights,
)


def test_confidence_loss_with_unit_confidence_is_plain_l1():
    g = torch.Generator().manual_seed(0)
    pred, gt = torch.rand(2, 3, 5, 6, 1, generator=g), torch.rand(2, 3, 5, 6, 1, generator=g)
    mask = torch.rand(2, 3, 5, 6, generator=g) > 0.3
    loss = confidence_loss(pred, gt, torch.ones(2, 3, 5, 6), mask, alpha=0.7)
    expected = (pred - gt).abs()[..., 0][mask].mean()
    assert torch.allclose(loss, expected)


def test_confidence_loss_hand_values():
    pred = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])  # point errors 5 and 1
    gt = torch.zeros(2, 3)
    conf = torch.tensor([2.0, 1.0])
    ok = torch.ones(2, dtype=torch.bool)
    expected = ((2 * 5 - 0.2 * math.log(2)) + 1) / 2
    assert confidence_loss(pred, gt, conf, ok, alpha=0.2).item() == pytest.approx(expected)
    # the invalid pixel is ignored
    assert confidence_loss(pred, gt, conf, torch.tensor([False, True])).item() == pytest.approx(1.0)


def test_confidence_loss_drops_the_largest_values():
    err = torch.tensor([1.0, 2.0, 3.0, 100.0])[:, None]
    loss = confidence_loss(err, torch.zeros(4, 1), torch.ones(4), torch.ones(4, dtype=torch.bool), keep_quantile=0.75)
    assert loss.item() == pytest.approx(2.0)


def test_confidence_loss_without_valid_pixels_is_zero_and_differentiable():
    pred = torch.rand(3, 1, requires_grad=True)
    loss = confidence_loss(pred, torch.zeros(3, 1), torch.ones(3), torch.zeros(3, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(pred.grad, torch.zeros(3, 1))


def test_gradient_loss_zero_for_offset_positive_for_ramp():
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 2, 8, 8, 3, generator=g)
    ok = torch.ones(2, 2, 8, 8, dtype=torch.bool)
    assert gradient_loss(gt + torch.tensor([0.5, -2.0, 3.0]), gt, ok).item() == pytest.approx(0.0, abs=1e-6)
    ramp = torch.arange(8.0)[None, :, None].expand(8, 8, 3)
    assert gradient_loss(gt + ramp, gt, ok).item() > 0


def test_gradient_loss_hand_value_and_mask():
    ramp = torch.arange(4.0).repeat(4, 1)[..., None]  # residual grows by 1 per column
    zero = torch.zeros(4, 4, 1)
    ok = torch.ones(4, 4, dtype=torch.bool)
    # 12 horizontal pairs with |dr| = 1, 12 vertical pairs with 0
    assert gradient_loss(ramp, zero, ok, scales=1).item() == pytest.approx(0.5)
    # stride 2 sees 2x2 pixels: 2 horizontal pairs with |dr| = 2, 2 vertical with 0 -> 1.0
    assert gradient_loss(ramp, zero, ok, scales=2).item() == pytest.approx((0.5 + 1.0) / 2)
    conf = torch.full((4, 4), 3.0)
    assert gradient_loss(ramp, zero, ok, conf, scales=1).item() == pytest.approx(1.5)
    no_cols = ok.clone()
    no_cols[:, 1::2] = False  # no horizontal pair survives
    assert gradient_loss(ramp, zero, no_cols, scales=1).item() == 0.0


def test_iteration_weights_increase_toward_the_last():
    w = iteration_weights(4, 0.6)
    assert w == sorted(w) and w[-1] == pytest.approx(0.25)
    assert w[0] == pytest.approx(0.6**3 / 4)


def test_camera_loss_hand_value_over_iterations():
    gt = torch.tensor([[[0.0, 0, 0, 0, 0, 0, 1, 1.0, 1.0], [1.0, 0, 0, 0, 0, 0, 1, 1.0, 1.0]]])
    first = gt.clone()
    first[0, 0, :3] += torch.tensor([0.6, 0.0, 0.0])  # translation error 0.6 in 1 of 6 numbers
    first[0, 1, 7:] += torch.tensor([0.2, -0.2])  # fov error 0.2 in 2 of 4 numbers
    last = gt.clone()
    last[0, :, 3:7] += 0.1  # quaternion error 0.1 everywhere
    out = camera_loss([first, last], gt, gamma=0.5, weight_trans=1.0, weight_rot=1.0, weight_fov=0.5)
    w_first, w_last = 0.5 / 2, 1.0 / 2
    assert out["trans"].item() == pytest.approx(w_first * 0.1)
    assert out["rot"].item() == pytest.approx(w_last * 0.1)
    assert out["fov"].item() == pytest.approx(w_first * 0.1)
    assert out["camera"].item() == pytest.approx(w_first * 0.1 + w_last * 0.1 + 0.5 * w_first * 0.1)


def test_camera_loss_huber_is_quadratic_below_delta():
    gt = torch.zeros(1, 1, 9)
    pred = gt.clone()
    pred[..., 0] = 0.5
    out = camera_loss([pred], gt, loss_type="huber", huber_delta=1.0)
    assert out["trans"].item() == pytest.approx(0.5 * 0.25 / 3)
    with pytest.raises(Sem3RError):
        camera_loss([pred], gt, loss_type="l2")


def _perfect_predictions(batch):
    depth = batch["depth"][..., None]
    return {
        "pose_enc": batch["pose_enc"].clone(),
        "pose_enc_list": [batch["pose_enc"].clone()],
        "depth": depth.clone(),
        "depth_conf": torch.ones_like(batch["depth"]),
        "world_points": batch["world_points"].clone(),
        "world_points_conf": torch.ones_like(batch["depth"]),
    }


@pytest.fixture(scope="module")
def batch(synth_root):
    ds = SyntheticGeometryDataset(synth_root, min_views=3, max_views=3, seed=0)
    return collate_geometry([ds[(0, 0, 3)], ds[(0, 1, 3)]])


def _noisy_predictions(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    preds = _perfect_predictions(batch)
    noisy = {}
    for key, value in preds.items():
        if key == "pose_enc_list":
            continue
        noise = 0.05 * torch.randn(value.shape, generator=g)
        base = value + noise if "conf" not in key else value + noise.abs()
        noisy[key] = base.requires_grad_(True)
    first = preds["pose_enc"] + 0.1 * torch.randn(preds["pose_enc"].shape, generator=g)
    noisy["pose_enc_list"] = [first.requires_grad_(True), noisy["pose_enc"]]
    return noisy


def test_geometry_loss_is_zero_for_a_perfect_prediction(batch):
    out = GeometryLoss(GeometryLossConfig.preset("vggt"))(_perfect_predictions(batch), batch)
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-6)
    expected = {"camera", "camera_trans", "camera_rot", "camera_fov", "depth", "depth_grad", "point", "point_grad"}
    assert expected <= set(out)
    g2 = GeometryLoss(GeometryLossConfig.preset("g2vlm"))(_perfect_predictions(batch), batch)
    assert g2["loss"].item() == pytest.approx(0.0, abs=1e-4)
    assert g2["point_scale"].item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "preset, outputs",
    [
        ("vggt", ["pose_enc", "depth", "depth_conf", "world_points", "world_points_conf"]),
        ("g2vlm", ["pose_enc", "depth", "depth_conf", "world_points"]),
    ],
)
def test_gradients_reach_every_supervised_output(batch, preset, outputs):
    preds = _noisy_predictions(batch)
    out = GeometryLoss(GeometryLossConfig.preset(preset))(preds, batch)
    assert out["loss"].requires_grad and all(not v.requires_grad for k, v in out.items() if k != "loss")
    out["loss"].backward()
    for key in outputs + ["pose_enc_list"]:
        grad = preds[key][0].grad if key == "pose_enc_list" else preds[key].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, key


def test_pose_enc_alone_stands_for_a_one_iteration_list(batch):
    preds = _noisy_predictions(batch, seed=4)
    single = {k: v for k, v in preds.items() if k != "pose_enc_list"}
    listed = {**single, "pose_enc_list": [preds["pose_enc"]]}
    cfg = GeometryLossConfig(relative_camera_weight=0.2)
    a, b = GeometryLoss(cfg)(single, batch), GeometryLoss(cfg)(listed, batch)
    assert a["camera"].item() == b["camera"].item() and a["relative_camera"].item() == b["relative_camera"].item()


def test_every_term_can_be_combined(batch):
    cfg = GeometryLossConfig(scaled_point_weight=1.0, relative_camera_weight=0.1, normal_weight=0.5)
    out = GeometryLoss(cfg)(_noisy_predictions(batch, seed=3), batch)
    parts = (5.0 * out["camera"] + out["depth"] + out["depth_grad"] + out["point"] + out["point_grad"]
             + out["scaled_point"] + 0.1 * out["relative_camera"] + 0.5 * out["normal"])
    assert out["loss"].item() == pytest.approx(parts.item(), rel=1e-5)


def test_loss_config_presets_and_validation():
    vggt = GeometryLossConfig.preset("vggt")
    assert (vggt.camera_weight, vggt.depth_weight, vggt.point_weight, vggt.normal_weight) == (5.0, 1.0, 1.0, 0.0)
    g2 = GeometryLossConfig.from_dict({"preset": "g2vlm", "relative_trans_weight": 100.0})
    weights = (g2.scaled_point_weight, g2.relative_camera_weight, g2.normal_weight, g2.relative_trans_weight)
    assert weights == (1.0, 0.2, 1.0, 100.0)
    assert GeometryLossConfig.from_dict({"loss_type": "g2vlm"}).normal_weight == 1.0
    for bad in ({"preset": "dust3r"}, {"depth_wieght": 1.0}, {"depth_weight": -1.0}, {"keep_quantile": 0.0},
                {"camera_loss_type": "l2"}, {"point_scale_norm": "l3"}):
        with pytest.raises(Sem3RError):
            GeometryLossConfig.from_dict(bad)
    with pytest.raises(Sem3RError, match="nothing to train"):
        GeometryLoss(GeometryLossConfig(camera_weight=0, depth_weight=0, point_weight=0))({"pose_enc": None}, {
            "valid_mask": torch.ones(1), "depth": torch.ones(1), "world_points": torch.ones(1)})
