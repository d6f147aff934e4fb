"""Training the 3D instance segmenter with OVSeg3R's scheme: per-view 2D annotations only, VIP, IBSp.

Each training scene is a reconstructed Scene plus the per-view 2D instance masks (and class names)
of a 2D segmenter; no 3D label is read. :func:`prepare_training_scenes` turns every scene of a
``sem3r synth`` dataset into :class:`~sem3r.semantics.point_inputs.PointInputs` once (cached in
``out_dir/inputs/``, so an interrupted run resumes without recomputing them), and
:class:`SegmenterSceneDataset` serves them with fresh random query seeds and a random rotation about
the vertical axis at every step. The loss is :func:`~sem3r.training.vip.vip_loss` against the
view-wise targets of :func:`~sem3r.training.vip.build_view_targets`.

The run config is a JSON object (``sem3r train segmenter3d --config run.json``)::

    {
      "dataset_root": "data/synth",
      "inputs": {"correspondence": {"voxel_size": 0.04}, "ibsp": true},
      "model": {"dim": 96, "decoder_layers": 3},
      "loss": {"vip": true},
      "num_queries": 96,
      "train": {"steps": 2000, "lr": 0.0005, "out_dir": "runs/segmenter3d"}
    }

The trained weights go to ``out_dir/model/`` (``model.safetensors`` and ``config.json`` with the
model, input and text-encoder settings and the training vocabulary), the folder
``sem3r segment3d --checkpoint`` reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from sem3r.config import dataclass_from_dict
from sem3r.data.synthetic import CLASS_NAMES
from sem3r.errors import Sem3RError
from sem3r.io import read_json, write_json_atomic, write_npz_atomic
from sem3r.models.segmenter3d import Segmenter3D, Segmenter3DConfig
from sem3r.reconstruct.correspondence import Correspondence
from sem3r.scene import Scene
from sem3r.semantics.checkpoint import save_segmenter
from sem3r.semantics.point_inputs import (
    PointInputs,
    PointInputsConfig,
    prepare_point_inputs,
    scene_annotations,
)
from sem3r.semantics.text import make_text_encoder, validate_class_names
from sem3r.training.dataset import scene_folders
from sem3r.training.trainer import TrainConfig, Trainer
from sem3r.training.vip import VIPLossConfig, build_view_targets, vip_loss


TRAIN_DEFAULTS = {"steps": 2000, "batch_size": 1, "lr": 5e-4, "warmup_steps": 50, "ckpt_every": 250,
                  "out_dir": "runs/segmenter3d"}
"""The ``train`` settings that differ from :class:`TrainConfig`'s for this model; a config's ``train``
section overrides them key by key."""


@dataclass
class Segmenter3DTrainingConfig:
    """A ``sem3r train segmenter3d`` run.

    Attributes:
        dataset_root: folder written by ``sem3r synth`` (scenes with depth and 2D ground truth).
        inputs: correspondence, superpoint (IBSp on/off) and 2D-feature settings.
        model: the segmenter's sizes; ``feature_dim`` and ``text_dim`` follow the text encoder.
        loss: VIP on/off, matching and loss weights.
        train: optimiser, schedule, checkpoints, ``out_dir``.
        text_encoder: ``"hash"`` (offline, deterministic), ``"clip"`` or a model path / hub id.
        text_dim: size of the ``hash`` encoder's embeddings.
        vocabulary: class names classified into (default: the dataset's classes, structure
            classes included as negatives).
        mask_source: the 2D segmenter giving the per-view annotations (``gt``: the rendered
            instance masks with unrelated ids in every view, as a perfect 2D model would give).
        mask_options: options of the mask source (e.g. ``gt``'s ``miss_rate``, ``merge_rate`` and
            ``min_area``, which emulate an imperfect 2D segmenter).
        num_queries: queries per step, seeded at random superpoints.
        max_points: points per step at most (a random subset; superpoint features are pooled over
            it, the targets keep every point), which bounds the cost of a step.
        max_scenes: use at most this many scenes of the dataset.
        augment: rotate every sample about the vertical axis by a random angle.
    """

    dataset_root: str
    inputs: PointInputsConfig = field(default_factory=PointInputsConfig)
    model: Segmenter3DConfig = field(default_factory=Segmenter3DConfig)
    loss: VIPLossConfig = field(default_factory=VIPLossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(**TRAIN_DEFAULTS))
    text_encoder: str = "hash"
    text_dim: int = 64
    vocabulary: list[str] | None = None
    mask_source: str = "gt"
    mask_options: dict = field(default_factory=dict)
    num_queries: int = 96
    max_points: int | None = 20_000
    max_scenes: int | None = None
    augment: bool = True

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        self.inputs.validate()
        self.model.validate()
        self.loss.validate()
        self.train.validate()
        if self.train.batch_size != 1:
            raise Sem3RError(f"segmenter3d training takes one scene per step (batch_size 1), got {self.train.batch_size}")
        if self.num_queries < 1:
            raise Sem3RError(f"num_queries must be positive, got {self.num_queries}")
        if self.max_points is not None and self.max_points < 1:
            raise Sem3RError(f"max_points must be positive, got {self.max_points}")
        if self.max_scenes is not None and self.max_scenes < 1:
            raise Sem3RError(f"max_scenes must be positive, got {self.max_scenes}")
        if self.vocabulary is not None:
            self.vocabulary = validate_class_names(self.vocabulary)

    @classmethod
    def from_dict(cls, doc: Any) -> Segmenter3DTrainingConfig:
        """Build from a parsed JSON object; unknown keys are an error at every level."""
        if isinstance(doc, dict) and "dataset_root" not in doc:
            raise Sem3RError("the segmenter3d training config needs 'dataset_root'")
        if isinstance(doc, dict) and isinstance(doc.get("train"), dict):
            doc = {**doc, "train": {**TRAIN_DEFAULTS, **doc["train"]}}
        return dataclass_from_dict(cls, doc, "segmenter3d training config")

    @classmethod
    def from_file(cls, path: str | Path) -> Segmenter3DTrainingConfig:
        """Read a JSON config file."""
        return cls.from_dict(read_json(path))

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict, readable by :meth:`from_dict`."""
        return json.loads(json.dumps(asdict(self)))


# ------------------------------------------------------------------------------------- preparation
def save_point_inputs(path: str | Path, inputs: PointInputs) -> Path:
    """Write :class:`PointInputs` to one ``.npz`` (atomically, no pickle)."""
    corr = inputs.correspondence
    arrays = {f"corr_{k}": v for k, v in asdict(corr).items() if isinstance(v, np.ndarray)}
    arrays["corr_tolerances"] = np.array([corr.depth_abs_tol, corr.depth_rel_tol])
    arrays.update({k: getattr(inputs, k) for k in ("colors", "normals", "features", "superpoints", "view_labels",
                                                   "view_classes")})
    return write_npz_atomic(path, arrays)


def load_point_inputs(path: str | Path) -> PointInputs:
    """Read what :func:`save_point_inputs` wrote."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    abs_tol, rel_tol = arrays.pop("corr_tolerances").tolist()
    corr = Correspondence(**{k[5:]: arrays.pop(k) for k in list(arrays) if k.startswith("corr_")},
                          depth_abs_tol=abs_tol, depth_rel_tol=rel_tol)
    return PointInputs(correspondence=corr, **arrays)


def prepare_training_scenes(config: Segmenter3DTrainingConfig, text: np.ndarray, vocabulary: list[str],
                            progress: bool = True) -> list[PointInputs]:
    """Prepare (or load from ``out_dir/inputs/``) every training scene's :class:`PointInputs`."""
    folders, _ = scene_folders(config.dataset_root, min_views=1)
    folders = folders[: config.max_scenes]
    cache = Path(config.train.out_dir) / "inputs"
    out = []
    for i, folder in enumerate(tqdm(folders, desc="preparing scenes", disable=not progress)):
        path = cache / f"{folder.name}.npz"
        if path.is_file():
            out.append(load_point_inputs(path))
            continue
        scene = Scene.load(folder)
        masks, classes = scene_annotations(scene, vocabulary, config.mask_source, seed=config.train.seed + i,
                                           **config.mask_options)
        inputs = prepare_point_inputs(scene, masks, classes, text, config.inputs)
        save_point_inputs(path, inputs)
        out.append(inputs)
    return out


# ------------------------------------------------------------------------------------------ dataset
def rotate_about_z(points: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate ``(P, 3)`` points (or normals) about the world's ``z`` axis by ``angle`` radians."""
    c, s = float(np.cos(angle)), float(np.sin(angle))
    rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=points.dtype)
    return points @ rot.T


class SegmenterSceneDataset(Dataset):
    """Training samples: one prepared scene per item, with random query seeds (and rotation).

    Item ``i`` is scene ``i mod num_scenes``; its query seeds, point subset and rotation come from a
    generator seeded with ``(seed, i)``, so step ``k`` of a run always sees the same sample and a
    resumed run continues exactly.

    Args:
        scenes: prepared scenes.
        text: ``(C, D_t)`` vocabulary embeddings.
        num_queries: queries per sample (at most the scene's superpoints).
        max_points: random subset of at most this many points per sample (``None``: all).
        length: number of items (the run's step count, so no item repeats).
        seed: seed of the per-item generators.
        augment: rotate about the vertical axis.
    """

    def __init__(self, scenes: list[PointInputs], text: np.ndarray, num_queries: int, length: int, seed: int = 0,
                 augment: bool = True, max_points: int | None = None):
        if not scenes:
            raise Sem3RError("no training scene")
        self.scenes = scenes
        self.text = torch.as_tensor(text, dtype=torch.float32)
        self.num_queries = int(num_queries)
        self.length = int(length)
        self.seed = int(seed)
        self.augment = augment
        self.max_points = max_points
        self.targets = [build_view_targets(s.view_labels, s.seen(), s.superpoints, s.num_superpoints, s.view_classes,
                                           num_classes=len(self.text)) for s in scenes]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        scene = self.scenes[index % len(self.scenes)]
        rng = np.random.default_rng([self.seed, index])
        num_points = len(scene.superpoints)
        keep = None
        if self.max_points is not None and num_points > self.max_points:
            keep = np.sort(rng.choice(num_points, self.max_points, replace=False))
        present = np.unique(scene.superpoints if keep is None else scene.superpoints[keep])
        queries = np.sort(rng.choice(present, min(self.num_queries, len(present)), replace=False))
        inputs = scene.model_inputs(self.text, queries)
        if keep is not None:
            for key in ("xyz", "colors", "normals", "features", "superpoints"):
                inputs[key] = inputs[key][torch.from_numpy(keep)]
        if self.augment:
            angle = rng.uniform(0, 2 * np.pi)
            inputs["xyz"] = rotate_about_z(inputs["xyz"], angle)
            inputs["normals"] = rotate_about_z(inputs["normals"], angle)
        return {"inputs": inputs, "targets": self.targets[index % len(self.scenes)]}


def _view_generator() -> np.random.Generator:
    """Draws ``loss.max_views`` views from numpy's global state, which the trainer seeds and checkpoints."""
    return np.random.default_rng(np.random.randint(2**31))


def _single(batch: list[dict[str, Any]]) -> dict[str, Any]:
    return batch[0]


# ------------------------------------------------------------------------------------------ training
def train_segmenter3d(config: str | Path | Segmenter3DTrainingConfig) -> Path:
    """Train the segmenter on a synthetic dataset with OVSeg3R's scheme and export it.

    Args:
        config: a :class:`Segmenter3DTrainingConfig` or the path of its JSON file.

    Returns:
        The exported model folder ``out_dir/model``.
    """
    if not isinstance(config, Segmenter3DTrainingConfig):
        config = Segmenter3DTrainingConfig.from_file(config)
    config.validate()
    scene_folders(config.dataset_root)  # a missing or empty dataset fails before anything is written
    vocabulary = config.vocabulary or list(CLASS_NAMES)
    encoder = make_text_encoder(config.text_encoder, **({"dim": config.text_dim} if config.text_encoder == "hash" else {}))
    text = encoder.encode(vocabulary)
    config.model.text_dim = config.model.feature_dim = int(text.shape[1])
    out_dir = Path(config.train.out_dir)
    write_json_atomic(out_dir / "config.json", config.to_dict())
    scenes = prepare_training_scenes(config, text, vocabulary, progress=config.train.progress)
    dataset = SegmenterSceneDataset(scenes, text, config.num_queries, config.train.steps, config.train.seed,
                                    config.augment, config.max_points)
    loader = DataLoader(dataset, batch_size=1, shuffle=False, collate_fn=_single, num_workers=config.train.num_workers)
    torch.manual_seed(config.train.seed)
    model = Segmenter3D(config.model)
    trainer = Trainer(model, lambda out, batch: vip_loss(out, batch["targets"], config.loss, _view_generator()),
                      loader, config.train, input_key="inputs")
    trainer.fit()
    return save_segmenter(out_dir / "model", model, config.inputs, config.text_encoder, int(text.shape[1]), vocabulary)

