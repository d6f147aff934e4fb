"""Voxel grids with packed ``int64`` keys.

A voxel index ``(i, j, k)`` (each in ``[-2**20, 2**20)``) is packed into one ``int64`` as
``((i + 2**20) << 42) | ((j + 2**20) << 21) | (k + 2**20)``, so voxel grouping is a 1D ``np.unique``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sem3r.errors import Sem3RError

_BITS = 21
_OFFSET = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1


def voxel_indices(points: np.ndarray, voxel_size: float, origin: np.ndarray | None = None) -> np.ndarray:
    """Integer voxel coordinates ``(N, 3) int64`` of ``points (N, 3)`` for cubes of ``voxel_size``."""
    if not voxel_size > 0:
        raise Sem3RError(f"voxel_size must be positive, got {voxel_size}")
    pts = np.asarray(points, dtype=np.float64)
    if not np.isfinite(pts).all():
        raise Sem3RError("voxel points contain NaN or infinite values")
    if origin is not None:
        pts = pts - np.asarray(origin, dtype=np.float64)
    return np.floor(pts / voxel_size).astype(np.int64)


def pack_voxel_keys(ijk: np.ndarray) -> np.ndarray:
    """Pack ``(N, 3) int64`` voxel indices into ``(N,) int64`` keys (21 bits per axis)."""
    ijk = np.asarray(ijk, dtype=np.int64)
    if ijk.ndim != 2 or ijk.shape[1] != 3:
        raise Sem3RError(f"voxel indices must have shape (N, 3), got {ijk.shape}")
    if ijk.size and (ijk.min() < -_OFFSET or ijk.max() >= _OFFSET):
        raise Sem3RError(f"voxel index out of the packable range [-{_OFFSET}, {_OFFSET}); use a larger voxel size")
    s = ijk + _OFFSET
    return (s[:, 0] << (2 * _BITS)) | (s[:, 1] << _BITS) | s[:, 2]


def unpack_voxel_keys(keys: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_voxel_keys`: ``(N,) int64 -> (N, 3) int64``."""
    keys = np.asarray(keys, dtype=np.int64)
    return np.stack([(keys >> (2 * _BITS)) & _MASK, (keys >> _BITS) & _MASK, keys & _MASK], axis=1) - _OFFSET


def voxel_keys(points: np.ndarray, voxel_size: float, origin: np.ndarray | None = None) -> np.ndarray:
    """Packed voxel keys ``(N,) int64`` of ``points (N, 3)``."""
    return pack_voxel_keys(voxel_indices(points, voxel_size, origin))


@dataclass
class VoxelGrid:
    """Occupied voxels of a point set.

    Attributes:
        keys: ``(V,) int64`` sorted unique packed keys.
        inverse: ``(N,) int64`` voxel slot of every input point (``keys[inverse[i]]`` holds point i).
        counts: ``(V,) int64`` points per voxel.
        voxel_size: edge length in metres.
    """

    keys: np.ndarray
    inverse: np.ndarray
    counts: np.ndarray
    voxel_size: float

    @classmethod
    def from_points(cls, points: np.ndarray, voxel_size: float) -> VoxelGrid:
        """Group ``points (N, 3)`` into voxels of ``voxel_size`` (grid anchored at the origin)."""
        keys, inverse, counts = np.unique(voxel_keys(points, voxel_size), return_inverse=True, return_counts=True)
        return cls(keys=keys, inverse=inverse.reshape(-1), counts=counts, voxel_size=float(voxel_size))

    @property
    def centers(self) -> np.ndarray:
        """Voxel centres ``(V, 3) float64``."""
        return (unpack_voxel_keys(self.keys) + 0.5) * self.voxel_size

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Per-voxel mean of ``values (N, ...)`` -> ``(V, ...)`` float64."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.reshape(len(values), -1)
        out = np.zeros((len(self.keys), flat.shape[1]))
        np.add.at(out, self.inverse, flat)
        out /= self.counts[:, None]
        return out.reshape((len(self.keys),) + values.shape[1:])

    def first(self, values: np.ndarray) -> np.ndarray:
        """The value of the first point (input order) that fell into each voxel: ``(N, ...) -> (V, ...)``."""
        first_idx = np.full(len(self.keys), len(self.inverse), dtype=np.int64)
        np.minimum.at(first_idx, self.inverse, np.arange(len(self.inverse)))
        return np.asarray(values)[first_idx]

    def majority(self, labels: np.ndarray, ignore: int = -1) -> np.ndarray:
        """Most frequent integer label per voxel ``(V,)``; ``ignore`` only wins when nothing else is present."""
        labels = np.asarray(labels, dtype=np.int64)
        valid = labels != ignore
        out = np.full(len(self.keys), ignore, dtype=np.int64)
        voxels, winner, _, _ = group_majority(self.inverse[valid], labels[valid])
        out[voxels] = winner
        return out


def group_majority(group: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The most frequent label of every group (ties: the smallest label).

    Args:
        group: ``(K,) int`` group of each entry (any integers, e.g. voxel slots or instance ids).
        labels: ``(K,) int`` label of each entry.

    Returns:
        ``groups (G,) int64`` the distinct groups in ascending order, ``winner (G,) int64`` their
        majority labels, ``winner_count (G,) int64`` how many entries carry it and ``total (G,)
        int64`` the entries of each group.

    Example:
        >>> g, w, c, t = group_majority(np.array([7, 7, 7, 2, 2]), np.array([1, 5, 5, 3, 0]))
        >>> g.tolist(), w.tolist(), c.tolist(), t.tolist()
        ([2, 7], [0, 5], [1, 2], [2, 3])
    """
    group = np.asarray(group, np.int64).reshape(-1)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if not len(group):
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    label_ids, label_index = np.unique(labels, return_inverse=True)
    groups, group_index = np.unique(group, return_inverse=True)
    key, count = np.unique(group_index.reshape(-1) * len(label_ids) + label_index.reshape(-1), return_counts=True)
    key_group, key_label = np.divmod(key, len(label_ids))
    order = np.lexsort((key_label, -count, key_group))  # per group: most entries, then the smallest label
    first = order[np.r_[True, key_group[order][1:] != key_group[order][:-1]]]
    total = np.bincount(key_group, weights=count, minlength=len(groups)).astype(np.int64)
    return groups, label_ids[key_label[first]], count[first].astype(np.int64), total


def voxel_downsample(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, VoxelGrid]:
    """Average ``points (N, 3)`` per voxel; returns ``(V, 3) float32`` centroids and the grid.

    Other per-point attributes can be reduced with the returned grid (``grid.mean``, ``grid.first``,
    ``grid.majority``).
    """
    grid = VoxelGrid.from_points(points, voxel_size)
    return grid.mean(points).astype(np.float32), grid
