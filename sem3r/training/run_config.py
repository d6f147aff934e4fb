"""What the ``sem3r train`` entry points share: the JSON run config and the train-then-export routine.

A run config is a JSON object (no YAML dependency) with the synthetic dataset, the model size, the
view sampling, a ``loss`` section (parsed by the entry point's loss config) and a ``train`` section
(:class:`~sem3r.training.trainer.TrainConfig` fields); unknown keys are an error at every level.
:class:`TrainingRunConfig` holds the shared fields; :class:`~sem3r.training.geometry.GeometryTrainingConfig`
and :class:`~sem3r.training.iggt.IGGTTrainingConfig` add their loss and options.
:func:`fit_and_export` builds the data loader, the model and the :class:`~sem3r.training.trainer.Trainer`,
trains and exports the weights for :class:`~sem3r.reconstruct.feedforward.Sem3RGeometry`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.io import read_json, write_json_atomic
from sem3r.reasoning.questions import QuestionConfig
from sem3r.reconstruct.feedforward import Sem3RGeometry
from sem3r.training.dataset import SyntheticGeometryDataset, geometry_dataloader
from sem3r.training.trainer import TrainConfig, Trainer

MODEL_SIZES = ("small", "default")


@dataclass
class TrainingRunConfig:
    """Fields every training entry point reads; subclasses add ``loss`` and set :attr:`kind`.

    Attributes:
        dataset_root: folder written by ``sem3r synth``.
        model: ``"small"`` or ``"default"``.
        image_size: ``(H, W)`` of the training views; ``None`` keeps the stored size.
        min_views, max_views: views per sample.
        samples_per_epoch: samples per epoch (``None``: one per scene).
        train: optimiser, schedule, checkpoints.
        kind: (class constant) the entry point's name in error messages.
        loss_config: (class constant) the class whose ``from_dict`` parses the ``loss`` section.
    """

    kind: ClassVar[str] = "training"
    loss_config: ClassVar[type]

    dataset_root: str
    model: str = "small"
    image_size: tuple[int, int] | None = None
    min_views: int = 2
    max_views: int = 8
    samples_per_epoch: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        self.dataset_root = str(self.dataset_root)
        if self.image_size is not None:
            self.image_size = tuple(int(v) for v in self.image_size)
        if self.model not in MODEL_SIZES:
            raise Sem3RError(f"model must be one of {MODEL_SIZES}, got {self.model!r}")
        self.train.validate()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]):
        """Build from a parsed JSON object; unknown keys are an error."""
        label = f"{cls.kind} training config"
        doc, train_doc = split_run_config(cls, doc, label)
        loss = cls.loss_config.from_dict(doc.pop("loss", {}) or {})
        try:
            return cls(**doc, loss=loss, train=TrainConfig(**train_doc))
        except TypeError as exc:
            raise Sem3RError(f"invalid {label}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path):
        """Read a JSON config file."""
        return cls.from_dict(read_json(path))

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict, readable by :meth:`from_dict`."""
        return json.loads(json.dumps(asdict(self)))


def split_run_config(cls, doc: Mapping[str, Any], label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checks every ``sem3r train`` config shares, before its own fields are parsed.

    ``doc`` must be a JSON object with only fields of dataclass ``cls``, including ``dataset_root``, and
    an optional ``train`` object with only :class:`~sem3r.training.trainer.TrainConfig` fields.

    Returns:
        The other top-level fields (a copy, ``train`` removed) and the ``train`` fields.

    Raises:
        Sem3RError: one line naming the first problem; ``label`` names the config in it.
    """
    if not isinstance(doc, Mapping):
        raise Sem3RError(f"a {label} must be a JSON object")
    doc = dict(doc)
    unknown = sorted(set(doc) - {f.name for f in fields(cls)})
    if unknown:
        raise Sem3RError(f"unknown {label} keys {unknown}")
    if "dataset_root" not in doc:
        raise Sem3RError(f"the {label} needs 'dataset_root'")
    train_doc = doc.pop("train", {}) or {}
    if not isinstance(train_doc, Mapping):
        raise Sem3RError(f"'train' of the {label} must be a JSON object")
    train_unknown = sorted(set(train_doc) - {f.name for f in fields(TrainConfig)})
    if train_unknown:
        raise Sem3RError(f"unknown train config keys {train_unknown}")
    return doc, dict(train_doc)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "chat_template.jinja")
"""Tokenizer files a model folder carries (those present are copied)."""


def save_model_folder(state: Mapping[str, Any], tokenizer_dir: str | Path, folder: str | Path) -> Path:
    """Write ``folder/model.safetensors`` atomically and copy the tokenizer files of ``tokenizer_dir``.

    Args:
        state: the tensors to save (moved to the CPU, made contiguous).
        tokenizer_dir: where the tokenizer was written (nothing is copied when it is ``folder``).
        folder: the model folder (created if needed; the caller writes its config files).

    Returns:
        ``folder``.
    """
    import shutil

    from safetensors.torch import save_file

    folder, tokenizer_dir = Path(folder), Path(tokenizer_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "model.safetensors.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    tmp.replace(folder / "model.safetensors")
    if tokenizer_dir.resolve() != folder.resolve():
        for name in TOKENIZER_FILES:
            if (tokenizer_dir / name).is_file():
                shutil.copyfile(tokenizer_dir / name, folder / name)
    return folder


def question_config(questions: Mapping[str, Any], label: str) -> QuestionConfig:
    """A validated :class:`~sem3r.reasoning.questions.QuestionConfig` from a config's ``questions`` object."""
    try:
        cfg = QuestionConfig(**questions)
    except TypeError as exc:
        raise Sem3RError(f"invalid {label} 'questions': {exc}") from None
    cfg.validate()
    return cfg


def fit_and_export(config: TrainingRunConfig, build_model: Callable[[], nn.Module],
                   loss_fn: Callable[[Any, Any], Mapping[str, Any]]) -> Path:
    """Train ``build_model()`` on ``config``'s synthetic dataset and export it.

    Seeds torch with ``train.seed`` before calling ``build_model``, writes the resolved config to
    ``train.out_dir/config.json``, runs :class:`~sem3r.training.trainer.Trainer` (which resumes when
    ``train.resume`` is set) and exports the trained weights to ``train.out_dir/model/``
    (``model.safetensors`` + ``config.json``), the folder ``Sem3RGeometry.from_pretrained`` and
    ``sem3r reconstruct --checkpoint`` read.

    Args:
        config: the run config.
        build_model: makes the model (called once, after seeding).
        loss_fn: ``(predictions, batch) -> {"loss": ..., ...}``.

    Returns:
        The path of the last checkpoint.
    """
    dataset = SyntheticGeometryDataset(config.dataset_root, config.min_views, config.max_views, config.image_size,
                                       config.train.seed, config.samples_per_epoch)
    loader = geometry_dataloader(dataset, config.train.batch_size, config.train.num_workers)
    torch.manual_seed(config.train.seed)
    model = build_model()
    write_json_atomic(Path(config.train.out_dir) / "config.json", config.to_dict())
    last = Trainer(model, loss_fn, loader, config.train).fit()
    Sem3RGeometry(model, device="cpu").save_pretrained(Path(config.train.out_dir) / "model")
    return last

