"""Superpoints: Felzenszwalb segments of a point cloud's (or mesh's) geometric graph, optionally cut at
2D instance boundaries (OVSeg3R section 3.3 and appendix A.2).

Pipeline of :func:`scene_superpoints`, the entry point of training and inference:

1. one KNN query over the points (:func:`~sem3r.superpoints.graph.knn_neighbours`);
2. its first ``k`` neighbours become the undirected graph (:func:`~sem3r.superpoints.graph.edges_from_neighbours`),
   its first ``normal_k`` the PCA patches of the normals, each normal flipped toward the centre of
   the camera that reconstructed the point (``corr.view``);
3. with 2D instance masks, IBSp removes the edges that cross a 2D instance boundary
   (:func:`~sem3r.superpoints.ibsp.instance_boundary_cut`);
4. ScanNet Segmentator weights (:func:`~sem3r.superpoints.graph.geometric_weights`);
5. Felzenszwalb-Huttenlocher with threshold ``kthresh`` and the ``min_size`` merge pass
   (:func:`sem3r.geometry.felzenszwalb.felzenszwalb_segment`) over the remaining edges.

:func:`compute_superpoints` runs steps 1, 2, 4, 5 on bare points (with optional precomputed normals,
edges and an IBSp keep mask); :func:`mesh_superpoints` uses a mesh's edges and vertex normals
instead of the KNN graph, as ScanNet's Segmentator does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import point_array
from sem3r.geometry.camera import camera_centers
from sem3r.geometry.felzenszwalb import felzenszwalb_scannet, felzenszwalb_segment
from sem3r.geometry.normals import normals_from_neighbours
from sem3r.reconstruct.correspondence import Correspondence
from sem3r.superpoints.graph import (
    checked_weights,
    edges_from_neighbours,
    face_array,
    knn_neighbours,
    mesh_edges,
    scannet_mesh_graph,
    vertex_normals,
)
from sem3r.superpoints.ibsp import IBSP_VIEWS, instance_boundary_cut

COMPAT = (None, "scannet")
"""Compatibility modes of :func:`mesh_superpoints`: ``None`` (Sem3R's graph) or ``"scannet"`` (the
ScanNet Segmentator tool's partition, exactly)."""

WEIGHTS = ("scannet", "angle")
"""Edge weights: ``scannet`` = ``1 - n_i . n_j``, squared on convex edges (needs oriented normals);
``angle`` = ``1 - |n_i . n_j|`` (sign-invariant, no convexity)."""


@dataclass
class SuperpointConfig:
    """Settings of the superpoint graph and its Felzenszwalb segmentation.

    ScanNet's Segmentator (Felzenszwalb on mesh vertices, the superpoints of ScanNet and of the 3D
    instance segmenters trained on it) uses ``kthresh = 0.01`` and ``min_size = 20`` (its
    ``kThresh`` and ``segMinVerts``) on meshes with about 2 cm edges; the defaults keep them, for
    reconstructed indoor scenes in metres voxelised at 2-3 cm. On synthetic rooms
    (``benchmarks/superpoints_scaling.py``, 10 views, 2 cm voxels) ``kthresh`` between 0.002 and
    0.05 changes little on exact geometry (planes weigh 0), while on noisy depth larger values
    merge flat objects into walls; ``k = 10`` graph neighbours and ``normal_k = 16`` PCA points
    (one KNN query of 16 columns serves both) keep the normals of noisy points usable, and take
    2.5-4 s for 1M points on 2 shared cores, most of it in scipy's KNN query (``normal_k = 11``, one
    11-column query, is faster but gives more superpoints: BR +0.025, BP -0.006 on noisy rooms).

    Attributes:
        k: graph neighbours per point (the KNN graph joins ``i`` and ``j`` when either lists the other).
        normal_k: points per PCA normal patch, the point itself included (at least 3).
        kthresh: Felzenszwalb scale ``k`` (in units of the edge weight); larger gives larger superpoints.
        min_size: superpoints smaller than this many points merge into a neighbour.
        weights: ``"scannet"`` or ``"angle"`` (see :data:`WEIGHTS`).
        ibsp_views: the views IBSp reads each edge in: ``"all"`` or ``"endpoints"`` (the paper's
            Algorithm 1; see :func:`~sem3r.superpoints.ibsp.instance_boundary_cut`).
        workers: threads of the KNN query (``-1``: all cores).
        compat: ``None`` or ``"scannet"``: :func:`mesh_superpoints` reproduces the partition of
            ScanNet's ``Segmentator`` tool exactly (its graph, float32 arithmetic and sort order,
            :func:`~sem3r.superpoints.graph.scannet_mesh_graph`); meshes only.

    Sem3R's own mesh graph stays the default: each undirected edge once, area-weighted unit vertex
    normals (slivers do not tilt them) and the symmetric convexity test ``(n_b - n_a) . (p_b -
    p_a) > 0`` (independent of which endpoint is listed first), in float64. ScanNet's tool instead
    keeps both directed copies of an edge with a one-sided test (``n_b . d > 0``, so the lighter
    copy decides: 59% of the edges of a real mesh count as convex against 47%) and plain means of
    unit face normals never re-normalised (median length 0.98, which raises every weight by about
    ``1 - |n_a||n_b|``). Both partitions have the same quality (under-segmentation error 0.085 vs
    0.088 on a real ScanNet room, issue 15), but ScanNet's instance annotations are unions of
    exactly the tool's segments, so evaluations on ScanNet need ``compat="scannet"``.
    """

    k: int = 10
    normal_k: int = 16
    kthresh: float = 0.01
    min_size: int = 20
    weights: Literal["scannet", "angle"] = "scannet"
    ibsp_views: Literal["all", "endpoints"] = "all"
    workers: int = -1
    compat: Literal["scannet"] | None = None

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.k < 1:
            raise Sem3RError(f"superpoint k must be at least 1, got {self.k}")
        if self.normal_k < 3:
            raise Sem3RError(f"superpoint normal_k must be at least 3, got {self.normal_k}")
        if not (np.isfinite(self.kthresh) and self.kthresh >= 0):
            raise Sem3RError(f"superpoint kthresh must be finite and non-negative, got {self.kthresh}")
        if self.min_size < 1:
            raise Sem3RError(f"superpoint min_size must be at least 1, got {self.min_size}")
        if self.ibsp_views not in IBSP_VIEWS:
            raise Sem3RError(f"unknown ibsp_views '{self.ibsp_views}' (expected one of {', '.join(IBSP_VIEWS)})")
        if self.weights not in WEIGHTS:
            raise Sem3RError(f"unknown superpoint weights '{self.weights}' (expected one of {', '.join(WEIGHTS)})")
        if self.workers == 0 or self.workers < -1:
            raise Sem3RError(f"superpoint workers must be -1 or positive, got {self.workers}")
        if self.compat not in COMPAT:
            raise Sem3RError(f"unknown superpoint compat '{self.compat}' (expected None or 'scannet')")

    def _points_only(self) -> None:
        if self.compat is not None:
            raise Sem3RError(f"superpoint compat='{self.compat}' reproduces a mesh tool: use mesh_superpoints")


def compute_superpoints(points: np.ndarray, config: SuperpointConfig | None = None, normals: np.ndarray | None = None,
                        viewpoints: np.ndarray | None = None, edges: np.ndarray | None = None,
                        keep: np.ndarray | None = None) -> np.ndarray:
    """Superpoints of a point set: Felzenszwalb on its geometric graph.

    Missing edges and normals come from one KNN query (``k`` graph neighbours, ``normal_k`` patch
    points). Normals are oriented when they are given (taken as consistently oriented, e.g. mesh or
    ground-truth normals) or when ``viewpoints`` are (PCA normals, and given ones, are flipped toward
    them); only then can the ``scannet`` weights tell convex edges from concave ones, otherwise every
    edge gets the sign-invariant ``1 - |n_i . n_j|``.

    Args:
        points: ``(M, 3)`` points, ``M >= 1`` (``M >= 3`` when normals are estimated).
        config: graph and segmentation settings (default :class:`SuperpointConfig`).
        normals: ``(M, 3)`` unit normals (default: PCA of the KNN patches).
        viewpoints: ``(3,)`` or ``(M, 3)``: where each point was seen from (e.g. its camera centre).
        edges: ``(E, 2) int`` graph edges, e.g. a mesh's (default: the KNN graph).
        keep: ``(E,) bool`` mask of ``edges`` to use, e.g. from IBSp; needs ``edges``.

    Returns:
        ``(M,) int64`` superpoint ids ``0 .. S-1``, numbered in order of each superpoint's first point.

    Raises:
        Sem3RError: NaN or malformed points, normals, edges or mask; an invalid config.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> floor = np.c_[rng.uniform(0, 1, (400, 2)), np.zeros(400)]
        >>> wall = np.c_[rng.uniform(0, 1, 400), np.full(400, 1.0), rng.uniform(0.02, 1, 400)]
        >>> ids = compute_superpoints(np.r_[floor, wall], viewpoints=np.array([0.5, 0.5, 0.5]))
        >>> int(ids.max()) + 1, int(np.bincount(ids[:400]).argmax()), int(np.bincount(ids[400:]).argmax())
        (2, 0, 1)
    """
    config = config or SuperpointConfig()
    config.validate()
    config._points_only()
    pts = point_array(points, "superpoint points", min_points=1)
    if keep is not None and edges is None:
        raise Sem3RError("an edge keep mask needs the edges it refers to (pass edges)")
    view = _viewpoint_array(viewpoints, pts.shape)
    oriented = config.weights == "scannet" and (normals is not None or view is not None)
    edges = None if edges is None else _edge_array(edges, len(pts))
    normals = None if normals is None else _normal_array(normals, pts.shape)
    if edges is None or normals is None:
        graph, estimated = knn_graph(pts, config, view, want_edges=edges is None, want_normals=normals is None)
        edges = graph if edges is None else edges
        normals = estimated if normals is None else normals
    elif view is not None:
        normals = _orient(pts, normals, view)
    if keep is not None:
        keep = np.asarray(keep)
        if keep.shape != (len(edges),) or keep.dtype != bool:
            raise Sem3RError(f"keep must be a ({len(edges)},) bool mask of the edges, got {keep.dtype} {keep.shape}")
        edges = edges[keep]
    weights = checked_weights(pts, normals, edges, oriented)  # edges and normals were checked above
    return felzenszwalb_segment(len(pts), edges, weights, config.kthresh, config.min_size)


def scene_superpoints(corr: Correspondence, config: SuperpointConfig | None = None,
                      view_masks: np.ndarray | None = None, return_normals: bool = False,
                      lifted: np.ndarray | None = None):
    """Superpoints of a reconstructed scene's points, IBSp-constrained when 2D masks are given.

    The KNN graph and the PCA normals come from one query over ``corr.points``; each normal is
    flipped toward the centre of the camera that reconstructed its point (``corr.view``), which
    orients all normals out of the surfaces toward the side they were seen from, as the ``scannet``
    weights need. With ``view_masks``, IBSp (:func:`~sem3r.superpoints.ibsp.instance_boundary_cut`)
    removes every edge whose endpoints carry different 2D instance ids before Felzenszwalb runs.

    Args:
        corr: the scene's 2D-3D correspondence record (``M >= 3`` points).
        config: graph and segmentation settings (default :class:`SuperpointConfig`).
        view_masks: ``(N, H, W) int`` per-view 2D instance ids of ``corr``'s views (-1 = unlabelled;
            ids need not agree across views), or ``None`` for geometric superpoints.
        return_normals: also return the oriented PCA normals the weights were computed from.
        lifted: ``corr.lift_view_masks(view_masks)`` when the caller has it already.

    Returns:
        ``(M,) int64`` superpoint ids ``0 .. S-1``; with ``return_normals`` also the ``(M, 3)
        float64`` unit normals.

    Raises:
        Sem3RError: masks that do not match the views, an invalid config, fewer than 3 points.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> from sem3r.reconstruct.correspondence import CorrespondenceConfig, build_correspondence
        >>> scene = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64, num_points=0)).scene
        >>> corr = build_correspondence(scene, CorrespondenceConfig(voxel_size=0.05))
        >>> ids = scene_superpoints(corr, view_masks=scene.instance_masks)
        >>> ids.shape == (corr.num_points,), int(ids.min())
        (True, 0)
    """
    config = config or SuperpointConfig()
    config.validate()
    config._points_only()
    if view_masks is not None and lifted is None:
        lifted = corr.lift_view_masks(view_masks)  # checks the masks first
    pts = corr.points.astype(np.float64)
    view = camera_centers(corr.cam_from_world)[corr.view]
    edges, normals = knn_graph(pts, config, view)
    keep = None if view_masks is None else instance_boundary_cut(corr, edges, view_masks, lifted=lifted,
                                                                 views=config.ibsp_views)
    ids = compute_superpoints(pts, config, normals=normals, edges=edges, keep=keep)
    return (ids, normals) if return_normals else ids


def mesh_superpoints(vertices: np.ndarray, faces: np.ndarray, config: SuperpointConfig | None = None,
                     corr: Correspondence | None = None, view_masks: np.ndarray | None = None) -> np.ndarray:
    """Superpoints of a triangle mesh (ScanNet Segmentator mode), IBSp-constrained when 2D masks are given.

    The graph is the mesh's edges (:func:`~sem3r.superpoints.graph.mesh_edges`) and the normals are
    area-weighted vertex normals oriented by the faces' winding
    (:func:`~sem3r.superpoints.graph.vertex_normals`). With ``config.compat == "scannet"`` the graph,
    weights, arithmetic and merge order are those of ScanNet's ``Segmentator`` tool
    (:func:`~sem3r.superpoints.graph.scannet_mesh_graph`,
    :func:`~sem3r.geometry.felzenszwalb.felzenszwalb_scannet`): the same partition as the tool
    built with GCC (adjusted Rand index 1.0 on real meshes of 81k to 3M vertices). For IBSp the
    caller supplies the vertices' correspondence record, e.g. ``correspond_points(vertices, scene)``,
    with the views' 2D masks. ScanNet's own settings are ``SuperpointConfig(kthresh=0.01, min_size=20)``
    (the defaults).

    Speed (2 shared cores, real meshes from 7-Scenes depth maps, ``benchmarks/superpoints_scaling.py``):
    every stage is one numba pass or a radix sort: 0.5 s for 1M vertices and 1.9 s for 3M by
    default (0.75x and 0.8x the compute time of ScanNet's C++ tool built with ``-O3``);
    ``compat="scannet"`` sorts twice as many edges with the tool's own algorithm (1.1 s and 4.3 s).

    Args:
        vertices: ``(M, 3)`` vertex positions.
        faces: ``(F, 3) int`` triangles.
        config: segmentation settings (``k``, ``normal_k`` and ``weights`` are unused).
        corr: correspondence record of ``vertices`` (used with ``view_masks`` only).
        view_masks: ``(N, H, W) int`` per-view 2D instance ids of ``corr``'s views, or ``None``.

    Returns:
        ``(M,) int64`` superpoint ids ``0 .. S-1`` (vertices in no face are singletons).

    Raises:
        Sem3RError: malformed mesh, masks without a matching ``corr``, an invalid config.

    Example:
        >>> v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [5, 5, 5]])  # a square and a stray vertex
        >>> mesh_superpoints(v, np.array([[0, 1, 2], [2, 1, 3]]), SuperpointConfig(min_size=1)).tolist()
        [0, 0, 0, 0, 1]
        >>> mesh_superpoints(v, np.array([[0, 1, 2], [2, 1, 3]]), SuperpointConfig(compat="scannet")).tolist()
        [0, 0, 0, 0, 1]
    """
    config = config or SuperpointConfig()
    config.validate()
    verts = point_array(vertices, "mesh vertices", min_points=1)
    faces = face_array(faces, len(verts))
    if config.compat == "scannet":
        _, edges, weights = scannet_mesh_graph(verts, faces)
    else:
        edges = mesh_edges(faces, len(verts))
        normals = vertex_normals(verts, faces)
    keep = None
    if view_masks is not None:
        if corr is None:
            raise Sem3RError("IBSp on a mesh needs the vertices' correspondence record (pass corr)")
        if corr.num_points != len(verts):
            raise Sem3RError(f"corr has {corr.num_points} points but the mesh has {len(verts)} vertices")
        keep = instance_boundary_cut(corr, edges, view_masks, views=config.ibsp_views)
    if keep is not None:
        edges = edges[keep]
        weights = weights[keep] if config.compat == "scannet" else None
    if config.compat == "scannet":
        return felzenszwalb_scannet(len(verts), edges, weights, config.kthresh, config.min_size)
    # what compute_superpoints(verts, config, normals=normals, edges=edges) computes, without re-checking
    weights = checked_weights(verts, normals, edges, oriented=config.weights == "scannet")
    return felzenszwalb_segment(len(verts), edges, weights, config.kthresh, config.min_size)


def knn_graph(pts: np.ndarray, config: SuperpointConfig, view: np.ndarray | None, want_edges: bool = True,
              want_normals: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """KNN edges and PCA normals from one query (``config.k`` graph neighbours, ``config.normal_k`` patch points).

    Args:
        pts: ``(M, 3) float64`` points.
        config: the neighbour counts and query threads.
        view: ``(3,)`` or ``(M, 3)`` viewpoints the normals are flipped toward, or ``None``.
        want_edges: compute the undirected ``(E, 2) int64`` edges.
        want_normals: compute the ``(M, 3)`` unit normals.

    Returns:
        ``(edges, normals)``, ``None`` for what is not wanted.
    """
    if want_normals and len(pts) < 3:
        raise Sem3RError(f"estimating normals needs at least 3 points, got {len(pts)}")
    if len(pts) < 2:
        return np.zeros((0, 2), np.int64), None
    columns = max(config.k + 1 if want_edges else 2, config.normal_k if want_normals else 2)
    neighbours = knn_neighbours(pts, columns - 1, config.workers, distances=False)
    edges = edges_from_neighbours(neighbours[:, : config.k + 1]) if want_edges else None
    normals = normals_from_neighbours(pts, neighbours[:, : config.normal_k], view) if want_normals else None
    return edges, normals


def _edge_array(edges: np.ndarray, num: int) -> np.ndarray:
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[1] != 2 or (edges.size and not np.issubdtype(edges.dtype, np.integer)):
        raise Sem3RError(f"edges must be (E, 2) integer point pairs, got {edges.dtype} {edges.shape}")
    if edges.size and (edges.min() < 0 or edges.max() >= num):
        raise Sem3RError(f"edge point ids must lie in [0, {num})")
    return edges.astype(np.int64, copy=False).reshape(-1, 2)


def _normal_array(normals: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    normals = np.asarray(normals, np.float64)
    if normals.shape != shape:
        raise Sem3RError(f"normals must have the points' shape {shape}, got {normals.shape}")
    if not np.isfinite(normals).all():
        raise Sem3RError("normals contain NaN or infinite values")
    return normals


def _viewpoint_array(viewpoints: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if viewpoints is None:
        return None
    view = np.asarray(viewpoints, np.float64)
    if view.shape not in ((3,), shape):
        raise Sem3RError(f"viewpoints must have shape (3,) or {shape}, got {view.shape}")
    if not np.isfinite(view).all():
        raise Sem3RError("viewpoints contain NaN or infinite values")
    return view


def _orient(pts: np.ndarray, normals: np.ndarray, view: np.ndarray) -> np.ndarray:
    """``normals`` flipped where they point away from ``view`` (``n . (v - p) < 0``)."""
    away = np.einsum("ni,ni->n", normals, np.broadcast_to(view, pts.shape) - pts) < 0
    return np.where(away[:, None], -normals, normals)
