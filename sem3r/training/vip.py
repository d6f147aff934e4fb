"""OVSeg3R's View-wise Instance Partition (VIP, paper section 3.2) and the segmenter's training loss.

OVSeg3R's annotations are per view: each view's 2D instance masks are lifted onto the 3D points
reconstructed from that view's pixels (section 3.1.2). They describe only the part of the scene
the view sees, and the same object is annotated independently in several views, so supervising
the scene-level predictions with them directly would punish every prediction outside the view as
a false positive. VIP partitions the predictions instead:

1. **superpoint visibility** (eq. 5): superpoint ``s`` belongs to view ``v`` when more than
   ``min_visible`` of its points were reconstructed from view ``v`` (default 0: any point);
2. **query partition**: query ``q`` belongs to view ``v`` iff its seed superpoint (the superpoint
   that initialised it) belongs to ``v`` (:func:`vip_partition`); the decoder acts like K-means
   around the seed, so the query's mask is most likely the entity its seed lies on in that view;
3. **truncation** (eq. 6): the view's queries' masks are cut to the superpoints visible in ``v``;
4. each view is then a Hungarian set problem (:func:`~sem3r.training.mask_matching.hungarian_set_loss`)
   between its queries and its annotations, with OVSeg3R's **seed constraint** (section 3.2,
   "Compatibility"): a query may only match a target whose mask holds its seed superpoint
   (target value at the seed ``>= 0.5``).

:func:`vip_loss` averages the view losses over the views with at least one query and at least one
non-empty target. A view without annotations says nothing (the 2D model may simply have missed
its objects), and a view with annotations but no query has no prediction to supervise; both are
skipped. Deep supervision adds the same loss of every auxiliary decoder layer, each with its own
matching, times ``aux_weight``.

``vip=False`` is the paper's ablation: every query belongs to every view, masks are not
truncated, and each view's targets are zero outside the view, so predictions of objects the view
does not see are pushed to be empty / no-object.

**Scene-level supervision** (paper's "Compatibility" paragraph): :meth:`ViewTargets.scene_level`
builds ``V = 1`` with every superpoint fully visible and scene-level masks; then every query
belongs to the one view, nothing is truncated and :func:`vip_loss` is the ordinary seed-constrained
Hungarian set loss (``seed_constraint=False``: plain DETR matching).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from sem3r.config import dataclass_from_dict
from sem3r.errors import Sem3RError
from sem3r.training.mask_matching import MatchingConfig, hungarian_set_loss

SEED_INSIDE = 0.5
"""A target mask contains a query's seed superpoint when its value there is at least this."""


@dataclass
class ViewTargets:
    """One scene's view-wise annotations on superpoints, all views' targets stacked.

    Attributes:
        superpoint_visibility: ``(V, S)`` float32 in ``[0, 1]``, fraction of superpoint ``s``'s
            points reconstructed from view ``v``'s pixels (0: not in view ``v``).
        masks: ``(G, S)`` float32 in ``[0, 1]``, soft target of each annotation: the fraction of
            the superpoint's points seen in the annotation's view that carry its label (0 where
            the view does not see the superpoint).
        classes: ``(G,)`` int64, class index (into the vocabulary) of each annotation.
        views: ``(G,)`` int64 in ``[0, V)``, the view each annotation comes from.
        instance_ids: ``(G,)`` int64, the annotation's 2D instance id in its view (-1 if none).

    Example:
        >>> t = ViewTargets.scene_level(torch.tensor([[1.0, 0, 0], [0, 1, 1]]), torch.tensor([4, 2]))
        >>> t.num_views, t.num_superpoints, t.views.tolist()
        (1, 3, [0, 0])
    """

    superpoint_visibility: torch.Tensor
    masks: torch.Tensor
    classes: torch.Tensor
    views: torch.Tensor
    instance_ids: torch.Tensor

    def __post_init__(self) -> None:
        self.superpoint_visibility = torch.as_tensor(self.superpoint_visibility, dtype=torch.float32)
        self.masks = torch.as_tensor(self.masks, dtype=torch.float32)
        self.classes = torch.as_tensor(self.classes, dtype=torch.int64)
        self.views = torch.as_tensor(self.views, dtype=torch.int64)
        self.instance_ids = torch.as_tensor(self.instance_ids, dtype=torch.int64)
        vis = self.superpoint_visibility
        if vis.ndim != 2:
            raise Sem3RError(f"superpoint_visibility must be (V, S), got {tuple(vis.shape)}")
        G = self.masks.shape[0] if self.masks.ndim == 2 else -1
        if self.masks.ndim != 2 or self.masks.shape[1] != vis.shape[1]:
            raise Sem3RError(f"target masks must be (G, {vis.shape[1]}), got {tuple(self.masks.shape)}")
        for name in ("classes", "views", "instance_ids"):
            if tuple(getattr(self, name).shape) != (G,):
                raise Sem3RError(f"target {name} must be ({G},), got {tuple(getattr(self, name).shape)}")
        for name, x in (("superpoint_visibility", vis), ("target masks", self.masks)):
            if x.numel() and not (x.isfinite().all() and x.min() >= 0 and x.max() <= 1):
                raise Sem3RError(f"{name} must lie in [0, 1]")
        if G and (self.classes.min() < 0 or self.views.min() < 0 or self.views.max() >= vis.shape[0]):
            raise Sem3RError(f"target classes must be >= 0 and views in [0, {vis.shape[0]})")

    @property
    def num_views(self) -> int:
        """``V``."""
        return self.superpoint_visibility.shape[0]

    @property
    def num_superpoints(self) -> int:
        """``S``."""
        return self.superpoint_visibility.shape[1]

    def to(self, device: torch.device | str) -> ViewTargets:
        """A copy with every tensor on ``device``."""
        return ViewTargets(*(getattr(self, f.name).to(device) for f in fields(self)))

    @classmethod
    def scene_level(cls, masks: torch.Tensor, classes: torch.Tensor) -> ViewTargets:
        """Scene-level annotations as one view that sees every superpoint completely.

        Args:
            masks: ``(G, S)`` float in ``[0, 1]``, scene-level target masks on superpoints.
            classes: ``(G,)`` int64 class indices.
        """
        masks = torch.as_tensor(masks, dtype=torch.float32)
        G = masks.shape[0]
        return cls(torch.ones(1, masks.shape[-1]), masks, classes, torch.zeros(G, dtype=torch.int64),
                   torch.full((G,), -1, dtype=torch.int64))


def _class_table(view_classes: np.ndarray | Sequence[Mapping[int, int]], num_views: int) -> np.ndarray:
    if isinstance(view_classes, np.ndarray) or torch.is_tensor(view_classes):
        table = np.asarray(view_classes)
        if table.ndim != 2 or table.shape[0] != num_views or not np.issubdtype(table.dtype, np.integer):
            raise Sem3RError(f"view_classes must be an integer ({num_views}, G_max) array, got "
                             f"{table.dtype} {table.shape}")
        return table.astype(np.int64)
    if len(view_classes) != num_views:
        raise Sem3RError(f"view_classes has {len(view_classes)} views, view_labels {num_views}")
    width = 1 + max((int(k) for m in view_classes for k in m), default=-1)
    table = np.full((num_views, width), -1, dtype=np.int64)
    for v, mapping in enumerate(view_classes):
        if mapping:
            keys = np.fromiter(mapping.keys(), np.int64, len(mapping))
            if keys.min() < 0:
                raise Sem3RError(f"view_classes of view {v} has a negative 2D id")
            table[v, keys] = np.fromiter(mapping.values(), np.int64, len(mapping))
    return table


def build_view_targets(view_labels: np.ndarray, seen: np.ndarray, superpoints: np.ndarray, num_superpoints: int,
                       view_classes: np.ndarray | Sequence[Mapping[int, int]],
                       num_classes: int | None = None) -> ViewTargets:
    """Build the view-wise superpoint annotations from point-level lifted 2D instance labels.

    Annotations whose class is unknown (-1 in ``view_classes``) are dropped; labelled points then
    count as seen but unlabelled. Targets are ordered by view, then 2D id.

    Args:
        view_labels: ``(V, P)`` int, 2D instance id of point ``p`` in view ``v``; -1 where the
            point has no label or was not reconstructed from view ``v``.
        seen: ``(V, P)`` bool, point ``p`` was reconstructed from view ``v``'s pixels.
        superpoints: ``(P,)`` int64 in ``[0, S)``, superpoint of each point.
        num_superpoints: ``S``.
        view_classes: class of each 2D id: a ``(V, G_max)`` int array (entry ``[v, i]`` is the
            class of id ``i`` in view ``v``, -1 unknown) or a list over views of dicts id -> class.
        num_classes: ``C``; when given, classes must be ``< C``.

    Returns:
        :class:`ViewTargets`; ``masks[g, s]`` = labelled-``g`` points of ``s`` seen in ``g``'s view
        over all points of ``s`` seen in that view; ``superpoint_visibility[v, s]`` = points of
        ``s`` seen in ``v`` over all points of ``s``.

    Example:
        >>> labels = np.array([[0, 0, -1, 1], [-1, -1, 0, 0]], dtype=np.int32)
        >>> seen = np.array([[1, 1, 1, 1], [0, 0, 1, 1]], dtype=bool)
        >>> t = build_view_targets(labels, seen, np.array([0, 0, 1, 1]), 2, [{0: 3, 1: 5}, {0: 3}])
        >>> t.masks.tolist(), t.classes.tolist(), t.superpoint_visibility.tolist()
        ([[1.0, 0.0], [0.0, 0.5], [0.0, 1.0]], [3, 5, 3], [[1.0, 1.0], [0.0, 1.0]])
    """
    view_labels, seen, superpoints = np.asarray(view_labels), np.asarray(seen), np.asarray(superpoints)
    S = int(num_superpoints)
    if view_labels.ndim != 2 or not np.issubdtype(view_labels.dtype, np.integer):
        raise Sem3RError(f"view_labels must be an integer (V, P) array, got {view_labels.dtype} {view_labels.shape}")
    V, P = view_labels.shape
    if seen.shape != (V, P) or seen.dtype != bool:
        raise Sem3RError(f"seen must be a bool ({V}, {P}) array like view_labels, got {seen.dtype} {seen.shape}")
    if superpoints.shape != (P,) or not np.issubdtype(superpoints.dtype, np.integer):
        raise Sem3RError(f"superpoints must be an integer ({P},) array, got {superpoints.dtype} {superpoints.shape}")
    if P and (superpoints.min() < 0 or superpoints.max() >= S):
        raise Sem3RError(f"superpoint ids must be in [0, {S}), got [{superpoints.min()}, {superpoints.max()}]")
    table = _class_table(view_classes, V)
    if view_labels.size and view_labels.min() < -1:
        raise Sem3RError(f"view_labels must be >= -1, got {view_labels.min()}")
    if (view_labels[~seen] >= 0).any():
        raise Sem3RError(f"view_labels labels points not seen in view {int(np.nonzero((view_labels >= 0) & ~seen)[0][0])}")
    if view_labels.size and view_labels.max() >= table.shape[1]:
        raise Sem3RError(f"2D id {view_labels.max()} has no entry in view_classes (G_max = {table.shape[1]})")
    if table.size and (table.min() < -1 or (num_classes is not None and table.max() >= num_classes)):
        raise Sem3RError(f"view_classes must be -1 or in [0, {num_classes}), got [{table.min()}, {table.max()}]")

    sp_size = np.bincount(superpoints, minlength=S)
    v_idx, p_idx = np.nonzero(seen)
    sp = superpoints[p_idx]
    seen_count = np.bincount(v_idx * S + sp, minlength=V * S).reshape(V, S)
    visibility = seen_count / np.maximum(sp_size, 1)

    labels = view_labels[v_idx, p_idx].astype(np.int64)
    classes = np.where(labels >= 0, table[v_idx, np.maximum(labels, 0)] if table.size else -1, -1)
    keep = classes >= 0
    key = v_idx[keep] * max(table.shape[1], 1) + labels[keep]
    uniq, target = np.unique(key, return_inverse=True)
    counts = np.bincount(target * S + sp[keep], minlength=len(uniq) * S).reshape(len(uniq), S)
    views, ids = np.divmod(uniq, max(table.shape[1], 1))
    masks = counts / np.maximum(seen_count[views], 1)
    return ViewTargets(torch.from_numpy(visibility.astype(np.float32)), torch.from_numpy(masks.astype(np.float32)),
                       torch.from_numpy(table[views, ids]), torch.from_numpy(views), torch.from_numpy(ids))


def vip_partition(query_superpoints: torch.Tensor, superpoint_visibility: torch.Tensor,
                  min_visible: float = 0.0) -> torch.Tensor:
    """Assign each query to the views that see its seed superpoint (OVSeg3R eq. 5-6).

    Args:
        query_superpoints: ``(Q,)`` int64 in ``[0, S)``, seed superpoint of each query.
        superpoint_visibility: ``(V, S)`` float in ``[0, 1]``.
        min_visible: a superpoint belongs to a view when its visibility exceeds this.

    Returns:
        ``(V, Q)`` bool, ``[v, q]`` is True iff query ``q`` belongs to view ``v``.

    Example:
        >>> vis = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.2, 1.0]])
        >>> vip_partition(torch.tensor([0, 1, 2]), vis).tolist()
        [[True, True, False], [False, True, True]]
    """
    if query_superpoints.ndim != 1 or superpoint_visibility.ndim != 2:
        raise Sem3RError(f"query_superpoints must be (Q,) and superpoint_visibility (V, S), got "
                         f"{tuple(query_superpoints.shape)} and {tuple(superpoint_visibility.shape)}")
    S = superpoint_visibility.shape[1]
    if len(query_superpoints) and not (0 <= int(query_superpoints.min()) and int(query_superpoints.max()) < S):
        raise Sem3RError(f"query_superpoints must be in [0, {S})")
    return (superpoint_visibility > min_visible)[:, query_superpoints.to(superpoint_visibility.device)]


@dataclass
class VIPLossConfig(MatchingConfig):
    """Settings of :func:`vip_loss` (the cost/loss weights are those of :class:`MatchingConfig`).

    Attributes:
        vip: partition and truncate predictions per view; False is the paper's ablation.
        seed_constraint: only match a query to targets containing its seed superpoint.
        min_visible: superpoint visibility threshold of the view-belonging mask.
        aux_weight: weight of each auxiliary decoder layer's loss.
        max_views: if set, at most this many (eligible) views per call, drawn with the generator.

    Example:
        >>> VIPLossConfig.from_dict({"vip": False, "dice_weight": 2.0}).to_dict()["dice_weight"]
        2.0
    """

    vip: bool = True
    seed_constraint: bool = True
    min_visible: float = 0.0
    aux_weight: float = 1.0
    max_views: int | None = None

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        super().validate()
        if not (isinstance(self.vip, bool) and isinstance(self.seed_constraint, bool)):
            raise Sem3RError("vip and seed_constraint must be booleans")
        if isinstance(self.min_visible, bool) or not isinstance(self.min_visible, (int, float)) \
                or not 0 <= self.min_visible < 1:
            raise Sem3RError(f"min_visible must be in [0, 1), got {self.min_visible!r}")
        if isinstance(self.aux_weight, bool) or not isinstance(self.aux_weight, (int, float)) or not self.aux_weight >= 0:
            raise Sem3RError(f"aux_weight must be a non-negative number, got {self.aux_weight!r}")
        if self.max_views is not None and (not isinstance(self.max_views, int) or self.max_views < 1):
            raise Sem3RError(f"max_views must be None or a positive int, got {self.max_views!r}")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> VIPLossConfig:
        """Build and validate from a JSON object; unknown keys are an error."""
        return dataclass_from_dict(cls, doc, "VIP loss config")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict, readable by :meth:`from_dict`."""
        return asdict(self)


@dataclass
class _ViewSet:
    """One view's partitioned problem: which queries, which superpoint columns, its targets."""

    queries: torch.Tensor  # (Qv,) int64
    columns: torch.Tensor | None  # (Sv,) int64, None: all superpoints
    masks: torch.Tensor  # (Gv, Sv) float32
    classes: torch.Tensor  # (Gv,) int64
    allowed: torch.Tensor | None  # (Qv, Gv) bool


def _layers(outputs: Mapping[str, Any], targets: ViewTargets) -> list[tuple[torch.Tensor, torch.Tensor]]:
    missing = sorted({"mask_logits", "class_logits", "query_superpoints"} - set(outputs))
    if missing or any({"mask_logits", "class_logits"} - set(aux) for aux in outputs.get("aux", ())):
        raise Sem3RError(f"segmenter outputs lack {missing or 'mask_logits/class_logits in aux'}")
    layers = [(outputs["mask_logits"], outputs["class_logits"])]
    layers += [(aux["mask_logits"], aux["class_logits"]) for aux in outputs.get("aux", ())]
    seeds = outputs["query_superpoints"]
    if seeds.ndim != 1 or seeds.dtype != torch.int64:
        raise Sem3RError(f"query_superpoints must be (Q,) int64, got {seeds.dtype} {tuple(seeds.shape)}")
    if len(seeds) and not (0 <= int(seeds.min()) and int(seeds.max()) < targets.num_superpoints):
        raise Sem3RError(f"query_superpoints must be in [0, {targets.num_superpoints})")
    Q = seeds.shape[0]
    for i, (mask_logits, class_logits) in enumerate(layers):
        name = "outputs" if i == 0 else f"aux[{i - 1}]"
        if mask_logits.shape != (Q, targets.num_superpoints) or class_logits.ndim != 2 or class_logits.shape[0] != Q:
            raise Sem3RError(f"{name}: mask_logits must be ({Q}, {targets.num_superpoints}) and class_logits "
                             f"({Q}, C), got {tuple(mask_logits.shape)} and {tuple(class_logits.shape)}")
        if class_logits.shape[1] != layers[0][1].shape[1]:
            raise Sem3RError(f"{name}: class_logits has {class_logits.shape[1]} classes, not {layers[0][1].shape[1]}")
    C = layers[0][1].shape[1]
    if len(targets.classes) and int(targets.classes.max()) >= C:
        raise Sem3RError(f"target class {int(targets.classes.max())} is out of range for {C} class logits")
    return layers


def _view_sets(query_superpoints: torch.Tensor, targets: ViewTargets, config: VIPLossConfig,
               generator: np.random.Generator | None) -> list[_ViewSet]:
    V = targets.num_views
    visible = targets.superpoint_visibility > config.min_visible
    if config.vip:
        members = vip_partition(query_superpoints, targets.superpoint_visibility, config.min_visible)
        nonempty = (targets.masks * visible[targets.views]).sum(1) > 0
    else:
        members = torch.ones(V, len(query_superpoints), dtype=torch.bool, device=visible.device)
        nonempty = targets.masks.sum(1) > 0
    has_target = torch.bincount(targets.views[nonempty], minlength=V) > 0
    eligible = torch.nonzero(has_target & members.any(1)).flatten().cpu().numpy()
    if config.max_views is not None and len(eligible) > config.max_views:
        if generator is None:
            raise Sem3RError("max_views subsamples views: pass a seeded numpy generator to vip_loss")
        eligible = np.sort(generator.choice(eligible, config.max_views, replace=False))
    sets = []
    for v in eligible.tolist():
        queries = torch.nonzero(members[v]).flatten()
        chosen = nonempty & (targets.views == v)
        masks, columns, seeds = targets.masks[chosen], None, query_superpoints[queries]
        if config.vip:
            columns = torch.nonzero(visible[v]).flatten()
            position = torch.cumsum(visible[v], 0) - 1  # column of each visible superpoint
            masks, seeds = masks[:, columns], position[seeds]
        allowed = masks[:, seeds].T >= SEED_INSIDE if config.seed_constraint else None
        sets.append(_ViewSet(queries, columns, masks, targets.classes[chosen], allowed))
    return sets


def _layer_loss(mask_logits: torch.Tensor, class_logits: torch.Tensor, sets: list[_ViewSet],
                config: VIPLossConfig) -> dict[str, torch.Tensor]:
    terms = [hungarian_set_loss(mask_logits[s.queries] if s.columns is None else mask_logits[s.queries][:, s.columns],
                                class_logits[s.queries], s.masks, s.classes, s.allowed, config) for s in sets]
    out = {k: torch.stack([t[k] for t in terms]).mean() for k in ("loss", "loss_mask", "loss_dice", "loss_class")}
    out["matched"] = torch.stack([t["matched"] for t in terms]).sum()
    return out


def vip_loss(outputs: Mapping[str, Any], targets: ViewTargets, config: VIPLossConfig | None = None,
             generator: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
    """OVSeg3R's segmenter loss with View-wise Instance Partition, deep supervision included.

    Args:
        outputs: the segmenter's output for one scene: ``"mask_logits"`` ``(Q, S)`` float,
            ``"class_logits"`` ``(Q, C)`` float (sigmoid per class), ``"query_superpoints"``
            ``(Q,)`` int64 seed superpoints, optional ``"aux"``: a list of dicts with
            ``"mask_logits"`` and ``"class_logits"`` of earlier decoder layers.
        targets: the scene's :class:`ViewTargets` (classes in ``[0, C)``); moved to the logits' device.
        config: settings (default :class:`VIPLossConfig`).
        generator: draws the views when ``config.max_views`` is exceeded (required then).

    Returns:
        ``"loss"``: scalar with gradient, the last layer's view-mean loss plus ``aux_weight`` times
        each auxiliary layer's; detached scalars of the last layer: ``"loss_mask"``, ``"loss_dice"``,
        ``"loss_class"`` (unweighted view means), ``"matched"`` (pairs over all its views) and
        ``"views"`` (views that contributed). With no eligible view the loss is 0, still connected
        to the logits.

    Example:
        >>> targets = ViewTargets.scene_level(torch.tensor([[1.0, 1, 0], [0, 0, 1]]), torch.tensor([0, 1]))
        >>> outputs = {"mask_logits": torch.zeros(2, 3), "class_logits": torch.zeros(2, 2),
        ...            "query_superpoints": torch.tensor([0, 2])}
        >>> out = vip_loss(outputs, targets)
        >>> int(out["matched"]), int(out["views"])
        (2, 1)
    """
    config = config or VIPLossConfig()
    config.validate()
    layers = _layers(outputs, targets)
    query_superpoints = outputs["query_superpoints"]
    if targets.masks.device != layers[0][0].device:
        targets = targets.to(layers[0][0].device)
    sets = _view_sets(query_superpoints, targets, config, generator)
    zero = torch.zeros((), device=layers[0][0].device)
    if not sets:
        loss = sum((m.sum() + c.sum()) * 0 for m, c in layers)
        return {"loss": loss, "loss_mask": zero, "loss_dice": zero, "loss_class": zero,
                "matched": zero.long(), "views": zero.long()}
    last = _layer_loss(*layers[0], sets, config)
    loss = last["loss"] + sum(config.aux_weight * _layer_loss(m, c, sets, config)["loss"] for m, c in layers[1:])
    out = {k: last[k].detach() for k in ("loss_mask", "loss_dice", "loss_class", "matched")}
    return {"loss": loss, **out, "views": torch.tensor(len(sets), dtype=torch.int64)}
