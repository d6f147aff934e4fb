"""IGGT's 3D-consistent contrastive loss on per-pixel instance features (paper eq. 4).

For each batch element, pixels are sampled jointly over all its ``S`` views and every pair of
sampled pixels is compared; the instance ids are 3D-consistent, so pairs across views pull the
features of one object together in every view (what makes the features 3D-consistent):

.. math::

    L = w_{pull} \\operatorname{mean}_{(i,j): y_i = y_j} d_{ij}^2
      + w_{push} \\operatorname{mean}_{(i,j): y_i \\ne y_j} \\max(0, m - d_{ij})^2,

with ``d_ij = |f_i - f_j|`` the L2 distance between L2-normalised features (re-normalised here,
the loss is defined on the unit sphere), ``i != j``, and pixels with id ``-1`` (structure,
unlabelled) left out. The paper names a pull and a push coefficient and a margin but their values
are not legible in our copy; our choices:

- squared-hinge form (pull on ``d^2``, push on ``relu(m - d)^2``), as in the discriminative loss
  of De Brabandere et al. and the classic contrastive loss of Hadsell et al.;
- ``margin = 1.0``: distances on the unit sphere lie in ``[0, 2]``; ``d >= 1`` means an angle of at
  least 60 degrees, and 8-dim unit vectors can hold up to 240 instances pairwise that far apart
  (the E8 kissing configuration), far more than a scene has;
- ``pull_weight = push_weight = 1``; each term is a mean over its own pair set, so same- and
  different-instance pairs weigh equally however many of each there are.

Sampling (:func:`sample_instance_pixels`) is balanced over instances: each eligible pixel gets
weight ``1 / (pixels of its instance in the sample)`` and ``num_samples`` pixels are drawn without
replacement by Gumbel top-k, so every instance expects the same number of samples and small
objects count as much as large furniture; an instance smaller than its share contributes all of
its pixels. Instances with fewer than ``min_pixels`` pixels (over all views) are ignored.

A batch element with fewer than two sampled instances has no different-instance pair and
contributes nothing; the loss is the mean over the other elements (0 with a gradient path when
there are none). ``d`` is computed as ``sqrt(d^2 + 1e-6)`` in the push term, so the gradient stays
finite when two different instances have identical features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from sem3r.errors import Sem3RError

PUSH_EPS = 1e-6
"""Added to ``d^2`` before the square root of the push term (keeps its gradient finite at ``d = 0``)."""


@dataclass
class ContrastiveLossConfig:
    """Settings of :func:`instance_contrastive_loss` (see the module docstring for the choices).

    Attributes:
        num_samples: pixels sampled per batch element, over all of its views.
        pull_weight: coefficient of the same-instance term.
        push_weight: coefficient of the different-instance term.
        margin: distance beyond which different instances are not pushed (unit-sphere L2, in ``(0, 2]``).
        min_pixels: instances with fewer labelled pixels in the sample (all views) are ignored.
        seed: ``None`` draws the pixel samples from the global torch RNG (which
            :class:`~sem3r.training.trainer.Trainer` seeds and stores in its checkpoints, so a
            resumed run samples the same pixels); an int gives :class:`~sem3r.training.iggt.IGGTLoss`
            its own generator seeded with it (independent of the model's randomness; its state is
            not checkpointed, so resuming restarts its stream).

    Example:
        >>> ContrastiveLossConfig.from_dict({"margin": 0.8}).margin
        0.8
    """

    num_samples: int = 1024
    pull_weight: float = 1.0
    push_weight: float = 1.0
    margin: float = 1.0
    min_pixels: int = 4
    seed: int | None = None

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.num_samples < 2:
            raise Sem3RError(f"contrastive num_samples must be at least 2, got {self.num_samples}")
        if self.pull_weight < 0 or self.push_weight < 0:
            raise Sem3RError("contrastive pull_weight and push_weight must be non-negative")
        if not 0 < self.margin <= 2:
            raise Sem3RError(f"contrastive margin must be in (0, 2] (unit-sphere distances), got {self.margin}")
        if self.min_pixels < 1:
            raise Sem3RError(f"contrastive min_pixels must be at least 1, got {self.min_pixels}")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ContrastiveLossConfig:
        """Build from a JSON object; unknown keys are an error."""
        if not isinstance(doc, Mapping):
            raise Sem3RError("the contrastive loss config must be a JSON object")
        unknown = sorted(set(doc) - {f.name for f in fields(cls)})
        if unknown:
            raise Sem3RError(f"unknown contrastive loss config keys {unknown}")
        cfg = cls(**doc)
        try:
            cfg.validate()
        except TypeError:
            raise Sem3RError(f"contrastive loss config values must be numbers, got {dict(doc)}") from None
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict, readable by :meth:`from_dict`."""
        return asdict(self)


def sample_instance_pixels(instance_ids: torch.Tensor, num_samples: int, min_pixels: int = 1,
                           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw pixels per batch element, balanced over instances, without replacement.

    Pixel ``n`` of element ``b`` with id ``y >= 0`` whose instance has ``c >= min_pixels`` pixels in
    element ``b`` gets weight ``1 / c``; ``num_samples`` pixels are drawn by Gumbel top-k
    (``argtopk(log w - log(-log u))``, ``u ~ U(0, 1)``), which samples without replacement with
    probabilities proportional to ``w``. Ids need not be contiguous.

    Args:
        instance_ids: ``(B, N)`` integer ids, ``-1`` = unlabelled.
        num_samples: pixels to draw per element (at most ``N``).
        min_pixels: smallest instance (pixels per element) that is sampled.
        generator: source of ``u``; ``None``: the global torch RNG of ``instance_ids``' device.

    Returns:
        ``index``: ``(B, P) int64`` pixel indices, ``P = min(num_samples, N)``;
        ``valid``: ``(B, P) bool``, False where the element had fewer eligible pixels than ``P``.

    Example:
        >>> ids = torch.tensor([[0, 0, 0, 0, 1, 1, -1, -1]])
        >>> index, valid = sample_instance_pixels(ids, 8, generator=torch.Generator().manual_seed(0))
        >>> index.shape, int(valid.sum()), sorted(index[valid].tolist())   # the 6 labelled pixels
        (torch.Size([1, 8]), 6, [0, 1, 2, 3, 4, 5])
    """
    if instance_ids.ndim != 2:
        raise Sem3RError(f"instance_ids must be (B, N), got shape {tuple(instance_ids.shape)}")
    B, N = instance_ids.shape
    ids = instance_ids.long()
    labelled = ids >= 0
    stride = int(ids.max().clamp_min(0)) + 2 if ids.numel() else 2
    keys = torch.arange(B, device=ids.device)[:, None] * stride + torch.where(labelled, ids + 1, 0)
    _, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
    count = counts[inverse]
    eligible = labelled & (count >= min_pixels)
    device = generator.device if generator is not None else ids.device
    u = torch.rand((B, N), generator=generator, device=device).to(ids.device).clamp_min(1e-20)
    score = -torch.log(count.double()) - torch.log(-torch.log(u.double()))
    score = torch.where(eligible, score, -torch.inf)
    values, index = torch.topk(score, min(int(num_samples), N), dim=1)
    return index, torch.isfinite(values)


def instance_contrastive_loss(features: torch.Tensor, instance_ids: torch.Tensor,
                              config: ContrastiveLossConfig | None = None,
                              generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Multi-view contrastive loss of per-pixel instance features (module docstring).

    Args:
        features: ``(B, S, H, W, C)`` float instance features (re-normalised along ``C`` here).
        instance_ids: ``(B, S, H, W)`` integer 3D-consistent instance ids, ``-1`` = ignored.
        config: sampling and loss settings (default :class:`ContrastiveLossConfig`).
        generator: source of the pixel samples; ``None``: the global torch RNG.

    Returns:
        ``loss``: ``()`` float32, differentiable, the mean over batch elements with at least two
        sampled instances (0 with a gradient path when none has);
        ``stats``: detached ``()`` scalars over those elements: ``pull`` and ``push`` (the unweighted
        terms), ``same_distance`` and ``different_distance`` (mean ``d`` of same / different
        instance pairs), ``instances`` (mean sampled instances per element).

    Example:
        >>> f = torch.tensor([1.0, 0, 0, 0, 1, 0]).reshape(1, 2, 1, 1, 3)   # two views, one pixel each
        >>> cfg = ContrastiveLossConfig(min_pixels=1)
        >>> loss, stats = instance_contrastive_loss(f, torch.tensor([0, 1]).reshape(1, 2, 1, 1), cfg)
        >>> round(float(loss), 4), round(float(stats["different_distance"]), 4)   # d = sqrt(2) > margin
        (0.0, 1.4142)
    """
    cfg = config or ContrastiveLossConfig()
    cfg.validate()
    if features.ndim != 5 or instance_ids.shape != features.shape[:4]:
        raise Sem3RError(f"features must be (B, S, H, W, C) and instance_ids (B, S, H, W), got shapes "
                         f"{tuple(features.shape)} and {tuple(instance_ids.shape)}")
    if instance_ids.dtype.is_floating_point or instance_ids.dtype == torch.bool:
        raise Sem3RError(f"instance_ids must be an integer tensor, got {instance_ids.dtype}")
    B, C = features.shape[0], features.shape[-1]
    ids = instance_ids.reshape(B, -1).to(features.device)
    index, valid = sample_instance_pixels(ids, cfg.num_samples, cfg.min_pixels, generator)
    f = features.reshape(B, -1, C).float().gather(1, index[..., None].expand(-1, -1, C))
    f = F.normalize(torch.where(valid[..., None], f, 0.0), dim=-1)  # unused slots: no NaN can leak in
    y = ids.gather(1, index)
    P = index.shape[1]
    pair = valid[:, :, None] & valid[:, None, :] & ~torch.eye(P, dtype=torch.bool, device=f.device)
    same = pair & (y[:, :, None] == y[:, None, :])
    different = pair & ~same
    d2 = (2.0 - 2.0 * f @ f.transpose(1, 2)).clamp_min(0.0)
    d = torch.sqrt(d2 + PUSH_EPS)
    n_same = same.sum((1, 2)).clamp_min(1)
    n_diff = different.sum((1, 2)).clamp_min(1)
    pull = torch.where(same, d2, 0.0).sum((1, 2)) / n_same
    push = torch.where(different, (cfg.margin - d).clamp_min(0.0) ** 2, 0.0).sum((1, 2)) / n_diff
    active = different.any(dim=(1, 2))
    per_element = torch.where(active, cfg.pull_weight * pull + cfg.push_weight * push, 0.0)
    n_active = active.sum().clamp_min(1)
    loss = per_element.sum() / n_active
    with torch.no_grad():
        earlier_same = (same & torch.ones(P, P, dtype=torch.bool, device=f.device).tril(-1)).any(dim=2)
        instances = (valid & ~earlier_same).sum(1).float()

        def over_active(values: torch.Tensor) -> torch.Tensor:
            return torch.where(active, values, 0.0).sum() / n_active

        stats = {
            "pull": over_active(pull),
            "push": over_active(push),
            "same_distance": over_active(torch.where(same, d2.sqrt(), 0.0).sum((1, 2)) / n_same),
            "different_distance": over_active(torch.where(different, d2.sqrt(), 0.0).sum((1, 2)) / n_diff),
            "instances": over_active(instances),
        }
    return loss, {k: v.detach() for k, v in stats.items()}
