import math

import numpy as np
import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.geometry.pose_encoding import extri_intri_to_pose_encoding, pose_encoding_to_extri_intri
from sem3r.geometry.transforms import random_rotation

H, W = 48, 64


def _cameras(rng, n):
    R = random_rotation(rng, n)
    R[0] = np.diag([1.0, -1.0, -1.0])  # 180 degrees about x
    R[1] = np.diag([-1.0, -1.0, 1.0])  # 180 degrees about z
    poses = np.concatenate([R, rng.normal(size=(n, 3, 1))], axis=-1)
    K = np.zeros((n, 3, 3))
    K[:, 0, 0] = rng.uniform(30, 120, n)
    K[:, 1, 1] = rng.uniform(30, 120, n)
    K[:, 0, 2] = W / 2
    K[:, 1, 2] = H / 2
    K[:, 2, 2] = 1
    return poses, K


def test_round_trip_numpy():
    poses, K = _cameras(np.random.default_rng(0), 10)
    enc = extri_intri_to_pose_encoding(poses, K, (H, W))
    assert enc.shape == (10, 9) and enc.dtype == np.float64
    poses2, K2 = pose_encoding_to_extri_intri(enc, (H, W))
    np.testing.assert_allclose(poses2, poses, atol=1e-12)
    np.testing.assert_allclose(K2, K, atol=1e-10)
    np.testing.assert_allclose(extri_intri_to_pose_encoding(poses2, K2, (H, W)), enc, atol=1e-12)


def test_layout_and_hand_computed_fov():
    s = math.sqrt(0.5)
    pose = np.array([[0.0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3]])  # 90 degrees about z, t = (1, 2, 3)
    K = np.array([[320.0, 0, 320], [0, 320, 240], [0, 0, 1]])
    enc = extri_intri_to_pose_encoding(pose, K, (480, 640))
    np.testing.assert_allclose(enc[:3], [1, 2, 3])
    np.testing.assert_allclose(enc[3:7], [0, 0, s, s], atol=1e-15)
    assert math.degrees(enc[7]) == pytest.approx(73.73979529168804)  # 2 atan(240 / 320)
    assert math.degrees(enc[8]) == pytest.approx(90.0)  # 2 atan(320 / 320)


def test_quaternion_is_standardised():
    poses, K = _cameras(np.random.default_rng(1), 50)
    assert (extri_intri_to_pose_encoding(poses, K, (H, W))[:, 6] >= 0).all()


def test_torch_batched_matches_numpy():
    poses, K = _cameras(np.random.default_rng(2), 6)
    enc_np = extri_intri_to_pose_encoding(poses, K, (H, W))
    poses_t, K_t = torch.tensor(poses).reshape(2, 3, 3, 4), torch.tensor(K).reshape(2, 3, 3, 3)
    enc_t = extri_intri_to_pose_encoding(poses_t, K_t, (H, W))
    assert isinstance(enc_t, torch.Tensor) and enc_t.shape == (2, 3, 9) and enc_t.dtype == torch.float64
    np.testing.assert_allclose(enc_t.reshape(6, 9).numpy(), enc_np, atol=1e-14)
    ext_t, K_t = pose_encoding_to_extri_intri(enc_t.float(), (H, W))
    assert ext_t.shape == (2, 3, 3, 4) and K_t.shape == (2, 3, 3, 3) and K_t.dtype == torch.float32
    np.testing.assert_allclose(ext_t.reshape(6, 3, 4).numpy(), poses, atol=1e-5)


def test_shared_intrinsics_broadcast():
    poses, K = _cameras(np.random.default_rng(3), 4)
    enc = extri_intri_to_pose_encoding(poses, K[0], (H, W))
    np.testing.assert_allclose(enc[:, 7:], np.broadcast_to(enc[0, 7:], (4, 2)))


def test_decode_normalises_quaternion():
    enc = np.array([0.1, 0.2, 0.3, 0.0, 0.0, 3.0, 3.0, 1.0, 1.2])
    enc_unit = enc.copy()
    enc_unit[3:7] /= np.linalg.norm(enc[3:7])
    a, b = pose_encoding_to_extri_intri(enc, (H, W)), pose_encoding_to_extri_intri(enc_unit, (H, W))
    np.testing.assert_allclose(a[0], b[0], atol=1e-15)
    np.testing.assert_allclose(a[0][:, :3] @ a[0][:, :3].T, np.eye(3), atol=1e-14)


def test_decode_is_differentiable():
    enc = torch.tensor([[0.1, -0.2, 0.5, 0.2, -0.1, 0.3, 0.9, 1.0, 1.3]], dtype=torch.float64, requires_grad=True)
    def decode(e):
        return torch.cat([t.flatten() for t in pose_encoding_to_extri_intri(e, (H, W))])

    assert torch.autograd.gradcheck(decode, (enc,))


def test_encode_is_differentiable():
    poses, K = _cameras(np.random.default_rng(4), 3)
    pose_t = torch.tensor(poses, requires_grad=True)
    K_t = torch.tensor(K, requires_grad=True)
    extri_intri_to_pose_encoding(pose_t, K_t, (H, W)).square().sum().backward()
    assert torch.isfinite(pose_t.grad).all() and torch.isfinite(K_t.grad).all()
    assert (K_t.grad[:, 0, 0] != 0).all() and (K_t.grad[:, 1, 1] != 0).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda: extri_intri_to_pose_encoding(np.full((3, 4), np.nan), np.eye(3), (H, W)),
        lambda: extri_intri_to_pose_encoding(np.eye(3), np.eye(3), (H, W)),
        lambda: extri_intri_to_pose_encoding(np.eye(3, 4), -np.eye(3), (H, W)),
        lambda: extri_intri_to_pose_encoding(np.eye(3, 4), np.eye(3), (0, W)),
        lambda: extri_intri_to_pose_encoding(np.eye(3, 4), np.eye(3), 64),
        lambda: pose_encoding_to_extri_intri(np.zeros(9), (H, W)),
        lambda: pose_encoding_to_extri_intri(np.r_[np.zeros(6), 1.0, 1.0, 4.0], (H, W)),
        lambda: pose_encoding_to_extri_intri(np.zeros(7), (H, W)),
        lambda: pose_encoding_to_extri_intri(torch.zeros(2, 8), (H, W)),
    ],
)
def test_bad_input(call):
    with pytest.raises(Sem3RError):
        call()
