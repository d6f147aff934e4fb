"""Felzenszwalb-Huttenlocher graph segmentation on a generic weighted edge list (numba).

The algorithm (Felzenszwalb & Huttenlocher, "Efficient Graph-Based Image Segmentation", IJCV 2004):

1. Sort the edges by non-decreasing weight (stable, so ties keep their input order).
2. Start with every node in its own component. For each edge ``(a, b, w)`` joining two different
   components ``A`` and ``B``, merge them when ``w <= min(Int(A) + k/|A|, Int(B) + k/|B|)``,
   where ``Int(C)`` is the internal difference of ``C`` (the largest weight of its minimum spanning
   tree, which is the weight of the edge that last merged it because edges arrive sorted; 0 for a
   single node). ``k`` sets the scale: larger ``k`` gives larger components.
3. A second pass over the same sorted edges merges any two components joined by an edge while
   either of them has fewer than ``min_size`` nodes.

Optionally some nodes are *anchored* (nodes with reliable features, e.g. pixels with valid depth)
and the rest are not (pixels without depth, whose edges carry only part of the evidence). Two
components that both hold an anchored node then merge only along an edge between two anchored
nodes, so non-anchored nodes join one neighbouring component but never bridge two: a chain of
depth-less pixels cannot glue a foreground object to the wall behind it. The ``min_size`` pass
lifts this rule when one of the two components is smaller than ``min_size`` (a small fragment is
absorbed, which cannot join two large components either).

Components are kept in a union-find forest with path compression and union by rank. The graph is
anything with an edge list: an image grid (:func:`image_grid_edges`), a KNN graph over points
(superpoints), a mesh. Nodes without edges stay singletons (unless ``min_size`` could merge them,
which needs an edge).
"""

from __future__ import annotations

import numba
import numpy as np

from sem3r.errors import Sem3RError


@numba.njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True)
def _union(parent: np.ndarray, rank: np.ndarray, size: np.ndarray, a: int, b: int) -> int:
    if rank[a] < rank[b]:
        a, b = b, a
    parent[b] = a
    size[a] += size[b]
    if rank[a] == rank[b]:
        rank[a] += 1
    return a


@numba.njit(cache=True)
def _segment(num_nodes: int, src: np.ndarray, dst: np.ndarray, weights: np.ndarray, k: float, min_size: int,
             anchored: np.ndarray) -> np.ndarray:
    parent = np.arange(num_nodes)
    rank = np.zeros(num_nodes, np.int64)
    size = np.ones(num_nodes, np.int64)
    internal = np.zeros(num_nodes, np.float64)
    holds = anchored.copy()  # per root: the component holds an anchored node
    for e in range(len(src)):
        a = _find(parent, src[e])
        b = _find(parent, dst[e])
        if a == b:
            continue
        if holds[a] and holds[b] and not (anchored[src[e]] and anchored[dst[e]]):
            continue  # a non-anchored node never bridges two anchored components
        w = weights[e]
        if w <= internal[a] + k / size[a] and w <= internal[b] + k / size[b]:
            either = holds[a] or holds[b]
            root = _union(parent, rank, size, a, b)
            internal[root] = w  # edges arrive sorted: w is the largest MST edge of the union
            holds[root] = either
    for e in range(len(src)):
        a = _find(parent, src[e])
        b = _find(parent, dst[e])
        if a != b and (size[a] < min_size or size[b] < min_size):
            either = holds[a] or holds[b]
            root = _union(parent, rank, size, a, b)
            holds[root] = either
    roots = np.empty(num_nodes, np.int64)
    for i in range(num_nodes):
        roots[i] = _find(parent, i)
    return roots


def felzenszwalb_segment(num_nodes: int, edges: np.ndarray, weights: np.ndarray, k: float, min_size: int = 1,
                         anchored: np.ndarray | None = None) -> np.ndarray:
    """Segment a weighted graph into components (see the module docstring for the algorithm).

    Args:
        num_nodes: number of nodes ``V``; nodes are ``0 .. V-1``.
        edges: ``(E, 2) int`` node pairs (undirected; self-loops are ignored).
        weights: ``(E,) float`` non-negative dissimilarities (larger = less alike).
        k: scale parameter ``>= 0``; ``k = 0`` merges only along zero-weight edges.
        min_size: components smaller than this are merged with a neighbour in a final pass along
            the sorted edges (``<= 1`` disables it).
        anchored: optional ``(V,) bool``; two components holding anchored nodes merge only along an
            edge between anchored nodes (see the module docstring). ``None``: every node is anchored
            (plain Felzenszwalb-Huttenlocher).

    Returns:
        ``(V,) int64`` component labels ``0 .. L-1``, numbered in order of each component's
        smallest node.

    Raises:
        Sem3RError: malformed edges, out-of-range node ids, NaN or negative weights, negative ``k``,
            ``anchored`` of the wrong shape.

    Example:
        >>> edges = np.array([[0, 1], [1, 2], [2, 3]])
        >>> felzenszwalb_segment(4, edges, np.array([0.0, 5.0, 0.0]), k=1.0).tolist()
        [0, 0, 1, 1]
        >>> felzenszwalb_segment(3, edges[:2], np.zeros(2), k=1.0, anchored=np.array([True, False, True])).tolist()
        [0, 0, 1]
    """
    num_nodes = int(num_nodes)
    if num_nodes < 0:
        raise Sem3RError(f"num_nodes must be non-negative, got {num_nodes}")
    edges = np.asarray(edges)
    weights = np.asarray(weights, np.float64)
    if edges.size == 0:
        edges = edges.reshape(0, 2)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise Sem3RError(f"edges must have shape (E, 2), got {edges.shape}")
    if not np.issubdtype(edges.dtype, np.integer) and edges.size:
        raise Sem3RError(f"edges must hold integer node ids, got {edges.dtype}")
    edges = edges.astype(np.int64)
    if weights.shape != (len(edges),):
        raise Sem3RError(f"weights must have shape ({len(edges)},), got {weights.shape}")
    if len(edges) and (edges.min() < 0 or edges.max() >= num_nodes):
        raise Sem3RError(f"edge node ids must lie in [0, {num_nodes}), got [{edges.min()}, {edges.max()}]")
    if not np.isfinite(weights).all():
        raise Sem3RError("edge weights contain NaN or inf")
    if len(weights) and weights.min() < 0:
        raise Sem3RError(f"edge weights must be non-negative, got {weights.min()}")
    if not k >= 0:
        raise Sem3RError(f"k must be non-negative, got {k}")
    if anchored is None:
        anchored = np.ones(num_nodes, bool)
    anchored = np.asarray(anchored, bool)
    if anchored.shape != (num_nodes,):
        raise Sem3RError(f"anchored must have shape ({num_nodes},), got {anchored.shape}")
    order = np.argsort(weights, kind="stable")
    roots = _segment(num_nodes, edges[order, 0], edges[order, 1], weights[order], float(k), int(min_size), anchored)
    _, first, labels = np.unique(roots, return_index=True, return_inverse=True)
    rank_of_component = np.argsort(np.argsort(first))  # number components by their smallest node
    return rank_of_component[labels.reshape(-1)].astype(np.int64)


def image_grid_edges(height: int, width: int, connectivity: int = 4) -> np.ndarray:
    """Edges between neighbouring pixels of an ``H x W`` grid; pixel ``(r, c)`` is node ``r * W + c``.

    Args:
        height: ``H``.
        width: ``W``.
        connectivity: 4 (right and down neighbours) or 8 (also both diagonals).

    Returns:
        ``(E, 2) int64`` with ``E = H(W-1) + (H-1)W`` for 4-connectivity, plus ``2(H-1)(W-1)`` for 8;
        each undirected edge appears once.

    Example:
        >>> image_grid_edges(2, 2).tolist()
        [[0, 1], [2, 3], [0, 2], [1, 3]]
    """
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise Sem3RError(f"image grid must be at least 1x1, got {height}x{width}")
    if connectivity not in (4, 8):
        raise Sem3RError(f"connectivity must be 4 or 8, got {connectivity}")
    idx = np.arange(height * width, dtype=np.int64).reshape(height, width)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])]
    if connectivity == 8:
        pairs += [(idx[:-1, :-1], idx[1:, 1:]), (idx[:-1, 1:], idx[1:, :-1])]
    return np.concatenate([np.stack([a.reshape(-1), b.reshape(-1)], axis=1) for a, b in pairs])
