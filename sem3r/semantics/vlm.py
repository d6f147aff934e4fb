"""Image encoders of vision-language models: dense per-patch features, per-crop embeddings, text.

IGGT uses its 3D-consistent instance masks as prompts for any VLM; OpenMask3D-style pipelines embed
image crops around each mask. Both need an image encoder whose image and text embeddings live in
one space. Anything with a ``dim`` and the three methods of :class:`ImageEncoder` is one; CLIP and
SigLIP through ``transformers`` (the ``vlm`` extra) are built in and registered by name:

==========  ======================================================================
name        encoder
==========  ======================================================================
``clip``    :class:`CLIPImageEncoder` on a CLIP model (local path or hub id)
``siglip``  the same class on a SigLIP model (detected from the model's ``model_type``)
==========  ======================================================================

:func:`make_image_encoder` builds one by registered name, or from a local model directory or hub id;
:func:`register_image_encoder` adds a user's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sem3r.errors import Sem3RError, require
from sem3r.registry import Entry, Registry
from sem3r.semantics.text import TransformersTextEncoder


@runtime_checkable
class ImageEncoder(Protocol):
    """What the pipeline needs of a vision-language image encoder.

    Attributes:
        dim: size ``D`` of the joint image-text embedding space.
    """

    dim: int

    def dense_features(self, images: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3) uint8`` images -> ``(N, h, w, D) float32`` unit-norm features on a grid."""
        ...

    def crop_features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """``K`` crops ``(h_k, w_k, 3) uint8`` -> ``(K, D) float32`` unit-norm image embeddings."""
        ...

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        """``C`` texts (used verbatim) -> ``(C, D) float32`` unit-norm text embeddings."""
        ...


def check_images(images: np.ndarray) -> np.ndarray:
    """Check a batch of RGB images.

    Args:
        images: ``(N, H, W, 3) uint8``.

    Returns:
        ``images`` as a numpy array.

    Raises:
        Sem3RError: wrong dtype, rank or channel count, or no images.

    Example:
        >>> check_images(np.zeros((2, 4, 5, 3), np.uint8)).shape
        (2, 4, 5, 3)
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise Sem3RError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise Sem3RError(f"images must not be empty, got shape {images.shape}")
    return images


def _check_crops(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``crops`` as a list of ``(h, w, 3) uint8`` arrays, or :class:`Sem3RError`."""
    out = []
    for i, crop in enumerate(crops):
        crop = np.asarray(crop)
        if crop.ndim != 3 or crop.shape[-1] != 3 or crop.dtype != np.uint8 or 0 in crop.shape:
            raise Sem3RError(f"crop {i} must be a non-empty uint8 (h, w, 3) image, got {crop.dtype} {crop.shape}")
        out.append(crop)
    return out


# ----------------------------------------------------------------------------------- transformers
@dataclass
class CLIPImageEncoderConfig:
    """Options of :class:`CLIPImageEncoder` (the ``clip`` entry).

    Attributes:
        model: local model directory or hub id of a CLIP or SigLIP model.
        device: torch device.
        batch_size: images (or crops, or texts) per forward pass.
        dense_resolution: short side, in pixels, that images are resized to for
            :meth:`CLIPImageEncoder.dense_features` (rounded to whole patches; the position
            embedding is interpolated); ``None`` uses the model's training ``image_size``.
    """

    model: str = "openai/clip-vit-base-patch16"
    device: str = "cpu"
    batch_size: int = 16
    dense_resolution: int | None = None

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if not isinstance(self.model, str) or not self.model:
            raise Sem3RError(f"image encoder model must be a non-empty path or hub id, got {self.model!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise Sem3RError(f"image encoder batch_size must be a positive int, got {self.batch_size!r}")
        res = self.dense_resolution
        if res is not None and (isinstance(res, bool) or not isinstance(res, int) or res < 1):
            raise Sem3RError(f"image encoder dense_resolution must be a positive int or None, got {res!r}")


@dataclass
class SiglipImageEncoderConfig(CLIPImageEncoderConfig):
    """Options of the ``siglip`` entry: :class:`CLIPImageEncoderConfig` with a SigLIP default model."""

    model: str = "google/siglip-base-patch16-224"


class CLIPImageEncoder:
    """A CLIP or SigLIP model (``transformers``) as an :class:`ImageEncoder`.

    The model and its tokenizer are loaded once through :class:`~sem3r.semantics.text.TransformersTextEncoder`
    (which also provides :meth:`text_features`, with the texts used verbatim: prompt templates are
    the caller's); the image processor through ``AutoImageProcessor``.

    * :meth:`crop_features` is the model's own image embedding (``get_image_features``) of each crop,
      preprocessed by the model's image processor (CLIP: resize the short side, centre crop;
      SigLIP: resize to a square).
    * :meth:`dense_features` follows MaskCLIP: the vision tower's last-layer patch tokens are mapped
      into the joint space by the same head that maps the pooled token. For CLIP that is the
      post-layernorm and ``visual_projection`` applied to every patch token (the class token is
      dropped). SigLIP pools with an attention head (MAP) instead of a class token; every patch token
      is passed through that head on its own (attention over a single key returns its value, so this
      is the head's value/output projections and MLP applied per token). Images are resized
      (bilinear, antialiased) so that the short side is ``dense_resolution`` rounded to whole patches,
      normalised with the processor's mean and std, and the position embedding is interpolated. The
      result is at the patch grid ``(h, w) = (H', W') / patch_size``, not upsampled.

    Args:
        model: local model directory or hub id.
        device: torch device.
        batch_size: images, crops or texts per forward pass.
        dense_resolution: short side for dense features (``None``: the model's ``image_size``).

    Raises:
        Sem3RError: ``transformers`` is missing, the model or its processors cannot be loaded, or the
            model has no image tower.

    Example:
        >>> enc = CLIPImageEncoder("openai/clip-vit-base-patch16")  # doctest: +SKIP
        >>> enc.dense_features(np.zeros((1, 224, 224, 3), np.uint8)).shape  # doctest: +SKIP
        (1, 14, 14, 512)
    """

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 16,
                 dense_resolution: int | None = None) -> None:
        config = CLIPImageEncoderConfig(str(model), device, batch_size, dense_resolution)
        config.validate()
        self.config = config
        transformers = require("transformers", "vlm", "CLIP/SigLIP image encoders")
        from sem3r.hub import resolve_pretrained

        # a hub id without network becomes its cached folder, or fails here in a second
        source = resolve_pretrained(config.model, what="the image encoder", use="pass a local model folder with --vlm")
        self.text = TransformersTextEncoder(source, device, prompt_template="{}", batch_size=batch_size)
        self.model = self.text.model
        self.is_siglip = self.text.is_siglip
        if not hasattr(self.model, "get_image_features"):
            raise Sem3RError(f"model '{config.model}' ({type(self.model).__name__}) has no image tower (get_image_features)")
        name = source
        if Path(name).expanduser().is_dir():
            name = str(Path(name).expanduser())
        try:
            self.processor = transformers.AutoImageProcessor.from_pretrained(name)
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise Sem3RError(f"cannot load the image processor of '{config.model}': {first}") from None
        vision = self.model.config.vision_config
        self.patch_size = int(vision.patch_size)
        self.image_size = int(vision.image_size)
        self.dim = self.text.dim

    @classmethod
    def from_config(cls, config: CLIPImageEncoderConfig) -> CLIPImageEncoder:
        """Build from a :class:`CLIPImageEncoderConfig`."""
        return cls(config.model, config.device, config.batch_size, config.dense_resolution)

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as given (no template).

        Args:
            texts: ``C`` strings.

        Returns:
            ``(C, D) float32``, unit rows.
        """
        return self.text.encode(texts)

    def crop_features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Image embeddings of crops (``get_image_features``), L2-normalised.

        Args:
            crops: ``K`` images ``(h_k, w_k, 3) uint8`` of any sizes.

        Returns:
            ``(K, D) float32``, unit rows.

        Raises:
            Sem3RError: a crop that is not a non-empty ``uint8 (h, w, 3)`` image.
        """
        import torch

        crops = _check_crops(crops)
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        step = self.config.batch_size
        out = []
        for start in range(0, len(crops), step):
            pixels = self.processor(images=crops[start:start + step], return_tensors="pt")["pixel_values"]
            with torch.no_grad():
                result = self.model.get_image_features(pixel_values=pixels.to(self.config.device))
            out.append(result if isinstance(result, torch.Tensor) else result.pooler_output)
        features = torch.nn.functional.normalize(torch.cat(out).float(), dim=1)
        return features.cpu().numpy().astype(np.float32)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid ``(h, w)`` of :meth:`dense_features` for ``height x width`` images.

        Example:
            >>> enc = CLIPImageEncoder.__new__(CLIPImageEncoder)
            >>> enc.config, enc.patch_size, enc.image_size = CLIPImageEncoderConfig(), 16, 224
            >>> enc.grid_size(480, 640)
            (14, 19)
        """
        short = self.config.dense_resolution or self.image_size
        scale = short / min(height, width)
        return (max(1, round(height * scale / self.patch_size)), max(1, round(width * scale / self.patch_size)))

    def _pixels(self, images: np.ndarray, grid: tuple[int, int]) -> Any:
        """``(B, 3, h * p, w * p)`` float tensor: resized and normalised like the processor."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        size = (grid[0] * self.patch_size, grid[1] * self.patch_size)
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(self.processor.image_mean, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.processor.image_std, dtype=x.dtype).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.config.device)

    def _patch_embeddings(self, pixels: Any, grid: tuple[int, int]) -> Any:
        """``(B, h, w, D)`` joint-space embeddings of every patch token (un-normalised)."""
        vision = self.model.vision_model
        hidden = vision(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
        if self.is_siglip:  # post-layernorm already applied; MAP head on each token alone
            b, length, width = hidden.shape
            tokens = vision.head(hidden.reshape(b * length, 1, width))
        else:
            hidden = hidden[:, 1:]
            b, length, width = hidden.shape
            tokens = self.model.visual_projection(vision.post_layernorm(hidden.reshape(b * length, width)))
        return tokens.reshape(b, grid[0], grid[1], -1)

    def dense_features(self, images: np.ndarray) -> np.ndarray:
        """MaskCLIP-style dense features at the patch grid, L2-normalised per location.

        Args:
            images: ``(N, H, W, 3) uint8``.

        Returns:
            ``(N, h, w, D) float32`` with ``(h, w) = grid_size(H, W)``; every location unit-norm.

        Raises:
            Sem3RError: malformed images.
        """
        import torch

        images = check_images(images)
        grid = self.grid_size(images.shape[1], images.shape[2])
        step = self.config.batch_size
        out = []
        with torch.no_grad():
            for start in range(0, len(images), step):
                out.append(self._patch_embeddings(self._pixels(images[start:start + step], grid), grid))
        features = torch.nn.functional.normalize(torch.cat(out).float(), dim=-1)
        return features.cpu().numpy().astype(np.float32)


# ------------------------------------------------------------------------------------------ registry
ImageEncoderFactory = Callable[[Any], ImageEncoder]

_REGISTRY = Registry("image encoder")
_REGISTRY.register("clip", CLIPImageEncoder.from_config, CLIPImageEncoderConfig)
_REGISTRY.register("siglip", CLIPImageEncoder.from_config, SiglipImageEncoderConfig)

IMAGE_ENCODERS = _REGISTRY.entries
"""Read-only, live view ``name -> Entry`` of the registered image encoders."""


def register_image_encoder(name: str, factory: ImageEncoderFactory | str, config_cls: type | str,
                           replace: bool = False) -> None:
    """Register an image encoder.

    Args:
        name: the name passed to :func:`make_image_encoder`.
        factory: ``config -> ImageEncoder``, or ``"module:attribute"`` imported on first use.
        config_cls: its config dataclass (or ``"module:attribute"``); ``validate()`` is called when present.
        replace: allow replacing an encoder of the same name.

    Raises:
        Sem3RError: the name is taken (and ``replace`` is False) or empty.

    Example:
        >>> @dataclass
        ... class NoConfig:
        ...     pass
        >>> register_image_encoder("nothing", lambda c: None, NoConfig)
        >>> "nothing" in IMAGE_ENCODERS
        True
        >>> unregister_image_encoder("nothing")
    """
    _REGISTRY.register(name, factory, config_cls, replace)


def unregister_image_encoder(name: str) -> None:
    """Remove a registered image encoder (unknown names raise :class:`Sem3RError`)."""
    _REGISTRY.unregister(name)


def get_image_encoder(name: str) -> Entry:
    """The registered image encoder ``name`` (an :class:`~sem3r.registry.Entry`).

    Raises:
        Sem3RError: unknown name; the message lists the registered encoders.
    """
    return _REGISTRY.get(name)


def make_image_encoder(name_or_path: str | Path, **options: Any) -> ImageEncoder:
    """Build an image encoder by registered name, or a :class:`CLIPImageEncoder` from a model.

    Args:
        name_or_path: a name in :data:`IMAGE_ENCODERS` (``clip``, ``siglip`` or a registered one);
            otherwise an existing local model directory or a hub id (anything containing ``/``),
            loaded as the ``clip`` entry with ``model=name_or_path`` (SigLIP models are detected).
        **options: fields of the entry's config, e.g. ``device="cuda"`` or ``dense_resolution=448``.

    Returns:
        The encoder.

    Raises:
        Sem3RError: an unknown name that is neither a directory nor a hub id, an unknown option, or
            a model that cannot be loaded.

    Example:
        >>> make_image_encoder("clip", model="openai/clip-vit-base-patch16").dim  # doctest: +SKIP
        512
    """
    name_or_path = str(name_or_path)
    if name_or_path in _REGISTRY.entries:
        name = name_or_path
    elif Path(name_or_path).expanduser().is_dir() or "/" in name_or_path:
        name, options = "clip", {**options, "model": name_or_path}
    else:
        raise Sem3RError(
            f"unknown image encoder '{name_or_path}': not one of {', '.join(_REGISTRY.entries)}, "
            "a local model directory or a hub id (owner/name)"
        )
    factory, _ = get_image_encoder(name).load()
    return factory(_REGISTRY.make_config(name, **options))
