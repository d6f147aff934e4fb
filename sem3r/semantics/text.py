"""Text encoders: unit-norm embeddings of class names for open-vocabulary classification.

OVSeg3R classifies every 3D object query by its similarity to the text embeddings of the class
names (a CLIP text encoder in the paper). Anything with a ``dim`` and an ``encode(names)`` is a
:class:`TextEncoder`; two are built in and registered by name:

=====================  ===================================================================
name                   encoder
=====================  ===================================================================
``hash``               :class:`HashTextEncoder`: a deterministic random vector per normalised
                       name (offline tests and training on synthetic vocabularies)
``clip``, ``siglip``   :class:`TransformersTextEncoder`: the text tower of a CLIP or SigLIP
                       model through ``transformers`` (the ``vlm`` extra), local path or hub id
=====================  ===================================================================

:func:`make_text_encoder` builds one by registered name, or from a local model directory or hub id;
:func:`register_text_encoder` adds a user's own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sem3r.errors import Sem3RError, require
from sem3r.registry import Entry, Registry


@runtime_checkable
class TextEncoder(Protocol):
    """What the pipeline needs of a text encoder.

    Attributes:
        dim: embedding size ``D_t``.
    """

    dim: int

    def encode(self, names: Sequence[str]) -> np.ndarray:
        """``C`` class names -> ``(C, D_t) float32`` unit-norm embeddings."""
        ...


def normalize_class_name(name: str) -> str:
    """The canonical form of a class name: stripped, lower-case, runs of spaces/underscores/hyphens -> one space.

    Example:
        >>> normalize_class_name("  Trash_Bin ") == normalize_class_name("trash - bin") == "trash bin"
        True
    """
    return re.sub(r"[\s_\-]+", " ", name.strip().lower()).strip()


def validate_class_names(names: Sequence[str]) -> list[str]:
    """Check a vocabulary and return it with surrounding whitespace stripped.

    Args:
        names: class names (e.g. from the CLI's ``--classes``).

    Returns:
        The names, stripped, in the given order.

    Raises:
        Sem3RError: no names, a name that is not a string or is empty, or two names equal after
            :func:`normalize_class_name` (the message names them).

    Example:
        >>> validate_class_names([" chair", "table "])
        ['chair', 'table']
    """
    if isinstance(names, str):
        raise Sem3RError(f"class names must be a list of strings, got the single string {names!r}")
    cleaned = []
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise Sem3RError(f"class name {i} must be a string, got {type(name).__name__}")
        if not name.strip():
            raise Sem3RError(f"class name {i} is empty")
        cleaned.append(name.strip())
    if not cleaned:
        raise Sem3RError("the list of class names is empty")
    seen: dict[str, str] = {}
    for name in cleaned:
        key = normalize_class_name(name)
        if key in seen:
            raise Sem3RError(f"duplicate class name '{name}' (same as '{seen[key]}')")
        seen[key] = name
    return cleaned


def _check_names(names: Sequence[str]) -> list[str]:
    """``names`` as a list of strings, or :class:`Sem3RError`."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise Sem3RError("a text encoder encodes a sequence of strings")
    return list(names)


# ------------------------------------------------------------------------------------------- hash
@dataclass
class HashTextEncoderConfig:
    """Options of :class:`HashTextEncoder`.

    Attributes:
        dim: embedding size.
        seed: mixed into every name's hash (a different seed, a different embedding space).
    """

    dim: int = 64
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise Sem3RError(f"hash text encoder dim must be a positive int, got {self.dim!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise Sem3RError(f"hash text encoder seed must be a non-negative int, got {self.seed!r}")


class HashTextEncoder:
    """Deterministic pseudo-embeddings of class names (no model, no download).

    A name is normalised (:func:`normalize_class_name`), hashed with BLAKE2b (stable across
    processes, unlike Python's ``hash``), and the digest, together with ``seed``, seeds a numpy
    generator that draws a standard Gaussian vector, which is L2-normalised. Equal names after
    normalisation get equal vectors; different names get independent random directions, nearly
    orthogonal for ``dim >= 64`` (``|cos|`` of order ``1 / sqrt(dim)``). It carries no meaning:
    "chair" is no closer to "armchair" than to "wall".

    Args:
        dim: embedding size.
        seed: non-negative int mixed into every hash.

    Example:
        >>> enc = HashTextEncoder(dim=64)
        >>> e = enc.encode(["chair", "Trash_Bin", "trash bin"])
        >>> e.shape, e.dtype.name, bool(np.allclose(np.linalg.norm(e, axis=1), 1)), bool((e[1] == e[2]).all())
        ((3, 64), 'float32', True, True)
    """

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        HashTextEncoderConfig(dim, seed).validate()
        self.dim = dim
        self.seed = seed

    @classmethod
    def from_config(cls, config: HashTextEncoderConfig) -> HashTextEncoder:
        """Build from a :class:`HashTextEncoderConfig`."""
        return cls(config.dim, config.seed)

    def _vector(self, name: str) -> np.ndarray:
        digest = hashlib.blake2b(normalize_class_name(name).encode("utf-8"), digest_size=16).digest()
        rng = np.random.default_rng([self.seed, int.from_bytes(digest, "little")])
        vector = rng.standard_normal(self.dim)
        return vector / np.linalg.norm(vector)

    def encode(self, names: Sequence[str]) -> np.ndarray:
        """Embed class names.

        Args:
            names: ``C`` class names.

        Returns:
            ``(C, dim) float32``, unit rows.
        """
        names = _check_names(names)
        out = np.zeros((len(names), self.dim), np.float32)
        for i, name in enumerate(names):
            out[i] = self._vector(name)
        return out


# ----------------------------------------------------------------------------------- transformers
@dataclass
class TransformersTextEncoderConfig:
    """Options of :class:`TransformersTextEncoder` (the ``clip`` entry).

    Attributes:
        model: local model directory or hub id of a CLIP or SigLIP model.
        device: torch device the text tower runs on.
        prompt_template: format string a class name is put into (``{}`` marks the name).
        batch_size: names encoded per forward pass.
    """

    model: str = "openai/clip-vit-base-patch32"
    device: str = "cpu"
    prompt_template: str = "a photo of a {}."
    batch_size: int = 64

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if not isinstance(self.model, str) or not self.model:
            raise Sem3RError(f"text encoder model must be a non-empty path or hub id, got {self.model!r}")
        if not isinstance(self.prompt_template, str) or "{}" not in self.prompt_template:
            raise Sem3RError(f"text encoder prompt_template must contain '{{}}', got {self.prompt_template!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise Sem3RError(f"text encoder batch_size must be a positive int, got {self.batch_size!r}")


@dataclass
class SiglipTextEncoderConfig(TransformersTextEncoderConfig):
    """Options of the ``siglip`` entry: :class:`TransformersTextEncoderConfig` with SigLIP's defaults."""

    model: str = "google/siglip-base-patch16-224"
    prompt_template: str = "This is a photo of {}."


_SIGLIP_TYPES = ("siglip", "siglip2")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class TransformersTextEncoder:
    """The text tower of a CLIP or SigLIP model (``transformers``), L2-normalised.

    Loads ``AutoTokenizer`` and ``AutoModel`` from a local directory or a hub id at construction,
    puts every name into ``prompt_template`` and takes ``get_text_features`` (the projected pooled
    text embedding). CLIP batches are padded to their longest prompt; SigLIP, trained on
    fixed-length text, is padded to ``max_length`` (its text ``max_position_embeddings``) as its
    model card prescribes. Models whose ``model_type`` is ``siglip`` or ``siglip2`` are SigLIP.

    Args:
        model: local model directory or hub id.
        device: torch device.
        prompt_template: format string with ``{}`` for the name.
        batch_size: names per forward pass.

    Raises:
        Sem3RError: ``transformers`` is missing, the directory does not exist, or the model or its
            tokenizer cannot be loaded (the message names the model).

    Example:
        >>> enc = TransformersTextEncoder("openai/clip-vit-base-patch32")  # doctest: +SKIP
        >>> enc.encode(["chair", "table"]).shape  # doctest: +SKIP
        (2, 512)
    """

    def __init__(self, model: str, device: str = "cpu", prompt_template: str = "a photo of a {}.",
                 batch_size: int = 64) -> None:
        config = TransformersTextEncoderConfig(str(model), device, prompt_template, batch_size)
        config.validate()
        self.config = config
        transformers = require("transformers", "vlm", "CLIP/SigLIP text encoders")
        name = config.model
        if name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():
            raise Sem3RError(f"text encoder model directory '{name}' does not exist")
        if Path(name).expanduser().is_dir():
            name = str(Path(name).expanduser())
        from sem3r.hub import resolve_pretrained

        name = resolve_pretrained(name, what="the text encoder", use="pass a local model folder")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(name)
            self.model = transformers.AutoModel.from_pretrained(name).to(config.device).eval()
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:  # missing files, bad config, network
            raise Sem3RError(f"cannot load text encoder '{config.model}': {_first_line(exc)}") from None
        if not hasattr(self.model, "get_text_features"):
            raise Sem3RError(f"model '{config.model}' ({type(self.model).__name__}) has no text tower (get_text_features)")
        self.is_siglip = getattr(self.model.config, "model_type", "") in _SIGLIP_TYPES
        self.dim = int(self._features(["object"]).shape[1])

    @classmethod
    def from_config(cls, config: TransformersTextEncoderConfig) -> TransformersTextEncoder:
        """Build from a :class:`TransformersTextEncoderConfig`."""
        return cls(config.model, config.device, config.prompt_template, config.batch_size)

    def _features(self, texts: list[str]) -> Any:
        """``(B, D_t)`` float tensor of un-normalised text features of prompts ``texts``."""
        import torch

        if self.is_siglip:
            length = self.model.config.text_config.max_position_embeddings
            tokens = self.tokenizer(texts, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
        else:
            tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        inputs = {k: tokens[k].to(self.config.device) for k in ("input_ids", "attention_mask") if k in tokens}
        with torch.no_grad():
            out = self.model.get_text_features(**inputs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def encode(self, names: Sequence[str]) -> np.ndarray:
        """Embed class names.

        Args:
            names: ``C`` class names.

        Returns:
            ``(C, dim) float32``, unit rows.
        """
        import torch

        names = _check_names(names)
        if not names:
            return np.zeros((0, self.dim), np.float32)
        prompts = [self.config.prompt_template.format(name) for name in names]
        step = self.config.batch_size
        features = torch.cat([self._features(prompts[i:i + step]) for i in range(0, len(prompts), step)])
        features = torch.nn.functional.normalize(features.float(), dim=1)
        return features.cpu().numpy().astype(np.float32)


# ------------------------------------------------------------------------------------------ registry
TextEncoderFactory = Callable[[Any], TextEncoder]

_REGISTRY = Registry("text encoder")
_REGISTRY.register("hash", HashTextEncoder.from_config, HashTextEncoderConfig)
_REGISTRY.register("clip", TransformersTextEncoder.from_config, TransformersTextEncoderConfig)
_REGISTRY.register("siglip", TransformersTextEncoder.from_config, SiglipTextEncoderConfig)

TEXT_ENCODERS = _REGISTRY.entries
"""Read-only, live view ``name -> Entry`` of the registered text encoders."""


def register_text_encoder(name: str, factory: TextEncoderFactory | str, config_cls: type | str,
                          replace: bool = False) -> None:
    """Register a text encoder.

    Args:
        name: the name passed to :func:`make_text_encoder`.
        factory: ``config -> TextEncoder``, or ``"module:attribute"`` imported on first use.
        config_cls: its config dataclass (or ``"module:attribute"``); ``validate()`` is called when present.
        replace: allow replacing an encoder of the same name.

    Raises:
        Sem3RError: the name is taken (and ``replace`` is False) or empty.

    Example:
        >>> @dataclass
        ... class SmallHashConfig:
        ...     dim: int = 8
        >>> register_text_encoder("small-hash", lambda c: HashTextEncoder(c.dim), SmallHashConfig)
        >>> make_text_encoder("small-hash").dim
        8
        >>> unregister_text_encoder("small-hash")
    """
    _REGISTRY.register(name, factory, config_cls, replace)


def unregister_text_encoder(name: str) -> None:
    """Remove a registered text encoder (unknown names raise :class:`Sem3RError`)."""
    _REGISTRY.unregister(name)


def get_text_encoder(name: str) -> Entry:
    """The registered text encoder ``name`` (an :class:`~sem3r.registry.Entry`).

    Raises:
        Sem3RError: unknown name; the message lists the registered encoders.
    """
    return _REGISTRY.get(name)


def make_text_encoder(name_or_path: str | Path, **options: Any) -> TextEncoder:
    """Build a text encoder by registered name, or a :class:`TransformersTextEncoder` from a model.

    Args:
        name_or_path: a name in :data:`TEXT_ENCODERS` (``hash``, ``clip``, ``siglip`` or a registered
            one); otherwise an existing local model directory or a hub id (anything containing
            ``/``), loaded as the ``clip`` entry with ``model=name_or_path``.
        **options: fields of the entry's config, e.g. ``dim=128`` for ``hash`` or ``device="cuda"``.

    Returns:
        The encoder.

    Raises:
        Sem3RError: an unknown name that is neither a directory nor a hub id, an unknown option, or
            a model that cannot be loaded.

    Example:
        >>> make_text_encoder("hash", dim=32).encode(["chair"]).shape
        (1, 32)
    """
    name_or_path = str(name_or_path)
    if name_or_path in _REGISTRY.entries:
        name = name_or_path
    elif Path(name_or_path).expanduser().is_dir() or "/" in name_or_path:
        name, options = "clip", {**options, "model": name_or_path}
    else:
        raise Sem3RError(
            f"unknown text encoder '{name_or_path}': not one of {', '.join(_REGISTRY.entries)}, "
            "a local model directory or a hub id (owner/name)"
        )
    factory, _ = get_text_encoder(name).load()
    return factory(_REGISTRY.make_config(name, **options))
