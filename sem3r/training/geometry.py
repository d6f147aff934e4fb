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

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from sem3r.training.losses import GeometryLoss, GeometryLossConfig
from sem3r.training.run_config import TrainingRunConfig, fit_and_export


@dataclass
class GeometryTrainingConfig(TrainingRunConfig):
    """Everything :func:`train_geometry` needs: the fields of
    :class:`~sem3r.training.run_config.TrainingRunConfig` plus the loss.

    Attributes:
        loss: loss weights and settings.

    Example:
        >>> cfg = GeometryTrainingConfig.from_dict({"dataset_root": "ds", "loss": {"preset": "g2vlm"},
        ...                                         "train": {"steps": 3}})
        >>> cfg.loss.loss_type, cfg.train.steps, cfg.model
        ('g2vlm', 3, 'small')
    """

    kind: ClassVar[str] = "geometry"
    loss_config: ClassVar[type] = GeometryLossConfig

    loss: GeometryLossConfig = field(default_factory=GeometryLossConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.loss.validate()


def train_geometry(config: str | Path | GeometryTrainingConfig) -> Path:
    """Train ``sem3r.models.vggt.VGGT`` on a synthetic dataset with the geometry losses.

    The model is built from :func:`build_model_config`; data, seeding, checkpoints, resume and the
    export to ``train.out_dir/model/`` (``model.safetensors`` + ``config.json``, the folder
    ``Sem3RGeometry.from_pretrained`` and ``sem3r reconstruct --checkpoint`` read) are
    :func:`~sem3r.training.run_config.fit_and_export`'s.

    Args:
        config: a JSON file path or a :class:`GeometryTrainingConfig`.

    Returns:
        The path of the last checkpoint.
    """
    from sem3r.models.vggt import VGGT

    cfg = config if isinstance(config, GeometryTrainingConfig) else GeometryTrainingConfig.from_file(config)
    return fit_and_export(cfg, lambda: VGGT(build_model_config(cfg.model)), GeometryLoss(cfg.loss))


def build_model_config(name: str):
    """The :class:`~sem3r.models.vggt.VGGTConfig` trained under ``name`` (``"small"`` or ``"default"``).

    Geometry training does not use the track head, so it is left out.
    """
    from sem3r.models.vggt import VGGTConfig

    return VGGTConfig.small(enable_track=False) if name == "small" else VGGTConfig(enable_track=False)
