"""Convex mesh primitives (boxes, frusta, spheres) that synthetic objects are built from.

Every primitive is a closed convex triangle mesh whose faces are wound counter-clockwise seen from
outside, so ``cross(b - a, c - a)`` is the outward normal (the rasteriser culls back faces with it).
Orientation is fixed after construction by pointing each face away from the primitive's centre,
which is exact for convex shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Part:
    """One primitive of an object, in the object's local frame (metres, z up).

    Attributes:
        vertices: ``(V, 3) float64`` local coordinates.
        faces: ``(F, 3) int64`` vertex indices, counter-clockwise seen from outside.
        slot: index of the object's material this part is painted with.
    """

    vertices: np.ndarray
    faces: np.ndarray
    slot: int = 0

    def transformed(self, rotation: np.ndarray, translation) -> "Part":
        """The part moved by ``x -> rotation @ x + translation`` (``rotation (3, 3)``, proper)."""
        verts = self.vertices @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64)
        return Part(verts, self.faces.copy(), self.slot)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised face normals ``(F, 3)`` (length = twice the triangle area)."""
    tri = vertices[faces]
    return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])


def _orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Flip faces whose normal points towards the centre of a convex vertex set."""
    centre = vertices.mean(axis=0)
    normals = face_normals(vertices, faces)
    out = vertices[faces].mean(axis=1) - centre
    flip = np.einsum("ij,ij->i", normals, out) < 0
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    return faces


def _quads_to_tris(quads: np.ndarray) -> np.ndarray:
    """Split quads ``(Q, 4)`` given in cyclic order into triangles ``(2Q, 3)``."""
    quads = np.asarray(quads, np.int64)
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def rotation_z(yaw: float) -> np.ndarray:
    """Rotation ``(3, 3)`` by ``yaw`` radians about +z (counter-clockwise seen from above)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_x(angle: float) -> np.ndarray:
    """Rotation ``(3, 3)`` by ``angle`` radians about +x."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def box(lo, hi, slot: int = 0) -> Part:
    """Axis-aligned box between corners ``lo (3,)`` and ``hi (3,)``: 8 vertices, 12 triangles.

    Example:
        >>> box((0, 0, 0), (1, 2, 3)).faces.shape
        (12, 3)
    """
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    bits = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], np.float64)
    verts = lo + bits * (hi - lo)
    quads = np.array(
        [[0, 2, 6, 4], [1, 3, 7, 5], [0, 1, 5, 4], [2, 3, 7, 6], [0, 1, 3, 2], [4, 5, 7, 6]]
    )
    faces = _quads_to_tris(quads)
    return Part(verts, _orient_outward(verts, faces), slot)


def frustum(center_xy, z0: float, z1: float, r0: float, r1: float, slot: int = 0, segments: int = 12) -> Part:
    """Closed vertical cone frustum (a cylinder when ``r0 == r1``), both radii positive.

    Args:
        center_xy: ``(2,)`` axis position.
        z0, z1: bottom and top heights.
        r0, r1: bottom and top radii.
        segments: number of sides.
    """
    ang = np.arange(segments) * (2 * np.pi / segments)
    ring = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    cx, cy = float(center_xy[0]), float(center_xy[1])
    bottom = np.column_stack([cx + r0 * ring[:, 0], cy + r0 * ring[:, 1], np.full(segments, z0)])
    top = np.column_stack([cx + r1 * ring[:, 0], cy + r1 * ring[:, 1], np.full(segments, z1)])
    verts = np.concatenate([bottom, top, [[cx, cy, z0], [cx, cy, z1]]])
    i = np.arange(segments)
    j = (i + 1) % segments
    side = _quads_to_tris(np.stack([i, j, j + segments, i + segments], axis=1))
    cap0 = np.stack([np.full(segments, 2 * segments), j, i], axis=1)
    cap1 = np.stack([np.full(segments, 2 * segments + 1), i + segments, j + segments], axis=1)
    faces = np.concatenate([side, cap0, cap1])
    return Part(verts, _orient_outward(verts, faces), slot)


def sphere(center, radius: float, slot: int = 0, rings: int = 6, segments: int = 10) -> Part:
    """Low-poly UV sphere: ``rings`` latitude bands, triangle fans at the poles."""
    center = np.asarray(center, np.float64)
    lat = np.pi * np.arange(1, rings) / rings
    lon = 2 * np.pi * np.arange(segments) / segments
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    body = np.stack([np.sin(la) * np.cos(lo), np.sin(la) * np.sin(lo), np.cos(la)], axis=-1).reshape(-1, 3)
    verts = center + radius * np.concatenate([body, [[0, 0, 1], [0, 0, -1]]])
    n_body = len(body)
    r = np.arange(rings - 2)[:, None]
    s = np.arange(segments)[None, :]
    a = r * segments + s
    b = r * segments + (s + 1) % segments
    quads = np.stack([a, b, b + segments, a + segments], axis=-1).reshape(-1, 4)
    s1 = np.arange(segments)
    s2 = (s1 + 1) % segments
    last = (rings - 2) * segments
    top = np.stack([np.full(segments, n_body), s1, s2], axis=1)
    bottom = np.stack([np.full(segments, n_body + 1), last + s1, last + s2], axis=1)
    faces = np.concatenate([_quads_to_tris(quads), top, bottom])
    return Part(verts, _orient_outward(verts, faces), slot)
