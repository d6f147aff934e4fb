"""G2VLM section 3.2 losses: optimal-scale point loss, relative-pose camera loss, normal loss."""

import math

import numpy as np
import pytest
import torch

from sem3r.geometry.transforms import random_rotation
from sem3r.training import (
    normal_loss,
    normals_from_points,
    optimal_scale,
    relative_camera_loss,
    relative_poses,
    rotation_geodesic,
    scaled_point_loss,
)


def _points(seed, shape=(2, 3, 6, 7)):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(*shape, 3, generator=g)
    pts[..., 2] = pts[..., 2].abs() + 1.0  # in front of the cameras
    return pts


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_optimal_scale_of_doubled_prediction_is_half(norm):
    gt = _points(0)
    weights = torch.rand(2, 3 * 6 * 7)
    s = optimal_scale(2 * gt.reshape(2, -1, 3), gt.reshape(2, -1, 3), weights, norm)
    assert torch.allclose(s, torch.full((2,), 0.5))
    ok = torch.ones(2, 3, 6, 7, dtype=torch.bool)
    loss, used = scaled_point_loss(2 * gt, gt, gt[..., 2], ok)
    assert loss.item() == pytest.approx(0.0, abs=1e-7) and torch.allclose(used, torch.full((2,), 0.5))


def test_l1_optimal_scale_minimises_the_weighted_l1_objective():
    g = torch.Generator().manual_seed(2)
    gt = _points(1, (1, 2, 5, 5))
    pred = 0.3 * gt + 0.2 * torch.randn(gt.shape, generator=g)
    w = 1 / gt[..., 2]

    def objective(s):
        return (w[..., None] * (s * pred - gt).abs()).sum().item()

    s = optimal_scale(pred.reshape(1, -1, 3), gt.reshape(1, -1, 3), w.reshape(1, -1)).item()
    grid = np.linspace(s - 1.0, s + 1.0, 401)
    assert objective(s) <= min(objective(v) for v in grid) + 1e-6
    s_l2 = optimal_scale(pred.reshape(1, -1, 3), gt.reshape(1, -1, 3), w.reshape(1, -1), "l2").item()
    expected_l2 = (w[..., None] * pred * gt).sum() / (w[..., None] * pred * pred).sum()
    assert s_l2 == pytest.approx(expected_l2.item(), rel=1e-5)


def test_optimal_scale_without_weight_is_one():
    assert optimal_scale(torch.ones(1, 4, 3), torch.ones(1, 4, 3), torch.zeros(1, 4)).tolist() == [1.0]
    assert optimal_scale(torch.zeros(1, 4, 3), torch.ones(1, 4, 3), torch.ones(1, 4)).tolist() == [1.0]


def test_scaled_point_loss_is_invariant_to_the_prediction_scale_and_hand_value():
    g = torch.Generator().manual_seed(3)
    gt = _points(4)
    pred = gt + 0.1 * torch.randn(gt.shape, generator=g)
    mask = torch.rand(2, 3, 6, 7, generator=g) > 0.2
    base, s = scaled_point_loss(pred, gt, gt[..., 2], mask)
    for factor in (0.01, 3.0, 250.0):
        scaled, s2 = scaled_point_loss(factor * pred, gt, gt[..., 2], mask)
        assert scaled.item() == pytest.approx(base.item(), rel=1e-4)
        assert torch.allclose(s2 * factor, s, rtol=1e-4)
    # hand value: one valid pixel, prediction already at scale, error 0.3 in x at depth 2
    gt1 = torch.tensor([1.0, 1.0, 2.0]).view(1, 1, 1, 1, 3)
    pred1 = gt1 + torch.tensor([0.3, 0.0, 0.0])
    loss, _ = scaled_point_loss(pred1, gt1, gt1[..., 2], torch.ones(1, 1, 1, 1, dtype=torch.bool), torch.ones(1))
    assert loss.item() == pytest.approx(0.3 / 2 / 3)


def test_rotation_geodesic_known_angles():
    c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    Rx90 = torch.tensor([[1.0, 0, 0], [0, c, -s], [0, s, c]])
    Rz180 = torch.diag(torch.tensor([-1.0, -1.0, 1.0]))
    angles = rotation_geodesic(torch.eye(3).expand(3, 3, 3), torch.stack([torch.eye(3), Rx90, Rz180]))
    assert torch.allclose(angles, torch.tensor([0.0, math.pi / 2, math.pi]), atol=1e-6)
    R = torch.tensor(random_rotation(0), dtype=torch.float32)
    assert rotation_geodesic(R, R @ Rx90).item() == pytest.approx(math.pi / 2, abs=1e-5)
    same = torch.eye(3, requires_grad=True)
    rotation_geodesic(torch.eye(3), same).backward()
    assert torch.isfinite(same.grad).all()


def _cameras(seed, S=4):
    rng = np.random.default_rng(seed)
    R = random_rotation(rng, S)
    t = rng.normal(size=(S, 3))
    return torch.tensor(np.concatenate([R, t[..., None]], -1), dtype=torch.float32)[None]


def _apply_world_change(cams, G):
    """``cam_from_world o G^{-1}``: the same cameras in a world frame moved by the rigid ``G (3, 4)``."""
    R, t = G[:3, :3], G[:3, 3]
    R_new = cams[..., :3] @ R.T
    t_new = cams[..., 3] - (R_new @ t[:, None]).squeeze(-1)
    return torch.cat([R_new, t_new[..., None]], -1)


def test_relative_poses_map_camera_j_to_camera_i():
    cams = _cameras(0, 3)[0]
    R_rel, t_rel = relative_poses(cams[None])
    X = torch.randn(5, 3)
    xi = X @ cams[0, :, :3].T + cams[0, :, 3]
    xj = X @ cams[2, :, :3].T + cams[2, :, 3]
    assert torch.allclose(xj @ R_rel[0, 0, 2].T + t_rel[0, 0, 2], xi, atol=1e-5)


def test_relative_camera_loss_is_invariant_to_rigid_world_changes():
    gt = _cameras(1)
    pred = _cameras(2)
    base = relative_camera_loss(pred, gt)
    G1 = torch.cat([torch.tensor(random_rotation(5), dtype=torch.float32), torch.tensor([[1.0], [-2.0], [0.5]])], -1)
    G2 = torch.cat([torch.tensor(random_rotation(6), dtype=torch.float32), torch.tensor([[0.0], [3.0], [1.0]])], -1)
    moved = relative_camera_loss(_apply_world_change(pred, G2), _apply_world_change(gt, G1))
    for key in ("camera", "rot", "trans"):
        assert moved[key].item() == pytest.approx(base[key].item(), rel=1e-4, abs=1e-6)
    assert base["camera"].item() > 0


def test_relative_camera_loss_zero_up_to_scale_and_hand_value():
    gt = _cameras(3)
    pred = gt.clone()
    pred[..., 3] *= 4.0  # same cameras, translations in other units
    assert relative_camera_loss(pred, gt)["camera"].item() == pytest.approx(0.0, abs=1e-5)
    assert relative_camera_loss(pred, gt, scale=torch.tensor([0.25]))["camera"].item() == pytest.approx(0.0, abs=1e-5)
    # two cameras at the origin, the second predicted turned by 90 degrees: both ordered pairs are off by 90
    two = torch.eye(3, 4).repeat(1, 2, 1, 1)
    turned = two.clone()
    turned[0, 1, :, :3] = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    out = relative_camera_loss(turned, two, scale=torch.ones(1))
    assert out["rot"].item() == pytest.approx(math.pi / 2, abs=1e-6) and out["trans"].item() == 0.0
    # translation error 0.05 (< delta 0.1) in one coordinate of both pairs: Huber 0.5 * 0.05^2, mean over 3 coords
    shifted = two.clone()
    shifted[0, 1, 0, 3] = 0.05
    out = relative_camera_loss(shifted, two, scale=torch.ones(1), trans_weight=200.0)
    assert out["trans"].item() == pytest.approx(0.5 * 0.05**2 / 3)
    assert out["camera"].item() == pytest.approx(200.0 * 0.5 * 0.05**2 / 3, rel=1e-5)


def test_relative_camera_loss_single_view_is_zero_with_a_graph():
    pred = _cameras(4, 1).requires_grad_(True)
    out = relative_camera_loss(pred, _cameras(5, 1))
    out["camera"].backward()
    assert out["camera"].item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_normals_of_a_tilted_plane_and_discontinuities():
    v, u = torch.meshgrid(torch.arange(4.0), torch.arange(5.0), indexing="ij")
    plane = torch.stack([u, v, 5.0 + u], -1)  # z grows with x: normal along (-1, 0, 1) / sqrt(2)
    normals, ok = normals_from_points(plane, torch.ones(4, 5, dtype=torch.bool))
    assert normals.shape == (3, 4, 3) and ok.all()
    assert torch.allclose(normals, torch.tensor([-1.0, 0.0, 1.0]) / math.sqrt(2), atol=1e-6)
    stepped = plane.clone()
    stepped[:, 3:, 2] += 10.0  # a depth jump between columns 2 and 3
    _, ok = normals_from_points(stepped, torch.ones(4, 5, dtype=torch.bool), stepped[..., 2], max_edge_ratio=0.5)
    assert not ok[:, 2].any() and ok[:, [0, 1, 3]].all()


def test_normal_loss_values():
    v, u = torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij")
    flat = torch.stack([u, v, torch.full_like(u, 4.0)], -1)[None, None]
    ok = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    assert normal_loss(3 * flat, flat, ok).item() == pytest.approx(0.0, abs=1e-7)
    tilted = flat.clone()
    tilted[..., 2] = 4.0 + flat[..., 0]  # 45 degrees away: 1 - cos 45
    assert normal_loss(tilted, flat, ok).item() == pytest.approx(1 - math.cos(math.pi / 4), abs=1e-6)
    assert normal_loss(tilted, flat, torch.zeros_like(ok)).item() == 0.0
