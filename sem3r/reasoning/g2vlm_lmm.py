"""G2VLM as an LMM backend: ``chat(prompt, images) -> str`` through the model's own chat path.

One question about a scene's views runs G2VLM's official chat (G2VLM facts, sections 2-4 and 11):

* geometry branch: all views resized to the width ``width`` (height scaled from the first view and
  rounded to a multiple of 14; :func:`~sem3r.models.g2vlm.preprocess.dino_images`) as one DINO segment;
* semantic branch: each view resized to ``vit_size x vit_size`` then to Qwen2-VL's grid
  (:func:`~sem3r.models.g2vlm.preprocess.vit_pixel_values`), one ViT segment per view;
* text: the system prompt, then the images, then ``QUESTION<|im_end|>\\n<|im_start|>assistant``
  (:func:`~sem3r.reasoning.g2vlm_chat.chat_ids`); greedy decoding from the start token until
  ``<|im_end|>`` or ``max_new_tokens``; the reply is decoded without special tokens and stripped.

Before any model work the prompt is checked: a blank question, no image (the chat of a model with
a geometry expert needs at least one view), or more tokens than the context allows (system + image +
question tokens + ``max_new_tokens`` > ``max_context``, by default the text config's
``max_position_embeddings``, 32768) are one-line :class:`~sem3r.errors.Sem3RError` naming the counts.

``make_lmm("g2vlm:PATH")`` builds it (PATH a checkpoint folder or a hub id); ``sem3r ask SCENE
QUESTION --lmm g2vlm:PATH`` asks it about the scene's views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sem3r.errors import Sem3RError

SPEC_PREFIX = "g2vlm:"
"""``make_lmm`` specs starting with this build a :class:`G2VLMLMM` from the rest (folder or hub id)."""

DEFAULT_MAX_CONTEXT = 32768
"""Context length when ``text_config.json`` names no ``max_position_embeddings`` (Qwen2-VL-2B's value)."""


@dataclass
class G2VLMLMMConfig:
    """Settings of :class:`G2VLMLMM`.

    Attributes:
        model: G2VLM checkpoint folder or hub id (e.g. ``"InternRobotics/G2VLM-2B-MoT"``).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: weight dtype name; ``None`` = bf16 on CUDA, fp32 on CPU.
        max_new_tokens: longest reply, in tokens (greedy decoding).
        width: geometry-branch image width, a multiple of 14; ``None`` = the model config's
            ``image_width`` (518 for the official model).
        vit_size: semantic-branch square side before Qwen2-VL's resize; ``None`` = the model config's
            ``vit_image_size`` (768 for the official model).
        max_context: most tokens one chat may hold (prompt + reply); ``None`` = the checkpoint's
            ``max_position_embeddings`` (32768 when it names none).
        dino_windows: ``None`` (the checkpoint's), ``"official"`` or ``"per_image"``.
    """

    model: str
    device: str = "auto"
    dtype: str | None = None
    max_new_tokens: int = 64
    width: int | None = None
    vit_size: int | None = None
    max_context: int | None = None
    dino_windows: str | None = None

    def validate(self) -> None:
        """Raise :class:`Sem3RError` for a value out of range."""
        if self.max_new_tokens < 1:
            raise Sem3RError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.width is not None and (self.width < 14 or self.width % 14):
            raise Sem3RError(f"G2VLM width must be a positive multiple of 14, got {self.width}")
        if self.vit_size is not None and self.vit_size < 28:
            raise Sem3RError(f"G2VLM vit_size must be at least 28, got {self.vit_size}")
        if self.max_context is not None and self.max_context < 1:
            raise Sem3RError(f"max_context must be at least 1, got {self.max_context}")


class G2VLMLMM:
    """G2VLM answering a question about a few views (see the module docstring).

    Args:
        config: which checkpoint and how to run it; the model is loaded here
            (:func:`~sem3r.reconstruct.g2vlm.load_g2vlm`).

    Raises:
        Sem3RError: a bad setting, a checkpoint that cannot be loaded, or one without a tokenizer.
    """

    def __init__(self, config: G2VLMLMMConfig) -> None:
        from sem3r.reconstruct.g2vlm import load_g2vlm, resolve_g2vlm_folder

        config.validate()
        folder = resolve_g2vlm_folder(config.model)
        model, tokenizer = load_g2vlm(folder, config.device, config.dtype, config.dino_windows)
        self._setup(config, model, tokenizer, model.config.text.max_position_embeddings)

    @classmethod
    def from_components(cls, config: G2VLMLMMConfig, model, tokenizer, max_context: int = DEFAULT_MAX_CONTEXT) -> G2VLMLMM:
        """Wrap an already loaded model and tokenizer (no disk access).

        Args:
            config: settings; ``config.model`` is only used in messages.
            model: a :class:`~sem3r.models.g2vlm.G2VLM`.
            tokenizer: its tokenizer.
            max_context: the context length used when ``config.max_context`` is ``None``.
        """
        config.validate()
        lmm = cls.__new__(cls)
        lmm._setup(config, model, tokenizer, max_context)
        return lmm

    def _setup(self, config: G2VLMLMMConfig, model, tokenizer, max_context: int) -> None:
        if tokenizer is None:
            raise Sem3RError(f"the G2VLM checkpoint '{config.model}' has no tokenizer files; its chat needs them")
        self.config, self.model, self.tokenizer = config, model.eval(), tokenizer
        self.max_context = int(config.max_context or max_context)
        mc = model.config
        self.width = int(config.width or getattr(mc, "image_width", 518))
        self.vit_size = int(config.vit_size or getattr(mc, "vit_image_size", 768))

    @property
    def needs_images(self) -> bool:
        """Whether a chat needs at least one image (every model with a geometry expert does)."""
        return bool(self.model.config.geometry_expert)

    def token_counts(self, prompt: str, images: Sequence[np.ndarray] = ()) -> dict[str, int]:
        """The tokens a chat would hold, computed from the sizes only (no model work).

        Args:
            prompt: the question.
            images: each ``(H, W, 3) uint8``.

        Returns:
            ``{"system", "images", "question", "reply", "total"}``; ``reply`` is ``max_new_tokens``.

        Raises:
            Sem3RError: a blank question.
        """
        from sem3r.models.g2vlm.preprocess import dino_size, smart_resize
        from sem3r.reasoning.g2vlm_chat import chat_ids

        ids = chat_ids(self.tokenizer, prompt)
        mc = self.model.config
        n_images = 0
        if len(images):
            if mc.geometry_expert:
                p = mc.dino.patch_size
                h, w = dino_size(images[0].shape[0], images[0].shape[1], self.width, p)
                n_images += len(images) * ((h // p) * (w // p) + 2)
            unit = mc.vit.patch_size * mc.vit.spatial_merge_size
            gh, gw = smart_resize(self.vit_size, self.vit_size, factor=unit)
            n_images += len(images) * ((gh // unit) * (gw // unit) + 2)
        counts = {"system": len(ids.system), "images": n_images, "question": len(ids.user),
                  "reply": int(self.config.max_new_tokens)}
        counts["total"] = sum(counts.values())
        return counts

    def chat(self, prompt: str, images: Sequence[np.ndarray] = ()) -> str:
        """Answer ``prompt`` about ``images`` with greedy decoding.

        Args:
            prompt: the question, plain text.
            images: the scene's views, each ``(H, W, 3) uint8`` (sizes may differ; all are resized to
                the first view's geometry-branch size).

        Returns:
            The reply text (special tokens removed), stripped.

        Raises:
            Sem3RError: a blank question, no image for a model that needs one, a bad image, or a
                prompt longer than ``max_context`` tokens (names the counts).
        """
        import torch

        from sem3r.models.g2vlm.preprocess import (
            dino_images,
            dino_size,
            vit_pixel_values,
        )
        from sem3r.reasoning.g2vlm_chat import chat_ids
        from sem3r.reasoning.lmm import _check_images
        from sem3r.reconstruct.g2vlm import g2vlm_inference

        arrays = _check_images(images)
        counts = self.token_counts(prompt, arrays)  # also rejects a blank question
        if not arrays and self.needs_images:
            raise Sem3RError("G2VLM's chat needs at least one image of the scene, got none")
        if counts["total"] > self.max_context:
            raise Sem3RError(
                f"the G2VLM prompt is too long: {counts['system']} system + {counts['images']} image + "
                f"{counts['question']} question + {counts['reply']} reply tokens = {counts['total']} > max_context "
                f"{self.max_context}; shorten the question, use fewer views or lower max_new_tokens")
        ids = chat_ids(self.tokenizer, prompt)
        mc = self.model.config
        device = self.model.language_model.lm_head.weight.device
        geometry = pixel_values = grid_thw = None
        if arrays:
            if mc.geometry_expert:
                p = mc.dino.patch_size
                h, w = dino_size(arrays[0].shape[0], arrays[0].shape[1], self.width, p)
                geometry = dino_images(_same_size(arrays, (h, w)), self.width, p).to(device)
            pixel_values, grid_thw = vit_pixel_values(arrays, self.vit_size, mc.vit)
        with g2vlm_inference(self.model):
            _, cache = self.model.prefill(torch.tensor(ids.system, device=device), torch.tensor(ids.user, device=device),
                                          geometry, pixel_values, grid_thw)
            reply = self.model.generate(cache, ids.start, self.config.max_new_tokens)
        return self.tokenizer.decode(reply, skip_special_tokens=True).strip()


def _same_size(images: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """``(N, h, w, 3)``: every image resized (PIL LANCZOS) straight to ``size`` when the sizes differ,
    as the official path resizes each view to the size computed from the first."""
    if all(im.shape == images[0].shape for im in images):
        return np.stack(images)
    from PIL import Image

    h, w = size
    return np.stack([np.asarray(Image.fromarray(im).resize((w, h), Image.LANCZOS)) for im in images])


def make_g2vlm_lmm(spec: str, **options: Any) -> G2VLMLMM:
    """Build a :class:`G2VLMLMM` from ``"g2vlm:PATH"`` and :class:`G2VLMLMMConfig` fields.

    Raises:
        Sem3RError: an empty PATH or an unknown option (the message lists the known ones).

    Example:
        >>> make_g2vlm_lmm("g2vlm:", device="cpu")
        Traceback (most recent call last):
        ...
        sem3r.errors.Sem3RError: 'g2vlm:' names no checkpoint; use g2vlm:FOLDER or g2vlm:OWNER/NAME
    """
    from sem3r.reasoning.lmm import lmm_config, spec_checkpoint

    return G2VLMLMM(lmm_config(G2VLMLMMConfig, "model", spec_checkpoint(spec, SPEC_PREFIX), spec, options))


__all__ = ["G2VLMLMM", "G2VLMLMMConfig", "make_g2vlm_lmm"]
