"""Configuration of :class:`~sem3r.models.g2vlm.model.G2VLM`, built from a checkpoint folder's three files.

An official G2VLM checkpoint folder holds ``text_config.json`` (the Qwen2-VL language model),
``vit_config.json`` (the Qwen2-VL vision tower) and ``dino_config.json`` (DINOv2 with registers).
:meth:`G2VLMConfig.from_folder` reads them, keeps the fields the model needs (the files carry many
more, e.g. ``architectures``; those are ignored) and applies what the official loader forces
regardless of the files: q/k RMS-norm on, untied ``lm_head``, two-expert decoder layers, ViT patch 14.
What the official code hard-codes is kept as fixed values here too: five decoder blocks of 16 heads
in each pi^3-style decoder, decoder outputs of 1024 (points) and 512 (camera), head patch 14 and
RoPE2D base 100.

The vocabulary ids G2VLM uses (``<|im_start|>`` as its bos, ``<|im_end|>`` as its eos, the vision
start / end tokens) come from ``text_config.json`` where it names them and default to Qwen2's ids.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sem3r.errors import Sem3RError

CONFIG_FILES = {"text": "text_config.json", "vit": "vit_config.json", "dino": "dino_config.json"}


def _pick(cls, doc: Mapping[str, Any], label: str):
    """Build dataclass ``cls`` from the keys of ``doc`` it has (the files carry many more)."""
    if not isinstance(doc, Mapping):
        raise Sem3RError(f"{label} must be a JSON object")
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in doc.items() if k in known})
    except TypeError as exc:
        raise Sem3RError(f"{label}: {exc}") from None


@dataclass
class TextConfig:
    """The language model (both experts have these sizes).

    Attributes:
        vocab_size: rows of ``embed_tokens`` and ``lm_head``.
        hidden_size: token width D.
        intermediate_size: MLP width.
        num_hidden_layers: decoder layers (each holds a semantic and a geometry copy).
        num_attention_heads, num_key_value_heads: query heads and KV heads (GQA).
        rms_norm_eps: RMS-norm epsilon.
        rope_theta: M-RoPE base.
        mrope_section: frequencies per position row (t, h, w); sums to ``head_dim / 2``.
        attention_bias: q/k/v projections carry a bias (Qwen2: yes).
        qk_norm: per-head RMS-norm of queries and keys before RoPE (forced on by the official loader).
        hidden_act: MLP activation.
        bos_token_id: G2VLM's bos, ``<|im_start|>``.
        eos_token_id: ``<|im_end|>``; generation stops when it is predicted.
        vision_start_token_id, vision_end_token_id: brackets of every image block.
        max_position_embeddings: the context length the model was trained for (a prompt limit).
    """

    vocab_size: int = 151936
    hidden_size: int = 1536
    intermediate_size: int = 8960
    num_hidden_layers: int = 28
    num_attention_heads: int = 12
    num_key_value_heads: int = 2
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1e6
    mrope_section: tuple[int, int, int] = (16, 24, 24)
    attention_bias: bool = True
    qk_norm: bool = True
    hidden_act: str = "silu"
    bos_token_id: int = 151644
    eos_token_id: int = 151645
    vision_start_token_id: int = 151652
    vision_end_token_id: int = 151653
    max_position_embeddings: int = 32768

    def __post_init__(self) -> None:
        self.mrope_section = tuple(int(v) for v in self.mrope_section)
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_key_value_heads:
            raise Sem3RError(
                f"text config: hidden_size {self.hidden_size} must split into {self.num_attention_heads} heads, "
                f"a multiple of num_key_value_heads {self.num_key_value_heads}"
            )
        if len(self.mrope_section) != 3 or 2 * sum(self.mrope_section) != self.head_dim:
            raise Sem3RError(
                f"text config: mrope_section {list(self.mrope_section)} must have 3 entries summing to "
                f"head_dim / 2 = {self.head_dim // 2}"
            )

    @property
    def head_dim(self) -> int:
        """Channels per attention head."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TextConfig:
        """Read a Qwen2-VL ``text_config.json`` object (its ``eos_token_id`` is already ``<|im_end|>``)."""
        doc = dict(doc)
        scaling = doc.get("rope_scaling") or doc.get("rope_parameters") or {}
        if isinstance(scaling, Mapping) and "mrope_section" in scaling:
            doc["mrope_section"] = scaling["mrope_section"]
        doc.pop("bos_token_id", None)  # Qwen2's bos is <|endoftext|>; G2VLM's is <|im_start|>
        if "im_start_token_id" in doc:
            doc["bos_token_id"] = doc["im_start_token_id"]
        return _pick(cls, doc, "text_config.json")


@dataclass
class VisionConfig:
    """The Qwen2-VL vision tower (semantic encoder); field names as in ``vit_config.json``.

    Attributes:
        depth: transformer blocks.
        embed_dim: block width.
        hidden_size: merger output width (= the language model's ``hidden_size``).
        num_heads: attention heads.
        mlp_ratio: MLP width multiple.
        hidden_act: block MLP activation (``quick_gelu``).
        in_channels, patch_size, spatial_merge_size, temporal_patch_size: patching; ``patch_size`` is
            forced to 14 like the official loader does.
    """

    depth: int = 32
    embed_dim: int = 1280
    hidden_size: int = 1536
    num_heads: int = 16
    mlp_ratio: int = 4
    hidden_act: str = "quick_gelu"
    in_channels: int = 3
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> VisionConfig:
        """Read ``vit_config.json``."""
        cfg = _pick(cls, doc, "vit_config.json")
        cfg.patch_size = 14
        cfg.mlp_ratio = int(cfg.mlp_ratio)
        return cfg


@dataclass
class DinoConfig:
    """DINOv2 with registers (geometry encoder); field names as in ``dino_config.json``.

    Attributes:
        hidden_size, num_hidden_layers, num_attention_heads, mlp_ratio: encoder size.
        layer_norm_eps: LayerNorm epsilon.
        image_size: side the position table covers (518 -> 37 x 37 patches).
        patch_size: patch side (14).
        num_channels: image channels.
        qkv_bias: bias in q / k / v.
        layerscale_value: initial LayerScale gain.
        num_register_tokens: register tokens after CLS.
    """

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    mlp_ratio: float = 4.0
    layer_norm_eps: float = 1e-6
    image_size: int = 518
    patch_size: int = 14
    num_channels: int = 3
    qkv_bias: bool = True
    layerscale_value: float = 1.0
    num_register_tokens: int = 4

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DinoConfig:
        """Read ``dino_config.json``."""
        return _pick(cls, doc, "dino_config.json")


DINO_WINDOWS = ("official", "per_image")


@dataclass
class G2VLMConfig:
    """Everything :class:`~sem3r.models.g2vlm.model.G2VLM` is built from; defaults are G2VLM-2B-MoT.

    Attributes:
        text, vit, dino: the three component configs.
        geometry_expert: build the geometry expert, DINOv2, ``dino2llm`` and the geometry decoders and
            heads. ``False`` gives the semantic-expert-only twin (a plain VLM) used as an ablation.
        dino_windows: ``"official"`` reproduces the official DINOv2 call on all frames flattened into
            one sequence with attention windows computed from the patch count only (shifted windows;
            rows covered by no window get a zero attention output), which the checkpoint was trained
            with; ``"per_image"`` gives every frame its own correct window.
        decoder_depth, decoder_heads: blocks and heads of each pi^3-style decoder (official: 5, 16).
        point_features, camera_features: decoder output widths (official: 1024, 512).
        head_patch_size: pixel-shuffle factor of the point heads (official: 14).
        rope2d_frequency: RoPE2D base of the decoders (official: 100).
        camera_head_blocks: residual blocks of the camera head (official: 2).
        image_width: width of the geometry-branch frames the inference paths prepare (official: 518).
        vit_image_size: square side of the semantic-branch images before Qwen2-VL's resize (official
            chat: 768).

    Example:
        >>> cfg = G2VLMConfig.small()
        >>> cfg.text.head_dim, cfg.vit.hidden_size == cfg.text.hidden_size
        (32, True)
    """

    text: TextConfig = field(default_factory=TextConfig)
    vit: VisionConfig = field(default_factory=VisionConfig)
    dino: DinoConfig = field(default_factory=DinoConfig)
    geometry_expert: bool = True
    dino_windows: str = "official"
    decoder_depth: int = 5
    decoder_heads: int = 16
    point_features: int = 1024
    camera_features: int = 512
    head_patch_size: int = 14
    rope2d_frequency: float = 100.0
    camera_head_blocks: int = 2
    image_width: int = 518
    vit_image_size: int = 768

    def __post_init__(self) -> None:
        if self.dino_windows not in DINO_WINDOWS:
            raise Sem3RError(f"dino_windows must be one of {DINO_WINDOWS}, got {self.dino_windows!r}")
        if self.vit.hidden_size != self.text.hidden_size:
            raise Sem3RError(
                f"vit_config.json hidden_size {self.vit.hidden_size} must equal the language model's "
                f"{self.text.hidden_size}"
            )
        width = self.text.hidden_size
        if width % self.decoder_heads or (width // self.decoder_heads) % 4:
            raise Sem3RError(f"hidden_size {width} must split into {self.decoder_heads} decoder heads of a size divisible by 4")

    @classmethod
    def from_folder(cls, folder: str | Path, **overrides) -> G2VLMConfig:
        """Read ``text_config.json``, ``vit_config.json`` and ``dino_config.json`` from ``folder``.

        A ``sem3r_config.json`` beside them (written by :meth:`save_folder`) holds this class's own
        fields (``geometry_expert``, ``dino_windows``, decoder sizes); ``overrides`` win over it.

        Raises:
            Sem3RError: a file is missing or is not valid JSON, or a required field is missing.
        """
        folder = Path(folder)
        docs = {}
        for name, filename in CONFIG_FILES.items():
            path = folder / filename
            if name == "dino" and not path.exists() and _own_fields(folder).get("geometry_expert") is False:
                docs[name] = {}
                continue
            docs[name] = _read(path)
        own = {**_own_fields(folder), **overrides}
        return cls(TextConfig.from_dict(docs["text"]), VisionConfig.from_dict(docs["vit"]),
                   DinoConfig.from_dict(docs["dino"]), **own)

    def save_folder(self, folder: str | Path) -> None:
        """Write the three official-style config files and ``sem3r_config.json`` (atomically)."""
        from sem3r.io import write_json_atomic

        folder = Path(folder)
        text = asdict(self.text)
        text["rope_scaling"] = {"type": "mrope", "mrope_section": list(text.pop("mrope_section"))}
        text["im_start_token_id"] = text.pop("bos_token_id")
        write_json_atomic(folder / CONFIG_FILES["text"], text)
        write_json_atomic(folder / CONFIG_FILES["vit"], asdict(self.vit))
        write_json_atomic(folder / CONFIG_FILES["dino"], asdict(self.dino))
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in CONFIG_FILES}
        write_json_atomic(folder / "sem3r_config.json", own)

    @classmethod
    def small(cls, vocab_size: int = 1000, **overrides) -> G2VLMConfig:
        """A small G2VLM for CPU tests and training on synthetic scenes (a few million parameters).

        Language model: width 128, 4 heads of 32 (M-RoPE sections 4/6/6), 2 KV heads, 4 layers, MLP 384.
        ViT: 2 blocks of width 64. DINOv2: 2 blocks of width 64, 224 px position table. Decoders:
        2 blocks of 4 heads, outputs 128 / 64, camera head with 1 residual block.
        """
        text = TextConfig(vocab_size=vocab_size, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                          num_attention_heads=4, num_key_value_heads=2, mrope_section=(4, 6, 6),
                          bos_token_id=vocab_size - 10, eos_token_id=vocab_size - 9,
                          vision_start_token_id=vocab_size - 8, vision_end_token_id=vocab_size - 7)
        vit = VisionConfig(depth=2, embed_dim=64, hidden_size=128, num_heads=4)
        dino = DinoConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224)
        sizes = {"decoder_depth": 2, "decoder_heads": 4, "point_features": 128, "camera_features": 64,
                 "camera_head_blocks": 1}
        sizes.update(overrides)
        return cls(text, vit, dino, **sizes)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise Sem3RError(f"{path} is missing (a G2VLM checkpoint folder holds {', '.join(CONFIG_FILES.values())})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Sem3RError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Sem3RError(f"{path} must hold a JSON object")
    return doc


def _own_fields(folder: Path) -> dict[str, Any]:
    path = folder / "sem3r_config.json"
    if not path.exists():
        return {}
    doc = _read(path)
    unknown = sorted(set(doc) - {f.name for f in fields(G2VLMConfig)} - set(CONFIG_FILES))
    if unknown:
        raise Sem3RError(f"{path}: unknown fields {unknown}")
    return doc
