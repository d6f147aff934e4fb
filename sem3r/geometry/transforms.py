"""Rigid and similarity transforms: pose composition, Sim(3), Umeyama alignment, rotations, quaternions.

Conventions: a pose is ``(..., 3, 4)`` ``[R | t]`` acting as ``x -> R x + t`` (``(..., 4, 4)`` is
accepted wherever a pose is read); ``compose(a, b)`` applies ``b`` first. Quaternions are unit
4-vectors in ``xyzw`` order (scalar last, as in VGGT's pose encoding) and are returned with ``w >= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import finite_array, point_array


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compose poses, ``a ∘ b`` (apply ``b`` then ``a``), broadcasting over leading dimensions.

    Args:
        a: ``(..., 3, 4)`` or ``(..., 4, 4)``.
        b: ``(..., 3, 4)`` or ``(..., 4, 4)``.

    Returns:
        ``(..., 3, 4)`` ``[Ra Rb | Ra tb + ta]``.

    Example:
        >>> shift = np.hstack([np.eye(3), [[1.0], [0.0], [0.0]]])
        >>> compose(shift, shift)[:, 3].tolist()
        [2.0, 0.0, 0.0]
    """
    a = np.asarray(a)
    b = np.asarray(b)
    Ra, ta = a[..., :3, :3], a[..., :3, 3]
    Rb, tb = b[..., :3, :3], b[..., :3, 3]
    R = Ra @ Rb
    t = np.einsum("...ij,...j->...i", Ra, tb) + ta
    return np.concatenate([R, t[..., None]], axis=-1)


@dataclass
class Sim3:
    """A similarity transform ``x -> scale * rotation @ x + translation``.

    Attributes:
        scale: positive float.
        rotation: ``(3, 3)`` float64 rotation matrix.
        translation: ``(3,)`` float64.

    Example:
        >>> T = Sim3(2.0, np.eye(3), np.array([0.0, 0.0, 1.0]))
        >>> T.apply(np.array([1.0, 0.0, 0.0])).tolist()
        [2.0, 0.0, 1.0]
        >>> T.inverse().apply(T.apply(np.ones(3))).round(12).tolist()
        [1.0, 1.0, 1.0]
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self):
        self.scale = float(self.scale)
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise Sem3RError(f"Sim3 scale must be positive and finite, got {self.scale}")
        self.rotation = finite_array(self.rotation, "Sim3 rotation", (3, 3)).reshape(3, 3)
        self.translation = finite_array(self.translation, "Sim3 translation", (3,)).reshape(3)

    @classmethod
    def identity(cls) -> "Sim3":
        """The identity transform."""
        return cls(1.0, np.eye(3), np.zeros(3))

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> "Sim3":
        """Build from a ``(4, 4)`` or ``(3, 4)`` matrix ``[s R | t]``; ``s`` is the cube root of ``det(s R)``."""
        m = finite_array(matrix, "Sim3 matrix")
        if m.shape not in ((3, 4), (4, 4)):
            raise Sem3RError(f"Sim3 matrix must have shape (3, 4) or (4, 4), got {m.shape}")
        det = np.linalg.det(m[:3, :3])
        if not det > 0:
            raise Sem3RError(f"Sim3 matrix has a non-positive determinant {det}")
        scale = np.cbrt(det)
        return cls(scale, m[:3, :3] / scale, m[:3, 3])

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform ``points (..., 3)``; returns ``(..., 3)`` float64."""
        points = np.asarray(points, dtype=np.float64)
        return self.scale * (points @ self.rotation.T) + self.translation

    def inverse(self) -> "Sim3":
        """The inverse ``x -> R^T (x - t) / s``."""
        Rt = self.rotation.T
        return Sim3(1.0 / self.scale, Rt, -(Rt @ self.translation) / self.scale)

    def matrix(self) -> np.ndarray:
        """The ``(4, 4)`` homogeneous matrix ``[[s R, t], [0, 1]]``."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m

    def compose(self, other: "Sim3") -> "Sim3":
        """``self ∘ other``: apply ``other`` first, then ``self``."""
        return Sim3(
            self.scale * other.scale,
            self.rotation @ other.rotation,
            self.scale * (self.rotation @ other.translation) + self.translation,
        )

    def transform_cameras(self, cam_from_world: np.ndarray) -> np.ndarray:
        """Express cameras in the transformed world frame ``x' = s R x + t``.

        The camera frames are scaled by ``s`` too (metric units follow the new world), so the
        pixels every world point projects to are unchanged and camera centres map by :meth:`apply`.

        Args:
            cam_from_world: ``(..., 3, 4)`` poses in the old world frame.

        Returns:
            ``(..., 3, 4)`` poses ``[Rc R^T | s tc - Rc R^T t]`` in the new world frame.
        """
        pose = finite_array(cam_from_world, "cam_from_world")
        if pose.shape[-2:] not in ((3, 4), (4, 4)):
            raise Sem3RError(f"cam_from_world must have shape (..., 3, 4), got {pose.shape}")
        R = pose[..., :3, :3] @ self.rotation.T
        t = self.scale * pose[..., :3, 3] - R @ self.translation
        return np.concatenate([R, t[..., None]], axis=-1)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True, weights: np.ndarray | None = None) -> Sim3:
    """Least-squares similarity (or rigid) transform with ``dst ≈ s R src + t`` (Umeyama 1991).

    Minimises ``sum_i w_i |dst_i - (s R src_i + t)|^2`` in closed form: with weighted centroids
    ``mu_s, mu_d``, cross-covariance ``Sigma = sum w (dst - mu_d)(src - mu_s)^T = U D V^T`` and
    ``S = diag(1, 1, det(U) det(V))`` (which turns a best-fit reflection into the best rotation),
    ``R = U S V^T``, ``s = tr(D S) / var_src`` (1 when ``with_scale`` is False) and
    ``t = mu_d - s R mu_s``.

    Args:
        src: ``(N, 3)`` source points, ``N >= 3``.
        dst: ``(N, 3)`` corresponding target points.
        with_scale: estimate ``s``; otherwise the transform is rigid (``s = 1``).
        weights: ``(N,)`` non-negative per-pair weights (default uniform).

    Returns:
        The :class:`Sim3` mapping ``src`` onto ``dst``.

    Raises:
        Sem3RError: mismatched shapes, fewer than 3 points, NaNs, or degenerate input (coincident or
            collinear points, where the rotation is not determined).

    Example:
        >>> src = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        >>> T = umeyama(src, 2 * src + 1)
        >>> round(T.scale, 9), T.translation.round(9).tolist()
        (2.0, [1.0, 1.0, 1.0])
    """
    src = point_array(src, "umeyama src", min_points=3)
    dst = point_array(dst, "umeyama dst", min_points=3)
    if src.shape != dst.shape:
        raise Sem3RError(f"umeyama src and dst must have the same shape, got {src.shape} and {dst.shape}")
    if weights is None:
        w = np.full(len(src), 1.0 / len(src))
    else:
        w = finite_array(weights, "umeyama weights")
        if w.shape != (len(src),) or (w < 0).any():
            raise Sem3RError(f"umeyama weights must be ({len(src)},) and non-negative")
        if np.count_nonzero(w) < 3:
            raise Sem3RError("umeyama needs at least 3 points with positive weight")
        w = w / w.sum()
    mu_s = w @ src
    mu_d = w @ dst
    xs = src - mu_s
    xd = dst - mu_d
    sigma = (xd * w[:, None]).T @ xs
    U, D, Vt = np.linalg.svd(sigma)
    if not D[1] > 1e-10 * D[0]:
        raise Sem3RError("umeyama input is degenerate (coincident or collinear points); the rotation is undetermined")
    S = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2] = -1.0
    R = (U * S) @ Vt
    scale = float(D @ S / (w @ np.einsum("ij,ij->i", xs, xs))) if with_scale else 1.0
    return Sim3(scale, R, mu_d - scale * (R @ mu_s))


def rotation_angle(R: np.ndarray) -> np.ndarray:
    """Geodesic angle of rotations ``(..., 3, 3) -> (...)`` in degrees, in ``[0, 180]``.

    Uses ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)``, accurate near 0 and 180 degrees (``arccos``
    of the trace loses half the digits there). For the angle between two rotations pass
    ``Ra.T @ Rb``.

    Example:
        >>> Rz = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
        >>> float(rotation_angle(Rz))
        90.0
    """
    R = np.asarray(R, dtype=np.float64)
    axis = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], axis=-1)
    trace = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]
    return np.degrees(np.arctan2(np.linalg.norm(axis, axis=-1), trace - 1.0))


def _quat_from_matrix_torch(R: torch.Tensor) -> torch.Tensor:
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = torch.unbind(R.reshape(R.shape[:-2] + (9,)), dim=-1)
    # Row k holds 4 q_k * (w, x, y, z); its k-th entry is 4 q_k^2 (Shepperd 1978).
    rows = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, 1 - m00 + m11 - m22, m21 + m12], dim=-1),
            torch.stack([m10 - m01, m02 + m20, m21 + m12, 1 - m00 - m11 + m22], dim=-1),
        ],
        dim=-2,
    )
    diag = torch.diagonal(rows, dim1=-2, dim2=-1)
    best = diag.argmax(dim=-1, keepdim=True)
    row = torch.gather(rows, -2, best[..., None].expand(best.shape[:-1] + (1, 4))).squeeze(-2)
    # The largest of the four squares is >= 1 (they sum to 4), so the division is well conditioned.
    wxyz = row / (2 * torch.sqrt(torch.gather(diag, -1, best)))
    xyzw = torch.cat([wxyz[..., 1:], wxyz[..., :1]], dim=-1)
    return torch.where(xyzw[..., 3:] < 0, -xyzw, xyzw)


def _matrix_from_quat_torch(q: torch.Tensor) -> torch.Tensor:
    x, y, z, w = torch.unbind(q, dim=-1)
    two_s = 2.0 / (q * q).sum(dim=-1)
    R = torch.stack(
        [
            1 - two_s * (y * y + z * z),
            two_s * (x * y - z * w),
            two_s * (x * z + y * w),
            two_s * (x * y + z * w),
            1 - two_s * (x * x + z * z),
            two_s * (y * z - x * w),
            two_s * (x * z - y * w),
            two_s * (y * z + x * w),
            1 - two_s * (x * x + y * y),
        ],
        dim=-1,
    )
    return R.reshape(q.shape[:-1] + (3, 3))


def quat_from_matrix(R):
    """Rotation matrices ``(..., 3, 3)`` to unit quaternions ``(..., 4)`` in ``xyzw`` order with ``w >= 0``.

    Shepperd's method: of the four algebraically equal formulas, the one dividing by the largest of
    ``|w|, |x|, |y|, |z|`` is used per matrix, so rotations near 180 degrees stay accurate. A
    ``torch.Tensor`` input stays a tensor (differentiable, same device and dtype); anything else is
    computed in float64 and returned as a numpy array.

    Example:
        >>> Rz = np.array([[-1.0, 0, 0], [0, -1, 0], [0, 0, 1]])  # 180 degrees about z
        >>> quat_from_matrix(Rz).round(12).tolist()
        [0.0, 0.0, 1.0, 0.0]
    """
    if isinstance(R, torch.Tensor):
        if R.shape[-2:] != (3, 3):
            raise Sem3RError(f"rotation matrices must have shape (..., 3, 3), got {tuple(R.shape)}")
        return _quat_from_matrix_torch(R)
    arr = finite_array(R, "rotation matrices", (3, 3))
    return _quat_from_matrix_torch(torch.tensor(arr)).numpy()


def matrix_from_quat(q):
    """Quaternions ``(..., 4)`` in ``xyzw`` order to rotation matrices ``(..., 3, 3)``.

    The quaternion is normalised first (the formula divides by ``|q|^2``), so any non-zero 4-vector
    is accepted. A ``torch.Tensor`` input stays a tensor (differentiable); anything else is computed
    in float64 and returned as a numpy array.

    Example:
        >>> matrix_from_quat(np.array([0.0, 0.0, 2.0, 0.0])).round(12).tolist()
        [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if isinstance(q, torch.Tensor):
        if q.shape[-1:] != (4,):
            raise Sem3RError(f"quaternions must have shape (..., 4), got {tuple(q.shape)}")
        return _matrix_from_quat_torch(q)
    arr = finite_array(q, "quaternions", (4,))
    if (np.einsum("...i,...i->...", arr, arr) == 0).any():
        raise Sem3RError("a zero quaternion does not describe a rotation")
    return _matrix_from_quat_torch(torch.tensor(arr)).numpy()


def random_rotation(rng: np.random.Generator | int, size: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Rotations drawn uniformly (Haar measure) from SO(3).

    A 4D standard normal vector normalised is uniform on the unit quaternion sphere, and the double
    cover maps that to the uniform distribution on rotations.

    Args:
        rng: a ``np.random.Generator`` or an integer seed.
        size: leading shape; ``None`` returns one ``(3, 3)`` matrix.

    Returns:
        ``(3, 3)`` or ``(*size, 3, 3)`` float64.

    Example:
        >>> R = random_rotation(0)
        >>> bool(np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0))
        True
    """
    rng = np.random.default_rng(rng)
    shape = () if size is None else (size,) if isinstance(size, int) else tuple(size)
    q = rng.standard_normal(shape + (4,))
    return matrix_from_quat(q / np.linalg.norm(q, axis=-1, keepdims=True))
