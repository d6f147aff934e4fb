"""Geometric object proposals: objects from dense geometry alone, optionally combined with lifted 2D masks.

No learned weights. In the spirit of LCCP / CPC (Stein et al. 2014, Schoeler et al. 2015), an indoor
object is a piece of surface bounded by concave creases or depth gaps, once the room's structure is
gone:

1. **Points**: the Scene's valid pixels merged per ``voxel_size`` voxel
   (:func:`~sem3r.reconstruct.correspondence.build_correspondence`); one KNN query gives the graph
   and the PCA normals, each turned toward the camera that reconstructed the point.
2. **Structure**: floor, walls and ceiling (:func:`~sem3r.instances.structure.detect_structure`) are
   removed with the graph edges that touch them.
3. **Superpoints** of the remaining graph (Felzenszwalb with ScanNet weights,
   :func:`~sem3r.superpoints.compute_superpoints`): small patches that do not cross sharp creases.
4. **Joins.** For two adjacent superpoints ``a``, ``b`` with mean normals ``n_a``, ``n_b``, the local
   offset ``d`` is the mean of ``p_i - p_j`` over the graph edges between them (``i`` in ``a``):
   the join is *convex* when ``(n_a - n_b) . d / |d| > convex_tolerance`` (LCCP's criterion,
   evaluated at the boundary rather than between far centroids, so a book near the middle of a
   table top is still concave against it), and *flat* when the normals differ by less than
   ``flat_angle`` degrees and ``d`` leaves neither tangent plane by more than ``flat_offset``
   (a thin object lying on a table is not flat with it) or, on sensor depth, than the depth-noise
   band at the join's range (``flat_noise_bands``; the noise is measured on the largest structure plane).
5. **Merging**: superpoints joined by convex or flat joins are connected components (objects);
   concave joins and gaps separate them, and so do weakly convex joins and level flat ones between
   superpoints of different colours (``colour_split``: a pillow against a sofa, noisy at range).
   Legs join the nearest thing they carry, also when missing depth broke them into pieces
   (``leg_*``). With lifted 2D
   instances (``combined``; any mask source), each superpoint takes its points' majority lifted id:
   two superpoints with the same id merge even across a concave crease (a chair's seat and back),
   and two with different ids do not merge across a flat join (two same-height boxes side by
   side) nor a weakly convex one (``strong_convexity``); with the per-view masks, superpoints whose
   joining edges nearly all cross a 2D boundary (IBSp) do not merge across such joins either.
   Points left without a proposal (structure, or fragments too small to be objects) whose lifted 2D
   instance lies mostly in one proposal join it (``mask_claim``: the feet of furniture in a noisy
   floor band, the border of a rug). Wall points whose neighbourhood mean lies several
   standard errors in front of the wall (``relief_*``: the back of a bookshelf, within the per-point
   noise band but measurably a surface of its own) join the proposal they touch and lie inside.
6. **Flat objects on walls** (paintings, posters: flush with the wall, geometrically invisible) by
   texture: a wall's colours are quantised into k-means words and each point gets the histogram of
   words around it (a texture descriptor: a striped wall looks the same everywhere); regions whose
   histograms differ from the wall's are proposals when large enough and at most
   ``max_flat_fraction`` of the wall (:func:`_add_flat_objects`). Doors and windows that RANSAC
   finds as planes of their own flush with a bigger wall (kind ``flush``) are objects, not structure.
7. **Filtering and scores**: proposals with fewer than ``min_points`` points, smaller than
   ``min_extent`` or larger than ``max_extent`` are dropped, as are shells lying on a structure
   plane within its noise band (leftover wall noise; not those on a ``flush`` plane: doors). A proposal's score is the fraction of its
   boundary that is a real separation (concave joins, structure, depth gaps rather than an
   unmerged convex / flat join), times a size term ``min(1, log(points) / log(size_saturation))``;
   in the combined mode, times how whole its lifted 2D segments lie inside it (``mask_score``: a
   fragment of a table ranks below an object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from sem3r.errors import Sem3RError
from sem3r.geometry.camera import camera_centers
from sem3r.geometry.voxels import group_majority
from sem3r.instances.structure import Structure, StructureConfig, detect_structure, ground_basis
from sem3r.reconstruct.correspondence import Correspondence, CorrespondenceConfig, build_correspondence
from sem3r.scene import Scene
from sem3r.superpoints.segment import SuperpointConfig, compute_superpoints, knn_graph


@dataclass
class ProposalConfig:
    """Settings of :func:`geometric_proposals`.

    Attributes:
        voxel_size: points are merged per voxel of this size (m).
        structure_voxel_size: the structure planes are found on voxels of this size (m), then
            labelled on the points (see :func:`estimate_structure`).
        structure: floor / wall / ceiling detection and the up vector.
        superpoints: the point graph (``k`` neighbours, ``normal_k`` points per PCA normal) and the
            Felzenszwalb settings of the superpoints.
        convex_tolerance: a join is convex when ``(n_a - n_b) . d / |d|`` exceeds this.
        strong_convexity: combined mode: a convex join below this convexity does not merge two
            superpoints whose lifted 2D ids differ (noisy creases defer to the 2D cue).
        colour_split: a weakly convex join (convexity below ``strong_convexity``, not flat) between
            superpoints whose mean colours differ by more than this (RGB distance, 0-255) does not
            merge them: at range, sensor noise makes the crease between a pillow and its sofa or a
            vase and its cabinet a weak convexity like a noisy fold of one surface, and colour tells
            them apart. The same holds for flat joins between two level surfaces (a pillow's top
            level with its sofa's back); other flat joins are one continuous surface and merge
            whatever their colours (a door panel in its frame). Parts enclosed by a bigger object
            of another colour stay apart too (:func:`_merge_contained`: books in a shelf). 0: off.
        cut_fraction: combined mode, with the per-view 2D masks: when more than this fraction of
            the graph edges between two superpoints cross a 2D mask boundary in a view that sees
            both (IBSp, :func:`~sem3r.superpoints.ibsp.instance_boundary_cut`), their flat or weakly
            convex join does not merge them (a book lying on a table).
        flat_angle: joins whose normals differ by less than this (degrees) and ...
        flat_offset: ... whose offset leaves the tangent planes by at most this (m) are flat.
        flat_noise_bands: ... or by at most this many depth-noise bands at the join's range (the
            scene's range-scaled noise measured on its largest structure plane, :func:`_noise_coefficient`):
            on sensor depth two patches of one surface are centimetres apart at range (0: off).
        min_points: smallest proposal (points, i.e. voxels).
        min_extent: smallest largest side of a proposal's bounding box (m).
        max_extent: largest largest side (m); bigger ones are leftover structure.
        shell_distance: a proposal with ``shell_fraction`` of its points within this distance (m),
            or ``shell_bands`` times the plane's noise band at their range, of a structure plane,
            and no point beyond twice that, is structure noise.
        shell_fraction: see ``shell_distance``.
        shell_bands: see ``shell_distance``.
        max_flat_fraction: a flat object covers at most this fraction of its wall's points (a door can
            be a third of a short wall).
        flat_kinds: the structure kinds flat objects are looked for on (``()``: none).
        colour_words: colours of a wall are quantised into this many k-means words ...
        min_texture_distance: a point is foreign to its wall when the L1 distance (0-2) between its
            local word histogram and the wall's median histogram exceeds the median distance plus
            ``contrast_sigmas`` robust spreads, clipped to ``min_texture_distance ..
            max_texture_distance`` (on synthetic walls, clean and Kinect-like, wall points lie
            below about 1.1 at their 90th percentile and paintings, posters and doors above 1.2
            at their median).
        max_texture_distance: see ``min_texture_distance``.
        contrast_sigmas: see ``min_texture_distance``.
        min_flat_points: smallest flat object (points).
        min_flat_extent: smallest largest side of a flat object (m).
        colour_smoothing: neighbour-averaging steps of the local word histograms (also the border
            refinement steps).
        flat_score: a flat object's score is this times its size term times its texture distance (flat
            objects rest on colour alone, so they rank below well-bounded geometric proposals).
        leg_floor_gap: a component whose lowest point is within this (m) of the floor stands on it.
        leg_footprint: a standing component under a component whose footprint it has at most this
            fraction of is a leg of it and joins it (table and chair legs, a lamp's pole: their
            joins with what they carry are concave or hidden).
        leg_gap: a leg's top lies within this distance (m) of the lowest point of what it carries
            above the leg's footprint.
        leg_aspect: a leg is upright: its height is at least this times its largest horizontal side
            (a rug or a floor speck under a table is not a leg).
        leg_min_height: a leg is at least this tall (m): a speck of floor noise is no leg (one point passes
            the ``leg_aspect`` test, and each speck a carrier takes grows its box).
        leg_rounds: the leg test is repeated this many times (a leg broken by missing depth joins
            piece by piece).
        leg_floating: components that do not stand on the floor can be legs too (a piece of a leg
            cut off by a hole hangs under what it carries).
        contain_margin: a part whose gravity-aligned box lies inside a bigger touching component's
            box grown by this (m) joins it (shelves in a bookshelf).
        min_mask_agreement: combined mode: a superpoint takes a lifted id when at least this
            fraction of its points carry it.
        mask_claim: combined mode: a point without a proposal (structure, or a dropped fragment) joins
            the proposal that holds at least this fraction of its lifted 2D instance's points (the
            noisy floor / wall band gives back the feet of furniture, the backs of shelves and the
            borders of rugs; 0: off).
        mask_score: combined mode: a proposal's score (after ``min_score``) is multiplied by how whole
            its 2D segments lie inside it (:func:`mask_ownership`), so fragments rank below objects.
        merge_flat_by_mask: combined mode: flat objects whose points mostly (``min_mask_agreement``)
            carry one lifted 2D id are one object (a rug cut in two by its pattern).
        size_saturation: points at which the size term of the score reaches 1.
        relief_sigmas: a structure point whose offset in front of its plane, averaged over its graph
            neighbourhood on the plane (``relief_smoothing`` steps) and measured in the plane's noise
            (its band / ``noise_sigmas`` at the point's range), lies more than this many robust
            spreads of those averages above their median, and more than ``flat_offset`` in front, is
            not structure (:func:`separate_relief`): the back of a bookshelf or a cabinet flush with a
            wall is within the per-point noise band, but its mean lies measurably in front (0: off).
        relief_smoothing: see ``relief_sigmas``.
        relief_inside: a connected group of loose points (relief points, and fragments left without a
            proposal by the filters) joins the proposal it touches when at least this fraction of it
            lies inside that proposal's gravity-aligned box (grown by ``contain_margin``): an object's
            back and the noisy bits around its feet lie within its outline.
        relief_kinds: the structure kinds relief is looked for on.
        min_score: proposals scoring below this are dropped (0.5 keeps the predicted count near
            the true one on the synthetic rooms at no cost in AP).
        seed: seed of the k-means colour words.
    """

    voxel_size: float = 0.02
    structure_voxel_size: float = 0.05
    structure: StructureConfig = field(default_factory=StructureConfig)
    superpoints: SuperpointConfig = field(default_factory=lambda: SuperpointConfig(kthresh=0.01, min_size=10))
    convex_tolerance: float = 0.05
    strong_convexity: float = 0.5
    colour_split: float = 30.0
    cut_fraction: float = 0.9
    flat_angle: float = 15.0
    flat_offset: float = 0.01
    flat_noise_bands: float = 1.0
    min_points: int = 40
    min_extent: float = 0.06
    max_extent: float = 4.0
    shell_distance: float = 0.05
    shell_fraction: float = 0.8
    shell_bands: float = 3.0
    max_flat_fraction: float = 0.5
    flat_kinds: tuple[str, ...] = ("wall", "floor")
    colour_words: int = 8
    min_texture_distance: float = 1.1
    max_texture_distance: float = 1.5
    contrast_sigmas: float = 4.0
    min_flat_points: int = 100
    min_flat_extent: float = 0.15
    colour_smoothing: int = 8
    flat_score: float = 0.6
    leg_floor_gap: float = 0.05
    leg_footprint: float = 0.25
    leg_gap: float = 0.1
    leg_min_height: float = 0.05
    leg_rounds: int = 3
    leg_aspect: float = 1.0
    leg_floating: bool = True
    contain_margin: float = 0.02
    min_mask_agreement: float = 0.5
    mask_claim: float = 0.5
    merge_flat_by_mask: bool = True
    mask_score: bool = True
    size_saturation: float = 2000.0
    relief_sigmas: float = 4.0
    relief_smoothing: int = 8
    relief_inside: float = 0.8
    relief_kinds: tuple[str, ...] = ("wall", "floor")
    min_score: float = 0.5
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if not self.voxel_size > 0:
            raise Sem3RError(f"proposal voxel_size must be positive, got {self.voxel_size}")
        if not 0 < self.flat_angle < 90:
            raise Sem3RError(f"proposal flat_angle must be in (0, 90) degrees, got {self.flat_angle}")
        if self.min_points < 1 or not 0 <= self.min_extent < self.max_extent:
            raise Sem3RError("proposal min_points must be positive and 0 <= min_extent < max_extent")
        if self.colour_split < 0:
            raise Sem3RError(f"proposal colour_split must be non-negative, got {self.colour_split}")
        if self.leg_min_height < 0:
            raise Sem3RError(f"proposal leg_min_height must be non-negative, got {self.leg_min_height}")
        if self.relief_sigmas < 0 or self.relief_smoothing < 1:
            raise Sem3RError(f"proposal relief_sigmas must be non-negative and relief_smoothing >= 1, got "
                             f"{self.relief_sigmas}, {self.relief_smoothing}")
        for name in ("shell_fraction", "max_flat_fraction", "min_mask_agreement", "mask_claim", "relief_inside"):
            if not 0 <= getattr(self, name) <= 1:
                raise Sem3RError(f"proposal {name} must be in [0, 1], got {getattr(self, name)}")
        if self.flat_noise_bands < 0:
            raise Sem3RError(f"proposal flat_noise_bands must be non-negative, got {self.flat_noise_bands}")
        if self.size_saturation <= 1:
            raise Sem3RError(f"proposal size_saturation must exceed 1, got {self.size_saturation}")
        if not self.structure_voxel_size > 0 or self.min_flat_points < 1 or self.colour_smoothing < 0 or \
                self.colour_words < 2:
            raise Sem3RError("proposal structure_voxel_size must be positive, min_flat_points >= 1, "
                             "colour_smoothing >= 0 and colour_words >= 2")
        unknown = set(self.flat_kinds) - {"floor", "wall", "ceiling"}
        if unknown:
            raise Sem3RError(f"proposal flat_kinds must be floor, wall or ceiling, got {sorted(unknown)}")
        self.structure.validate()
        self.superpoints.validate()


@dataclass
class Proposals:
    """Object proposals over the ``M`` points of a correspondence record.

    Attributes:
        correspondence: the points (voxel-merged pixels) and their pixels.
        normals: ``(M, 3) float64`` unit normals, turned toward the cameras.
        structure: floor / walls / ceiling labels of the points and the up vector.
        superpoints: ``(M,) int64`` superpoint of each object point, -1 on structure.
        point_instances: ``(M,) int32`` proposal of each point (row of ``scores``), -1 for none.
        scores: ``(K,) float32`` confidence of each proposal in ``[0, 1]``.
        flat: ``(K,) bool`` the proposal is a flat object found by texture on a structure plane.
    """

    correspondence: Correspondence
    normals: np.ndarray
    structure: Structure
    superpoints: np.ndarray
    point_instances: np.ndarray
    scores: np.ndarray
    flat: np.ndarray

    @property
    def num_proposals(self) -> int:
        """``K``."""
        return len(self.scores)

    def masks(self) -> np.ndarray:
        """``(K, M) bool`` one row per proposal."""
        return self.point_instances[None] == np.arange(self.num_proposals)[:, None]

    def to_pixels(self) -> np.ndarray:
        """``(N, H, W) int32`` proposal id of every pixel (-1: none, no geometry, structure)."""
        return self.correspondence.to_pixels(self.point_instances).astype(np.int32)

    def structure_pixels(self) -> np.ndarray:
        """``(N, H, W) int32`` structure class of every pixel (index into ``STRUCTURE_CLASSES``, -1 none);
        flat objects lying on a structure plane are objects, not structure (-1)."""
        labels = np.where(self.point_instances >= 0, -1, self.structure.labels).astype(np.int32)
        return self.correspondence.to_pixels(labels).astype(np.int32)


def point_graph(corr: Correspondence, config: SuperpointConfig,
                want_edges: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """Undirected KNN edges ``(E, 2) int64`` (``None`` unless ``want_edges``) and PCA normals ``(M, 3)
    float64`` (turned toward each point's camera) of a correspondence record's points, from one KNN
    query of ``config.k`` / ``config.normal_k`` neighbours (:func:`~sem3r.superpoints.segment.knn_graph`)."""
    pts = corr.points.astype(np.float64)
    if len(pts) < max(3, config.normal_k):
        raise Sem3RError(f"the scene has {len(pts)} reconstructed points; at least {max(3, config.normal_k)} are needed")
    return knn_graph(pts, config, camera_centers(corr.cam_from_world)[corr.view], want_edges=want_edges)


def point_ranges(corr: Correspondence) -> np.ndarray:
    """``(M,)`` distance (m) from each point to the camera that reconstructed it."""
    return np.linalg.norm(corr.points - camera_centers(corr.cam_from_world)[corr.view], axis=1)


def estimate_structure(scene: Scene, config: ProposalConfig | None = None) -> Structure:
    """Floor, walls, ceiling and up of a Scene's geometry, found on ``config.structure_voxel_size`` voxels.

    Coarse voxels average sensor noise away and their PCA normals span ``superpoints.normal_k`` voxels (about
    20 cm at 5 cm voxels), so plane detection holds on Kinect depth whose 2 cm voxels have normals
    too noisy to vote; :meth:`Structure.on_points` carries the planes to finer points.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(seed=0, num_views=2, height=96, width=128, num_points=0)).scene
        >>> estimate_structure(scene).up.round(3).tolist()
        [0.0, 0.0, 1.0]
    """
    config = config or ProposalConfig()
    config.validate()
    corr = build_correspondence(scene, CorrespondenceConfig(voxel_size=config.structure_voxel_size))
    _, normals = point_graph(corr, config.superpoints, want_edges=False)
    return detect_structure(corr.points.astype(np.float64), normals, scene.cam_from_world, config.structure,
                            point_ranges(corr))


def geometric_proposals(scene: Scene, config: ProposalConfig | None = None,
                        lifted: np.ndarray | None = None, view_masks: np.ndarray | None = None) -> Proposals:
    """Object proposals of a reconstructed Scene (see the module docstring).

    Args:
        scene: views with geometry (depth or world points) and cameras.
        config: see :class:`ProposalConfig`.
        lifted: ``(N, H, W) int`` instance ids shared across views (e.g.
            :func:`~sem3r.instances.lifting.lift_masks` of any 2D mask source), -1 unlabelled, for
            the combined mode; ``None`` for geometry alone.
        view_masks: ``(N, H, W) int`` the per-view 2D masks themselves (ids local to each view), for
            the combined mode's boundary cue (``cut_fraction``); ``None``: not used.

    Returns:
        :class:`Proposals` (zero proposals when everything is structure).

    Raises:
        Sem3RError: a Scene without (enough) valid geometry, NaN geometry, masks of the wrong shape.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(seed=0, num_views=2, height=96, width=128, num_points=0)).scene
        >>> props = geometric_proposals(scene)
        >>> props.structure.up_source, props.num_proposals > 0
        ('floor', True)
    """
    config = config or ProposalConfig()
    config.validate()
    corr = build_correspondence(scene, CorrespondenceConfig(voxel_size=config.voxel_size))
    edges, normals = point_graph(corr, config.superpoints)
    pts = corr.points.astype(np.float64)
    ranges = point_ranges(corr)
    structure = estimate_structure(scene, config).on_points(pts, normals, config.structure, ranges)
    relief = separate_relief(pts, edges, structure, config, ranges)
    point_ids = None
    if lifted is not None:
        lifted = np.asarray(lifted)
        if lifted.shape != corr.point_of_pixel.shape:
            raise Sem3RError(f"lifted masks must have shape {corr.point_of_pixel.shape}, got {lifted.shape}")
        point_ids = corr.point_labels(lifted.astype(np.int64))
    cut = None
    if view_masks is not None:
        from sem3r.superpoints.ibsp import instance_boundary_cut
        cut = ~instance_boundary_cut(corr, edges, np.asarray(view_masks))
    sp_ids, instances, scores, flat = group_objects(pts, normals, edges, structure, config, point_ids, corr.colors,
                                                    ranges, cut, relief)
    return Proposals(corr, normals, structure, sp_ids, instances, scores, flat)


def separate_relief(points: np.ndarray, edges: np.ndarray, structure: Structure, config: ProposalConfig,
                    ranges: np.ndarray | None = None) -> np.ndarray:
    """``(M,) bool``: structure points that lie measurably in front of their plane (``relief_sigmas``).

    Per-point depth noise hides a surface a few centimetres in front of a wall (a bookshelf's back
    panel, a cabinet side): each point is inside the band. Averaged over ``n`` neighbours the noise
    shrinks by ``sqrt(n)``, the offset does not: on each plane of a kind in ``relief_kinds``, every
    inlier's offset in noise units ``d / sigma(r)`` is averaged ``relief_smoothing`` times over its
    graph neighbours on the plane, and points whose average exceeds the plane's median by more than
    ``relief_sigmas`` standard errors of that average (measured by smoothing unit white noise the same
    way) and whose averaged offset exceeds ``flat_offset`` are relief. Relief joins the proposal it
    touches (:func:`_join_loose`); the rest stays structure (a door's panel keeps its wall for the
    texture cue).

    Args:
        points: ``(M, 3)`` points.
        edges: ``(E, 2) int`` undirected point graph.
        structure: the points' structure, planes' normals toward the cameras.
        config: see :class:`ProposalConfig`.
        ranges: ``(M,)`` distance (m) of each point from its camera (``None``: 1 m).

    Returns:
        ``(M,) bool`` relief points.
    """
    relief = np.zeros(len(points), bool)
    if config.relief_sigmas <= 0 or not len(points):
        return relief
    pts = np.asarray(points, np.float64)
    plane_of = np.full(len(pts), -1, np.int64)
    offset = np.zeros(len(pts))
    units = np.zeros(len(pts))
    sigmas = config.structure.planes.noise_sigmas
    for i, (plane, kind) in enumerate(zip(structure.planes, structure.kinds)):
        if kind in config.relief_kinds and len(plane.inliers):
            inl = plane.inliers
            plane_of[inl] = i
            offset[inl] = plane.signed_distance(pts[inl])
            units[inl] = offset[inl] / (plane.band(None if ranges is None else np.asarray(ranges)[inl]) / sigmas)
    if not (plane_of >= 0).any():
        return relief
    # the standard error of each average: the same smoothing applied to unit white noise (probes)
    probes = np.random.default_rng(config.seed).choice([-1.0, 1.0], size=(len(pts), 16))
    smoothed = _smooth_within(np.c_[units, offset, probes], edges, plane_of, config.relief_smoothing)
    error = np.sqrt(np.mean(smoothed[:, 2:] ** 2, axis=1))
    for i in np.unique(plane_of[plane_of >= 0]):
        inl = np.flatnonzero(plane_of == i)
        u = smoothed[inl, 0]
        relief[inl] = (u - np.median(u) > config.relief_sigmas * error[inl]) & (smoothed[inl, 1] > config.flat_offset)
    return relief


def _join_loose(instances: np.ndarray, loose: np.ndarray, edges: np.ndarray, ground: np.ndarray,
                margin: float, inside: float) -> np.ndarray:
    """``(M,)`` proposal ids after every connected group of loose points without a proposal (relief
    points, :func:`separate_relief`, and fragments the filters dropped) joins the proposal its graph
    edges touch most, when at least ``inside`` of its points lie in that proposal's gravity-aligned
    box grown by ``margin`` (the back of a bookshelf lies within the bookshelf's outline, a speck
    cut off a chair's leg within the chair's; a door next to a cabinet does not); otherwise it stays
    as it was. ``ground (M, 3)``: the points in the ground frame."""
    free = loose & (instances < 0)
    if not free.any():
        return instances
    m = len(instances)
    inner = edges[free[edges[:, 0]] & free[edges[:, 1]]]
    _, group = connected_components(sp.coo_matrix((np.ones(len(inner)), (inner[:, 0], inner[:, 1])), shape=(m, m)),
                                    directed=False)
    both = np.r_[edges, edges[:, ::-1]]
    touch = both[free[both[:, 0]] & (instances[both[:, 1]] >= 0)]
    if not len(touch):
        return instances
    groups, winner, _, _ = group_majority(group[touch[:, 0]], instances[touch[:, 1]])
    owner = np.full(m, -1, np.int64)
    owner[groups] = winner
    cand = np.flatnonzero(free & (owner[group] >= 0))
    on = instances >= 0
    lo, hi = _boxes(ground[on], instances[on], int(instances.max()) + 1)
    box = owner[group[cand]]
    within = np.all((ground[cand] >= lo[box] - margin) & (ground[cand] <= hi[box] + margin), axis=1)
    share = np.bincount(group[cand], weights=within, minlength=m) / np.maximum(np.bincount(group[cand], minlength=m), 1)
    take = cand[share[group[cand]] >= inside]
    out = instances.copy()
    out[take] = owner[group[take]]
    return out


def group_objects(points: np.ndarray, normals: np.ndarray, edges: np.ndarray, structure: Structure,
                  config: ProposalConfig | None = None, point_ids: np.ndarray | None = None,
                  colors: np.ndarray | None = None, ranges: np.ndarray | None = None,
                  cut: np.ndarray | None = None,
                  relief: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 3-6 of the module docstring on bare points: superpoints, joins, merging, filtering.

    Args:
        points: ``(M, 3)`` points.
        normals: ``(M, 3)`` unit normals turned toward the cameras (outward from the surfaces).
        edges: ``(E, 2) int`` undirected point graph.
        structure: the points' structure (:func:`~sem3r.instances.structure.detect_structure`).
        config: see :class:`ProposalConfig`.
        point_ids: ``(M,) int`` lifted 2D instance per point (-1 none), for the combined mode.
        colors: ``(M, 3) uint8`` point colours (for flat objects on walls; ``None``: none).
        ranges: ``(M,)`` distance (m) from each point to its camera (structure bands grow with it).
        cut: ``(E,) bool`` edges that cross a 2D mask boundary (combined mode, see ``cut_fraction``).
        relief: ``(M,) bool`` structure points measurably in front of their plane
            (:func:`separate_relief`); they join the proposal they touch and lie inside, as do
            fragments left without a proposal (:func:`_join_loose`).

    Returns:
        ``superpoints (M,) int64`` (-1 on structure), ``instances (M,) int32`` (-1 none),
        ``scores (K,) float32``, ``flat (K,) bool``.

    Example:
        >>> from sem3r.instances.structure import detect_structure
        >>> from sem3r.superpoints.graph import edges_from_neighbours, knn_neighbours
        >>> g = np.linspace(0, 2, 81)
        >>> floor = np.c_[np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), np.zeros(81 * 81)]
        >>> h = np.linspace(0.8, 1.2, 17)[1:-1]
        >>> top = np.c_[np.stack(np.meshgrid(h, h), -1).reshape(-1, 2), np.full(225, 0.3)]
        >>> pts = np.r_[floor[~((np.abs(floor[:, 0] - 1) < 0.2) & (np.abs(floor[:, 1] - 1) < 0.2))], top]
        >>> nrm = np.tile([0.0, 0, 1], (len(pts), 1))
        >>> cams = np.array([[[1.0, 0, 0, -1], [0, 0, -1, 1.5], [0, 1, 0, -1]]])
        >>> structure = detect_structure(pts, nrm, cams)
        >>> edges = edges_from_neighbours(knn_neighbours(pts, 8)[1])
        >>> _, instances, scores, _ = group_objects(pts, nrm, edges, structure, ProposalConfig(min_points=10))
        >>> len(scores), int((instances == 0).sum())
        (1, 225)
    """
    config = config or ProposalConfig()
    config.validate()
    pts = np.asarray(points, np.float64)
    sp_ids = _object_superpoints(pts, normals, edges, structure, config)
    instances, scores = _merge(pts, normals, edges, sp_ids, point_ids, structure, config, ranges, cut, colors)
    loose = ~structure.is_structure if relief is None else np.asarray(relief, bool) | ~structure.is_structure
    instances = _join_loose(instances, loose, edges, pts @ ground_basis(structure.up), config.contain_margin,
                            config.relief_inside)
    flat = np.zeros(len(scores), bool)
    if colors is not None and config.flat_kinds:
        instances, scores, flat = _add_flat_objects(pts, colors, edges, structure, instances, scores, config)
    if point_ids is not None and config.merge_flat_by_mask and flat.any():
        instances, scores, flat = _merge_flat_by_mask(instances, np.asarray(point_ids), scores, flat,
                                                      config.min_mask_agreement)
    if point_ids is not None and config.mask_claim > 0:
        instances = _claim_by_masks(instances, np.asarray(point_ids), config.mask_claim)
    keep = scores >= config.min_score
    relabel = np.full(len(scores) + 1, -1, np.int64)
    relabel[np.flatnonzero(keep)] = np.arange(int(keep.sum()))
    instances, scores, flat = relabel[instances].astype(np.int32), scores[keep], flat[keep]
    if point_ids is not None and config.mask_score:
        scores = (scores * mask_ownership(instances, np.asarray(point_ids), len(scores))).astype(np.float32)
    return sp_ids, instances, scores, flat


def mask_ownership(instances: np.ndarray, point_ids: np.ndarray, num: int) -> np.ndarray:
    """``(K,)`` how whole the 2D segments of each proposal are inside it: the mean, over a proposal's
    points with a lifted id, of the fraction of that id's points that lie in the proposal (1 for a
    proposal holding its segments whole; 1 too for one without any lifted id). A fragment of a table
    whose 2D segment spreads over the whole table scores low, a book whose segment it holds high.

    Args:
        instances: ``(M,) int`` proposal per point (-1 none).
        point_ids: ``(M,) int`` lifted 2D instance per point (-1 none).
        num: number of proposals ``K``.

    Example:
        >>> mask_ownership(np.array([0, 0, 1, 1, -1]), np.array([3, 3, 4, 4, 4]), 2).round(3).tolist()
        [1.0, 0.667]
    """
    on = (point_ids >= 0) & (instances >= 0)
    slot, total = _lifted_slots(point_ids)
    pair, pair_of, pair_count = np.unique(slot[on] * num + instances[on], return_inverse=True, return_counts=True)
    share = pair_count / total[pair // num]
    counts = np.bincount(instances[on], minlength=num)
    owned = np.bincount(instances[on], weights=share[pair_of.reshape(-1)], minlength=num)
    return np.where(counts > 0, owned / np.maximum(counts, 1), 1.0)


def _object_superpoints(pts: np.ndarray, normals: np.ndarray, edges: np.ndarray, structure: Structure,
                        config: ProposalConfig) -> np.ndarray:
    """``(M,)`` superpoint ids of the non-structure points (-1 on structure)."""
    obj = ~structure.is_structure
    out = np.full(len(pts), -1, np.int64)
    if not obj.any():
        return out
    local = np.cumsum(obj) - 1
    inner = edges[obj[edges[:, 0]] & obj[edges[:, 1]]]
    out[obj] = compute_superpoints(pts[obj], config.superpoints, normals=normals[obj], edges=local[inner])
    return out


def _merge(pts, normals, edges, sp_ids, point_ids, structure: Structure, config: ProposalConfig, ranges=None,
           cut=None, colors=None):
    """Superpoints merged into proposals; returns ``(M,) int32`` proposal ids and ``(K,)`` scores."""
    count = int(sp_ids.max()) + 1
    if count == 0:
        return np.full(len(pts), -1, np.int32), np.zeros(0, np.float32)
    obj = sp_ids >= 0
    mean_n = np.zeros((count, 3))
    np.add.at(mean_n, sp_ids[obj], normals[obj])
    mean_n /= np.maximum(np.linalg.norm(mean_n, axis=1, keepdims=True), 1e-12)

    a, b = sp_ids[edges[:, 0]], sp_ids[edges[:, 1]]
    cross = (a >= 0) & (b >= 0) & (a != b)
    ea, eb = a[cross], b[cross]
    diff = pts[edges[cross, 0]] - pts[edges[cross, 1]]
    swap = ea > eb  # orient every boundary edge from the smaller superpoint id
    ea, eb = np.where(swap, eb, ea), np.where(swap, ea, eb)
    diff[swap] *= -1
    pairs, inverse, n_edges = np.unique(ea * count + eb, return_inverse=True, return_counts=True)
    cut_fraction = None if cut is None else np.bincount(inverse, weights=cut[cross], minlength=len(pairs)) / n_edges
    pa, pb = pairs // count, pairs % count
    d = np.zeros((len(pairs), 3))
    np.add.at(d, inverse, diff)
    d /= n_edges[:, None]
    dist = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
    na, nb = mean_n[pa], mean_n[pb]
    convexity = np.einsum("ij,ij->i", na - nb, d) / dist
    convex = convexity > config.convex_tolerance
    parallel = np.einsum("ij,ij->i", na, nb) >= np.cos(np.deg2rad(config.flat_angle))
    offset = np.full(len(pairs), config.flat_offset)
    if ranges is not None and config.flat_noise_bands > 0:
        pair_range = np.bincount(inverse, weights=np.asarray(ranges, np.float64)[edges[cross, 0]],
                                 minlength=len(pairs)) / n_edges
        offset = np.maximum(offset, config.flat_noise_bands * _noise_coefficient(structure) * pair_range ** 2)
    flat = parallel & (np.abs(np.einsum("ij,ij->i", na, d)) <= offset) & (np.abs(np.einsum("ij,ij->i", nb, d)) <= offset)
    merge = convex | flat
    if cut_fraction is not None:
        split = cut_fraction > config.cut_fraction
        merge = (convex & ~(split & (convexity < config.strong_convexity))) | (flat & ~split)
    if colors is not None and config.colour_split > 0:
        mean_c = _mean_colours(sp_ids[obj], np.asarray(colors)[obj], count)
        level = np.abs(mean_n @ structure.up) >= np.cos(np.deg2rad(config.flat_angle))
        weak = (convex & (convexity < config.strong_convexity) & ~flat) | (flat & level[pa] & level[pb])
        merge &= ~(weak & (np.linalg.norm(mean_c[pa] - mean_c[pb], axis=1) > config.colour_split))
    if point_ids is not None:
        label = _superpoint_labels(sp_ids, point_ids, count, config.min_mask_agreement)
        la, lb = label[pa], label[pb]
        same, differ = (la >= 0) & (la == lb), (la >= 0) & (lb >= 0) & (la != lb)
        merge = (merge & ~(differ & (flat | (convexity < config.strong_convexity)))) | same
    graph = sp.coo_matrix((np.ones(int(merge.sum())), (pa[merge], pb[merge])), shape=(count, count))
    num, component = connected_components(graph, directed=False)
    ground = pts @ ground_basis(structure.up)
    component = _merge_legs(ground, sp_ids, component, structure, config)
    component = _merge_contained(ground, sp_ids, component, pa, pb, config, colors)
    num = int(component.max()) + 1

    # a proposal's boundary is good where it ends at a concave join; a convex or flat join left
    # unmerged (a 2D cue said "different") is an uncertain boundary
    open_join = (convex | flat) & (component[pa] != component[pb])
    both = np.r_[component[pa], component[pb]]
    weak = np.bincount(both, weights=np.r_[n_edges * open_join, n_edges * open_join], minlength=num)
    total = np.bincount(both, weights=np.r_[n_edges, n_edges], minlength=num)
    point_comp = np.where(obj, component[np.maximum(sp_ids, 0)], -1)
    keep, scores = _filter(pts, point_comp, structure, 1.0 - weak / np.maximum(total, 1), config, ranges)
    relabel = np.full(num + 1, -1, np.int64)
    relabel[np.flatnonzero(keep)] = np.arange(int(keep.sum()))
    return relabel[point_comp].astype(np.int32), scores[keep].astype(np.float32)


def _mean_colours(groups: np.ndarray, colors: np.ndarray, num: int) -> np.ndarray:
    """``(num, 3) float64`` mean colour of each group: ``groups (K,)`` in ``[0, num)``, ``colors (K, 3)``
    (zero for empty groups)."""
    total = np.zeros((num, 3))
    np.add.at(total, groups, colors.astype(np.float64))
    return total / np.maximum(np.bincount(groups, minlength=num), 1)[:, None]


def _boxes(values: np.ndarray, groups: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box of each group: ``values (K, 3)`` with ``groups (K,)`` in ``[0, num)`` ->
    ``lo, hi (num, 3)`` (``inf`` / ``-inf`` for empty groups)."""
    lo = np.full((num, 3), np.inf)
    hi = np.full((num, 3), -np.inf)
    np.minimum.at(lo, groups, values)
    np.maximum.at(hi, groups, values)
    return lo, hi


def _merge_legs(ground: np.ndarray, sp_ids: np.ndarray, component: np.ndarray, structure: Structure,
                config: ProposalConfig) -> np.ndarray:
    """Join legs to what they carry: ``(S,)`` component ids after merging every component that lies
    inside the footprint of another, has at most ``leg_footprint`` of its footprint area, is upright
    (``leg_aspect``) and whose top is within ``leg_gap`` of that one's bottom or of its lowest point
    above the leg. The top of a leg is hidden under what it carries, so the two need not touch in
    the point graph.

    "Above it" is measured over the leg's own footprint (not the whole carrier), so a table that
    already holds one leg still takes the others, and the test is repeated ``leg_rounds`` times so
    that a leg broken into pieces by missing depth (thin structures drop out on real sensors) joins
    piece by piece from the top. Without ``leg_floating``, only components standing on the floor
    (lowest point within ``leg_floor_gap`` of it) are legs. ``ground (M, 3)``: the points in the
    :func:`~sem3r.instances.structure.ground_basis` frame (last axis up)."""
    if structure.floor_height is None:
        return component
    obj = np.flatnonzero(sp_ids >= 0)
    g = ground[obj]
    margin = 2 * config.voxel_size
    for _ in range(config.leg_rounds):
        num = int(component.max()) + 1
        comp = component[sp_ids[obj]]
        lo, hi = _boxes(g, comp, num)
        footprint = np.prod(np.maximum(hi[:, :2] - lo[:, :2], config.voxel_size), axis=1)
        present = np.isfinite(lo[:, 0])
        on_floor = present & (lo[:, 2] - structure.floor_height <= config.leg_floor_gap)
        height = hi[:, 2] - lo[:, 2]
        upright = (height >= config.leg_aspect * np.max(hi[:, :2] - lo[:, :2], axis=1)) & (height >= config.leg_min_height)
        legs = np.flatnonzero((on_floor if not config.leg_floating else present) & upright)
        uppers = np.flatnonzero(present & (footprint * config.leg_footprint >= footprint[legs].min(initial=np.inf)))
        lower, upper = np.repeat(legs, len(uppers)), np.tile(uppers, len(legs))
        inside = np.all((lo[lower, :2] >= lo[upper, :2] - margin) & (hi[lower, :2] <= hi[upper, :2] + margin), axis=1)
        cand = inside & (lower != upper) & (footprint[lower] <= config.leg_footprint * footprint[upper]) & \
            (hi[upper, 2] > hi[lower, 2])
        lower, upper = lower[cand], upper[cand]
        if not len(lower):
            break
        # a leg's top meets the carrier's lowest point over the leg's footprint (grown by the margin: a
        # table that holds one leg already) or the carrier's bottom (a lamp shade is a ring around its
        # pole); a carrier reaching down past the leg's top over it is not carried by it (a table top
        # over a chair's back)
        order = np.argsort(comp, kind="stable")
        starts = np.searchsorted(comp[order], np.arange(num + 1))
        gap = np.full(len(lower), np.inf)
        for k, (a, b) in enumerate(zip(lower, upper)):
            pts = g[order[starts[b]:starts[b + 1]]]
            over = np.all((pts[:, :2] >= lo[a, :2] - margin) & (pts[:, :2] <= hi[a, :2] + margin), axis=1)
            above = pts[over, 2].min() if over.any() else np.inf
            if above >= hi[a, 2] - config.leg_gap:
                gap[k] = min(abs(above - hi[a, 2]), abs(lo[b, 2] - hi[a, 2]))
        # a leg carries one thing: the nearest carrier above it (a leg under two would chain them)
        best = np.full(num, np.inf)
        np.minimum.at(best, lower, gap)
        nearest = np.flatnonzero((gap <= config.leg_gap) & (gap == best[lower]))
        reach = np.zeros(len(lower), bool)
        reach[nearest[np.unique(lower[nearest], return_index=True)[1]]] = True
        if not reach.any():
            break
        graph = sp.coo_matrix((np.ones(int(reach.sum())), (lower[reach], upper[reach])), shape=(num, num))
        component = connected_components(graph, directed=False)[1][component]
    return component


def _merge_contained(ground: np.ndarray, sp_ids: np.ndarray, component: np.ndarray, pa: np.ndarray, pb: np.ndarray,
                     config: ProposalConfig, colors: np.ndarray | None = None) -> np.ndarray:
    """Join parts to the object that encloses them: ``(S,)`` component ids after merging every
    component that touches a bigger one and whose gravity-aligned box lies inside that one's
    (grown by ``contain_margin``): shelves inside a bookshelf's frame, a seat between a chair's
    sides. Objects on a table or under a desk are outside its box or do not touch it. With
    ``colors (M, 3)``, a part whose mean colour differs from the enclosing one's by more than
    ``colour_split`` stays apart (a book in a shelf, a pillow in a sofa's corner).
    ``ground (M, 3)``: the points in the ground frame; ``pa, pb``: adjacent superpoint pairs."""
    num = int(component.max()) + 1
    obj = sp_ids >= 0
    comp = component[sp_ids[obj]]
    lo, hi = _boxes(ground[obj], comp, num)
    size = np.bincount(comp, minlength=num)
    ca, cb = component[pa], component[pb]
    touching = ca != cb
    small = np.where(size[ca] <= size[cb], ca, cb)[touching]
    big = np.where(size[ca] <= size[cb], cb, ca)[touching]
    inside = np.all((lo[small] >= lo[big] - config.contain_margin) & (hi[small] <= hi[big] + config.contain_margin), axis=1)
    if colors is not None and config.colour_split > 0:
        mean_c = _mean_colours(comp, np.asarray(colors)[obj], num)
        inside &= np.linalg.norm(mean_c[small] - mean_c[big], axis=1) <= config.colour_split
    if not inside.any():
        return component
    graph = sp.coo_matrix((np.ones(int(inside.sum())), (small[inside], big[inside])), shape=(num, num))
    return connected_components(graph, directed=False)[1][component]


def _noise_coefficient(structure: Structure) -> float:
    """The scene's range-scaled depth noise (1/m; the band at range ``r`` is ``coefficient * r^2``),
    measured on its largest floor / wall / ceiling plane; 0 without one (and on exact depth)."""
    planes = [p for p, k in zip(structure.planes, structure.kinds) if k in ("floor", "wall", "ceiling")]
    return float(max(planes, key=lambda p: len(p.inliers)).noise) if planes else 0.0


def _merge_flat_by_mask(instances: np.ndarray, point_ids: np.ndarray, scores: np.ndarray, flat: np.ndarray,
                        agreement: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat objects whose points mostly (``agreement``) carry the same lifted 2D id are one object
    (a rug's texture cut in two by a pattern border is one 2D segment): ``(M,)`` instances, ``(K',)``
    scores (the pieces' best) and flat flags after merging them."""
    label = _superpoint_labels(instances, point_ids, len(scores), agreement)
    key = np.where(flat & (label >= 0), label, -1 - np.arange(len(scores)))  # only flat pieces with an id share
    _, target = np.unique(key, return_inverse=True)
    target = target.reshape(-1)
    num = int(target.max()) + 1
    new_scores = np.zeros(num, np.float32)
    np.maximum.at(new_scores, target, scores)
    new_flat = np.zeros(num, bool)
    new_flat[target] = flat
    # keep the original order of first appearance
    first = np.full(num, len(scores))
    np.minimum.at(first, target, np.arange(len(scores)))
    order = np.argsort(first, kind="stable")
    rank = np.empty(num, np.int64)
    rank[order] = np.arange(num)
    out = np.where(instances >= 0, rank[target[np.maximum(instances, 0)]], -1).astype(instances.dtype)
    return out, new_scores[order], new_flat[order]


def _lifted_slots(point_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lifted ids renumbered ``0 .. L-1``: ``slot (M,) int64`` per point (-1 unlabelled) and
    ``total (L,)`` points per id."""
    labelled = point_ids >= 0
    ids, inverse = np.unique(point_ids[labelled], return_inverse=True)
    slot = np.full(len(point_ids), -1, np.int64)
    slot[labelled] = inverse.reshape(-1)
    return slot, np.bincount(inverse.reshape(-1), minlength=len(ids))


def _claim_by_masks(instances: np.ndarray, point_ids: np.ndarray, claim: float) -> np.ndarray:
    """Points given back to the objects their 2D masks put them in: ``(M,)`` proposal ids after every
    point without a proposal joins proposal ``k`` when its lifted id has at least ``claim`` of its
    points in ``k``. Sensor noise makes the floor and wall bands centimetres wide at range, so they
    swallow the feet of furniture and the backs of shelves, and scatters a rug's border out of the
    floor band into fragments too small to keep; a 2D segment that is mostly an object says those
    points are the object's."""
    labelled = point_ids >= 0
    inside = labelled & (instances >= 0)
    if not inside.any():
        return instances
    slot, total = _lifted_slots(point_ids)
    groups, winner, winner_count, _ = group_majority(slot[inside], instances[inside])
    owner = np.full(len(total), -1, np.int64)
    ok = winner_count >= claim * total[groups]
    owner[groups[ok]] = winner[ok]
    take = (instances < 0) & labelled
    take[take] = owner[slot[take]] >= 0
    out = instances.copy()
    out[take] = owner[slot[take]]
    return out


def _superpoint_labels(sp_ids: np.ndarray, point_ids: np.ndarray, count: int, agreement: float) -> np.ndarray:
    """``(S,)`` majority lifted id of every superpoint when at least ``agreement`` of its points carry it, else -1."""
    obj = sp_ids >= 0
    groups, winner, winner_count, total = group_majority(sp_ids[obj], point_ids[obj])
    label = np.full(count, -1, np.int64)
    ok = (winner >= 0) & (winner_count >= agreement * np.maximum(total, 1))
    label[groups[ok]] = winner[ok]
    return label


def _filter(pts: np.ndarray, point_comp: np.ndarray, structure: Structure, closed: np.ndarray,
            config: ProposalConfig, ranges: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Which components are proposals (size, extent, not a structure shell) and their scores."""
    num = len(closed)
    inside = point_comp >= 0
    comp = point_comp[inside]
    counts = np.bincount(comp, minlength=num)
    lo, hi = _boxes(pts[inside], comp, num)
    extent = np.where(counts[:, None] > 0, hi - lo, 0).max(axis=1)
    flush = np.zeros(len(pts), bool)
    for plane, kind in zip(structure.planes, structure.kinds):
        if kind == "flush":
            flush[plane.inliers] = True
    on_flush = np.bincount(comp, weights=flush[inside], minlength=num) >= 0.5 * np.maximum(counts, 1)
    shell = np.zeros(num, bool)
    for plane, kind in zip(structure.planes, structure.kinds):
        if kind not in ("floor", "wall", "ceiling"):
            continue
        tol = np.maximum(config.shell_distance, config.shell_bands * plane.band(None if ranges is None else ranges[inside]))
        dist = np.abs(plane.signed_distance(pts[inside])) / tol  # in units of the allowed distance
        near = np.bincount(comp, weights=dist <= 1, minlength=num)
        far = np.zeros(num)
        np.maximum.at(far, comp, dist)
        shell |= (near >= config.shell_fraction * np.maximum(counts, 1)) & (far <= 2)
    keep = (counts >= config.min_points) & (extent >= config.min_extent) & (extent <= config.max_extent) & \
        (~shell | on_flush)
    size_term = np.minimum(1.0, np.log(np.maximum(counts, 1)) / np.log(config.size_saturation))
    return keep, np.clip(closed * size_term, 0.0, 1.0)


def _smooth_within(values: np.ndarray, edges: np.ndarray, group: np.ndarray, steps: int) -> np.ndarray:
    """``values (M, C)`` averaged ``steps`` times over each point and its graph neighbours of the same
    ``group`` (>= 0); points outside every group are left as they are. Averages texture away."""
    same = (group[edges[:, 0]] == group[edges[:, 1]]) & (group[edges[:, 0]] >= 0)
    e = edges[same]
    m = len(values)
    adjacency = sp.coo_matrix((np.ones(2 * len(e) + m), (np.r_[e[:, 0], e[:, 1], np.arange(m)],
                                                          np.r_[e[:, 1], e[:, 0], np.arange(m)])), shape=(m, m)).tocsr()
    adjacency = sp.diags(1.0 / np.asarray(adjacency.sum(axis=1)).ravel()) @ adjacency
    for _ in range(steps):
        values = adjacency @ values
    return values


def _refine_by_texture(comp: np.ndarray, words: np.ndarray, wall_hist: np.ndarray, edges: np.ndarray,
                       plane_of: np.ndarray, steps: int) -> np.ndarray:
    """Undo the blur of the texture smoothing at a flat object's border.

    A point belongs to component ``c`` when its colour word is more frequent in ``c`` than on its wall
    (``hist_c[word] > wall_hist[plane, word]``): members that do not belong leave, then ``steps``
    times, wall points next to ``c`` that belong join it.

    Args:
        comp: ``(M,)`` component per point, -1 none.
        words: ``(M,)`` colour word (k-means cluster on its wall) per point, -1 off the walls.
        wall_hist: ``(P, K)`` each wall's median word histogram.
        edges: ``(E, 2)`` point graph.
        plane_of: ``(M,)`` wall plane per point, -1 none.
        steps: growth steps.

    Returns:
        The refined ``(M,)`` components.
    """
    comp = comp.copy()
    num, k = int(comp.max()) + 1, wall_hist.shape[1]
    if num == 0:
        return comp
    both = np.r_[edges, edges[:, ::-1]]
    for step in range(steps + 1):
        on = comp >= 0
        hist = np.zeros((num, k))
        np.add.at(hist, (comp[on], words[on]), 1.0)
        hist /= np.maximum(hist.sum(axis=1, keepdims=True), 1)
        comp_plane = np.zeros(num, np.int64)
        comp_plane[comp[on]] = plane_of[on]
        if step == 0:
            member = np.flatnonzero(on)
            stray = hist[comp[member], words[member]] <= wall_hist[plane_of[member], words[member]]
            comp[member[stray]] = -1
            continue
        src, dst = both[:, 0], both[:, 1]
        cand = (comp[src] >= 0) & (comp[dst] < 0) & (plane_of[dst] >= 0) & (plane_of[src] == plane_of[dst])
        src, dst = src[cand], dst[cand]
        fits = hist[comp[src], words[dst]] > wall_hist[plane_of[dst], words[dst]]
        if not fits.any():
            break
        comp[dst[fits]] = comp[src[fits]]
    return comp


def _add_flat_objects(pts: np.ndarray, colors: np.ndarray, edges: np.ndarray, structure: Structure,
                      instances: np.ndarray, scores: np.ndarray,
                      config: ProposalConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat objects on walls, by texture: appended as proposals; returns instances, scores, flat flags.

    On each plane of a kind in ``config.flat_kinds``, the points' colours are quantised into
    ``colour_words`` k-means words and every point gets the histogram of words around it
    (``colour_smoothing`` steps of neighbour averaging within the plane): a texture descriptor, so a
    striped wall looks the same everywhere. A point whose histogram differs from the wall's median
    histogram by more than ``max(min_texture_distance, contrast_sigmas * spread)`` (L1; ``spread``:
    robust spread of those distances on the wall) is foreign; connected foreign points, their border
    refined (:func:`_refine_by_texture`), with at least ``min_flat_points`` points, a largest side of
    ``min_flat_extent .. max_extent`` and at most ``max_flat_fraction`` of the plane are objects.
    """
    from scipy.cluster.vq import kmeans2

    cols = colors.astype(np.float64)
    plane_of = np.full(len(pts), -1, np.int64)
    words = np.full(len(pts), -1, np.int64)
    for i, (plane, kind) in enumerate(zip(structure.planes, structure.kinds)):
        if kind in config.flat_kinds and len(plane.inliers) >= max(config.min_flat_points, config.colour_words):
            plane_of[plane.inliers] = i
            words[plane.inliers] = kmeans2(cols[plane.inliers], config.colour_words, seed=config.seed, minit="++")[1]
    onehot = np.zeros((len(pts), config.colour_words))
    on_wall = np.flatnonzero(words >= 0)
    onehot[on_wall, words[on_wall]] = 1.0
    local = _smooth_within(onehot, edges, plane_of, config.colour_smoothing)
    wall_hist = np.zeros((max(len(structure.planes), 1), config.colour_words))
    foreign = np.zeros(len(pts), bool)
    distance = np.zeros(len(pts))
    for i in np.unique(plane_of[on_wall]):
        inl = np.flatnonzero(plane_of == i)
        median = np.median(local[inl], axis=0)
        wall_hist[i] = median / max(median.sum(), 1e-12)
        dist = np.abs(local[inl] - wall_hist[i]).sum(axis=1)
        limit = np.clip(np.median(dist) + config.contrast_sigmas * 1.4826 * np.median(np.abs(dist - np.median(dist))),
                        config.min_texture_distance, config.max_texture_distance)
        foreign[inl] = dist > limit
        distance[inl] = dist
    inside = foreign[edges[:, 0]] & foreign[edges[:, 1]] & (plane_of[edges[:, 0]] == plane_of[edges[:, 1]])
    e = edges[inside]
    graph = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(pts), len(pts)))
    _, comp = connected_components(graph, directed=False)
    labels, comp = np.unique(np.where(foreign, comp, -1), return_inverse=True)
    comp = comp - 1 if labels[0] == -1 else comp
    comp = _refine_by_texture(comp, words, wall_hist, edges, plane_of, config.colour_smoothing)
    ids, comp = np.unique(comp, return_inverse=True)  # renumber after refinement
    comp = comp - 1 if ids[0] == -1 else comp
    num = int(comp.max()) + 1
    on = comp >= 0
    counts = np.bincount(comp[on], minlength=num)
    lo, hi = _boxes(pts[on], comp[on], num)
    extent = np.where(counts[:, None] > 0, hi - lo, 0).max(axis=1)
    plane_id = np.zeros(num, np.int64)
    plane_id[comp[on]] = plane_of[on]
    plane_sizes = np.array([len(p.inliers) for p in structure.planes] or [0])
    keep = (counts >= config.min_flat_points) & (extent >= config.min_flat_extent) & \
        (extent <= config.max_extent) & (counts <= config.max_flat_fraction * plane_sizes[plane_id])
    mean_distance = np.bincount(comp[on], weights=distance[on], minlength=num) / np.maximum(counts, 1)
    size_term = np.minimum(1.0, np.log(np.maximum(counts, 1)) / np.log(config.size_saturation))
    new_scores = config.flat_score * size_term * np.minimum(1.0, mean_distance)
    relabel = np.full(num, -1, np.int64)
    relabel[keep] = len(scores) + np.arange(int(keep.sum()))
    instances = instances.copy()
    take = on & (instances < 0)
    instances[take] = np.where(relabel[comp[take]] >= 0, relabel[comp[take]], instances[take])
    scores = np.r_[scores, new_scores[keep]].astype(np.float32)
    return instances, scores, np.r_[np.zeros(len(scores) - int(keep.sum()), bool), np.ones(int(keep.sum()), bool)]
