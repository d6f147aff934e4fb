"""False-colour images of feature maps by PCA.

The top three principal components are fitted jointly over every (masked) pixel of every view, so
a feature vector gets the same colour wherever it appears. Each component is scaled to ``[0, 255]``
between its 1st and 99th percentile (robust to a few extreme pixels) and clipped. The sign of a
principal component is arbitrary; we fix it by making each component's largest-magnitude loading
positive, so colours do not flip between runs or library versions. Components whose spread is
negligible next to the first one (features of rank < 3) are drawn at mid grey instead of
stretching numerical noise to full range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sem3r.errors import Sem3RError

_CHUNK_ROWS = 1 << 18


@dataclass
class PCAColorMap:
    """A fitted PCA colour map.

    Attributes:
        mean: ``(C,) float64`` feature mean.
        components: ``(C, 3) float64`` principal directions (columns), sign-fixed; zero columns
            when ``C < 3``.
        low: ``(3,) float64`` 1st percentile of each projection.
        high: ``(3,) float64`` 99th percentile of each projection.
        active: ``(3,) bool`` components with a non-negligible spread; the others map to 128.
    """

    mean: np.ndarray
    components: np.ndarray
    low: np.ndarray
    high: np.ndarray
    active: np.ndarray

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        mask: np.ndarray | None = None,
        max_samples: int = 200_000,
        seed: int = 0,
        rel_tol: float = 1e-6,
    ) -> "PCAColorMap":
        """Fit the map over all pixels (or those in ``mask``) of ``features``.

        Args:
            features: ``(..., C)`` float features, e.g. ``(N, H, W, C)``.
            mask: ``(...)`` bool, pixels to fit on (default: all).
            max_samples: fit on a seeded random subset of at most this many pixels.
            seed: seed of that subset.
            rel_tol: a component whose 1-99 percentile spread is at most ``rel_tol`` times the
                first component's is inactive (drawn grey).

        Returns:
            The fitted :class:`PCAColorMap`.
        """
        flat, keep = _flatten(features, mask)
        rows = np.flatnonzero(keep)
        if not len(rows):
            raise Sem3RError("pca_colors needs at least one (masked) pixel to fit on")
        if len(rows) > max_samples:
            rows = np.sort(np.random.default_rng(seed).choice(rows, max_samples, replace=False))
        x = flat[rows].astype(np.float64)
        mean = x.mean(axis=0)
        centred = x - mean
        cov = centred.T @ centred / max(len(x) - 1, 1)
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1][:3]
        comps = np.zeros((flat.shape[1], 3))
        comps[:, : len(order)] = evecs[:, order]
        lead = np.argmax(np.abs(comps), axis=0)
        comps *= np.where(comps[lead, np.arange(3)] < 0, -1.0, 1.0)
        proj = centred @ comps
        low, high = np.percentile(proj, [1.0, 99.0], axis=0)
        spread = high - low
        active = spread > rel_tol * max(spread[0], np.finfo(np.float64).tiny)
        return cls(mean, comps, low, high, active)

    def __call__(self, features: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Colour ``features (..., C)``; pixels outside ``mask (...)`` are black.

        Returns:
            ``(..., 3) uint8``.
        """
        flat, keep = _flatten(features, mask)
        if flat.shape[1] != len(self.mean):
            raise Sem3RError(f"features have {flat.shape[1]} channels, the PCA map was fitted on {len(self.mean)}")
        offset = self.mean @ self.components
        scale = np.where(self.active, self.high - self.low, 1.0)
        out = np.zeros((len(flat), 3), np.uint8)
        for start in range(0, len(flat), _CHUNK_ROWS):
            block = flat[start : start + _CHUNK_ROWS]
            proj = block.astype(np.float64) @ self.components - offset
            unit = np.where(self.active, np.clip((proj - self.low) / scale, 0.0, 1.0), 0.5)
            out[start : start + _CHUNK_ROWS] = np.rint(np.nan_to_num(unit) * 255.0).astype(np.uint8)
        out[~keep] = 0
        return out.reshape(np.shape(features)[:-1] + (3,))


def _flatten(features: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features)
    if features.ndim < 1 or features.shape[-1] < 1:
        raise Sem3RError(f"features must have shape (..., C) with C >= 1, got {features.shape}")
    flat = features.reshape(-1, features.shape[-1])
    if mask is None:
        keep = np.ones(len(flat), bool)
    else:
        mask = np.asarray(mask, bool)
        if mask.shape != features.shape[:-1]:
            raise Sem3RError(f"mask must have shape {features.shape[:-1]} to match the features, got {mask.shape}")
        keep = mask.reshape(-1)
    finite = np.isfinite(flat).all(axis=1)
    return flat, keep & finite


def pca_colors(
    features: np.ndarray, mask: np.ndarray | None = None, max_samples: int = 200_000, seed: int = 0
) -> np.ndarray:
    """Colour a stack of feature maps by their top three principal components, fitted jointly.

    Args:
        features: ``(..., C)`` float features, e.g. ``(N, H, W, C)`` per-view feature maps.
        mask: ``(...)`` bool, pixels to fit on and to colour; others are black.
        max_samples: fit on a seeded random subset of at most this many pixels.
        seed: seed of that subset.

    Returns:
        ``(..., 3) uint8`` RGB: component ``k`` drives channel ``k``.

    Example:
        >>> f = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype(np.float32)
        >>> rgb = pca_colors(f)
        >>> rgb.shape, rgb.dtype
        ((2, 8, 8, 3), dtype('uint8'))
    """
    return PCAColorMap.fit(features, mask, max_samples=max_samples, seed=seed)(features, mask)
