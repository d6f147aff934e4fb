"""Training ROSS3D at small scale with its reconstructive objectives (ROSS3D section 3.3; facts sections 8-9),
``sem3r train ross3d``.

One sample is one spatial question about a synthetic room (the scene's first ``num_views`` views, questions and
ground-truth answers from :func:`sem3r.reasoning.questions.generate_questions`, replies written as
:func:`~sem3r.reasoning.g2vlm_chat.format_answer` does: numbers with two decimals). The views become ROSS3D's
inputs exactly as at inference: SigLIP frames (:func:`~sem3r.models.ross3d.preprocess.frame_pixel_values`) and
per-pixel world points from the rendered depth, the intrinsics and the camera-to-world poses (the inverse of the
Scene's OpenCV ``cam_from_world``; :func:`~sem3r.models.ross3d.position_encoding.world_points_from_depth`,
resized and cropped like the frames). The prompt is the official layout (:func:`~sem3r.models.ross3d.prompt.chat_ids`,
``"<image> {question}"``) and the character tokenizer of :func:`~sem3r.reasoning.g2vlm_chat.write_char_tokenizer`.

Loss (batch 1 per forward as the official code; ``train.batch_size`` samples are averaged):

* text cross-entropy on the answer tokens (the answer, ``<|im_end|>`` and the newline after it);
* ``cross_view`` (weight ``cross_view_weight``): on every ``view_mask_every``-th forward (official: every 4th
  optimiser step) ``view_mask_ratio`` of the views are replaced by the mask token
  (:func:`~sem3r.training.ross3d_objectives.view_mask`); the denoiser ``model.mm_inv_projector`` reconstructs the
  masked views' targets from the visible views' final hidden states (repeated ``M / masked`` times, one timestep
  and noise each; :func:`~sem3r.training.ross3d_objectives.cross_view_loss`). The text CE of that step sees the
  masked input too, as in the official code;
* ``bev`` (weight ``bev_weight``): the denoiser's BEV branch reconstructs the room's bird's-eye view
  (:func:`sem3r.reasoning.bev.render_bev` of the shown views, black = empty) from the visible views' hidden
  states, averaged over the cells that have colour (:func:`~sem3r.training.ross3d_objectives.bev_loss`).
  With ``bev=false`` it is not computed (weight 0, logged as 0).

Targets (``targets: "pixels"``, the only option here): the paper encodes targets with the frozen FLUX VAE
(16 latent channels folded 2x2 -> 64 channels); at small scale there is no VAE, so
:func:`~sem3r.training.ross3d_objectives.pixel_targets` folds ``p x p`` pixel cells into ``3 p^2`` channels on the
same grid (views: the pooled token grid; BEV: ``bev_grid``). The denoiser's ``mm_inv_hidden_size`` is set to
``3 p^2`` for ``model: "small"``. A VAE can be plugged in through the denoiser's ``latent_teacher`` hook
(:attr:`sem3r.models.ross3d.denoiser.Ross3DDenoiser.latent_teacher`) with
:func:`~sem3r.training.ross3d_objectives.latent_targets`; this trainer does not use it.
Diffusion: 1000-step cosine schedule, epsilon prediction (:func:`~sem3r.training.ross3d_objectives.q_sample`).

Config (JSON)::

    {"dataset_root": "data/synth", "model": "small", "num_views": 4, "cross_view": true, "bev": true,
     "train": {"steps": 300, "out_dir": "runs/ross3d"}}

The model is exported to ``train.out_dir/model/``: ``config.json`` (:meth:`Ross3DConfig.save`),
``model.safetensors`` without the training-only denoiser keys, and the tokenizer, the folder
:func:`sem3r.reasoning.ross3d_loading.load_ross3d` (``sem3r ask --lmm ross3d:FOLDER``) reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from sem3r.errors import Sem3RError
from sem3r.io import read_json, write_json_atomic
from sem3r.models.ross3d.config import Ross3DConfig
from sem3r.models.ross3d.model import Ross3D, split_training_only
from sem3r.reasoning.questions import QuestionConfig
from sem3r.training.ross3d_objectives import (
    bev_loss,
    bev_valid_mask,
    cosine_alphas_cumprod,
    cross_view_loss,
    pixel_targets,
    q_sample,
    view_mask,
)
from sem3r.training.run_config import (
    question_config,
    save_model_folder,
    split_run_config,
)
from sem3r.training.trainer import TrainConfig, Trainer

TARGETS = ("pixels",)


@dataclass
class Ross3DTrainingConfig:
    """Everything :func:`train_ross3d` needs (see the module docstring).

    Attributes:
        dataset_root: folder written by ``sem3r synth``.
        model: ``"small"`` (:meth:`Ross3DConfig.small` sized to the tokenizer and the targets) or a ROSS3D
            model folder to continue from.
        num_views: views per sample (the scene's first ones).
        image_size: frame side for ``"small"`` (multiple of 14; the SigLIP input).
        cross_view, bev: enable the two reconstructive objectives.
        cross_view_weight, bev_weight: their weights (official 1, 1).
        view_mask_ratio: fraction of views masked (official 0.25).
        view_mask_every: mask on every k-th forward (official 4; 1 at small scale masks every step).
        targets: ``"pixels"`` (:func:`pixel_targets`; the paper: the frozen FLUX VAE).
        target_patch: pixels per target cell side p (``3 p^2`` target channels).
        bev_grid: BEV target grid side for ``"small"``.
        bev_resolution: BEV render side in pixels.
        questions: :class:`~sem3r.reasoning.questions.QuestionConfig` fields.
        train: optimiser, schedule, checkpoints, resume.
    """

    dataset_root: str
    model: str = "small"
    num_views: int = 4
    image_size: int = 70
    cross_view: bool = True
    bev: bool = True
    cross_view_weight: float = 1.0
    bev_weight: float = 1.0
    view_mask_ratio: float = 0.25
    view_mask_every: int = 4
    targets: str = "pixels"
    target_patch: int = 4
    bev_grid: int = 6
    bev_resolution: int = 96
    questions: dict = field(default_factory=lambda: {"per_family": 3, "min_pixels": 40})
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/ross3d", batch_size=1))

    def __post_init__(self) -> None:
        if self.targets not in TARGETS:
            raise Sem3RError(f"targets must be one of {TARGETS} (the FLUX VAE is not available), got {self.targets!r}")
        if self.num_views < 2:
            raise Sem3RError(f"num_views must be at least 2, got {self.num_views}")
        if self.image_size < 28 or self.image_size % 14:
            raise Sem3RError(f"image_size must be a multiple of 14 (>= 28), got {self.image_size}")
        if not 0 < self.view_mask_ratio < 1:
            raise Sem3RError(f"view_mask_ratio must lie in (0, 1), got {self.view_mask_ratio}")
        if int(self.num_views * (1 - self.view_mask_ratio)) < 1 and self.cross_view:
            raise Sem3RError(f"view_mask_ratio {self.view_mask_ratio} leaves no visible view of {self.num_views}")
        if self.view_mask_every < 1:
            raise Sem3RError(f"view_mask_every must be >= 1, got {self.view_mask_every}")
        if self.cross_view_weight < 0 or self.bev_weight < 0:
            raise Sem3RError("cross_view_weight and bev_weight must be non-negative")
        if self.target_patch < 1 or self.bev_grid < 1 or self.bev_resolution < 8:
            raise Sem3RError("target_patch and bev_grid must be positive, bev_resolution >= 8")
        self.question_config()
        self.train.validate()

    def question_config(self) -> QuestionConfig:
        """The :class:`QuestionConfig` of the QA samples."""
        return question_config(self.questions, "ross3d")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Ross3DTrainingConfig:
        """Build from a parsed JSON object; unknown keys are an error."""
        doc, train = split_run_config(cls, doc, "ross3d training config")
        train.setdefault("batch_size", 1)
        try:
            return cls(**doc, train=TrainConfig(**train))
        except TypeError as exc:
            raise Sem3RError(f"invalid ross3d training config: {' '.join(str(exc).split())}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> Ross3DTrainingConfig:
        return cls.from_dict(read_json(path))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


# ---------------------------------------------------------------------------------------------- data
def scene_inputs(scene, size: int, bev_resolution: int) -> dict[str, torch.Tensor]:
    """ROSS3D inputs of a Scene with depth, intrinsics and poses.

    Returns:
        ``pixel_values (S, 3, size, size)`` in [-1, 1], ``world_points (S, size, size, 3)``,
        ``images01 (S, 3, size, size)`` in [0, 1] (reconstruction targets), ``bev01 (3, R, R)`` in [0, 1].
    """
    from sem3r.models.ross3d.position_encoding import (
        resize_crop_points,
        world_points_from_depth,
    )
    from sem3r.models.ross3d.preprocess import frame_pixel_values
    from sem3r.reasoning.bev import BEVConfig, render_bev

    if scene.depth is None or scene.intrinsics is None or scene.cam_from_world is None:
        raise Sem3RError("ROSS3D training needs depth, intrinsics and poses for every view")
    depth = torch.from_numpy(np.asarray(scene.depth, np.float32))
    K = torch.from_numpy(np.asarray(scene.intrinsics, np.float32))
    c2w = torch.from_numpy(np.asarray(scene.cam_from_world, np.float64))
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(len(c2w), 1, 4)
    c2w = torch.linalg.inv(torch.cat((c2w, bottom), dim=1)).float()
    points = resize_crop_points(world_points_from_depth(depth, K, c2w), size)
    pixels = frame_pixel_values(np.asarray(scene.images), size, reference_hw=tuple(depth.shape[1:]))
    bev = render_bev(scene, BEVConfig(resolution=bev_resolution)).image
    return {"pixel_values": pixels, "world_points": points.contiguous(), "images01": (pixels + 1) / 2,
            "bev01": torch.from_numpy(np.ascontiguousarray(bev)).permute(2, 0, 1).float() / 255.0}


def load_scene_questions(folder: str | Path, num_views: int, questions: QuestionConfig):
    """``(Scene of the first num_views views, generated questions)`` of a ``sem3r synth`` scene folder."""
    from sem3r.data.synthetic.dataset import load_ground_truth
    from sem3r.data.synthetic.generator import SyntheticScene
    from sem3r.reasoning.questions import generate_questions
    from sem3r.scene import Scene

    scene = Scene.load(folder)
    if scene.num_views < num_views:
        raise Sem3RError(f"scene '{folder}' has {scene.num_views} views, fewer than num_views={num_views}")
    scene = scene.select_views(slice(0, num_views))
    truth = load_ground_truth(folder)
    syn = SyntheticScene(scene, truth.cloud, truth.normals, truth.mesh, None, None)
    return scene, generate_questions(syn, questions)


def question_prompt(question: str) -> str:
    """The user text: the video, then the question (ScanQA style)."""
    return f"<image> {question.strip()}"


class Ross3DQADataset(Dataset):
    """ROSS3D chat samples of the spatial questions of a synthetic dataset (see the module docstring).

    Rooms whose shown views see no object give no question and are skipped (listed in ``skipped``).
    A sample: ``input_ids (L,)`` with the -200 placeholder and the answer, ``answer_start`` (index in
    ``input_ids`` of the first supervised token), the :func:`scene_inputs` tensors, ``scene`` / ``question``.
    """

    def __init__(self, root: str | Path, tokenizer, num_views: int, size: int, questions: QuestionConfig,
                 bev_resolution: int = 96, folders=None, progress: bool = True) -> None:
        from tqdm import tqdm

        from sem3r.training.dataset import scene_folders

        if folders is None:
            folders, _ = scene_folders(root, num_views)
        self.tokenizer = tokenizer
        self.scenes, self.questions, self.folders, self.skipped = [], [], [], []
        for f in tqdm(folders, desc="ROSS3D QA scenes", unit="scene", disable=not progress):
            try:
                scene, qs = load_scene_questions(f, num_views, questions)
            except Sem3RError as exc:  # e.g. no object visible in the shown views: no question to ask
                if "no points on a visible object" not in str(exc):
                    raise
                self.skipped.append(Path(f))
                continue
            self.folders.append(Path(f))
            self.scenes.append(scene_inputs(scene, size, bev_resolution))
            self.questions.append(qs)
        self.items = [(s, q) for s, qs in enumerate(self.questions) for q in range(len(qs))]
        if not self.items:
            raise Sem3RError(f"the scenes of '{root}' give no spatial question")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        from sem3r.models.ross3d.prompt import chat_ids
        from sem3r.reasoning.g2vlm_chat import (
            IM_END,
            IM_START,
            encode,
            format_answer,
            special_id,
        )

        s, q = self.items[index]
        gq = self.questions[s][q]
        enc = lambda text: encode(self.tokenizer, text)
        start, end = special_id(self.tokenizer, IM_START), special_id(self.tokenizer, IM_END)
        prompt = chat_ids(enc, question_prompt(gq.text), start, end)
        full = chat_ids(enc, question_prompt(gq.text), start, end, answer=format_answer(gq.answer))
        return {"input_ids": torch.tensor(full), "answer_start": torch.tensor(len(prompt)), **self.scenes[s],
                "scene": torch.tensor(s), "question": torch.tensor(q)}


def collate_samples(samples: list[dict]) -> dict:
    return {"samples": list(samples)}


# ---------------------------------------------------------------------------------------------- objective
class Ross3DObjective(nn.Module):
    """Wraps :class:`Ross3D` (built with ``training=True``) for the trainer: a list of samples -> the losses.

    Args:
        model: the model; its denoiser is ``model.model.mm_inv_projector``.
        config: the training config (switches, weights, masking, target patch).
        seed: seeds the masking draws, timesteps and noise.

    Masking happens on the forwards whose count (training mode only, from 0) is divisible by
    ``view_mask_every``; with ``batch_size`` 1 that is the official "every 4th optimiser step". The count and the
    generator start afresh when a run resumes from a checkpoint (the schedule's phase may shift).

    Returns of :meth:`forward`: ``ce``, ``cross_view``, ``bev`` (each averaged over the samples) and ``masked``
    (views masked per sample).
    """

    def __init__(self, model: Ross3D, config: Ross3DTrainingConfig, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.cfg = config
        self.generator = torch.Generator().manual_seed(int(seed) + 7919)
        self.calls = 0
        self.register_buffer("alphas", cosine_alphas_cumprod().float(), persistent=False)
        den = model.model.mm_inv_projector
        channels = 3 * config.target_patch ** 2
        if den.net.in_channels != channels:
            raise Sem3RError(f"the denoiser takes {den.net.in_channels} channels but pixel targets with patch "
                             f"{config.target_patch} have {channels}: set mm_inv_hidden_size = 3 p^2")

    def _rand(self, *shape) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator)

    def _diffuse(self, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = torch.randint(0, len(self.alphas), (z0.shape[0],), generator=self.generator)
        noise = torch.randn(z0.shape, generator=self.generator)
        t, noise = t.to(z0.device), noise.to(z0.device, z0.dtype)
        return q_sample(z0, t, noise, self.alphas.to(z0.device)), t, noise

    def sample_losses(self, s: dict, mask_step: bool) -> dict[str, torch.Tensor]:
        cfg, model = self.cfg, self.model
        dev = model.device
        ids = s["input_ids"].to(dev)
        M = s["pixel_values"].shape[0]
        mask = torch.zeros(M, dtype=torch.bool)
        if cfg.cross_view and mask_step:
            mask = view_mask(self._rand(M), cfg.view_mask_ratio)
        mask = mask.to(dev)
        out = model(ids, s["pixel_values"].to(dev), s["world_points"].to(dev), frame_mask=mask)
        shift = out.logits.shape[0] - ids.numel()
        a = int(s["answer_start"])
        targets = ids[a:]
        ce = F.cross_entropy(out.logits[a + shift - 1:-1], targets)
        zero = ce * 0
        cv, bv = zero, zero
        if cfg.cross_view or cfg.bev:
            den = model.model.mm_inv_projector
            cond = den.condition(out.hidden[out.visual_index[~mask]].float())
            if cfg.cross_view and bool(mask.any()):
                P = model.config.pooled_grid
                z0 = pixel_targets(s["images01"].to(dev)[mask], P, cfg.target_patch)
                z0 = z0.repeat(M // int(mask.sum()), 1, 1, 1)
                x_t, t, noise = self._diffuse(z0)
                cv = cross_view_loss(den(x_t, t, cond), noise)
            if cfg.bev:
                G = model.config.bev_grid
                bev01 = s["bev01"].to(dev)[None]
                z0 = pixel_targets(bev01, G, cfg.target_patch)
                x_t, t, noise = self._diffuse(z0)
                bv = bev_loss(den(x_t, t, cond, bev=True), noise, bev_valid_mask(bev01, G))
        return {"ce": ce, "cross_view": cv, "bev": bv, "masked": torch.tensor(float(mask.sum()))}

    def forward(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        mask_step = self.calls % self.cfg.view_mask_every == 0
        if self.training:
            self.calls += 1
        parts = [self.sample_losses(s, mask_step) for s in samples]
        return {k: torch.stack([p[k] for p in parts]).mean() for k in parts[0]}


def ross3d_loss(config: Ross3DTrainingConfig):
    """``loss_fn`` for the trainer: CE + weighted enabled reconstructive losses (disabled ones weigh 0)."""
    wv = config.cross_view_weight if config.cross_view else 0.0
    wb = config.bev_weight if config.bev else 0.0

    def loss_fn(pred, batch):
        loss = pred["ce"] + wv * pred["cross_view"] + wb * pred["bev"]
        return {"loss": loss, "ce": pred["ce"].detach(), "cross_view": pred["cross_view"].detach(),
                "bev": pred["bev"].detach(), "masked": pred["masked"]}

    return loss_fn


# ---------------------------------------------------------------------------------------------- build / export
def new_small_model(tokenizer_dir: Path, config: Ross3DTrainingConfig) -> tuple[Ross3D, Any]:
    """A small training Ross3D with a character tokenizer written to ``tokenizer_dir``."""
    from sem3r.models.ross3d.config import SigLIPConfig
    from sem3r.reasoning.g2vlm_chat import (
        IM_END,
        IM_START,
        load_tokenizer,
        special_id,
        write_char_tokenizer,
    )

    vocab = write_char_tokenizer(tokenizer_dir)
    tok = load_tokenizer(tokenizer_dir)
    base = Ross3DConfig.small()
    vision = replace(base.vision, image_size=config.image_size)
    grid = -(-(config.image_size // 14) // 2)
    cfg = Ross3DConfig.small(vocab_size=vocab, embed_vocab_size=vocab, vision=SigLIPConfig(**asdict(vision)),
                             image_embed_len=grid * grid, mm_inv_hidden_size=3 * config.target_patch ** 2,
                             bev_grid=config.bev_grid, ground_token_ids=None, coord_token_ids=None,
                             im_start_id=special_id(tok, IM_START), im_end_id=special_id(tok, IM_END))
    return Ross3D(cfg, training=True), tok


def load_training_model(folder: str | Path, config: Ross3DTrainingConfig) -> tuple[Ross3D, Any]:
    """A ROSS3D folder (config.json, model.safetensors, tokenizer) as a training model (denoiser re-initialised
    when the folder has none)."""
    from sem3r.reasoning.ross3d_loading import (
        load_ross3d_tokenizer,
        read_ross3d_weights,
    )

    cfg = Ross3DConfig.from_json(folder)
    if cfg.mm_inv_hidden_size != 3 * config.target_patch ** 2:
        cfg = replace(cfg, mm_inv_hidden_size=3 * config.target_patch ** 2)
    model = Ross3D(cfg, training=True)
    state = read_ross3d_weights(folder)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("model.mm_inv_projector.")]
    if missing or unexpected:
        raise Sem3RError(f"'{folder}' does not fit its config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model, load_ross3d_tokenizer(folder, cfg)


def export_model(model: Ross3D, tokenizer_dir: Path, folder: Path) -> Path:
    """Write ``config.json``, ``model.safetensors`` (no training-only keys) and the tokenizer files."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    model.config.save(folder)
    keep, _ = split_training_only(model.state_dict())
    return save_model_folder(keep, tokenizer_dir, folder)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def train_ross3d(config: str | Path | Ross3DTrainingConfig) -> Path:
    """Train (see the module docstring); returns the exported model folder ``train.out_dir/model``."""
    from sem3r.training.dataset import scene_folders

    cfg = config if isinstance(config, Ross3DTrainingConfig) else Ross3DTrainingConfig.from_file(config)
    scene_folders(cfg.dataset_root, cfg.num_views)
    out = Path(cfg.train.out_dir)
    seed_everything(cfg.train.seed)
    if cfg.model == "small":
        tokenizer_dir = out / "tokenizer"
        model, tok = new_small_model(tokenizer_dir, cfg)
    else:
        tokenizer_dir = Path(cfg.model)
        model, tok = load_training_model(cfg.model, cfg)
    model.train()
    size = model.config.vision.image_size
    dataset = Ross3DQADataset(cfg.dataset_root, tok, cfg.num_views, size, cfg.question_config(),
                              cfg.bev_resolution, progress=cfg.train.progress)
    generator = torch.Generator().manual_seed(int(cfg.train.seed))
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=True, generator=generator,
                                         collate_fn=collate_samples, drop_last=len(dataset) >= cfg.train.batch_size)
    write_json_atomic(out / "config.json", cfg.to_dict())
    objective = Ross3DObjective(model, cfg, cfg.train.seed)
    Trainer(objective, ross3d_loss(cfg), loader, cfg.train, input_key="samples").fit()
    return export_model(model.cpu(), tokenizer_dir, out / "model")
