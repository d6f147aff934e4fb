"""ROSS3D's grounding head (``ground_head_type infonce``, ``object_feature_type patch14-pe``; facts section 6).

Proposals are axis-aligned boxes ``(cx, cy, cz, sx, sy, sz)`` in the world frame of the depth-derived points.

* **Coverage** (:func:`patch_coverage`): a box covers a SigLIP patch (``n x n`` grid of ``p x p`` pixels on the
  top-left ``n p`` crop of the world-point map) when at least ``int(p * p * 0.5)`` (98) of its pixels lie inside
  the box (bounds inclusive).
* **Object feature** (:func:`object_features`): the mean of the projector outputs (the ``n x n`` grid, before
  pooling and position encoding) of all covered patches of all frames, or zeros when none is covered, plus the
  sine 3D encoding of the discretised box centre (added by the model).
* **Scores** (:func:`ground_scores`): the learned ``ground_head_zero_target`` ("no target") is appended to the
  object features; scores = cosine similarity of ``ground_head_query(q)`` and ``ground_head_obj(f)``, ``q`` the
  final hidden state (after the last RMSNorm) at the ``<ground>`` token. The last score is the zero target.
* **Loss** (:func:`infonce_loss`): ``-log(sum_pos exp(s / T) / sum_all exp(s / T))``, T = 0.07; without a positive
  the zero target is the positive.

The heads are ``Linear(D, D)``, ReLU, ``LayerNorm(D)``, ``Linear(D, D)`` (keys ``0``, ``2``, ``3``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.errors import Sem3RError


def build_ground_mlp(width: int) -> nn.Sequential:
    """``ground_head_obj`` / ``ground_head_query``: Linear, ReLU, LayerNorm, Linear (all ``width``)."""
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.LayerNorm(width), nn.Linear(width, width))


def patch_coverage(points: torch.Tensor, boxes: torch.Tensor, patch_grid: int, patch_size: int,
                   min_fraction: float = 0.5) -> torch.Tensor:
    """Which SigLIP patches each box covers.

    Args:
        points: ``(S, H, W, 3)`` world points aligned with the frames.
        boxes: ``(K, 6)`` centre and size.
        patch_grid, patch_size: n (27) and p (14).
        min_fraction: covered when at least ``int(p * p * min_fraction)`` pixels are inside.

    Returns:
        ``(K, S, n * n)`` bool, row-major patches.

    Example:
        >>> pts = torch.zeros(1, 4, 4, 3); pts[0, :2, :2] = 5.0
        >>> patch_coverage(pts, torch.tensor([[5.0, 5, 5, 1, 1, 1]]), 2, 2)[0, 0].tolist()
        [True, False, False, False]
    """
    n, p = patch_grid, patch_size
    S = points.shape[0]
    grid = points[:, :n * p, :n * p].reshape(S, n, p, n, p, 3).transpose(2, 3).reshape(S, n * n, p * p, 3)
    need = int(p * p * min_fraction)
    out = []
    for box in boxes:
        lo, hi = box[:3] - box[3:] / 2, box[:3] + box[3:] / 2
        inside = torch.all((lo <= grid) & (grid <= hi), dim=-1)
        out.append(inside.sum(dim=-1) >= need)
    return torch.stack(out) if out else torch.zeros(0, S, n * n, dtype=torch.bool, device=points.device)


def object_features(patch_features: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """Mean projector output of the covered patches per object (zeros when none is covered).

    Args:
        patch_features: ``(S, n * n, D)`` projector outputs of every frame.
        coverage: ``(K, S, n * n)`` from :func:`patch_coverage`.

    Returns:
        ``(K, D)`` (without the centre's position encoding).
    """
    feats = []
    for cov in coverage:
        chosen = patch_features[cov]
        feats.append(chosen.mean(dim=0) if len(chosen) else patch_features.new_zeros(patch_features.shape[-1]))
    return torch.stack(feats) if feats else patch_features.new_zeros(0, patch_features.shape[-1])


def ground_scores(query: torch.Tensor, objects: torch.Tensor, zero_target: torch.Tensor, obj_head: nn.Module,
                  query_head: nn.Module) -> torch.Tensor:
    """Cosine scores of the proposals and the zero target.

    Args:
        query: ``(D,)`` or ``(1, D)`` hidden state at ``<ground>``.
        objects: ``(K, D)`` object features (centre encoding included).
        zero_target: ``(D,)``.
        obj_head, query_head: the two MLPs.

    Returns:
        ``(K + 1,)``; the last entry is the zero target.
    """
    objects = torch.cat((objects, zero_target[None].to(objects.dtype)), dim=0)
    query = query.reshape(1, -1)
    obj = F.normalize(obj_head(objects.to(query.dtype)))
    q = F.normalize(query_head(query))
    return (obj * q).sum(dim=-1)


def infonce_loss(scores: torch.Tensor, positives: Sequence[int], temperature: float = 0.07) -> torch.Tensor:
    """Grounding loss for one query.

    Args:
        scores: ``(K + 1,)`` from :func:`ground_scores`.
        positives: indices of the matching proposals (empty: the zero target, index -1).
        temperature: 0.07.

    Example:
        >>> round(float(infonce_loss(torch.tensor([0.0, 0.0]), [0], 1.0)), 4)
        0.6931
    """
    idx = list(positives) or [-1]
    if any(i >= scores.numel() or i < -scores.numel() for i in idx):
        raise Sem3RError(f"positive index out of range for {scores.numel()} scores: {idx}")
    logits = torch.exp(scores / temperature)
    return -torch.log(logits[idx].sum() / logits.sum())
