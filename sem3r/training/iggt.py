"""IGGT training: geometry losses plus the 3D-consistent contrastive loss (paper eq. 5), config and entry point.

The loss is ``L = L_geometry + contrastive_weight * L_contrastive``: the geometry terms of
:class:`~sem3r.training.losses.GeometryLoss` (``"vggt"`` or ``"g2vlm"`` preset) on the geometry
heads and :func:`~sem3r.training.contrastive.instance_contrastive_loss` on
``predictions["instance_features"]`` against the batch's 3D-consistent ``instance_ids``.

The config is a JSON object like :class:`~sem3r.training.geometry.GeometryTrainingConfig`'s, with an
IGGT loss section and three options::

    {
      "dataset_root": "data/synth",
      "model": "small",
      "model_overrides": {},
      "image_size": [112, 112],
      "min_views": 2,
      "max_views": 4,
      "loss": {"geometry": {"preset": "vggt"}, "contrastive": {"num_samples": 1024, "margin": 1.0},
               "contrastive_weight": 1.0},
      "init_checkpoint": "runs/geometry",
      "freeze_backbone": false,
      "train": {"steps": 2000, "batch_size": 1, "lr": 0.0005, "out_dir": "runs/iggt"}
    }

``model_overrides`` changes :class:`~sem3r.models.iggt.IGGTConfig` fields of the ``model`` size
(the track head is off unless it sets ``enable_track``). ``init_checkpoint`` initialises the backbone and geometry heads from a ``sem3r train geometry`` run
folder (its ``model/``), a model folder, a training checkpoint, or a VGGT / IGGT weights file:
loading is strict except that the instance head's ``part_*`` tensors may be missing (they keep their
fresh initialisation). ``freeze_backbone`` stops the gradients of the aggregator (the DINOv2 patch
embedding and the alternating attention), so only the heads train. The paper trains the backbone
with a smaller learning rate than the heads; :class:`~sem3r.training.trainer.Trainer` has one rate,
so freezing is the cheap approximation here.

``benchmarks/configs/iggt_small.json`` is a recipe for about 30 CPU minutes (small model, 4 views
of 112 x 112, batch 1, 1500 steps at lr 1e-3, ``contrastive_weight`` 10). With the ``"vggt"``
geometry weights a contrastive weight of 1-2 leaves the shared backbone mostly to the geometry
terms and the instance features learn about four times slower per step; 10 learns them as fast as
contrastive-only training while the geometry losses fall as fast as with weight 2.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.reconstruct.checkpoint import (
    load_state_dict_strict,
    read_state_dict,
    resolve_checkpoint,
)
from sem3r.training.contrastive import ContrastiveLossConfig, instance_contrastive_loss
from sem3r.training.losses import GeometryLoss, GeometryLossConfig
from sem3r.training.run_config import TrainingRunConfig, fit_and_export

logger = logging.getLogger(__name__)

GEOMETRY_TERMS = ("camera_weight", "depth_weight", "point_weight", "scaled_point_weight",
                  "relative_camera_weight", "normal_weight")
"""Weights of :class:`GeometryLossConfig` that switch a geometry term on."""

INSTANCE_HEAD_PREFIX = "part_"
"""State-dict prefix of IGGT's instance head (``part_adaptor``, ``part_head``)."""


@dataclass
class IGGTLossConfig:
    """Settings of :class:`IGGTLoss`.

    Attributes:
        geometry: the geometry terms (all their weights 0: contrastive training only).
        contrastive: sampling and form of the contrastive loss.
        contrastive_weight: its weight in the total.

    Example:
        >>> cfg = IGGTLossConfig.from_dict({"geometry": {"preset": "g2vlm"}, "contrastive_weight": 0.5})
        >>> cfg.geometry.loss_type, cfg.contrastive.margin, cfg.contrastive_weight
        ('g2vlm', 1.0, 0.5)
    """

    geometry: GeometryLossConfig = field(default_factory=GeometryLossConfig)
    contrastive: ContrastiveLossConfig = field(default_factory=ContrastiveLossConfig)
    contrastive_weight: float = 1.0

    @property
    def geometry_enabled(self) -> bool:
        """Whether any geometry term has a positive weight."""
        return any(getattr(self.geometry, name) > 0 for name in GEOMETRY_TERMS)

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        self.geometry.validate()
        self.contrastive.validate()
        if self.contrastive_weight < 0:
            raise Sem3RError(f"contrastive_weight must be non-negative, got {self.contrastive_weight}")
        if self.contrastive_weight == 0 and not self.geometry_enabled:
            raise Sem3RError("every IGGT loss weight is 0: nothing to train")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> IGGTLossConfig:
        """Build from a JSON object with ``geometry`` (a geometry loss config, optional ``"preset"``),
        ``contrastive`` and ``contrastive_weight``; unknown keys are an error."""
        if not isinstance(doc, Mapping):
            raise Sem3RError("the IGGT loss config must be a JSON object")
        unknown = sorted(set(doc) - {f.name for f in fields(cls)})
        if unknown:
            raise Sem3RError(f"unknown IGGT loss config keys {unknown}")
        weight = doc.get("contrastive_weight", cls.contrastive_weight)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise Sem3RError(f"contrastive_weight must be a number, got {weight!r}")
        cfg = cls(geometry=GeometryLossConfig.from_dict(doc.get("geometry") or {}),
                  contrastive=ContrastiveLossConfig.from_dict(doc.get("contrastive") or {}),
                  contrastive_weight=float(weight))
        cfg.validate()
        return cfg


class IGGTLoss:
    """IGGT's multi-task loss: geometry terms plus ``contrastive_weight`` times the contrastive loss.

    Called as ``loss(predictions, batch)`` with the model's output dict (VGGT's keys plus
    ``instance_features (B, S, H, W, C)``) and a batch of
    :func:`~sem3r.training.dataset.collate_geometry` (with ``instance_ids (B, S, H, W)``).

    Returns a dict: ``"loss"`` (the differentiable total) and detached scalars: the geometry terms
    of :class:`~sem3r.training.losses.GeometryLoss` (only when a geometry weight is positive),
    ``contrastive`` (the weighted-sum contrastive loss before ``contrastive_weight``), ``pull``,
    ``push``, ``same_distance``, ``different_distance`` and ``instances`` (see
    :func:`~sem3r.training.contrastive.instance_contrastive_loss`).

    The pixel samples come from the global torch RNG, or from a generator of this object seeded with
    ``contrastive.seed`` when that is set.

    Example:
        >>> cfg = IGGTLossConfig.from_dict({"geometry": {"camera_weight": 0, "depth_weight": 0, "point_weight": 0}})
        >>> f = torch.nn.functional.normalize(torch.randn(1, 2, 4, 4, 8), dim=-1)
        >>> out = IGGTLoss(cfg)({"instance_features": f}, {"instance_ids": torch.arange(32).reshape(1, 2, 4, 4) % 3})
        >>> sorted(out)[:4], bool(out["loss"] == out["contrastive"])
        (['contrastive', 'different_distance', 'instances', 'loss'], True)
    """

    def __init__(self, config: IGGTLossConfig | None = None):
        self.config = config or IGGTLossConfig()
        self.config.validate()
        self.geometry = GeometryLoss(self.config.geometry) if self.config.geometry_enabled else None
        seed = self.config.contrastive.seed
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, predictions: Mapping[str, torch.Tensor],
                 batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "instance_features" not in predictions:
            raise Sem3RError("the model predicts no 'instance_features' (IGGT training needs the instance head)")
        if "instance_ids" not in batch:
            raise Sem3RError("the batch has no 'instance_ids' (IGGT training needs 3D-consistent instance masks)")
        terms: dict[str, torch.Tensor] = {}
        total = 0.0
        if self.geometry is not None:
            geometry = self.geometry(predictions, batch)
            total = geometry.pop("loss")
            terms.update(geometry)
        contrastive, stats = instance_contrastive_loss(predictions["instance_features"], batch["instance_ids"],
                                                       self.config.contrastive, self.generator)
        total = total + self.config.contrastive_weight * contrastive
        terms.update(contrastive=contrastive.detach(), **stats)
        return {"loss": total, **terms}


@dataclass
class IGGTTrainingConfig(TrainingRunConfig):
    """Everything :func:`train_iggt` needs: the fields of
    :class:`~sem3r.training.run_config.TrainingRunConfig` plus the IGGT loss and options.

    Attributes:
        loss: geometry and contrastive terms.
        model_overrides: :class:`~sem3r.models.iggt.IGGTConfig` fields changed from the ``model``
            size (e.g. ``{"enable_depth": false}``); the track head is off unless set here.
        init_checkpoint: weights to start from (module docstring); ``None``: random initialisation.
        freeze_backbone: train the heads only (the aggregator gets no gradient).

    Example:
        >>> cfg = IGGTTrainingConfig.from_dict({"dataset_root": "ds", "freeze_backbone": True,
        ...                                     "loss": {"contrastive_weight": 2.0}})
        >>> cfg.loss.contrastive_weight, cfg.freeze_backbone, cfg.loss.geometry.loss_type
        (2.0, True, 'vggt')
    """

    kind: ClassVar[str] = "IGGT"
    loss_config: ClassVar[type] = IGGTLossConfig

    loss: IGGTLossConfig = field(default_factory=IGGTLossConfig)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    init_checkpoint: str | None = None
    freeze_backbone: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.loss.validate()
        if not isinstance(self.model_overrides, Mapping):
            raise Sem3RError("model_overrides of the IGGT training config must be a JSON object")
        self.model_overrides = dict(self.model_overrides)
        if self.init_checkpoint is not None:
            self.init_checkpoint = str(self.init_checkpoint)
        if not isinstance(self.freeze_backbone, bool):
            raise Sem3RError(f"freeze_backbone must be true or false, got {self.freeze_backbone!r}")


def build_iggt_config(name: str, overrides: Mapping[str, Any] | None = None):
    """The :class:`~sem3r.models.iggt.IGGTConfig` trained under ``name`` (``"small"`` or ``"default"``).

    The track head is left out (nothing trains it) unless ``overrides`` sets ``enable_track``.

    Raises:
        Sem3RError: an override names no field of ``IGGTConfig``.
    """
    from sem3r.models.iggt import IGGTConfig

    known = {f.name for f in fields(IGGTConfig)}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise Sem3RError(f"unknown IGGT model_overrides {unknown}")
    settings = {"enable_track": False, **(overrides or {})}
    return IGGTConfig.small(**settings) if name == "small" else IGGTConfig(**settings)


def load_backbone_weights(model: nn.Module, source: str | Path) -> list[str]:
    """Initialise ``model`` (an IGGT) from a geometry or IGGT checkpoint.

    Strict except for the instance head: ``part_*`` tensors absent from the checkpoint keep the
    model's current values; every other tensor must be present with the model's shape. A track
    head in the checkpoint is dropped when the model has none.

    Args:
        model: the module to fill.
        source: a ``sem3r train geometry`` / ``train iggt`` run folder (its ``model/`` is read), a
            folder written by ``Sem3RGeometry.save_pretrained``, a trainer checkpoint, or a
            ``.pt`` / ``.safetensors`` weights file.

    Returns:
        The names of the tensors left at their initial values (the missing ``part_*`` ones).

    Raises:
        Sem3RError: unreadable source, or keys / shapes that do not match (one line).
    """
    path = Path(source)
    if path.is_dir() and (path / "model").is_dir():
        path = path / "model"
    file = resolve_checkpoint(path)
    state = read_state_dict(file)
    expected = model.state_dict()
    if not any(k.startswith("track_head.") for k in expected):
        state = {k: v for k, v in state.items() if not k.startswith("track_head.")}
    kept = [k for k in expected if k.startswith(INSTANCE_HEAD_PREFIX) and k not in state]
    load_state_dict_strict(model, {**{k: expected[k] for k in kept}, **state}, source=f"init_checkpoint '{file}'")
    logger.info("initialised from %s; %d instance-head tensors keep their fresh initialisation", file, len(kept))
    return kept


def build_iggt(config: IGGTTrainingConfig) -> nn.Module:
    """The IGGT model of ``config``: built, initialised from ``init_checkpoint``, backbone frozen if asked."""
    from sem3r.models.iggt import IGGT

    model = IGGT(build_iggt_config(config.model, config.model_overrides))
    if config.init_checkpoint is not None:
        load_backbone_weights(model, config.init_checkpoint)
    if config.freeze_backbone:
        model.aggregator.requires_grad_(False)
    return model


def train_iggt(config: str | Path | IGGTTrainingConfig) -> Path:
    """Train ``sem3r.models.iggt.IGGT`` on a synthetic dataset with geometry + contrastive losses.

    The model is :func:`build_iggt`'s; data, seeding, checkpoints, resume and the export to
    ``train.out_dir/model/`` (readable by ``Sem3RGeometry.from_pretrained``) are
    :func:`~sem3r.training.run_config.fit_and_export`'s.

    Args:
        config: a JSON file path or an :class:`IGGTTrainingConfig`.

    Returns:
        The path of the last checkpoint.

    Raises:
        Sem3RError: an invalid config (one line naming the problem) or unusable ``init_checkpoint``.
    """
    cfg = config if isinstance(config, IGGTTrainingConfig) else IGGTTrainingConfig.from_file(config)
    return fit_and_export(cfg, lambda: build_iggt(cfg), IGGTLoss(cfg.loss))

