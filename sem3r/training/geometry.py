"""Geometry training of the VGGT model on a synthetic dataset: config file and entry point.

The config is a JSON object (no YAML dependency)::

    {
      "dataset_root": "data/synth",
      "model": "small",
      "image_size": [224, 224],
      "min_views": 2,
      "max_views": 8,
      "samples_per_epoch": null,
      "loss": {"preset": "vggt"},
      "train": {"steps": 10000, "batch_size": 2, "lr": 0.0002, "out_dir": "runs/geometry"}
    }

``model`` is ``"small"`` (``VGGTConfig.small()``) or ``"default"`` (``VGGTConfig()``, the official
size); ``loss`` holds :class:`~sem3r.training.losses.GeometryLossConfig` fields and an optional
``"preset"`` (``"vggt"`` or ``"g2vlm"``); ``train`` holds
:class:`~sem3r.training.trainer.TrainConfig` fields. Relative paths are relative to the current
directory. ``image_size`` must be a multiple of the model's patch size (14).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import torch

from sem3r.errors import Sem3RError
from sem3r.reconstruct.feedforward import Sem3RGeometry
from sem3r.io import read_json, write_json_atomic
from sem3r.training.dataset import SyntheticGeometryDataset, geometry_dataloader
from sem3r.training.losses import GeometryLoss, GeometryLossConfig
from sem3r.training.trainer import Trainer, TrainConfig

MODEL_SIZES = ("small", "default")


@dataclass
class GeometryTrainingConfig:
    """Everything :func:`train_geometry` needs.

    Attributes:
        dataset_root: folder written by ``sem3r synth``.
        model: ``"small"`` or ``"default"``.
        image_size: ``(H, W)`` of the training views; ``None`` keeps the stored size.
        min_views, max_views: views per sample.
        samples_per_epoch: samples per epoch (``None``: one per scene).
        loss: loss weights and settings.
        train: optimiser, schedule, checkpoints.

    Example:
        >>> cfg = GeometryTrainingConfig.from_dict({"dataset_root": "ds", "loss": {"preset": "g2vlm"},
        ...                                         "train": {"steps": 3}})
        >>> cfg.loss.loss_type, cfg.train.steps, cfg.model
        ('g2vlm', 3, 'small')
    """

    dataset_root: str
    model: str = "small"
    image_size: tuple[int, int] | None = None
    min_views: int = 2
    max_views: int = 8
    samples_per_epoch: int | None = None
    loss: GeometryLossConfig = field(default_factory=GeometryLossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        self.dataset_root = str(self.dataset_root)
        if self.image_size is not None:
            self.image_size = tuple(int(v) for v in self.image_size)
        if self.model not in MODEL_SIZES:
            raise Sem3RError(f"model must be one of {MODEL_SIZES}, got {self.model!r}")
        self.loss.validate()
        self.train.validate()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "GeometryTrainingConfig":
        """Build from a parsed JSON object; unknown keys are an error."""
        if not isinstance(doc, Mapping):
            raise Sem3RError("a geometry training config must be a JSON object")
        doc = dict(doc)
        unknown = sorted(set(doc) - {f.name for f in fields(cls)})
        if unknown:
            raise Sem3RError(f"unknown geometry training config keys {unknown}")
        if "dataset_root" not in doc:
            raise Sem3RError("the geometry training config needs 'dataset_root'")
        train_doc = dict(doc.pop("train", {}) or {})
        train_unknown = sorted(set(train_doc) - {f.name for f in fields(TrainConfig)})
        if train_unknown:
            raise Sem3RError(f"unknown train config keys {train_unknown}")
        loss = GeometryLossConfig.from_dict(doc.pop("loss", {}) or {})
        try:
            return cls(**doc, loss=loss, train=TrainConfig(**train_doc))
        except TypeError as exc:
            raise Sem3RError(f"invalid geometry training config: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "GeometryTrainingConfig":
        """Read a JSON config file."""
        return cls.from_dict(read_json(path))

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict, readable by :meth:`from_dict`."""
        return json.loads(json.dumps(asdict(self)))


def train_geometry(config: str | Path | GeometryTrainingConfig) -> Path:
    """Train ``sem3r.models.vggt.VGGT`` on a synthetic dataset with the geometry losses.

    Seeds torch with ``train.seed`` before building the model (:func:`build_model_config`), writes
    the resolved config to ``train.out_dir/config.json``, runs
    :class:`~sem3r.training.trainer.Trainer` (which resumes when ``train.resume`` is set) and exports
    the trained weights to ``train.out_dir/model/`` (``model.safetensors`` + ``config.json``), the
    folder ``Sem3RGeometry.from_pretrained`` and ``sem3r reconstruct --checkpoint`` read.

    Args:
        config: a JSON file path or a :class:`GeometryTrainingConfig`.

    Returns:
        The path of the last checkpoint.
    """
    from sem3r.models.vggt import VGGT

    cfg = config if isinstance(config, GeometryTrainingConfig) else GeometryTrainingConfig.from_file(config)
    dataset = SyntheticGeometryDataset(cfg.dataset_root, cfg.min_views, cfg.max_views, cfg.image_size,
                                       cfg.train.seed, cfg.samples_per_epoch)
    loader = geometry_dataloader(dataset, cfg.train.batch_size, cfg.train.num_workers)
    torch.manual_seed(cfg.train.seed)
    model = VGGT(build_model_config(cfg.model))
    write_json_atomic(Path(cfg.train.out_dir) / "config.json", cfg.to_dict())
    trainer = Trainer(model, GeometryLoss(cfg.loss), loader, cfg.train)
    last = trainer.fit()
    Sem3RGeometry(model, device="cpu").save_pretrained(Path(cfg.train.out_dir) / "model")
    return last


def build_model_config(name: str):
    """The :class:`~sem3r.models.vggt.VGGTConfig` trained under ``name`` (``"small"`` or ``"default"``).

    Geometry training does not use the track head, so it is left out.
    """
    from sem3r.models.vggt import VGGTConfig

    return VGGTConfig.small(enable_track=False) if name == "small" else VGGTConfig(enable_track=False)
