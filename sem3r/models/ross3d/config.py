"""Configuration of :class:`~sem3r.models.ross3d.model.Ross3D`, read from an HF-style ``config.json``.

The official checkpoint (``HaochenWang/llava-video-qwen2-7b-ross3d``) carries one flat ``config.json``: the
Qwen2 fields (``hidden_size``, ``num_hidden_layers``, ...) plus the LLaVA / Ross3D fields (``mm_projector_type``,
``world_position_embedding_type``, ``voxel_size``, ...) and many training leftovers, which are ignored. The
SigLIP tower's sizes are not in it: the official code hard-codes so400m-patch14-384 (ROSS3D facts section 1),
so they default to those values here; a ``vision_config`` object (written by :meth:`Ross3DConfig.save`) may
override them.

Vocabulary rows: the official ``embed_tokens`` is built with 152064 rows whatever the config says, and the
``lm_head`` with ``config.vocab_size`` rows (the evaluation scripts force 151649), so the two differ
(facts section 7). :func:`config_for_state_dict` sets both from the checkpoint tensors before the model is
built; never trust ``vocab_size`` of ``config.json`` for the embedding.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from sem3r.errors import Sem3RError

#: ``config.json`` keys without which a Ross3D (Qwen2) model cannot be sized.
REQUIRED_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads")
NEWLINE_POSITIONS = ("grid", "frame", "one_token", "no_token")
WORLD_PE_TYPES = ("avg-discrete-sin3d", "avg-sin3d", None)


@dataclass
class SigLIPConfig:
    """The SigLIP vision tower (official: so400m-patch14-384, hard-coded by the official code).

    Attributes:
        hidden_size, intermediate_size, num_attention_heads: encoder sizes.
        num_hidden_layers: layers of the *pretrained* tower (27); the official tower deletes the last one, so
            ``num_hidden_layers - 1`` layers are built and their output is the feature (``select_layer -2``).
        image_size: square input side (384) -> ``image_size // patch_size`` = 27 patches per side; the last
            ``image_size % patch_size`` = 6 pixel rows / columns are not covered by any patch.
        patch_size: 14.
        layer_norm_eps: LayerNorm epsilon.
        hidden_act: MLP activation (``gelu_pytorch_tanh``).
    """

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    image_size: int = 384
    patch_size: int = 14
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"

    def __post_init__(self) -> None:
        if self.num_hidden_layers < 2:
            raise Sem3RError(f"vision_config: num_hidden_layers must be >= 2 (the last layer is dropped), got {self.num_hidden_layers}")
        if self.hidden_size % self.num_attention_heads:
            raise Sem3RError(f"vision_config: hidden_size {self.hidden_size} must split into {self.num_attention_heads} heads")

    @property
    def grid(self) -> int:
        """Patches per side (27)."""
        return self.image_size // self.patch_size


@dataclass
class Ross3DConfig:
    """Everything :class:`~sem3r.models.ross3d.model.Ross3D` is built from; defaults are Ross3D-7B.

    Language model (Qwen2-7B):
        vocab_size: ``lm_head`` rows (151649 in the published evaluation).
        embed_vocab_size: ``embed_tokens`` rows (152064, hard-coded by the official Qwen2 patch).
        hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads: sizes.
        rms_norm_eps, rope_theta, max_position_embeddings, hidden_act: as in Qwen2.
        attn_implementation: transformers attention kernel (``sdpa`` or ``eager``); numerics only.

    Vision and visual tokens (facts sections 3-4):
        vision: the SigLIP tower.
        mm_vision_select_layer: -2 (the official tower deletes its last layer and reads the new last one).
        mm_projector_type: ``mlp2x_gelu`` (Linear, exact GELU, Linear).
        mm_patch_merge_type: ``spatial_unpad`` (learned ``image_newline``).
        mm_newline_position: ``grid`` (a newline after every row of pooled tokens), or ``frame``,
            ``one_token``, ``no_token``.
        mm_spatial_pool_stride: 2: the 27x27 grid is bilinearly resized to ceil(27/2) = 14 per side.
        world_position_embedding_type: ``avg-discrete-sin3d`` (or ``avg-sin3d``; ``None`` = no 3D encoding).
        voxel_size, min_xyz_range, max_xyz_range: discretisation of world coordinates (metres).
        position_temperature: the sine encoding's temperature (10000, fixed in the official code).
        image_token_index: the placeholder id spliced by the visual tokens (-200).

    Task tokens and grounding (facts section 6):
        ground_token_ids, coord_token_ids: ids of ``<ground>`` / ``<coord>`` (set by the official training).
        ground_head_type: ``infonce`` (or ``None``: no grounding head).
        ground_head_temperature: 0.07.
        object_feature_type: ``patch14-pe`` (projector outputs of covered SigLIP patches + box-centre encoding).
        im_start_id, im_end_id: Qwen2's ``<|im_start|>`` / ``<|im_end|>`` (generation stops at the latter).

    Training-only (facts sections 8-9; not in the inference state dict):
        view_mask_ratio, view_mask_prob: cross-view masking (0.25, 0.25).
        image_embed_len: pooled tokens per frame (196; must equal the pooled grid squared).
        decode_image_size: side the masked frames are resized to for the VAE (216 = 27 * 8).
        mm_inv_projector_type: ``denoiser_vitNx`` (depth N; width 1024, or 1280 / 1536 for N = 8 / 12).
        mm_inv_hidden_size: target latent channels (64 = 16 VAE channels folded 2x2).
        denoiser_width, denoiser_heads: override the DiT width (``None``: the official rule) and heads (16).
        bev_grid: the BEV latent side after folding (27 -> 729 queries).

    Example:
        >>> cfg = Ross3DConfig.small()
        >>> cfg.pooled_grid, cfg.tokens_per_frame
        (3, 12)
        >>> Ross3DConfig().tokens_per_frame
        210
    """

    vocab_size: int = 151649
    embed_vocab_size: int = 152064
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1e6
    max_position_embeddings: int = 32768
    hidden_act: str = "silu"
    attn_implementation: str = "sdpa"

    vision: SigLIPConfig = field(default_factory=SigLIPConfig)
    mm_vision_select_layer: int = -2
    mm_projector_type: str = "mlp2x_gelu"
    mm_patch_merge_type: str = "spatial_unpad"
    mm_newline_position: str = "grid"
    mm_spatial_pool_stride: int = 2
    world_position_embedding_type: str | None = "avg-discrete-sin3d"
    voxel_size: float = 0.1
    min_xyz_range: tuple[float, float, float] = (-15.0, -15.0, -5.0)
    max_xyz_range: tuple[float, float, float] = (15.0, 15.0, 5.0)
    position_temperature: float = 10000.0
    image_token_index: int = -200

    ground_token_ids: tuple[int, ...] | None = None
    coord_token_ids: tuple[int, ...] | None = None
    ground_head_type: str | None = "infonce"
    ground_head_temperature: float = 0.07
    object_feature_type: str = "patch14-pe"
    im_start_id: int = 151644
    im_end_id: int = 151645

    view_mask_ratio: float = 0.25
    view_mask_prob: float = 0.25
    image_embed_len: int = 196
    decode_image_size: int = 216
    mm_inv_projector_type: str = "denoiser_vit3x"
    mm_inv_hidden_size: int = 64
    denoiser_width: int | None = None
    denoiser_heads: int = 16
    bev_grid: int = 27

    def __post_init__(self) -> None:
        if isinstance(self.vision, Mapping):
            self.vision = SigLIPConfig(**dict(self.vision))
        self.min_xyz_range = tuple(float(v) for v in self.min_xyz_range)
        self.max_xyz_range = tuple(float(v) for v in self.max_xyz_range)
        for name in ("ground_token_ids", "coord_token_ids"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, tuple(int(v) for v in ([value] if isinstance(value, int) else value)))
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_key_value_heads:
            raise Sem3RError(f"hidden_size {self.hidden_size} must split into {self.num_attention_heads} heads, "
                             f"a multiple of num_key_value_heads {self.num_key_value_heads}")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise Sem3RError(f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}")
        if self.mm_vision_select_layer != -2:
            raise Sem3RError("mm_vision_select_layer must be -2 (the official SigLIP tower drops its last layer), "
                             f"got {self.mm_vision_select_layer}")
        if self.mm_projector_type != "mlp2x_gelu":
            raise Sem3RError(f"mm_projector_type {self.mm_projector_type!r} is not supported (Ross3D: 'mlp2x_gelu')")
        if "unpad" not in self.mm_patch_merge_type:
            raise Sem3RError(f"mm_patch_merge_type {self.mm_patch_merge_type!r} is not supported (Ross3D: 'spatial_unpad')")
        if self.mm_newline_position not in NEWLINE_POSITIONS:
            raise Sem3RError(f"mm_newline_position must be one of {NEWLINE_POSITIONS}, got {self.mm_newline_position!r}")
        if self.world_position_embedding_type not in WORLD_PE_TYPES:
            raise Sem3RError(f"world_position_embedding_type must be one of {WORLD_PE_TYPES}, "
                             f"got {self.world_position_embedding_type!r}")
        if len(self.min_xyz_range) != 3 or len(self.max_xyz_range) != 3 or self.voxel_size <= 0:
            raise Sem3RError("min_xyz_range / max_xyz_range need 3 values each and voxel_size must be positive")
        if self.ground_head_type not in ("infonce", None):
            raise Sem3RError(f"ground_head_type {self.ground_head_type!r} is not supported (Ross3D: 'infonce')")
        if self.image_embed_len != self.pooled_grid ** 2:
            raise Sem3RError(f"image_embed_len {self.image_embed_len} must equal the pooled grid squared "
                             f"({self.pooled_grid}^2 = {self.pooled_grid ** 2})")
        if not re.fullmatch(r"denoiser_vit\d+x", self.mm_inv_projector_type):
            raise Sem3RError(f"mm_inv_projector_type {self.mm_inv_projector_type!r} is not supported (Ross3D: 'denoiser_vit3x')")
        if self.inv_width % self.denoiser_heads:
            raise Sem3RError(f"denoiser width {self.inv_width} must split into {self.denoiser_heads} heads")

    # ------------------------------------------------------------------ derived sizes
    @property
    def head_dim(self) -> int:
        """Channels per attention head of the language model (128)."""
        return self.hidden_size // self.num_attention_heads

    @property
    def pooled_grid(self) -> int:
        """Pooled tokens per side of a frame: ``ceil(grid / stride)`` (14)."""
        return math.ceil(self.vision.grid / self.mm_spatial_pool_stride)

    @property
    def tokens_per_frame(self) -> int:
        """Visual tokens of one frame in the sequence, newlines included (``grid``: 14 x 15 = 210)."""
        p = self.pooled_grid
        return p * (p + 1) if self.mm_newline_position == "grid" else p * p + (self.mm_newline_position == "frame")

    @property
    def inv_depth(self) -> int:
        """DiT blocks of the denoiser (``denoiser_vit3x`` -> 3)."""
        return int(re.fullmatch(r"denoiser_vit(\d+)x", self.mm_inv_projector_type).group(1))

    @property
    def inv_width(self) -> int:
        """DiT width: ``denoiser_width`` or the official rule (1280 for depth 8, 1536 for 12, else 1024)."""
        if self.denoiser_width is not None:
            return self.denoiser_width
        return {8: 1280, 12: 1536}.get(self.inv_depth, 1024)

    # ------------------------------------------------------------------ reading and writing
    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], **overrides) -> Ross3DConfig:
        """Read an HF-style ``config.json`` object; unknown keys are ignored, ``overrides`` win.

        Raises:
            Sem3RError: a key of :data:`REQUIRED_KEYS` is missing, or a value is unsupported.
        """
        if not isinstance(doc, Mapping):
            raise Sem3RError("a Ross3D config must be a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in doc and k not in overrides]
        if missing:
            raise Sem3RError(f"Ross3D config.json is missing required key(s) {missing}")
        values = dict(doc)
        rope = values.get("rope_parameters") or values.get("rope_scaling") or {}
        if "rope_theta" not in values and isinstance(rope, Mapping) and "rope_theta" in rope:
            values["rope_theta"] = rope["rope_theta"]
        vision = dict(values.get("vision_config") or {})
        if "mm_hidden_size" in values:
            if vision.get("hidden_size", values["mm_hidden_size"]) != values["mm_hidden_size"]:
                raise Sem3RError(f"mm_hidden_size {values['mm_hidden_size']} != vision_config hidden_size {vision['hidden_size']}")
            vision["hidden_size"] = values["mm_hidden_size"]
        known = {f.name for f in fields(SigLIPConfig)}
        values["vision"] = SigLIPConfig(**{k: v for k, v in vision.items() if k in known})
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in names}
        kwargs.update(overrides)
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise Sem3RError(f"Ross3D config: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path, **overrides) -> Ross3DConfig:
        """Read ``config.json`` (a file, or a checkpoint folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise Sem3RError(f"{path} is missing (a Ross3D checkpoint folder holds config.json)")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Sem3RError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(doc, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """HF-style flat dict (``model_type ross3d_qwen``, ``mm_hidden_size``, ``vision_config``)."""
        doc = asdict(self)
        doc["vision_config"] = doc.pop("vision")
        doc["mm_hidden_size"] = self.vision.hidden_size
        doc["model_type"] = "ross3d_qwen"
        doc["tie_word_embeddings"] = False
        for k in ("min_xyz_range", "max_xyz_range", "ground_token_ids", "coord_token_ids"):
            doc[k] = list(doc[k]) if doc[k] is not None else None
        return doc

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/config.json`` atomically; returns its path."""
        from sem3r.io import write_json_atomic

        return write_json_atomic(Path(folder) / "config.json", self.to_dict())

    @classmethod
    def small(cls, **overrides) -> Ross3DConfig:
        """A tiny Ross3D for CPU tests: LLM width 128 (4 heads of 32, 2 KV heads, 2 layers, MLP 256,
        320 embedding rows / 300 output rows), SigLIP width 32 (3 pretrained layers -> 2 built) on 70x70
        frames (5x5 patches -> 3x3 pooled, 12 tokens per frame with newlines), denoiser width 32 (2 heads,
        1 block) with 8 latent channels and a 3x3 BEV grid."""
        sizes = dict(vocab_size=300, embed_vocab_size=320, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                     vision=SigLIPConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                                         image_size=70, patch_size=14),
                     image_embed_len=9, decode_image_size=40, mm_inv_projector_type="denoiser_vit1x",
                     mm_inv_hidden_size=8, denoiser_width=32, denoiser_heads=2, bev_grid=3,
                     ground_token_ids=(290,), coord_token_ids=(291,), im_start_id=292, im_end_id=293)
        sizes.update(overrides)
        return cls(**sizes)


def config_for_state_dict(config: Ross3DConfig, state: Mapping[str, Any]) -> Ross3DConfig:
    """``config`` with the vocabulary rows of the checkpoint tensors.

    ``embed_vocab_size`` = rows of ``model.embed_tokens.weight``, ``vocab_size`` = rows of ``lm_head.weight``
    (both read from the tensors' shapes; the official embedding has 152064 rows whatever ``config.json`` says).

    Args:
        config: read from ``config.json``.
        state: the checkpoint (tensors, or anything with a ``shape``, e.g. safetensors slices).

    Raises:
        Sem3RError: a tensor is missing or its width is not ``hidden_size``.

    Example:
        >>> import torch
        >>> cfg = config_for_state_dict(Ross3DConfig.small(), {"model.embed_tokens.weight": torch.zeros(7, 128),
        ...                                                    "lm_head.weight": torch.zeros(5, 128)})
        >>> cfg.embed_vocab_size, cfg.vocab_size
        (7, 5)
    """
    rows = {}
    for key, name in (("model.embed_tokens.weight", "embed_vocab_size"), ("lm_head.weight", "vocab_size")):
        if key not in state:
            raise Sem3RError(f"the Ross3D checkpoint has no {key}")
        shape = tuple(state[key].shape) if hasattr(state[key], "shape") else tuple(state[key].get_shape())
        if len(shape) != 2 or shape[1] != config.hidden_size:
            raise Sem3RError(f"{key} has shape {list(shape)}, expected [rows, {config.hidden_size}]")
        rows[name] = shape[0]
    return replace(config, **rows)
