"""A CPU z-buffer rasteriser for triangle meshes, vectorised with numpy.

One view is rendered in five array passes, with no Python loop over pixels or triangles:

1. **Back-face culling** in 3D: a face is kept when the camera centre lies in front of its plane
   by more than a micrometre (edge-on faces are dropped too).
2. **Near-plane clipping** in camera coordinates: a triangle with one vertex behind ``z = near``
   becomes a quad (two triangles), with two vertices behind it becomes a smaller triangle. The
   intersection on an edge is computed from its (front, behind) endpoints, so two triangles sharing
   the edge get bit-identical points and no crack opens along the clip line.
3. **Scanline spans**: for every (triangle, pixel row) pair the covered columns are the interval
   between the edges' crossings of the row. Edges are evaluated with their endpoints in a canonical
   order (by row, then column), so the two triangles sharing an edge compute the same crossing and
   pixels on it are covered by both (no holes; ties are settled by the z-buffer). Pixel centres
   are the integer coordinates (OpenCV).
4. **Perspective-correct depth**: ``1/z`` is affine in ``(u, v)`` over a triangle. It is taken from
   the triangle's plane in camera coordinates (``n . X = d`` gives ``1/z = n . K^-1 (u, v, 1) / d``),
   so depth is the exact ray-plane intersection, independent of the clipped vertices.
5. **Z-buffer**: each fragment packs ``float32(z)`` bits (monotonic for positive floats) above its
   face id into one int64 key; ``np.minimum.at`` keeps the nearest fragment per pixel (equal depths
   go to the lower face id). The winner's depth is recomputed in float64 from its plane.

Vertices are transformed and projected with elementwise arithmetic only (no BLAS), so the same
vertex lands on the same bits in every triangle that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EMPTY = np.iinfo(np.int64).max


@dataclass
class Raster:
    """Rasteriser output for one view.

    Attributes:
        depth: ``(H, W) float64`` camera z-depth in metres, 0 where nothing was hit.
        face_ids: ``(H, W) int64`` index of the visible triangle, -1 where nothing was hit.
    """

    depth: np.ndarray
    face_ids: np.ndarray


def _transform(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """``points (..., 3)`` -> ``pose[:, :3] @ p + pose[:, 3]`` with elementwise arithmetic."""
    r, t = pose[:, :3], pose[:, 3]
    return points[..., 0:1] * r[:, 0] + points[..., 1:2] * r[:, 1] + points[..., 2:3] * r[:, 2] + t


def _clip_point(front: np.ndarray, behind: np.ndarray, near: float) -> np.ndarray:
    """Point on segment (``front (T, 3)``, ``behind (T, 3)``) at ``z = near``."""
    s = (near - behind[:, 2]) / (front[:, 2] - behind[:, 2])
    p = behind + s[:, None] * (front - behind)
    p[:, 2] = near
    return p


def clip_near(tris: np.ndarray, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip camera-frame triangles against the plane ``z = near``.

    Args:
        tris: ``(T, 3, 3)`` camera-frame vertices.
        near: near-plane distance (> 0).

    Returns:
        ``clipped (T', 3, 3)`` triangles entirely at ``z >= near`` and ``source (T',)`` the input
        triangle each came from.
    """
    behind = tris[:, :, 2] < near
    n_behind = behind.sum(axis=1)
    out, src = [tris[n_behind == 0]], [np.flatnonzero(n_behind == 0)]
    for count in (1, 2):
        idx = np.flatnonzero(n_behind == count)
        if not len(idx):
            continue
        # rotate (keeping the winding) so that vertex 0 is the odd one out
        lead = np.argmax(behind[idx] if count == 1 else ~behind[idx], axis=1)
        order = (lead[:, None] + np.arange(3)) % 3
        v = np.take_along_axis(tris[idx], order[:, :, None], axis=1)
        if count == 1:
            p01 = _clip_point(v[:, 1], v[:, 0], near)
            p02 = _clip_point(v[:, 2], v[:, 0], near)
            out += [np.stack([p01, v[:, 1], v[:, 2]], 1), np.stack([p01, v[:, 2], p02], 1)]
            src += [idx, idx]
        else:
            p01 = _clip_point(v[:, 0], v[:, 1], near)
            p02 = _clip_point(v[:, 0], v[:, 2], near)
            out.append(np.stack([v[:, 0], p01, p02], 1))
            src.append(idx)
    return np.concatenate(out), np.concatenate(src)


def _row_spans(uv: np.ndarray, height: int, width: int):
    """Covered pixel columns for every (triangle, row) pair.

    Args:
        uv: ``(T, 3, 2)`` projected vertices.

    Returns:
        ``tri (R,)``, ``row (R,)``, ``col0 (R,)``, ``count (R,)`` (int64): row ``row`` of triangle
        ``tri`` covers columns ``col0 .. col0 + count - 1``.
    """
    u, v = uv[..., 0], uv[..., 1]
    r0 = np.maximum(np.ceil(v.min(axis=1)), 0)
    r1 = np.minimum(np.floor(v.max(axis=1)), height - 1)
    on_screen = (r1 >= r0) & (u.max(axis=1) >= 0) & (u.min(axis=1) <= width - 1)
    tid = np.flatnonzero(on_screen)
    nrows = (r1[tid] - r0[tid] + 1).astype(np.int64)
    tri = np.repeat(tid, nrows)
    first = np.cumsum(nrows) - nrows
    row = r0[tri] + (np.arange(len(tri)) - np.repeat(first, nrows))
    lo = np.full(len(tri), np.inf)
    hi = np.full(len(tri), -np.inf)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        ua, va, ub, vb = u[:, a], v[:, a], u[:, b], v[:, b]
        swap = (vb < va) | ((vb == va) & (ub < ua))
        pu, pv = np.where(swap, ub, ua)[tri], np.where(swap, vb, va)[tri]
        qu, qv = np.where(swap, ua, ub)[tri], np.where(swap, va, vb)[tri]
        dv = qv - pv
        sloped = dv > 0
        x = pu + (row - pv) * (qu - pu) / np.where(sloped, dv, 1.0)
        crosses = (pv <= row) & (row <= qv)
        lo = np.where(crosses, np.minimum(lo, np.where(sloped, x, np.minimum(pu, qu))), lo)
        hi = np.where(crosses, np.maximum(hi, np.where(sloped, x, np.maximum(pu, qu))), hi)
    valid = np.isfinite(lo) & np.isfinite(hi)
    col0 = np.where(valid, np.maximum(np.ceil(np.where(valid, lo, 0)), 0), 0)
    col1 = np.where(valid, np.minimum(np.floor(np.where(valid, hi, -1)), width - 1), -1)
    count = np.maximum(col1 - col0 + 1, 0).astype(np.int64)
    return tri, row.astype(np.int64), col0.astype(np.int64), count


def rasterize(
    triangles: np.ndarray,
    normals: np.ndarray,
    intrinsics: np.ndarray,
    cam_from_world: np.ndarray,
    height: int,
    width: int,
    near: float = 0.02,
    max_fragments: int = 2_000_000,
) -> Raster:
    """Render depth and visible-face ids of a triangle soup into one pinhole view.

    Args:
        triangles: ``(T, 3, 3)`` float64 world-frame vertices, counter-clockwise seen from the
            visible side.
        normals: ``(T, 3)`` unit face normals (the visible side).
        intrinsics: ``(3, 3)`` OpenCV ``K`` (no skew).
        cam_from_world: ``(3, 4)`` world -> camera.
        height, width: image size.
        near: near clipping distance (m).
        max_fragments: fragments processed per z-buffer batch (bounds memory).

    Returns:
        :class:`Raster` with ``depth (H, W)`` and ``face_ids (H, W)``.

    Example:
        >>> tri = np.array([[[-1.0, -1, 2], [1, -1, 2], [0, 1, 2]]])
        >>> K = np.array([[10.0, 0, 4.5], [0, 10, 4.5], [0, 0, 1]])
        >>> out = rasterize(tri, np.array([[0.0, 0, -1]]), K, np.eye(3, 4), 10, 10)
        >>> float(out.depth[5, 4]), int(out.face_ids[5, 4])
        (2.0, 0)
    """
    triangles = np.asarray(triangles, np.float64)
    normals = np.asarray(normals, np.float64)
    pose = np.asarray(cam_from_world, np.float64)
    K = np.asarray(intrinsics, np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    centre = -pose[:, :3].T @ pose[:, 3]
    facing = np.einsum("ij,ij->i", normals, centre - triangles[:, 0]) > 1e-6
    ids = np.flatnonzero(facing)

    cam = _transform(triangles[ids], pose)
    n_cam = _transform(normals[ids], np.concatenate([pose[:, :3], np.zeros((3, 1))], axis=1))
    d = np.einsum("ij,ij->i", n_cam, cam[:, 0])
    # 1/z = A u + B v + C on the triangle's plane n . X = d, with X = z K^-1 (u, v, 1)
    offset = (n_cam[:, 2] - n_cam[:, 0] * cx / fx - n_cam[:, 1] * cy / fy) / d
    plane = np.stack([n_cam[:, 0] / (fx * d), n_cam[:, 1] / (fy * d), offset], axis=1)

    clipped, src = clip_near(cam, near)
    uv = np.stack([fx * clipped[..., 0] / clipped[..., 2] + cx, fy * clipped[..., 1] / clipped[..., 2] + cy], axis=-1)
    tri, row, col0, count = _row_spans(uv, height, width)
    face_of_tri = src[tri]

    zbuf = np.full(height * width, _EMPTY, np.int64)
    ends = np.cumsum(count)
    start = 0
    while start < len(count):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + max_fragments, side="right"))
        stop = max(stop, start + 1)
        c = count[start:stop]
        frag_row = np.repeat(np.arange(start, stop), c)
        first = np.cumsum(c) - c
        x = col0[frag_row] + (np.arange(len(frag_row)) - np.repeat(first, c))
        y = row[frag_row]
        f = face_of_tri[frag_row]
        inv_z = plane[f, 0] * x + plane[f, 1] * y + plane[f, 2]
        ok = inv_z > 0
        z = (1.0 / inv_z[ok]).astype(np.float32)
        key = (z.view(np.int32).astype(np.int64) << 32) | ids[f[ok]].astype(np.int64)
        np.minimum.at(zbuf, y[ok] * width + x[ok], key)
        start = stop

    hit = zbuf != _EMPTY
    face_ids = np.where(hit, zbuf & 0xFFFFFFFF, -1)
    depth = np.zeros(height * width)
    pix = np.flatnonzero(hit)
    local = np.searchsorted(ids, face_ids[pix])
    inv_z = plane[local, 0] * (pix % width) + plane[local, 1] * (pix // width) + plane[local, 2]
    depth[pix] = 1.0 / inv_z
    return Raster(depth.reshape(height, width), face_ids.reshape(height, width))
