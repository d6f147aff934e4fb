"""ROSS3D's parameter-free 3D position encoding of the visual tokens (``avg-discrete-sin3d``, facts section 4).

Every pooled visual token gets the sine encoding of the (discretised) world coordinate it sees:

1. **World points** per pixel (:func:`world_points_from_depth`): pixel ``(u, v)`` (integer column / row, no
   half-pixel offset) with depth ``z`` goes to the camera point ``((u - cx) z / fx, (v - cy) z / fy, z)`` and then
   through the camera-to-world pose (dehomogenised). Invalid depth (0) is not masked: it maps to the camera
   centre, as in the official code. The official pipeline unprojects at the depth resolution and then resizes the
   (H, W, 3) map like the RGB frame (:func:`resize_crop_points`: nearest neighbour to height ``size``, centre crop).
2. **Per-token coordinate, "avg"** (:func:`token_coordinates`): the map is cropped to the top-left region the
   SigLIP patches cover (384 -> 378 = 27 x 14), the crop is cut into ``P x P`` equal windows, ``P`` the pooled
   grid (14), and each window is averaged (window 378 / 14 = 27 pixels; note: 27, not the 28 pixels of 2x2
   patches, so the windows are not aligned with the pooled patches).
3. **Discretisation, "discrete"** (:func:`discretize`): clamp each axis to ``[min_xyz_range, max_xyz_range]``
   (``[-15, 15] x [-15, 15] x [-5, 5]``), subtract the lower bound, divide by the voxel size (0.1), round to the
   nearest integer (half to even, ``torch.round``), kept as floats.
4. **Sine 3D, "sin3d"** (:func:`sine_3d_embedding`): ``F = D // 3`` features per axis; feature ``j`` of axis value
   ``c`` is ``sin(c / T^(2 floor(j/2) / F))`` for even ``j`` and ``cos(...)`` (same frequency) for odd ``j``,
   ``T = 10000``. Layout ``[x (F), y (F), z (F), zeros (D - 3F)]``; for D = 3584: F = 1194 and 2 trailing zeros.

The model adds this encoding to the pooled visual tokens after the projector, the pooling and the mask-token
replacement, before the newline tokens are inserted (:class:`WorldPositionEmbedding`). The same encoding of a
discretised xyz is added to the ``<coord>`` token and to the grounding object features (:meth:`encode_xyz`).

Every function works on any Sem3R :class:`~sem3r.scene.Scene` geometry: ``depth (S, H, W)``, ``intrinsics
(S, 3, 3)`` and a camera-to-world pose (the inverse of the Scene's ``cam_from_world``), or world points directly.
The operations follow the official order (float32 by default) so that the discretised voxels match bit for bit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.errors import Sem3RError


def world_points_from_depth(depth: torch.Tensor, intrinsics: torch.Tensor, cam_to_world: torch.Tensor) -> torch.Tensor:
    """Unproject every pixel to world coordinates.

    Args:
        depth: ``(S, H, W)`` metres (0 = invalid; such pixels land on the camera centre).
        intrinsics: ``(S, 3, 3)`` (or ``(S, 4, 4)``) pinhole intrinsics of these pixels.
        cam_to_world: ``(S, 4, 4)`` or ``(S, 3, 4)`` camera-to-world poses (OpenCV camera axes).

    Returns:
        ``(S, H, W, 3)`` world points, dtype of ``depth`` (float32 in the official pipeline).

    Example:
        >>> K = torch.tensor([[[2.0, 0, 1], [0, 2.0, 1], [0, 0, 1]]])
        >>> pts = world_points_from_depth(torch.full((1, 2, 3), 4.0), K, torch.eye(4)[None])
        >>> pts[0, 1, 2].tolist()
        [2.0, 0.0, 4.0]
    """
    if depth.ndim != 3:
        raise Sem3RError(f"depth must be (S, H, W), got {tuple(depth.shape)}")
    S, H, W = depth.shape
    if intrinsics.shape[0] != S or cam_to_world.shape[0] != S or cam_to_world.shape[-1] != 4:
        raise Sem3RError(f"need {S} intrinsics and (S, 4, 4) / (S, 3, 4) poses, got {tuple(intrinsics.shape)} "
                         f"and {tuple(cam_to_world.shape)}")
    if cam_to_world.shape[-2] == 3:
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=cam_to_world.dtype, device=cam_to_world.device)
        cam_to_world = torch.cat((cam_to_world, bottom.expand(S, 1, 4)), dim=1)
    dtype = depth.dtype
    K = intrinsics.to(dtype)
    v, u = torch.meshgrid(torch.arange(H, device=depth.device), torch.arange(W, device=depth.device), indexing="ij")
    u = u.reshape(1, H * W).to(dtype)
    v = v.reshape(1, H * W).to(dtype)
    z = depth.reshape(S, H * W)
    x = (u - K[:, 0, 2:3]) * z / K[:, 0, 0:1]
    y = (v - K[:, 1, 2:3]) * z / K[:, 1, 1:2]
    cam = torch.stack((x, y, z, torch.ones_like(x)), dim=-1)  # (S, HW, 4)
    world = (cam_to_world.to(dtype) @ cam.transpose(1, 2)).transpose(1, 2)
    world = world[..., :3] / world[..., 3:]
    return world.reshape(S, H, W, 3)


def resize_crop_points(points: torch.Tensor, size: int) -> torch.Tensor:
    """The official geometric preprocessing of a world-point map: nearest-neighbour resize to height ``size``
    (width ``int(W * size / H)``), then a centre crop to ``size x size`` (the same crop as the RGB frame).

    Nearest neighbour follows OpenCV's ``INTER_NEAREST``: output index ``i`` reads input
    ``min(floor(i * in / out), in - 1)``.

    Args:
        points: ``(S, H, W, 3)``.
        size: output side (384).

    Returns:
        ``(S, size, size, 3)``.
    """
    _, H, W, _ = points.shape
    new_h, new_w = size, int(W * (size / H))
    rows = torch.clamp(torch.floor(torch.arange(new_h, dtype=torch.float64) * (H / new_h)).long(), max=H - 1)
    cols = torch.clamp(torch.floor(torch.arange(new_w, dtype=torch.float64) * (W / new_w)).long(), max=W - 1)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    rows, cols = rows[top:top + size].to(points.device), cols[left:left + size].to(points.device)
    return points[:, rows][:, :, cols]


def token_coordinates(points: torch.Tensor, patch_grid: int, patch_size: int, pooled_grid: int) -> torch.Tensor:
    """Per-token world coordinate ("avg"): the mean of each of the ``P x P`` windows of the covered region.

    Args:
        points: ``(S, H, W, 3)`` world points aligned with the ``H x W`` frame (H, W >= ``patch_grid * patch_size``).
        patch_grid: SigLIP patches per side (27).
        patch_size: SigLIP patch side (14).
        pooled_grid: ``P``, pooled tokens per side (14).

    Returns:
        ``(S, P, P, 3)``: window ``(i, j)`` averages rows / columns ``[i w, (i + 1) w)`` / ``[j w, (j + 1) w)`` of
        the frame, ``w = (patch_grid * patch_size) // P`` (27 for the official sizes).
    """
    covered = patch_grid * patch_size
    if points.ndim != 4 or points.shape[-1] != 3 or min(points.shape[1:3]) < covered:
        raise Sem3RError(f"world points must be (S, H, W, 3) with H, W >= {covered}, got {tuple(points.shape)}")
    window = covered // pooled_grid
    crop = points[:, :pooled_grid * window, :pooled_grid * window].permute(0, 3, 1, 2)
    return F.avg_pool2d(crop, kernel_size=window, stride=window).permute(0, 2, 3, 1)


def discretize(coords: torch.Tensor, voxel_size: float, min_range, max_range) -> torch.Tensor:
    """Voxel indices as floats: ``round((clamp(c, lo, hi) - lo) / voxel_size)`` per axis.

    Args:
        coords: ``(..., 3)`` metres.
        voxel_size: 0.1.
        min_range, max_range: 3 values each (``(-15, -15, -5)``, ``(15, 15, 5)``).

    Returns:
        ``(..., 3)`` in ``[0, (hi - lo) / voxel_size]``, dtype of ``coords``.

    Example:
        >>> discretize(torch.tensor([[0.04, 0.05, 100.0]]), 0.1, (-15, -15, -5), (15, 15, 5)).tolist()
        [[150.0, 150.0, 100.0]]
    """
    # the official bounds are integer tensors, which promote to the coordinates' dtype (fp16 on its GPU path)
    lo = torch.tensor(min_range, dtype=coords.dtype, device=coords.device)
    hi = torch.tensor(max_range, dtype=coords.dtype, device=coords.device)
    c = torch.minimum(torch.maximum(coords, lo), hi)
    return ((c - lo) / voxel_size).round()


def sine_3d_embedding(coords: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """The sine 3D encoding (see the module docstring).

    Args:
        coords: ``(..., 3)`` values (discretised voxel indices in Ross3D).
        dim: output width D.
        temperature: T.

    Returns:
        ``(..., D)`` in ``coords``' dtype: ``[x (F), y (F), z (F), zeros]``, ``F = D // 3``.

    Example:
        >>> e = sine_3d_embedding(torch.tensor([[1.0, 2.0, 3.0]]), 8)
        >>> [round(v, 4) for v in e[0].tolist()]
        [0.8415, 0.5403, 0.9093, -0.4161, 0.1411, -0.99, 0.0, 0.0]
    """
    n = dim // 3
    if n < 1:
        raise Sem3RError(f"the sine 3D encoding needs dim >= 3, got {dim}")
    j = torch.arange(n, dtype=torch.float32, device=coords.device)
    dim_t = temperature ** (2 * (j // 2) / n)
    pos = coords[..., :, None] / dim_t  # (..., 3, F)
    even = torch.arange(n, device=coords.device) % 2 == 0
    pos = torch.where(even, pos.sin(), pos.cos()).flatten(-2)  # (..., 3F)
    out = torch.zeros(*coords.shape[:-1], dim, dtype=coords.dtype, device=coords.device)
    out[..., :3 * n] = pos
    return out


class WorldPositionEmbedding(nn.Module):
    """``avg-discrete-sin3d`` (or ``avg-sin3d``) as a parameter-free module.

    Args:
        dim: token width D (3584).
        patch_grid, patch_size, pooled_grid: SigLIP grid (27), patch (14) and pooled grid (14).
        voxel_size, min_range, max_range: discretisation (``None`` voxel size: no discretisation).
        temperature: sine temperature (10000).

    Example:
        >>> pe = WorldPositionEmbedding(12, patch_grid=5, patch_size=14, pooled_grid=3)
        >>> pe(torch.zeros(2, 70, 70, 3)).shape
        torch.Size([2, 9, 12])
    """

    def __init__(self, dim: int, patch_grid: int = 27, patch_size: int = 14, pooled_grid: int = 14,
                 voxel_size: float | None = 0.1, min_range=(-15.0, -15.0, -5.0), max_range=(15.0, 15.0, 5.0),
                 temperature: float = 10000.0) -> None:
        super().__init__()
        self.dim, self.patch_grid, self.patch_size, self.pooled_grid = dim, patch_grid, patch_size, pooled_grid
        self.voxel_size, self.min_range, self.max_range = voxel_size, tuple(min_range), tuple(max_range)
        self.temperature = temperature

    def encode_xyz(self, xyz: torch.Tensor) -> torch.Tensor:
        """``(..., 3)`` metres -> ``(..., D)`` (discretised when a voxel size is set, then sine 3D)."""
        if self.voxel_size is not None:
            xyz = discretize(xyz, self.voxel_size, self.min_range, self.max_range)
        return sine_3d_embedding(xyz, self.dim, self.temperature)

    def token_coordinates(self, points: torch.Tensor) -> torch.Tensor:
        """``(S, H, W, 3)`` world points -> ``(S, P, P, 3)`` per-token coordinates (not discretised)."""
        return token_coordinates(points, self.patch_grid, self.patch_size, self.pooled_grid)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """``(S, H, W, 3)`` world points aligned with the frames -> ``(S, P * P, D)`` row-major per frame."""
        return self.encode_xyz(self.token_coordinates(points)).flatten(1, 2)


def pooled_grid_size(patch_grid: int, stride: int) -> int:
    """``ceil(patch_grid / stride)``.

    Example:
        >>> pooled_grid_size(27, 2)
        14
    """
    return math.ceil(patch_grid / stride)
