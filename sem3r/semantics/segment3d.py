"""Open-vocabulary 3D instance segmentation of a reconstructed Scene (OVSeg3R inference).

Two paths give the same result type, :class:`Segment3DResult`:

- **trained** (``checkpoint`` set): the Scene is prepared as in training
  (:func:`~sem3r.semantics.point_inputs.prepare_point_inputs`: correspondence, IBSp superpoints,
  sampled 2D features), every superpoint seeds a query (farthest-point sampling of the superpoint
  centroids beyond ``max_queries``), and the segmenter predicts a mask over superpoints and sigmoid
  scores against the text embeddings of the requested classes. A query's score is its best class
  probability times the mean mask probability inside its mask (Mask2Former's mask score); masks
  of one class overlapping by more than ``nms_iou`` (IoU over points) keep only the best. Trained
  with VIP on view-wise annotations, a query's mask is only ever supervised on the superpoints of
  the views that see its seed, so elsewhere it is unconstrained; ``seed_views_only`` (default)
  keeps each mask to those superpoints, VIP's partition applied at inference. On the held-out
  rooms of ``benchmarks/ovseg3r_ablation.py`` this removes masks that spill across the room and
  raises the VIP model's AP from 51.5 to 61.2 (the no-VIP model's from 57.9 to 59.4).
- **training-free** (no checkpoint): the per-view 2D masks are lifted and merged across views
  (:func:`~sem3r.instances.lifting.lift_masks`), combined with the geometry into object proposals
  (structure removed, superpoints grouped across convex joins; ``proposals=None`` skips this and
  keeps the lifted masks), carried to the points, and snapped to the superpoints (each superpoint takes the majority instance of its points, so instance borders
  follow the superpoint borders). An instance's class is the majority of its pixels' 2D classes;
  its score is the fraction of those pixels that agree.

The result holds overlapping scored masks over the points (what AP is computed on) and a
non-overlapping per-point labelling (each point goes to the best-scoring mask holding it), written
into a copy of the Scene: ``instance_masks``, ``semantic_masks`` (indices into the requested
classes, which become ``metadata['class_names']``) and the instance table with labels and scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from sem3r.errors import Sem3RError
from sem3r.geometry.voxels import group_majority
from sem3r.instances.lifting import LiftConfig, lift_masks
from sem3r.instances.proposals import ProposalConfig, geometric_proposals
from sem3r.scene import InstanceTable, Scene
from sem3r.semantics.checkpoint import load_segmenter
from sem3r.semantics.point_inputs import (
    PointInputs,
    PointInputsConfig,
    prepare_point_inputs,
    scene_annotations,
)
from sem3r.semantics.text import make_text_encoder, validate_class_names


@dataclass
class Segment3DConfig:
    """Settings of :func:`segment3d`.

    Attributes:
        checkpoint: a trained segmenter (``sem3r train segmenter3d`` output); ``None`` takes the
            training-free path.
        mask_source: the 2D segmenter (a :mod:`sem3r.instances.mask_sources` name); ``gt`` reads
            the Scene's own 2D masks and classes (synthetic or annotated scenes).
        mask_options: options of that source.
        inputs: point preparation; ``None``: the checkpoint's (or the default).
        text_encoder: ``None``: the checkpoint's (or ``hash``).
        max_queries: query seeds at most (farthest-point sampling over superpoint centroids).
        score_threshold: drop predictions scoring below this.
        mask_threshold: a superpoint is in a mask when its probability exceeds this.
        nms_iou: suppress a prediction overlapping a better one of its class by more than this.
        min_points: drop masks with fewer points.
        seed_views_only: keep a query's mask to the superpoints seen by a view that also sees its
            seed superpoint (VIP's view partition at inference; see the module docstring).
        lift: the training-free path's lifting thresholds.
        proposals: the training-free path's instances are the ``combined`` geometric proposals
            (:func:`~sem3r.instances.proposals.geometric_proposals` with the lifted masks as the 2D
            cue) with these settings; ``None`` keeps the lifted masks themselves; ``"auto"``: the
            proposals for the ``oversegment`` source (its masks split objects into parts and the
            geometry holds them together), the lifted masks for sources that see whole objects
            (``gt``, ``sam``: with near-perfect 2D masks the geometry only merges neighbours;
            AP50 0.61 vs 0.85 on a synthetic room).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    checkpoint: str | None = None
    mask_source: str = "gt"
    mask_options: dict = field(default_factory=dict)
    inputs: PointInputsConfig | None = None
    text_encoder: str | None = None
    max_queries: int = 400
    score_threshold: float = 0.1
    mask_threshold: float = 0.5
    nms_iou: float = 0.5
    min_points: int = 10
    seed_views_only: bool = True
    lift: LiftConfig = field(default_factory=LiftConfig)
    proposals: ProposalConfig | str | None = "auto"
    device: str = "cpu"

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.max_queries < 1:
            raise Sem3RError(f"max_queries must be positive, got {self.max_queries}")
        for name in ("score_threshold", "mask_threshold", "nms_iou"):
            if not 0 <= getattr(self, name) <= 1:
                raise Sem3RError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.min_points < 1:
            raise Sem3RError(f"min_points must be positive, got {self.min_points}")
        self.lift.validate()
        if isinstance(self.proposals, str) and self.proposals != "auto":
            raise Sem3RError(f"proposals must be a ProposalConfig, None or 'auto', got '{self.proposals}'")
        if isinstance(self.proposals, ProposalConfig):
            self.proposals.validate()


@dataclass
class Segment3DResult:
    """3D instances of a Scene (``P`` points, ``K`` predictions).

    Attributes:
        scene: a copy of the input Scene with the instances written in (see the module docstring).
        inputs: the prepared points, superpoints and correspondence.
        masks: ``(K, P) bool`` predicted masks over the points (may overlap), best score first.
        classes: ``(K,) int64`` index into ``class_names``, -1 when unclassified.
        scores: ``(K,) float32`` confidences in ``[0, 1]``.
        point_instances: ``(P,) int32`` non-overlapping instance per point (row of ``masks``), -1 none.
        class_names: the requested classes.
    """

    scene: Scene
    inputs: PointInputs
    masks: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    point_instances: np.ndarray
    class_names: list[str]


def farthest_point_sampling(points: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` points spread out greedily (the first is point 0).

    Args:
        points: ``(M, 3)``.
        count: how many to pick (at most ``M``).

    Returns:
        ``(min(count, M),) int64`` indices, in pick order.
    """
    points = np.asarray(points, np.float64)
    count = min(int(count), len(points))
    picked = np.zeros(count, np.int64)
    dist = np.full(len(points), np.inf)
    for i in range(1, count):
        dist = np.minimum(dist, np.linalg.norm(points - points[picked[i - 1]], axis=1))
        picked[i] = int(np.argmax(dist))
    return picked


def _superpoint_majority(superpoints: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each point takes its superpoint's majority label (-1 counts as a label; ties: smallest)."""
    groups, winner, _, _ = group_majority(superpoints, labels)
    table = np.full(int(superpoints.max()) + 1, -1, np.int64)
    table[groups] = winner
    return table[superpoints]


def _mask_nms(masks: np.ndarray, classes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy same-class mask NMS over ``(K, P)`` boolean masks; returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    m = masks[order].astype(np.float32)
    inter = m @ m.T
    size = m.sum(1)
    overlap = inter / np.maximum(size[:, None] + size[None] - inter, 1)
    same = classes[order][:, None] == classes[order][None]
    keep = np.ones(len(order), bool)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1:] &= ~((overlap[i, i + 1:] > iou) & same[i, i + 1:])
    return order[keep]


def _predict(inputs: PointInputs, model: torch.nn.Module, text: np.ndarray, config: Segment3DConfig):
    """Run the trained segmenter; returns masks (K, P) bool, classes, scores."""
    sp = inputs.superpoints
    count = inputs.num_superpoints
    sums = np.zeros((count, 3))
    np.add.at(sums, sp, inputs.correspondence.points)
    centroids = sums / np.maximum(np.bincount(sp, minlength=count), 1)[:, None]
    queries = np.sort(farthest_point_sampling(centroids, config.max_queries))
    device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if config.device == "auto" else config.device))
    model = model.to(device).eval()
    with torch.no_grad():
        out = model(**{k: v.to(device) if torch.is_tensor(v) else v
                       for k, v in inputs.model_inputs(text, queries).items()})
    mask_prob = torch.sigmoid(out["mask_logits"]).cpu().numpy()
    class_prob = torch.sigmoid(out["class_logits"]).cpu().numpy()
    sp_masks = mask_prob > config.mask_threshold
    if config.seed_views_only:
        seen = np.zeros((inputs.correspondence.num_views, count), bool)
        views, points = np.nonzero(inputs.seen())
        seen[views, sp[points]] = True
        sp_masks &= (seen[:, queries].T.astype(np.int32) @ seen.astype(np.int32)) > 0
    inside = np.where(sp_masks, mask_prob, 0).sum(1) / np.maximum(sp_masks.sum(1), 1)
    classes = class_prob.argmax(1)
    scores = class_prob.max(1) * inside
    masks = sp_masks[:, sp]
    keep = (scores >= config.score_threshold) & (masks.sum(1) >= config.min_points)
    masks, classes, scores = masks[keep], classes[keep], scores[keep]
    order = _mask_nms(masks, classes, scores, config.nms_iou)
    return masks[order], classes[order].astype(np.int64), scores[order].astype(np.float32)


def _lift(scene: Scene, inputs: PointInputs, view_masks: np.ndarray, view_classes: np.ndarray, config: Segment3DConfig):
    """The training-free path; returns masks (K, P) bool, classes, scores."""
    lifted = lift_masks(scene, view_masks, config.lift)
    proposals = config.proposals
    if proposals == "auto":
        proposals = ProposalConfig() if config.mask_source == "oversegment" else None
    if proposals is not None:
        lifted = geometric_proposals(scene, proposals, lifted, view_masks).to_pixels()
    corr = inputs.correspondence
    point_ids = _superpoint_majority(inputs.superpoints, corr.point_labels(lifted))
    ids, inverse = np.unique(point_ids, return_inverse=True)
    real = ids >= 0
    masks = (inverse[None] == np.flatnonzero(real)[:, None])
    # class of each lifted instance: majority of its pixels' 2D classes, score = agreement
    views = np.broadcast_to(np.arange(len(view_masks))[:, None, None], view_masks.shape)
    labelled = (lifted >= 0) & (view_masks >= 0)
    pixel_class = np.full(view_masks.shape, -1, np.int64)
    if view_classes.shape[1]:
        pixel_class[labelled] = view_classes[views[labelled], view_masks[labelled]]
    inst = lifted[labelled].astype(np.int64)
    cls = pixel_class[labelled]
    classes = np.full(len(ids), -1, np.int64)
    scores = np.zeros(len(ids), np.float32)
    groups, winner, winner_count, total = group_majority(inst, cls)
    row = np.searchsorted(ids, groups)
    hit = (row < len(ids)) & (ids[np.minimum(row, len(ids) - 1)] == groups)
    classes[row[hit]] = winner[hit]
    scores[row[hit]] = (winner_count / np.maximum(total, 1))[hit]
    classes, scores = classes[real], scores[real]
    keep = masks.sum(1) >= config.min_points
    masks, classes, scores = masks[keep], classes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    return masks[order], classes[order], scores[order]


def _write_scene(scene: Scene, inputs: PointInputs, masks: np.ndarray, classes: np.ndarray, scores: np.ndarray,
                 class_names: list[str]) -> tuple[Scene, np.ndarray]:
    """Non-overlapping per-point instances (best score wins) written into a copy of the Scene."""
    masks = masks.reshape(len(masks), inputs.correspondence.num_points)
    covered = masks.any(0)
    # masks are sorted best first: each point takes the first mask holding it
    first = masks.argmax(0) if len(masks) else np.zeros(masks.shape[1], np.int64)
    point_instances = np.where(covered, first, -1).astype(np.int32)
    point_classes = np.where(covered, np.append(classes, -1)[point_instances], -1)
    corr = inputs.correspondence
    kw = {f.name: getattr(scene, f.name) for f in fields(scene)}
    kw["instance_masks"] = corr.to_pixels(point_instances)
    kw["semantic_masks"] = corr.to_pixels(point_classes.astype(np.int32))
    kw["metadata"] = {**scene.metadata, "class_names": list(class_names)}
    kw["instances"] = InstanceTable.from_points(corr.points, point_instances, point_classes, list(class_names),
                                                {k: float(s) for k, s in enumerate(scores)})
    return Scene(**kw), point_instances


def segment3d(scene: Scene, classes: Sequence[str], config: Segment3DConfig | None = None) -> Segment3DResult:
    """Open-vocabulary 3D instances of a reconstructed Scene (see the module docstring).

    Args:
        scene: a Scene with geometry (depth or world points) and cameras.
        classes: the class names to label with (non-empty, no duplicates).
        config: see :class:`Segment3DConfig`.

    Returns:
        :class:`Segment3DResult`.

    Raises:
        Sem3RError: empty or duplicate class names, a Scene without geometry, a missing checkpoint,
            a mask source that cannot run on this Scene.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(seed=0, num_views=3, height=48, width=64, num_points=0)).scene
        >>> result = segment3d(scene, ["chair", "table"])
        >>> set(result.scene.instances.labels) <= {"chair", "table", ""}
        True
    """
    config = config or Segment3DConfig()
    config.validate()
    class_names = validate_class_names(list(classes))
    trained = load_segmenter(config.checkpoint) if config.checkpoint else None
    inputs_config = config.inputs or (trained.inputs if trained else PointInputsConfig())
    encoder_name = config.text_encoder or (trained.text_encoder if trained else "hash")
    options = {"dim": trained.text_dim if trained else 64} if encoder_name == "hash" else {}
    text = make_text_encoder(encoder_name, **options).encode(class_names)
    view_masks, view_classes = scene_annotations(scene, class_names, config.mask_source, **config.mask_options)
    inputs = prepare_point_inputs(scene, view_masks, view_classes, text, inputs_config)
    if trained is not None:
        masks, labels, scores = _predict(inputs, trained.model, text, config)
    else:
        masks, labels, scores = _lift(scene, inputs, view_masks, view_classes, config)
    out_scene, point_instances = _write_scene(scene, inputs, masks, labels, scores, class_names)
    return Segment3DResult(out_scene, inputs, masks, labels, scores, point_instances, class_names)



