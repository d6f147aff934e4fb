"""Training G2VLM at small scale in the paper's two stages (G2VLM section 3.2), with ``sem3r train g2vlm``.

* **Stage 1, ``"geometry"``**: the geometry expert (DINOv2, ``dino2llm``, the ``*_moe_geo`` copies and
  layer scales, ``norm_moe_geo``, the three decoders and heads) learns from scratch on synthetic scenes
  with the visual-geometry loss ``L_VG = L_points + lambda_cam L_cam + lambda_normal L_normal``
  (:mod:`sem3r.training.g2vlm_losses`: local points with the optimal scale, relative camera poses in
  that scale, normals), plus the same scaled point loss on the global points (in the first view's frame,
  which the global decoder is conditioned on). The semantic expert is frozen.
* **Stage 2, ``"joint"``**: cross-entropy on spatial QA rendered as chat (:mod:`sem3r.training.g2vlm_data`).
  By default the paper's main recipe, "CE loss only": the geometry expert is frozen and the semantic
  expert (embeddings, semantic layer copies, ``norm``, ``lm_head``, the ViT) learns to use the geometry
  tokens through the shared attention. ``trainable="all"`` trains everything.

The semantic expert starts from scratch with a character tokenizer
(:func:`~sem3r.reasoning.g2vlm_chat.write_char_tokenizer`) for ``model: "small"`` (what the CPU benchmark
trains), or from the pretrained SmolLM2-135M-Instruct for ``model: "smollm2"``
(:mod:`sem3r.training.g2vlm_init`, the ``[smollm2]`` extra: 297M parameters with both experts, 7-9 s per
600-token forward on 2 CPU cores, so a GPU run). ``geometry_expert=false`` builds the
semantic-expert-only twin for the ablation.

Config (JSON)::

    {"dataset_root": "data/synth", "stage": "geometry", "model": "small",
     "image_size": [112, 112], "train": {"steps": 2000, "out_dir": "runs/g2vlm_geo"}}

``model`` is ``"small"``, ``"smollm2"`` or a model folder to start from (stage 2 starts from stage 1's
``out_dir/model``). The trained model is exported to ``train.out_dir/model/`` (the three config
files, ``sem3r_config.json``, ``model.safetensors``, the tokenizer), the folder the ``g2vlm``
backends load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.io import read_json, write_json_atomic
from sem3r.models.g2vlm.config import G2VLMConfig
from sem3r.models.g2vlm.model import G2VLM
from sem3r.models.g2vlm.sequence import PackedSequence
from sem3r.reasoning.g2vlm_chat import (
    IM_END,
    IM_START,
    VISION_END,
    VISION_START,
    load_tokenizer,
    recon_ids,
    special_id,
    write_char_tokenizer,
)
from sem3r.reasoning.questions import QuestionConfig
from sem3r.training.g2vlm_losses import (
    normal_loss,
    relative_camera_loss,
    scaled_point_loss,
)
from sem3r.training.run_config import (
    question_config,
    save_model_folder,
    split_run_config,
)
from sem3r.training.trainer import TrainConfig, Trainer

STAGES = ("geometry", "joint")
TRAINABLE = ("auto", "all")
GEOMETRY_PREFIXES = ("dino_model.", "dino2llm.", "point_decoder.", "point_head.", "camera_decoder.", "camera_head.",
                     "global_points_decoder.", "global_point_head.", "language_model.model.norm_moe_geo.")


def is_geometry_parameter(name: str) -> bool:
    """True for the parameters of the geometry expert and its encoder, decoders and heads.

    Example:
        >>> is_geometry_parameter("language_model.model.layers.0.mlp_moe_geo.up_proj.weight")
        True
        >>> is_geometry_parameter("language_model.model.layers.0.mlp.up_proj.weight")
        False
    """
    return name.startswith(GEOMETRY_PREFIXES) or "_moe_geo" in name or ".ls1." in name or ".ls2." in name


@dataclass
class G2VLMLossConfig:
    """Weights of the G2VLM objectives (G2VLM supplementary: normal 1.0, camera 0.2, translation 200).

    Attributes:
        point_weight: scaled local-point loss.
        camera_weight: relative camera loss ``lambda_cam``.
        trans_weight: ``lambda_trans`` inside the camera loss.
        normal_weight: normal loss ``lambda_normal``.
        global_weight: scaled point loss of the global points (first view's frame).
        ce_weight: cross-entropy of the replies (stage 2).
    """

    point_weight: float = 1.0
    camera_weight: float = 0.2
    trans_weight: float = 200.0
    normal_weight: float = 1.0
    global_weight: float = 1.0
    ce_weight: float = 1.0

    @classmethod
    def from_dict(cls, doc: Mapping) -> G2VLMLossConfig:
        unknown = sorted(set(doc) - {f.name for f in fields(cls)})
        if unknown:
            raise Sem3RError(f"unknown g2vlm loss keys {unknown}")
        cfg = cls(**doc)
        if any(getattr(cfg, f.name) < 0 for f in fields(cls)):
            raise Sem3RError("g2vlm loss weights must be non-negative")
        return cfg


@dataclass
class G2VLMTrainingConfig:
    """Everything :func:`train_g2vlm` needs (see the module docstring).

    Attributes:
        dataset_root: folder written by ``sem3r synth``.
        stage: ``"geometry"`` or ``"joint"``.
        model: ``"small"``, ``"smollm2"`` or a G2VLM model folder to start from.
        geometry_expert: ``False`` trains the semantic-expert-only twin (stage ``"joint"`` only).
        image_size: ``(H, W)`` of the geometry-branch views (multiples of 14).
        vit_size: square side of the semantic-branch images.
        min_views, max_views: views per geometry sample (stage 1).
        num_views: views per QA sample (stage 2; the scene's first views).
        questions: :class:`~sem3r.reasoning.questions.QuestionConfig` fields for stage 2.
        trainable: ``"auto"`` (stage 1: geometry expert; stage 2: semantic expert) or ``"all"``.
        loss: objective weights.
        train: optimiser, schedule, checkpoints, resume.
    """

    dataset_root: str
    stage: str = "geometry"
    model: str = "small"
    geometry_expert: bool = True
    image_size: tuple[int, int] = (112, 112)
    vit_size: int = 112
    min_views: int = 2
    max_views: int = 4
    num_views: int = 4
    questions: dict = field(default_factory=lambda: {"per_family": 3, "min_pixels": 40})
    trainable: str = "auto"
    loss: G2VLMLossConfig = field(default_factory=G2VLMLossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/g2vlm"))

    def __post_init__(self) -> None:
        self.image_size = tuple(int(v) for v in self.image_size)
        if self.stage not in STAGES:
            raise Sem3RError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.trainable not in TRAINABLE:
            raise Sem3RError(f"trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if self.stage == "geometry" and not self.geometry_expert:
            raise Sem3RError("the geometry stage needs geometry_expert=true")
        if len(self.image_size) != 2 or any(v % 14 or v < 14 for v in self.image_size):
            raise Sem3RError(f"image_size must be two multiples of 14, got {list(self.image_size)}")
        if self.vit_size < 28:
            raise Sem3RError(f"vit_size must be at least 28, got {self.vit_size}")
        self.question_config()
        self.train.validate()

    def question_config(self) -> QuestionConfig:
        """The :class:`QuestionConfig` of stage 2."""
        return question_config(self.questions, "g2vlm")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> G2VLMTrainingConfig:
        """Build from a parsed JSON object; unknown keys are an error."""
        doc, train = split_run_config(cls, doc, "g2vlm training config")
        try:
            return cls(**doc, loss=G2VLMLossConfig.from_dict(doc.pop("loss", {}) or {}), train=TrainConfig(**train))
        except TypeError as exc:
            raise Sem3RError(f"invalid g2vlm training config: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> G2VLMTrainingConfig:
        return cls.from_dict(read_json(path))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def camera_frame_points(depth: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Unproject ``depth (..., H, W)`` with ``intrinsics (..., 3, 3)`` to camera-frame points ``(..., H, W, 3)``."""
    H, W = depth.shape[-2:]
    v, u = torch.meshgrid(torch.arange(H, device=depth.device, dtype=depth.dtype),
                          torch.arange(W, device=depth.device, dtype=depth.dtype), indexing="ij")
    fx, fy = intrinsics[..., 0, 0, None, None], intrinsics[..., 1, 1, None, None]
    cx, cy = intrinsics[..., 0, 2, None, None], intrinsics[..., 1, 2, None, None]
    return torch.stack(((u - cx) / fx * depth, (v - cy) / fy * depth, depth), dim=-1)


def visual_geometry_loss(pred: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
                         config: G2VLMLossConfig) -> dict[str, torch.Tensor]:
    """``L_VG`` of stage 1 for predictions of :meth:`G2VLM.decode_geometry` and a geometry batch.

    Args:
        pred: ``local_points``, ``global_points`` ``(B, S, H, W, 3)``, ``camera_poses`` ``(B, S, 4, 4)``.
        batch: ``depth``, ``valid_mask`` ``(B, S, H, W)``, ``intrinsics`` ``(B, S, 3, 3)``,
            ``cam_from_world`` ``(B, S, 3, 4)``, ``world_points`` ``(B, S, H, W, 3)`` (first view's frame).

    Returns:
        ``loss`` and its detached terms ``points``, ``camera``, ``rot``, ``trans``, ``normal``, ``global``.
    """
    depth, mask = batch["depth"], batch["valid_mask"]
    gt_local = camera_frame_points(depth, batch["intrinsics"])
    point, scale = scaled_point_loss(pred["local_points"], gt_local, depth, mask)
    pred_cams = torch.linalg.inv(pred["camera_poses"].float())[..., :3, :]
    cam = relative_camera_loss(pred_cams, batch["cam_from_world"], scale=scale, trans_weight=config.trans_weight)
    normal = normal_loss(pred["local_points"], gt_local, mask, depth) if config.normal_weight else point * 0
    glob, _ = scaled_point_loss(pred["global_points"], batch["world_points"], depth, mask)
    loss = (config.point_weight * point + config.camera_weight * cam["camera"] + config.normal_weight * normal
            + config.global_weight * glob)
    return {"loss": loss, "points": point.detach(), "camera": cam["camera"].detach(), "rot": cam["rot"],
            "trans": cam["trans"], "normal": normal.detach(), "global": glob.detach()}


class G2VLMObjective(nn.Module):
    """Wraps :class:`G2VLM` for the trainer: images -> geometry predictions, QA samples -> reply loss.

    Args:
        model: the model being trained.
        prompt_ids: ``(n,)`` ids of the reconstruction prompt.
    """

    def __init__(self, model: G2VLM, prompt_ids: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("prompt_ids", prompt_ids.long(), persistent=False)

    def forward(self, inputs):
        """``(B, S, 3, H, W)`` images -> ``decode_geometry`` outputs; a list of QA samples -> ``{"ce", "tokens"}``."""
        if isinstance(inputs, torch.Tensor):
            return self._geometry(inputs)
        return self._replies(inputs)

    def _geometry(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        seqs, index = [], None
        for frames in images:
            seq = PackedSequence()
            seq.add_text(self.model.embed(self.prompt_ids))
            geo = self.model.add_geometry(seq, frames)
            seqs.append(seq)
            index = geo.index
        hidden, _ = self.model.run(seqs)
        return self.model.decode_geometry(hidden[:, index], geo.grid)

    def _replies(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        seqs, replies = [], []
        for s in samples:
            seq = PackedSequence()
            seq.add_text(self.model.embed(s["system"]))
            if self.model.config.geometry_expert:
                self.model.add_geometry(seq, s["images"])
            self.model.add_vit_images(seq, s["pixel_values"], s["grid_thw"])
            seq.add_text(self.model.embed(s["user"]))
            replies.append(seq.add_text(self.model.embed(s["reply"])))
            seqs.append(seq)
        hidden, _ = self.model.run(seqs)
        logits = torch.cat([self.model.language_model.logits(hidden[b, r][:-1]) for b, r in enumerate(replies)])
        targets = torch.cat([s["reply"][1:] for s in samples]).to(logits.device)
        ce = F.cross_entropy(logits.float(), targets)
        return {"ce": ce, "tokens": torch.tensor(float(targets.numel()))}


def _loss_fn(stage: str, config: G2VLMLossConfig):
    if stage == "geometry":
        return lambda pred, batch: visual_geometry_loss(pred, batch, config)

    def reply_loss(pred, batch):
        return {"loss": config.ce_weight * pred["ce"], "ce": pred["ce"].detach()}

    return reply_loss


def new_small_model(tokenizer_dir: Path, geometry_expert: bool = True, image_width: int = 112,
                    vit_image_size: int = 112) -> tuple[G2VLM, Any]:
    """A small G2VLM with a character tokenizer written to ``tokenizer_dir`` (special ids set from it).

    ``image_width`` / ``vit_image_size`` are the view sizes its inference paths will prepare.
    """
    vocab = write_char_tokenizer(tokenizer_dir)
    tok = load_tokenizer(tokenizer_dir)
    cfg = G2VLMConfig.small(vocab_size=vocab, geometry_expert=geometry_expert, image_width=image_width,
                            vit_image_size=vit_image_size)
    t = cfg.text
    t.bos_token_id, t.eos_token_id = special_id(tok, IM_START), special_id(tok, IM_END)
    t.vision_start_token_id, t.vision_end_token_id = special_id(tok, VISION_START), special_id(tok, VISION_END)
    return G2VLM(cfg), tok


def export_model(model: G2VLM, tokenizer_dir: Path, folder: Path) -> Path:
    """Write a model folder: config files, ``model.safetensors`` and the tokenizer files."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    model.config.save_folder(folder)
    return save_model_folder(model.state_dict(), tokenizer_dir, folder)


def train_g2vlm(config: str | Path | G2VLMTrainingConfig) -> Path:
    """Run one stage (see the module docstring); returns the exported model folder."""
    from sem3r.training.dataset import (
        GeometryBatchSampler,
        SyntheticGeometryDataset,
        collate_geometry,
        scene_folders,
    )
    from sem3r.training.g2vlm_data import SpatialQADataset, shuffled_loader

    cfg = config if isinstance(config, G2VLMTrainingConfig) else G2VLMTrainingConfig.from_file(config)
    scene_folders(cfg.dataset_root, 1)  # a missing or empty dataset fails before anything is written
    out = Path(cfg.train.out_dir)
    torch.manual_seed(cfg.train.seed)
    if cfg.model == "small":
        tokenizer_dir = out / "tokenizer"
        model, tok = new_small_model(tokenizer_dir, cfg.geometry_expert, cfg.image_size[1], cfg.vit_size)
    elif cfg.model == "smollm2":
        from sem3r.training.g2vlm_init import init_from_pretrained_lm, smollm2_gguf_path

        tokenizer_dir = out / "init"
        model, tok = init_from_pretrained_lm(smollm2_gguf_path(), tokenizer_dir, geometry_expert=cfg.geometry_expert,
                                             image_width=cfg.image_size[1], vit_image_size=cfg.vit_size)
    else:
        from sem3r.reconstruct.g2vlm import load_g2vlm

        tokenizer_dir = Path(cfg.model)
        model, tok = load_g2vlm(cfg.model, device="cpu")
        if tok is None:
            raise Sem3RError(f"'{cfg.model}' has no tokenizer")
    if model.config.geometry_expert != cfg.geometry_expert:
        raise Sem3RError(f"'{cfg.model}' has geometry_expert={model.config.geometry_expert}, the config asks for {cfg.geometry_expert}")
    model.train()
    for name, p in model.named_parameters():
        geometric = is_geometry_parameter(name)
        p.requires_grad_(cfg.trainable == "all" or geometric == (cfg.stage == "geometry"))
    if cfg.stage == "geometry":
        dataset = SyntheticGeometryDataset(cfg.dataset_root, cfg.min_views, cfg.max_views, cfg.image_size, cfg.train.seed)
        sampler = GeometryBatchSampler(len(dataset), cfg.train.batch_size, dataset.min_views, dataset.max_views, cfg.train.seed)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_geometry,
                                             num_workers=cfg.train.num_workers)
        input_key = "images"
    else:
        dataset = SpatialQADataset(cfg.dataset_root, tok, cfg.num_views, cfg.image_size, cfg.vit_size,
                                   model.config.vit, cfg.question_config(), progress=cfg.train.progress)
        loader = shuffled_loader(dataset, cfg.train.batch_size, cfg.train.seed)
        input_key = "samples"
    write_json_atomic(out / "config.json", cfg.to_dict())
    objective = G2VLMObjective(model, torch.tensor(recon_ids(tok)))
    Trainer(objective, _loss_fn(cfg.stage, cfg.loss), loader, cfg.train, input_key=input_key).fit()
    return export_model(model.cpu(), tokenizer_dir, out / "model")
