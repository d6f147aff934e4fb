"""VGGT's ``absT_quaR_FoV`` camera encoding, both ways.

A camera is encoded as 9 numbers ``[t (3), q (4), fov_h, fov_w]``: ``t`` is the translation of
``cam_from_world`` (OpenCV, world -> camera), ``q`` the quaternion of its rotation in ``xyzw`` order
with ``w >= 0``, and the fields of view (radians) are ``fov_h = 2 atan((H / 2) / fy)`` and
``fov_w = 2 atan((W / 2) / fx)`` for an image of ``H x W`` pixels.

Decoding inverts this with the principal point at ``(W / 2, H / 2)`` (VGGT's choice; with pixel
centres at integers the exact image centre would be ``((W - 1) / 2, (H - 1) / 2)``), so only
intrinsics with that principal point and zero skew survive a round trip unchanged.

Both functions take ``torch.Tensor`` inputs (any leading batch dimensions, differentiable, results on
the input's device and dtype) or numpy arrays (validated, computed in float64, numpy results).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import finite_array
from sem3r.geometry.transforms import matrix_from_quat, quat_from_matrix


def _image_hw(image_hw) -> tuple[float, float]:
    try:
        H, W = (float(v) for v in image_hw)
    except (TypeError, ValueError):
        raise Sem3RError(f"image_hw must be (height, width), got {image_hw!r}") from None
    if not (H > 0 and W > 0 and math.isfinite(H) and math.isfinite(W)):
        raise Sem3RError(f"image_hw must be two positive sizes, got {image_hw!r}")
    return H, W


def _encode(cam_from_world: torch.Tensor, intrinsics: torch.Tensor, H: float, W: float) -> torch.Tensor:
    lead = torch.broadcast_shapes(cam_from_world.shape[:-2], intrinsics.shape[:-2])
    cam_from_world = cam_from_world.expand(lead + (3, 4))
    intrinsics = intrinsics.expand(lead + (3, 3))
    quat = quat_from_matrix(cam_from_world[..., :3, :3])
    fov_h = 2 * torch.atan((H / 2) / intrinsics[..., 1, 1])
    fov_w = 2 * torch.atan((W / 2) / intrinsics[..., 0, 0])
    return torch.cat([cam_from_world[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], dim=-1)


def _decode(encoding: torch.Tensor, H: float, W: float) -> tuple[torch.Tensor, torch.Tensor]:
    R = matrix_from_quat(encoding[..., 3:7])
    cam_from_world = torch.cat([R, encoding[..., :3, None]], dim=-1)
    fy = (H / 2) / torch.tan(encoding[..., 7] / 2)
    fx = (W / 2) / torch.tan(encoding[..., 8] / 2)
    zero = torch.zeros_like(fx)
    one = torch.ones_like(fx)
    K = torch.stack([fx, zero, zero + W / 2, zero, fy, zero + H / 2, zero, zero, one], dim=-1)
    return cam_from_world, K.reshape(encoding.shape[:-1] + (3, 3))


def extri_intri_to_pose_encoding(cam_from_world, intrinsics, image_hw) -> torch.Tensor | np.ndarray:
    """Encode cameras as ``absT_quaR_FoV`` vectors.

    Args:
        cam_from_world: ``(..., 3, 4)`` OpenCV extrinsics (world -> camera).
        intrinsics: ``(..., 3, 3)``; leading dimensions broadcast against ``cam_from_world``.
        image_hw: ``(H, W)`` image size in pixels the intrinsics refer to.

    Returns:
        ``(..., 9)`` ``[t, q_xyzw, fov_h, fov_w]``, a tensor for tensor input, else float64 numpy.

    Example:
        >>> K = np.array([[100.0, 0, 50], [0, 100, 50], [0, 0, 1]])
        >>> enc = extri_intri_to_pose_encoding(np.eye(3, 4), K, (100, 100))
        >>> enc[3:7].tolist(), round(float(np.degrees(enc[7])), 6)
        ([0.0, 0.0, 0.0, 1.0], 53.130102)
    """
    H, W = _image_hw(image_hw)
    if isinstance(cam_from_world, torch.Tensor) and isinstance(intrinsics, torch.Tensor):
        if cam_from_world.shape[-2:] != (3, 4) or intrinsics.shape[-2:] != (3, 3):
            raise Sem3RError(
                f"expected cam_from_world (..., 3, 4) and intrinsics (..., 3, 3), got "
                f"{tuple(cam_from_world.shape)} and {tuple(intrinsics.shape)}"
            )
        return _encode(cam_from_world, intrinsics, H, W)
    pose = finite_array(cam_from_world, "cam_from_world", (3, 4))
    K = finite_array(intrinsics, "intrinsics", (3, 3))
    if not ((K[..., 0, 0] > 0).all() and (K[..., 1, 1] > 0).all()):
        raise Sem3RError("intrinsics must have positive focal lengths fx and fy")
    return _encode(torch.tensor(pose), torch.tensor(K), H, W).numpy()


def pose_encoding_to_extri_intri(encoding, image_hw) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
    """Decode ``absT_quaR_FoV`` vectors into cameras.

    The quaternion is normalised before use, so raw network outputs decode to proper rotations.

    Args:
        encoding: ``(..., 9)`` ``[t, q_xyzw, fov_h, fov_w]`` (fields of view in radians).
        image_hw: ``(H, W)`` image size in pixels the intrinsics should refer to.

    Returns:
        ``cam_from_world (..., 3, 4)`` and ``intrinsics (..., 3, 3)`` with
        ``fx = (W / 2) / tan(fov_w / 2)``, ``fy = (H / 2) / tan(fov_h / 2)``, principal point
        ``(W / 2, H / 2)``; tensors for tensor input, else float64 numpy arrays.

    Example:
        >>> enc = np.array([0.0, 0, 0, 0, 0, 0, 1, np.pi / 2, np.pi / 2])
        >>> _, K = pose_encoding_to_extri_intri(enc, (100, 200))
        >>> K.round(9).tolist()
        [[100.0, 0.0, 100.0], [0.0, 50.0, 50.0], [0.0, 0.0, 1.0]]
    """
    H, W = _image_hw(image_hw)
    if isinstance(encoding, torch.Tensor):
        if encoding.shape[-1:] != (9,):
            raise Sem3RError(f"pose encoding must have shape (..., 9), got {tuple(encoding.shape)}")
        return _decode(encoding, H, W)
    enc = finite_array(encoding, "pose encoding", (9,))
    if (np.einsum("...i,...i->...", enc[..., 3:7], enc[..., 3:7]) == 0).any():
        raise Sem3RError("pose encoding holds a zero quaternion")
    if not ((enc[..., 7:] > 0).all() and (enc[..., 7:] < np.pi).all()):
        raise Sem3RError("pose encoding fields of view must lie in (0, pi) radians")
    cam_from_world, K = _decode(torch.tensor(enc), H, W)
    return cam_from_world.numpy(), K.numpy()
