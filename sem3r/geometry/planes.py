"""Dominant planes of a point cloud with normals: sequential one-point RANSAC, least-squares refits.

A point with a normal defines a plane hypothesis by itself (``n . x = n . p``), so each round draws
``hypotheses`` seed points, scores every hypothesis at once on a random subsample of the remaining
points (an inlier lies within ``max_distance / 2`` of the plane *and* has a normal within
``normal_angle`` of it, so the two sides of a thin board or a table top seen from below are not
counted twice), refits the best one by least squares (SVD) on all its inliers and removes them.
The inlier distance adapts to the data: after a first refit it becomes, for a point seen from ``r``
metres, ``clip(noise_sigmas * 1.4826 * MAD(residual / r^2) * r^2, distance, max_distance)`` (with
``ranges``; without, ``r = 1``), so the same settings hold on exact synthetic depth (a 1 cm band)
and on Kinect depth, whose noise and quantisation grow as the square of the range.
Rounds stop at ``max_planes`` or when three rounds in a row find no plane of ``min_inliers`` points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import point_array


@dataclass
class PlaneDetectionConfig:
    """Settings of :func:`detect_planes`.

    Attributes:
        distance: smallest inlier distance to a plane (m).
        max_distance: largest inlier distance the noise adaptation may reach (m).
        noise_sigmas: the adapted distance is this many robust standard deviations of the residuals.
        normal_angle: largest angle (degrees) between a point's normal and the plane's normal.
        hypotheses: seed points drawn per round.
        sample: points each round scores its hypotheses on (a random subsample).
        min_inliers: smallest plane, as a number of points (``>= 1``) or a fraction of all points (``< 1``).
        max_planes: rounds at most.
        seed: seed of the draws.
    """

    distance: float = 0.01
    max_distance: float = 0.12
    noise_sigmas: float = 3.0
    normal_angle: float = 35.0
    hypotheses: int = 256
    sample: int = 20_000
    min_inliers: float = 0.01
    max_planes: int = 16
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if not 0 < self.distance <= self.max_distance:
            raise Sem3RError(f"plane distance must be positive and at most max_distance, got {self.distance}")
        if not 0 < self.normal_angle < 90:
            raise Sem3RError(f"plane normal_angle must be in (0, 90) degrees, got {self.normal_angle}")
        if self.hypotheses < 1 or self.sample < 3 or self.max_planes < 1:
            raise Sem3RError("plane hypotheses, sample and max_planes must be positive (sample >= 3)")
        if not self.min_inliers > 0:
            raise Sem3RError(f"plane min_inliers must be positive, got {self.min_inliers}")


@dataclass
class Plane:
    """A plane ``normal . x + offset = 0`` and the points on it.

    Attributes:
        normal: ``(3,) float64`` unit normal.
        offset: ``d`` of ``n . x + d = 0``.
        inliers: ``(K,) int64`` indices of the points assigned to the plane.
        distance: the smallest inlier distance (m).
        noise: range-scaled noise of the inliers (1/m): a point seen from ``r`` metres is an inlier
            within ``clip(noise * r**2, distance, max_band)`` of the plane (depth-sensor noise grows
            as the square of the range); 0 for exact depth.
        max_band: the largest inlier distance (m).
    """

    normal: np.ndarray
    offset: float
    inliers: np.ndarray
    distance: float
    noise: float = 0.0
    max_band: float = np.inf

    def band(self, ranges: np.ndarray | None) -> np.ndarray | float:
        """Inlier distance (m) of points seen from ``ranges (M,)`` metres (``None``: 1 m)."""
        r2 = 1.0 if ranges is None else np.asarray(ranges, np.float64) ** 2
        return np.clip(self.noise * r2, self.distance, max(self.distance, self.max_band))

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """``(M,)`` signed distances of ``points (M, 3)`` to the plane (positive on the normal's side)."""
        return np.asarray(points, np.float64) @ self.normal + self.offset

    def flipped(self) -> Plane:
        """The same plane with the opposite normal."""
        return Plane(-self.normal, -self.offset, self.inliers, self.distance, self.noise, self.max_band)


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane of ``points (M, 3)``, ``M >= 3``: ``(normal (3,), offset)``.

    Example:
        >>> n, d = fit_plane(np.array([[0.0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]]))
        >>> np.round(np.abs(n), 6).tolist(), round(abs(d), 6)
        ([0.0, 0.0, 1.0], 1.0)
    """
    pts = point_array(points, "plane points", min_points=3)
    centre = pts.mean(axis=0)
    normal = np.linalg.svd(pts - centre, full_matrices=False)[2][-1]
    return normal, float(-normal @ centre)


def detect_planes(points: np.ndarray, normals: np.ndarray, config: PlaneDetectionConfig | None = None,
                  ranges: np.ndarray | None = None) -> list[Plane]:
    """Dominant planes of a cloud, largest first (see the module docstring).

    Args:
        points: ``(M, 3)`` points (metres).
        normals: ``(M, 3)`` unit normals (orientation does not matter).
        config: see :class:`PlaneDetectionConfig`.
        ranges: ``(M,)`` distance (m) from each point to the camera that saw it; the inlier band
            then grows with the square of the range (sensor depth noise); ``None``: one band.

    Returns:
        Planes with disjoint inlier sets, in detection order (each the largest of what remained).

    Raises:
        Sem3RError: NaN or mismatched inputs, an invalid config.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> floor = np.c_[rng.uniform(0, 2, (500, 2)), np.zeros(500)]
        >>> wall = np.c_[rng.uniform(0, 2, 300), np.zeros(300), rng.uniform(0, 1, 300)]
        >>> planes = detect_planes(np.r_[floor, wall], np.r_[np.tile([0, 0, 1.0], (500, 1)), np.tile([0, 1.0, 0], (300, 1))])
        >>> [len(p.inliers) for p in planes], np.abs(planes[0].normal).round(3).tolist()
        ([500, 300], [0.0, 0.0, 1.0])
    """
    config = config or PlaneDetectionConfig()
    config.validate()
    pts = point_array(points, "plane points", min_points=0)
    nrm = np.asarray(normals, np.float64)
    if nrm.shape != pts.shape or not np.isfinite(nrm).all():
        raise Sem3RError(f"normals must be finite with the points' shape {pts.shape}, got {nrm.shape}")
    min_inliers = max(3, int(config.min_inliers if config.min_inliers >= 1 else np.ceil(config.min_inliers * len(pts))))
    r2 = np.ones(len(pts)) if ranges is None else np.maximum(np.asarray(ranges, np.float64), 1e-3) ** 2
    if r2.shape != (len(pts),) or not np.isfinite(r2).all():
        raise Sem3RError(f"ranges must be finite with one value per point ({len(pts)}), got {np.shape(ranges)}")
    cos_max = np.cos(np.deg2rad(config.normal_angle))
    rng = np.random.default_rng(config.seed)
    remaining = np.arange(len(pts))
    planes: list[Plane] = []
    failures = 0
    while len(planes) < config.max_planes and len(remaining) >= min_inliers and failures < 3:
        seeds = remaining[rng.integers(0, len(remaining), min(config.hypotheses, len(remaining)))]
        probe = remaining[rng.choice(len(remaining), min(config.sample, len(remaining)), replace=False)]
        hyp_n = nrm[seeds]
        hyp_d = -np.einsum("hi,hi->h", hyp_n, pts[seeds])
        near = np.abs(pts[probe] @ hyp_n.T + hyp_d) <= 0.5 * config.max_distance
        aligned = np.abs(nrm[probe] @ hyp_n.T) >= cos_max
        best = int(np.argmax((near & aligned).sum(axis=0)))
        plane = Plane(hyp_n[best], float(hyp_d[best]), np.zeros(0, np.int64), 0.5 * config.max_distance)
        for _ in range(3):  # refit on the inliers, then adapt the band to their residual spread
            inl = _inliers(pts, nrm, remaining, plane, r2, cos_max)
            if len(inl) < 3:
                break
            normal, offset = fit_plane(pts[inl])
            scaled = (pts[inl] @ normal + offset) / r2[inl]
            noise = config.noise_sigmas * 1.4826 * np.median(np.abs(scaled - np.median(scaled)))
            plane = Plane(normal, offset, inl, config.distance, float(noise), config.max_distance)
        inl = _inliers(pts, nrm, remaining, plane, r2, cos_max)
        if len(inl) < min_inliers:  # a bad draw on noisy normals: try again, three times at most
            failures += 1
            continue
        failures = 0
        plane.inliers = inl
        planes.append(plane)
        remaining = np.setdiff1d(remaining, inl, assume_unique=True)
    return planes


def plane_inliers(points: np.ndarray, normals: np.ndarray, plane: Plane, normal_angle: float,
                  ranges: np.ndarray | None = None) -> Plane:
    """``plane`` with its inliers recomputed on another point set of the same surface (e.g. the fine
    points of a plane found on coarse voxels), with the plane's own noise-adapted band.

    Args:
        points: ``(M, 3)`` points.
        normals: ``(M, 3)`` unit normals.
        plane: the plane (its normal, offset and band are kept).
        normal_angle: largest angle (degrees) between a point's normal and the plane's; finer
            points have noisier normals, so this is usually wider than the detection's.
        ranges: ``(M,)`` distance (m) from each point to its camera (``None``: 1 m).

    Returns:
        A :class:`Plane` with the same normal, offset and band, and inliers indexing ``points``.
    """
    pts = np.asarray(points, np.float64)
    r2 = np.ones(len(pts)) if ranges is None else np.maximum(np.asarray(ranges, np.float64), 1e-3) ** 2
    inl = _inliers(pts, np.asarray(normals, np.float64), np.arange(len(pts)), plane, r2,
                   np.cos(np.deg2rad(normal_angle)))
    return Plane(plane.normal, plane.offset, inl, plane.distance, plane.noise, plane.max_band)


def _inliers(pts: np.ndarray, nrm: np.ndarray, candidates: np.ndarray, plane: Plane, r2: np.ndarray,
             cos_max: float) -> np.ndarray:
    """The ``candidates`` within the plane's band (at their squared ranges ``r2``) whose normals agree with it."""
    band = np.clip(plane.noise * r2[candidates], plane.distance, max(plane.distance, plane.max_band))
    near = np.abs(pts[candidates] @ plane.normal + plane.offset) <= band
    aligned = np.abs(nrm[candidates] @ plane.normal) >= cos_max
    return candidates[near & aligned]
