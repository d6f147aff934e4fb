"""Mask2Former-style set loss for superpoint mask predictions: pairwise costs, Hungarian matching
and the matched losses of one set of predictions against one set of targets.

A *set* is one view's partitioned predictions and annotations (OVSeg3R's VIP, see
:mod:`sem3r.training.vip`) or a whole scene with scene-level annotations. Masks live on
superpoints: ``mask_logits (Q, S)`` are per-superpoint logits and ``target_masks (G, S)`` soft
targets in ``[0, 1]`` (the fraction of a superpoint's points carrying the label).

Pairwise costs (all ``Q x G`` pairs at once, matrix products, no loop):

* **mask BCE** ``c_bce(q, g) = (1 / S) sum_s [t_gs softplus(-x_qs) + (1 - t_gs) softplus(x_qs)]``,
  the mean binary cross-entropy with logits of query ``q``'s mask against target ``g``;
* **Dice** ``c_dice(q, g) = 1 - (2 sum_s p_qs t_gs + 1) / (sum_s p_qs + sum_s t_gs + 1)`` with
  ``p = sigmoid(x)`` (Mask2Former's +1 smoothing);
* **class** (sigmoid focal cost of Deformable-DETR / DINO, used by Mask2Former-style sigmoid
  classifiers): with ``p = sigmoid(class_logit(q, c_g))``,
  ``c_cls = alpha (1 - p)^gamma (-log p) - (1 - alpha) p^gamma (-log(1 - p))``, i.e. the focal
  loss of calling ``q`` class ``c_g`` minus that of calling it background.

The matching cost is ``class_weight c_cls + bce_weight c_bce + dice_weight c_dice``, solved by
:func:`scipy.optimize.linear_sum_assignment` in float64. An optional ``allowed (Q, G)`` mask
(OVSeg3R's seed constraint) gives forbidden pairs the cost :data:`FORBIDDEN_COST`, far above any
sum of real costs, so the solver first maximises the number of allowed pairs and then minimises
their cost; forbidden pairs it still returns (a rectangular assignment always pairs
``min(Q, G)``) are dropped.

Matched losses (:func:`hungarian_set_loss`), with ``M`` matched pairs and ``n = max(M, 1)``:
mask BCE (mean over the set's superpoints) and Dice summed over matched pairs over ``n``, and the
sigmoid focal loss (``alpha = 0.25``, ``gamma = 2``) over *all* queries and all ``C`` classes
summed over ``n``, with a one-hot target of the matched class for matched queries and all zeros
(no object) for the others. The same weights combine the losses as the costs (Mask2Former's
practice). Masks are compared on every superpoint of the set (superpoints are few; no point
sampling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from sem3r.errors import Sem3RError

FORBIDDEN_COST = 1e8
"""Matching cost of a pair the seed constraint forbids (float64; far above any real cost sum)."""

DICE_SMOOTH = 1.0
"""Added to the Dice numerator and denominator (Mask2Former's smoothing)."""


@dataclass
class MatchingConfig:
    """Weights of the matching costs and losses of :func:`match_view` and :func:`hungarian_set_loss`.

    Attributes:
        class_weight: weight of the class (focal) cost and loss.
        bce_weight: weight of the mask binary cross-entropy cost and loss.
        dice_weight: weight of the Dice cost and loss.
        focal_alpha: focal-loss weight of positive labels, in ``[0, 1]``.
        focal_gamma: focal-loss focusing exponent, ``>= 0``.

    Example:
        >>> MatchingConfig(dice_weight=1.0).bce_weight
        5.0
    """

    class_weight: float = 2.0
    bce_weight: float = 5.0
    dice_weight: float = 5.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        for name in ("class_weight", "bce_weight", "dice_weight", "focal_gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise Sem3RError(f"{name} must be a non-negative number, got {value!r}")
        if isinstance(self.focal_alpha, bool) or not isinstance(self.focal_alpha, (int, float)) \
                or not 0 <= self.focal_alpha <= 1:
            raise Sem3RError(f"focal_alpha must be in [0, 1], got {self.focal_alpha!r}")


def _check_set(mask_logits: torch.Tensor, class_logits: torch.Tensor, target_masks: torch.Tensor,
               target_classes: torch.Tensor) -> None:
    if mask_logits.ndim != 2 or class_logits.ndim != 2 or mask_logits.shape[0] != class_logits.shape[0]:
        raise Sem3RError(f"mask_logits (Q, S) and class_logits (Q, C) disagree: shapes "
                         f"{tuple(mask_logits.shape)} and {tuple(class_logits.shape)}")
    if target_masks.ndim != 2 or target_masks.shape[1] != mask_logits.shape[1]:
        raise Sem3RError(f"target_masks must be (G, {mask_logits.shape[1]}), got {tuple(target_masks.shape)}")
    if target_classes.shape != (target_masks.shape[0],):
        raise Sem3RError(f"target_classes must be ({target_masks.shape[0]},), got {tuple(target_classes.shape)}")
    if len(target_classes) and not (0 <= int(target_classes.min()) and int(target_classes.max()) < class_logits.shape[1]):
        raise Sem3RError(f"target class ids must be in [0, {class_logits.shape[1]}), got "
                         f"[{int(target_classes.min())}, {int(target_classes.max())}]")


def pairwise_bce_cost(mask_logits: torch.Tensor, target_masks: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy with logits of every prediction against every soft target mask.

    Args:
        mask_logits: ``(Q, S)`` float, mask logits.
        target_masks: ``(G, S)`` float in ``[0, 1]``.

    Returns:
        ``(Q, G)`` float, ``cost[q, g] = mean_s BCE(mask_logits[q, s], target_masks[g, s])``.

    Example:
        >>> cost = pairwise_bce_cost(torch.zeros(1, 4), torch.ones(2, 4))
        >>> round(float(cost[0, 1]), 4)  # log 2
        0.6931
    """
    t = target_masks.to(mask_logits.dtype)
    positive = F.softplus(-mask_logits) @ t.T
    negative = F.softplus(mask_logits) @ (1 - t).T
    return (positive + negative) / max(mask_logits.shape[1], 1)


def pairwise_dice_cost(mask_logits: torch.Tensor, target_masks: torch.Tensor) -> torch.Tensor:
    """Smoothed Dice loss of every prediction against every soft target mask.

    Args:
        mask_logits: ``(Q, S)`` float, mask logits.
        target_masks: ``(G, S)`` float in ``[0, 1]``.

    Returns:
        ``(Q, G)`` float, ``1 - (2 sum_s p t + 1) / (sum_s p + sum_s t + 1)``, ``p = sigmoid(logits)``.

    Example:
        >>> cost = pairwise_dice_cost(torch.tensor([[30.0, -30.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> [round(c, 4) for c in cost[0].tolist()]
        [0.0, 0.6667]
    """
    p = mask_logits.sigmoid()
    t = target_masks.to(p.dtype)
    numerator = 2 * (p @ t.T) + DICE_SMOOTH
    denominator = p.sum(1)[:, None] + t.sum(1)[None, :] + DICE_SMOOTH
    return 1 - numerator / denominator


def pairwise_class_cost(class_logits: torch.Tensor, target_classes: torch.Tensor,
                        alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal classification cost of every prediction for every target's class.

    Args:
        class_logits: ``(Q, C)`` float, per-class sigmoid logits.
        target_classes: ``(G,)`` int64 in ``[0, C)``.
        alpha: focal weight of the positive term.
        gamma: focal exponent.

    Returns:
        ``(Q, G)`` float, ``alpha (1-p)^gamma (-log p) - (1-alpha) p^gamma (-log(1-p))`` with
        ``p = sigmoid(class_logits[q, target_classes[g]])``; negative when ``q`` is confident in the class.

    Example:
        >>> cost = pairwise_class_cost(torch.tensor([[20.0, -20.0]]), torch.tensor([0, 1]))
        >>> bool(cost[0, 0] < 0 < cost[0, 1])
        True
    """
    x = class_logits[:, target_classes]
    p = x.sigmoid()
    positive = alpha * (1 - p) ** gamma * F.softplus(-x)
    negative = (1 - alpha) * p ** gamma * F.softplus(x)
    return positive - negative


def matching_cost(mask_logits: torch.Tensor, class_logits: torch.Tensor, target_masks: torch.Tensor,
                  target_classes: torch.Tensor, config: MatchingConfig) -> torch.Tensor:
    """The weighted matching cost ``class_weight c_cls + bce_weight c_bce + dice_weight c_dice``.

    Args:
        mask_logits: ``(Q, S)`` float.
        class_logits: ``(Q, C)`` float.
        target_masks: ``(G, S)`` float in ``[0, 1]``.
        target_classes: ``(G,)`` int64 in ``[0, C)``.
        config: the weights and focal parameters.

    Returns:
        ``(Q, G)`` float32, without gradient.

    Example:
        >>> matching_cost(torch.zeros(3, 5), torch.zeros(3, 2), torch.ones(1, 5), torch.tensor([1]),
        ...               MatchingConfig()).shape
        torch.Size([3, 1])
    """
    with torch.no_grad():
        x, logits = mask_logits.detach().float(), class_logits.detach().float()
        cost = config.class_weight * pairwise_class_cost(logits, target_classes, config.focal_alpha, config.focal_gamma)
        if config.bce_weight:
            cost = cost + config.bce_weight * pairwise_bce_cost(x, target_masks)
        if config.dice_weight:
            cost = cost + config.dice_weight * pairwise_dice_cost(x, target_masks)
    return cost


def match_view(mask_logits: torch.Tensor, class_logits: torch.Tensor, target_masks: torch.Tensor,
               target_classes: torch.Tensor, allowed: torch.Tensor | None = None,
               config: MatchingConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of one set of predictions to one set of targets.

    Args:
        mask_logits: ``(Q, S)`` float, mask logits over the set's superpoints.
        class_logits: ``(Q, C)`` float, per-class sigmoid logits.
        target_masks: ``(G, S)`` float in ``[0, 1]``.
        target_classes: ``(G,)`` int64 in ``[0, C)``.
        allowed: ``(Q, G)`` bool or ``None``; pairs set to False are never returned (OVSeg3R's seed
            constraint: the target's mask must contain the query's seed superpoint).
        config: cost weights (default :class:`MatchingConfig`).

    Returns:
        ``(query_idx, target_idx)``: ``(M,)`` int64 each, ``M <= min(Q, G)``, sorted by query.

    Example:
        >>> masks = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]])
        >>> q, g = match_view(20 * (2 * masks.flip(0) - 1), torch.zeros(2, 1), masks, torch.zeros(2, dtype=torch.int64))
        >>> q.tolist(), g.tolist()
        ([0, 1], [1, 0])
    """
    config = config or MatchingConfig()
    _check_set(mask_logits, class_logits, target_masks, target_classes)
    Q, G = mask_logits.shape[0], target_masks.shape[0]
    if allowed is not None and tuple(allowed.shape) != (Q, G):
        raise Sem3RError(f"allowed must be ({Q}, {G}), got {tuple(allowed.shape)}")
    empty = np.zeros(0, dtype=np.int64)
    if Q == 0 or G == 0:
        return empty, empty
    cost = matching_cost(mask_logits, class_logits, target_masks, target_classes, config).cpu().double().numpy()
    if not np.isfinite(cost).all():
        raise Sem3RError("matching cost is not finite: mask or class logits contain NaN or inf")
    if allowed is not None:
        ok = allowed.detach().cpu().numpy().astype(bool)
        cost = np.where(ok, cost, FORBIDDEN_COST)
    rows, cols = linear_sum_assignment(cost)
    if allowed is not None:
        keep = ok[rows, cols]
        rows, cols = rows[keep], cols[keep]
    return rows.astype(np.int64), cols.astype(np.int64)


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """Elementwise sigmoid focal loss (Lin et al.), ``alpha_t (1 - p_t)^gamma BCE(logits, targets)``.

    Args:
        logits: ``(*)`` float.
        targets: ``(*)`` float in ``[0, 1]``, same shape.
        alpha: weight of positives (``1 - alpha`` for negatives).
        gamma: focusing exponent.

    Returns:
        ``(*)`` float, the unreduced loss.

    Example:
        >>> round(float(sigmoid_focal_loss(torch.zeros(1), torch.ones(1))), 4)  # 0.25 * 0.5^2 * log 2
        0.0433
    """
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def hungarian_set_loss(mask_logits: torch.Tensor, class_logits: torch.Tensor, target_masks: torch.Tensor,
                       target_classes: torch.Tensor, allowed: torch.Tensor | None = None,
                       config: MatchingConfig | None = None) -> dict[str, torch.Tensor]:
    """Match one set of predictions to its targets (:func:`match_view`) and compute the set loss.

    Args:
        mask_logits: ``(Q, S)`` float, mask logits over the set's superpoints.
        class_logits: ``(Q, C)`` float, per-class sigmoid logits.
        target_masks: ``(G, S)`` float in ``[0, 1]``.
        target_classes: ``(G,)`` int64 in ``[0, C)``.
        allowed: ``(Q, G)`` bool or ``None``, pairs that may be matched.
        config: weights and focal parameters (default :class:`MatchingConfig`).

    Returns:
        ``{"loss", "loss_mask", "loss_dice", "loss_class", "matched"}``: ``loss`` is the weighted sum
        of the three terms (each normalised by ``max(M, 1)``, see the module docstring), all with
        gradient; ``matched`` is ``M`` as an int64 scalar tensor.

    Example:
        >>> masks = torch.tensor([[1.0, 1, 0], [0, 0, 1]])
        >>> out = hungarian_set_loss(30 * (2 * masks - 1), torch.tensor([[30.0], [30.0]]), masks,
        ...                          torch.zeros(2, dtype=torch.int64))
        >>> round(float(out["loss"]), 6), int(out["matched"])
        (0.0, 2)
    """
    config = config or MatchingConfig()
    query_idx, target_idx = match_view(mask_logits, class_logits, target_masks, target_classes, allowed, config)
    device = mask_logits.device
    q = torch.as_tensor(query_idx, device=device)
    g = torch.as_tensor(target_idx, device=device)
    n = max(len(query_idx), 1)
    x = mask_logits[q]
    t = target_masks[g].to(x.dtype)
    loss_mask = F.binary_cross_entropy_with_logits(x, t, reduction="none").mean(1).sum() / n
    p = x.sigmoid()
    dice = 1 - (2 * (p * t).sum(1) + DICE_SMOOTH) / (p.sum(1) + t.sum(1) + DICE_SMOOTH)
    loss_dice = dice.sum() / n
    onehot = torch.zeros_like(class_logits)
    onehot[q, target_classes[g].to(device)] = 1
    loss_class = sigmoid_focal_loss(class_logits, onehot, config.focal_alpha, config.focal_gamma).sum() / n
    loss = config.class_weight * loss_class + config.bce_weight * loss_mask + config.dice_weight * loss_dice
    return {"loss": loss, "loss_mask": loss_mask, "loss_dice": loss_dice, "loss_class": loss_class,
            "matched": torch.tensor(len(query_idx), dtype=torch.int64)}
