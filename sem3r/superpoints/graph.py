"""The superpoint graph: KNN or mesh edges, vertex normals and ScanNet-style geometric edge weights.

Superpoints are Felzenszwalb segments (:mod:`sem3r.geometry.felzenszwalb`) of a graph over the
points. Its edges come from a KNN query (:func:`knn_edges`, point clouds, OVSeg3R section 3.3) or
from a triangle mesh (:func:`mesh_edges`, what ScanNet's Segmentator uses); its weights measure how
much the surface bends across an edge (:func:`geometric_weights`).

One KNN query serves both the graph and the PCA normals: :func:`knn_neighbours` returns the
neighbour table, :func:`edges_from_neighbours` turns its first columns into undirected edges and
:func:`sem3r.geometry.normals.normals_from_neighbours` reads its first ``normal_k`` columns.

Speed (1M points of a synthetic room, 2 cores): the query runs on a KD-tree built without
median balancing (``balanced_tree=False, compact_nodes=False``) and asks for the points in the
tree's own leaf order (``tree.indices``), so consecutive queries visit the same leaves; in the
points' input order the same query takes 3-6x longer when that order is spatially random. It is
bounded by a distance from a sample of queries, so the tree prunes from the first node, and the
few rows the bound cuts short are queried again (:func:`_bounded_query`; exact either way).
Deduplication of the directed KNN pairs is a parallel numba pass that keeps ``i -> j`` when ``i < j``, or
when ``i > j`` and ``i`` is not among ``j``'s neighbours (an ``O(M k^2)`` scan of rows that are
already in cache), and writes the ``(E, 2)`` array directly: 0.3 s for 1M points and ``k = 10``
(5.7M edges) on one core, against 0.4 s for ``np.sort`` of packed ``(i, j)`` keys plus a neighbour comparison,
3 s for a vectorised membership test, and 9-13 s for plain ``np.unique`` of the keys (numpy 2.4
takes a much slower path there than with ``return_counts``). Keeping the duplicates instead would
double the edges Felzenszwalb sorts and scans, for no change in meaning.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.spatial import cKDTree

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import point_array
from sem3r.geometry.knn import knn


def knn_neighbours(points: np.ndarray, k: int, workers: int = -1, distances: bool = True):
    """Every point's ``k`` nearest other points, plus itself, from one KD-tree query.

    Args:
        points: ``(M, 3)`` points, ``M >= 2``.
        k: neighbours per point besides itself, ``1 <= k``; clipped to ``M - 1``.
        workers: threads of the query (``-1``: all cores).
        distances: also return the distances (``False``: only the indices, which saves putting a
            second ``(M, k + 1)`` table back into input order: ~0.15 s for 1M points and 16 columns).

    Returns:
        ``distances (M, k + 1) float64`` sorted ascending and ``indices (M, k + 1) int64``; column 0
        is the point itself (or a point coincident with it). Only ``indices`` with ``distances=False``.

    Raises:
        Sem3RError: fewer than 2 points, NaN or infinite coordinates, ``k < 1``.

    Example:
        >>> d, i = knn_neighbours(np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]]), k=1)
        >>> i.tolist(), d[:, 1].tolist()
        ([[0, 1], [1, 0], [2, 1]], [1.0, 1.0, 2.0])
    """
    pts = point_array(points, "superpoint graph points", min_points=2)
    if int(k) < 1:
        raise Sem3RError(f"knn graph needs k >= 1, got {k}")
    k = min(int(k), len(pts) - 1)
    tree = cKDTree(pts, balanced_tree=False, compact_nodes=False)
    order = tree.indices  # leaf order: neighbouring queries share leaves (cache locality)
    dist, idx = _bounded_query(tree, pts[order], k + 1, workers)
    indices = _unpermute_rows(idx, order)
    return (_unpermute_rows(dist, order), indices) if distances else indices


@numba.njit(cache=True, parallel=True)
def _unpermute_rows(table: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``out[order[t]] = table[t]`` row by row, in parallel."""
    out = np.empty_like(table)
    for t in numba.prange(len(order)):
        out[order[t]] = table[t]
    return out


def _bounded_query(tree: cKDTree, queries: np.ndarray, k: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours, found faster with a distance bound.

    A KD-tree query prunes a branch only once ``k`` candidates bound the search; given an upper
    bound from the start it prunes from the first node on. The bound is the 99th percentile of the
    ``k``-th neighbour distance of an even sample of 2,000 queries; the ~1% of rows that find fewer
    than ``k`` points within it are queried again without one, so the result is the exact KNN
    (1M points, 16 columns: 1.5 s instead of 2.2 s on 2 shared cores).
    """
    step = max(len(queries) // 2000, 1)
    if len(queries) < 20_000:
        return knn(tree, queries, k, workers=workers)
    sample, _ = knn(tree, queries[::step], k, workers=workers)
    bound = float(np.nextafter(np.quantile(sample[:, -1], 0.99), np.inf))
    if not bound > 0:
        return knn(tree, queries, k, workers=workers)
    dist, idx = knn(tree, queries, k, max_distance=bound, workers=workers)
    missing = np.flatnonzero(idx[:, -1] == tree.n)
    if len(missing):
        dist[missing], idx[missing] = knn(tree, queries[missing], k, workers=workers)
    return dist, idx


@numba.njit(cache=True, parallel=True)
def _undirected_edges(neighbours: np.ndarray) -> np.ndarray:
    """``(E, 2)`` pairs ``(min, max)``: entry ``(i, c)`` is emitted when it is the first listing of ``{i, nb[i, c]}``.

    Rows are independent: a parallel pass marks the kept entries and counts them per row, a prefix
    sum gives each row's offset, and a second parallel pass writes the pairs in row order.
    """
    m, k = neighbours.shape
    keep = np.zeros((m, k), np.bool_)
    counts = np.zeros(m + 1, np.int64)
    for i in numba.prange(m):
        row = 0
        for c in range(k):
            j = neighbours[i, c]
            if j == i:
                continue
            listed = False
            if j < i:
                for d in range(k):
                    if neighbours[j, d] == i:
                        listed = True
                        break
            if not listed:
                keep[i, c] = True
                row += 1
        counts[i + 1] = row
    offsets = np.cumsum(counts)
    out = np.empty((offsets[m], 2), np.int64)
    for i in numba.prange(m):
        e = offsets[i]
        for c in range(k):
            if keep[i, c]:
                j = neighbours[i, c]
                out[e, 0] = min(i, j)
                out[e, 1] = max(i, j)
                e += 1
    return out


def edges_from_neighbours(neighbours: np.ndarray) -> np.ndarray:
    """Undirected edges of a neighbour table, each once as ``(i, j)`` with ``i < j``, no self loops.

    ``i`` and ``j`` are joined when either lists the other. The edges come sorted by ``i``, then
    by ``j``'s column in ``i``'s row (or ``i``'s column in ``j``'s, for pairs only ``j`` lists).

    Args:
        neighbours: ``(M, k) int`` indices into ``0 .. M-1``, each row without repeats (a KNN table
            such as :func:`knn_neighbours` returns).

    Returns:
        ``(E, 2) int64``.

    Raises:
        Sem3RError: not a 2D integer table, or indices outside ``[0, M)``.

    Example:
        >>> edges_from_neighbours(np.array([[0, 1], [1, 0], [2, 1]])).tolist()
        [[0, 1], [1, 2]]
    """
    neighbours = np.asarray(neighbours)
    if neighbours.ndim != 2 or not np.issubdtype(neighbours.dtype, np.integer):
        raise Sem3RError(f"neighbours must be an (M, k) integer table, got {neighbours.dtype} {neighbours.shape}")
    if neighbours.size and (neighbours.min() < 0 or neighbours.max() >= len(neighbours)):
        raise Sem3RError(f"neighbour indices must lie in [0, {len(neighbours)})")
    return _undirected_edges(neighbours.astype(np.int64, copy=False))


def knn_edges(points: np.ndarray, k: int, return_neighbours: bool = False):
    """Undirected KNN graph of ``points``: ``i`` and ``j`` are joined when either is among the other's
    ``k`` nearest neighbours.

    Args:
        points: ``(M, 3)`` points, ``M >= 2``.
        k: neighbours per point (clipped to ``M - 1``).
        return_neighbours: also return the neighbour table, to reuse for normals.

    Returns:
        ``edges (E, 2) int64`` with ``i < j``, each pair once, ``k M / 2 <= E <= k M``; with
        ``return_neighbours``, also ``indices (M, k + 1) int64`` of :func:`knn_neighbours`.

    Example:
        >>> knn_edges(np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [3.5, 0, 0]]), k=1).tolist()
        [[0, 1], [2, 3]]
    """
    _, neighbours = knn_neighbours(points, k)
    edges = edges_from_neighbours(neighbours)
    return (edges, neighbours) if return_neighbours else edges


def face_array(faces: np.ndarray, num_vertices: int | None = None) -> np.ndarray:
    """Validate triangle indices and return them as ``(F, 3) int64``.

    Raises:
        Sem3RError: faces not ``(F, 3)`` integers, negative or (with ``num_vertices``) out-of-range indices.

    Example:
        >>> face_array([[0, 1, 2]], 3).dtype
        dtype('int64')
    """
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and not np.issubdtype(faces.dtype, np.integer)):
        raise Sem3RError(f"faces must be (F, 3) integer vertex indices, got {faces.dtype} {faces.shape}")
    faces = np.ascontiguousarray(faces, np.int64)
    if faces.size and faces.min() < 0:
        raise Sem3RError(f"faces hold negative vertex indices (min {faces.min()})")
    if num_vertices is not None and faces.size and faces.max() >= num_vertices:
        raise Sem3RError(f"faces refer to vertex {faces.max()} of {num_vertices}")
    return faces


@numba.njit(cache=True)
def _mesh_edges_kernel(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Unique ``(i, j)``, ``i < j``, of the faces' sides: bucket by ``i`` (counting sort), dedupe each bucket."""
    counts = np.zeros(num_vertices + 1, np.int64)
    for f in range(len(faces)):
        for c in range(3):
            a, b = faces[f, c], faces[f, (c + 1) % 3]
            if a != b:
                counts[min(a, b) + 1] += 1
    for v in range(num_vertices):
        counts[v + 1] += counts[v]
    fill = counts[:-1].copy()
    other = np.empty(counts[-1], np.int64)
    for f in range(len(faces)):
        for c in range(3):
            a, b = faces[f, c], faces[f, (c + 1) % 3]
            if a != b:
                lo = min(a, b)
                other[fill[lo]] = max(a, b)
                fill[lo] += 1
    keep = 0
    for v in range(num_vertices):  # insertion-sort each (short) bucket, drop repeats, compact in place
        lo, hi = counts[v], counts[v + 1]
        for t in range(lo + 1, hi):
            x = other[t]
            u = t - 1
            while u >= lo and other[u] > x:
                other[u + 1] = other[u]
                u -= 1
            other[u + 1] = x
        counts[v] = keep
        for t in range(lo, hi):
            if t == lo or other[t] != other[t - 1]:
                other[keep] = other[t]
                keep += 1
    counts[num_vertices] = keep
    out = np.empty((keep, 2), np.int64)
    for v in range(num_vertices):
        for t in range(counts[v], counts[v + 1]):
            out[t, 0] = v
            out[t, 1] = other[t]
    return out


def mesh_edges(faces: np.ndarray, num_vertices: int | None = None) -> np.ndarray:
    """Unique undirected edges of a triangle mesh.

    One numba pass buckets the faces' sides by their smaller vertex (a counting sort) and removes
    repeats within each bucket (a vertex has a handful of neighbours), ``O(F)``: 25x faster than
    ``np.sort`` of packed ``(i, j)`` keys for 2M faces.

    Args:
        faces: ``(F, 3) int`` vertex indices per triangle.
        num_vertices: ``M``; when given, indices must lie in ``[0, M)``.

    Returns:
        ``(E, 2) int64`` with ``i < j``, sorted, each edge once (degenerate faces give no self loops).

    Raises:
        Sem3RError: faces not ``(F, 3)`` integers, negative or out-of-range indices.

    Example:
        >>> mesh_edges(np.array([[0, 1, 2], [2, 1, 3]])).tolist()
        [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    """
    faces = face_array(faces, num_vertices)
    if not len(faces):
        return np.zeros((0, 2), np.int64)
    span = int(faces.max()) + 1 if num_vertices is None else int(num_vertices)
    return _mesh_edges_kernel(faces, span)


@numba.njit(cache=True)
def _area_normals_kernel(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    sums = np.zeros((len(verts), 3), np.float64)
    for f in range(len(faces)):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        ux, uy, uz = verts[i1, 0] - verts[i0, 0], verts[i1, 1] - verts[i0, 1], verts[i1, 2] - verts[i0, 2]
        vx, vy, vz = verts[i2, 0] - verts[i0, 0], verts[i2, 1] - verts[i0, 1], verts[i2, 2] - verts[i0, 2]
        cx, cy, cz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        for i in (i0, i1, i2):
            sums[i, 0] += cx
            sums[i, 1] += cy
            sums[i, 2] += cz
    for i in range(len(verts)):
        n = np.sqrt(sums[i, 0] ** 2 + sums[i, 1] ** 2 + sums[i, 2] ** 2)
        if n > 0:
            sums[i, 0] /= n
            sums[i, 1] /= n
            sums[i, 2] /= n
    return sums


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals of a triangle mesh.

    Each face contributes its cross product ``(v1 - v0) x (v2 - v0)`` (twice its area times its unit
    normal, oriented by the winding) to its three vertices; the sums are normalised. ScanNet's
    Segmentator averages the faces' *unit* normals instead (:func:`scannet_mesh_graph`); area
    weighting keeps slivers of remeshed or reconstructed surfaces from tilting a vertex's normal.
    Vertices in no face (or only in degenerate ones) get the zero vector. One numba pass over the
    faces (2M faces: ~30 ms).

    Args:
        vertices: ``(M, 3)`` float vertex positions.
        faces: ``(F, 3) int`` counter-clockwise triangles (seen from the side the normal points to).

    Returns:
        ``(M, 3) float64`` unit normals (zero rows for isolated vertices).

    Example:
        >>> v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]])
        >>> vertex_normals(v, np.array([[0, 1, 2]])).tolist()
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    verts = point_array(vertices, "mesh vertices")
    faces = face_array(faces, len(verts))
    return _area_normals_kernel(np.ascontiguousarray(verts, np.float64), faces)


@numba.njit(cache=True, error_model="numpy")  # 0 / 0 gives NaN as in C++, not an exception
def _scannet_kernel(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = len(verts)
    normals = np.zeros((m, 3), np.float32)
    counts = np.zeros(m, np.float32)
    one = np.float32(1.0)
    for f in range(len(faces)):
        i1, i2, i3 = faces[f, 0], faces[f, 1], faces[f, 2]
        ux, uy, uz = verts[i2, 0] - verts[i1, 0], verts[i2, 1] - verts[i1, 1], verts[i2, 2] - verts[i1, 2]
        vx, vy, vz = verts[i3, 0] - verts[i1, 0], verts[i3, 1] - verts[i1, 1], verts[i3, 2] - verts[i1, 2]
        cx, cy, cz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        n = np.sqrt(cx * cx + cy * cy + cz * cz)
        cx, cy, cz = cx / n, cy / n, cz / n
        for i in (i1, i2, i3):  # running mean: n_i <- t * face + (1 - t) * n_i with t = 1 / (count + 1)
            t = one / (counts[i] + one)
            u = one - t
            normals[i, 0] = t * cx + u * normals[i, 0]
            normals[i, 1] = t * cy + u * normals[i, 1]
            normals[i, 2] = t * cz + u * normals[i, 2]
            counts[i] += one
    src = np.empty(3 * len(faces), np.int64)
    dst = np.empty(3 * len(faces), np.int64)
    weights = np.empty(3 * len(faces), np.float32)
    for f in range(len(faces)):
        i1, i2, i3 = faces[f, 0], faces[f, 1], faces[f, 2]
        src[3 * f], dst[3 * f] = i1, i2
        src[3 * f + 1], dst[3 * f + 1] = i1, i3
        src[3 * f + 2], dst[3 * f + 2] = i3, i2
    for e in range(len(src)):
        a, b = src[e], dst[e]
        dx, dy, dz = verts[b, 0] - verts[a, 0], verts[b, 1] - verts[a, 1], verts[b, 2] - verts[a, 2]
        dd = np.sqrt(dx * dx + dy * dy + dz * dz)
        dx, dy, dz = dx / dd, dy / dd, dz / dd
        dot = normals[a, 0] * normals[b, 0] + normals[a, 1] * normals[b, 1] + normals[a, 2] * normals[b, 2]
        far = normals[b, 0] * dx + normals[b, 1] * dy + normals[b, 2] * dz
        w = one - dot
        weights[e] = w * w if far > 0 else w
    return normals, np.stack((src, dst), axis=1), weights


def scannet_mesh_graph(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The graph ScanNet's ``Segmentator`` tool builds from a mesh, in its float32 arithmetic.

    Rules of that tool (public ScanNet repository, ``Segmentator/segmentator.cpp``), reproduced:

    - vertex positions are float32;
    - each face ``(i1, i2, i3)`` has the unit normal ``normalize((p2 - p1) x (p3 - p1))``; a vertex's
      normal is the running mean ``n <- t f + (1 - t) n``, ``t = 1 / (count + 1)``, of its faces'
      unit normals in face order, never re-normalised (its length is below 1 where faces disagree);
    - every face contributes three directed edges ``i1 -> i2``, ``i1 -> i3``, ``i3 -> i2``, so an edge
      shared by two faces appears twice (once per face, in either direction);
    - the edge ``a -> b`` weighs ``w = 1 - n_a . n_b``, squared when ``n_b . d > 0`` with ``d`` the
      unit vector from ``a`` to ``b`` (the far vertex's normal against the direction: one-sided,
      so the two copies of an edge can differ and the lighter one decides).

    A zero-area face has no normal: NaN in the tool, which then poisons its vertices' normals and
    every edge touching them; here too (:func:`~sem3r.geometry.felzenszwalb.felzenszwalb_scannet`
    then treats NaN weights as the tool does).

    Args:
        vertices: ``(M, 3)`` vertex positions (rounded to float32).
        faces: ``(F, 3) int`` triangles.

    Returns:
        ``normals (M, 3) float32``, ``edges (3F, 2) int64`` (directed, face by face) and
        ``weights (3F,) float32``.

    Example:
        >>> v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> n, e, w = scannet_mesh_graph(v, np.array([[0, 1, 2]]))
        >>> n[0].tolist(), e.tolist(), w.tolist()
        ([0.0, 0.0, 1.0], [[0, 1], [0, 2], [2, 1]], [0.0, 0.0, 0.0])
    """
    verts = point_array(vertices, "mesh vertices")
    faces = face_array(faces, len(verts))
    return _scannet_kernel(np.ascontiguousarray(verts, np.float32), faces)


@numba.njit(cache=True, parallel=True)
def _weights_kernel(points: np.ndarray, normals: np.ndarray, src: np.ndarray, dst: np.ndarray, oriented: bool) -> np.ndarray:
    out = np.empty(len(src), np.float64)
    for e in numba.prange(len(src)):
        a, b = src[e], dst[e]
        dot = normals[a, 0] * normals[b, 0] + normals[a, 1] * normals[b, 1] + normals[a, 2] * normals[b, 2]
        if not oriented:
            out[e] = max(1.0 - abs(dot), 0.0)
            continue
        w = max(1.0 - dot, 0.0)
        convex = 0.0
        for c in range(3):
            convex += (normals[b, c] - normals[a, c]) * (points[b, c] - points[a, c])
        out[e] = w * w if convex > 0 else w
    return out


def geometric_weights(points: np.ndarray, normals: np.ndarray, edges: np.ndarray, oriented: bool = True) -> np.ndarray:
    """ScanNet Segmentator edge weights: how much the surface bends across each edge.

    ScanNet's ``Segmentator`` (Felzenszwalb on mesh vertices, defaults ``kThresh = 0.01``,
    ``segMinVerts = 20``) weighs the mesh edge ``(a, b)`` by ``w = 1 - n_a . n_b`` and squares it
    (``w^2 <= w``, so convex creases cost less) when the edge is convex, which it tests as
    ``n_b . (p_b - p_a) > 0``: with outward normals, walking from ``a`` to ``b`` over a convex crease
    the surface turns away, so ``b``'s normal leans along the walk. That test depends on which
    endpoint is listed first; here it is made symmetric, ``(n_b - n_a) . (p_b - p_a) > 0``, which
    agrees with ScanNet's whenever ``a``'s normal is perpendicular to the edge (``n_a . d = 0``) and
    in general is the convexity criterion of e.g. LCCP (Stein et al. 2014): positive on any convex
    surface (a sphere with outward normals gives ``|p_b - p_a|^2 / r``), negative on a concave one.
    Weights lie in ``[0, 4]`` (as in ScanNet, a convex edge whose normals are more than 90 degrees
    apart squares a weight above 1); rounding below 0 is clipped.

    Convexity needs consistently oriented normals (all pointing out of the surface toward the side
    it was seen from): mesh normals from the winding, or PCA normals flipped toward the camera that
    saw each point (:func:`sem3r.geometry.normals.normals_from_neighbours` with viewpoints). With
    ``oriented=False`` the normals' signs are taken as arbitrary: the weight is the sign-invariant
    ``1 - |n_a . n_b|`` and no edge is discounted as convex (convexity is undefined without a side).

    Args:
        points: ``(M, 3)`` positions.
        normals: ``(M, 3)`` unit normals.
        edges: ``(E, 2) int`` node pairs.
        oriented: whether the normals' signs are meaningful (see above).

    Returns:
        ``(E,) float64`` non-negative weights.

    Raises:
        Sem3RError: shapes disagree, NaN values, or edge indices out of range.

    Example:
        >>> p, s = np.array([[0.0, 0, 0], [1, 0, 0]]), np.sqrt(0.5)
        >>> ridge, valley = np.array([[0, 0, 1], [s, 0, s]]), np.array([[0, 0, 1], [-s, 0, s]])
        >>> [geometric_weights(p, n, np.array([[0, 1]])).round(6).tolist() for n in (ridge, valley)]
        [[0.085786], [0.292893]]
    """
    pts = point_array(points, "weight points")
    nrm = point_array(normals, "normals")
    if nrm.shape != pts.shape:
        raise Sem3RError(f"normals must have the points' shape {pts.shape}, got {nrm.shape}")
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[1] != 2 or (edges.size and not np.issubdtype(edges.dtype, np.integer)):
        raise Sem3RError(f"edges must be (E, 2) integer node pairs, got {edges.dtype} {edges.shape}")
    if edges.size and (edges.min() < 0 or edges.max() >= len(pts)):
        raise Sem3RError(f"edge node ids must lie in [0, {len(pts)})")
    return checked_weights(pts, nrm, edges, oriented)


def checked_weights(points: np.ndarray, normals: np.ndarray, edges: np.ndarray, oriented: bool) -> np.ndarray:
    """:func:`geometric_weights` without its checks, for callers whose inputs are valid by construction.

    Args:
        points: ``(M, 3) float64``; normals: ``(M, 3) float64``; edges: ``(E, 2) int`` in ``[0, M)``.
    """
    edges = np.asarray(edges, np.int64)
    return _weights_kernel(np.asarray(points, np.float64), np.asarray(normals, np.float64),
                           np.ascontiguousarray(edges[:, 0]), np.ascontiguousarray(edges[:, 1]), bool(oriented))
