"""ROSS3D as an LMM backend: a question about a Scene's posed RGB-D views, answered by the official chat path.

One question runs ROSS3D's official evaluation path (ROSS3D facts, sections 2, 4, 5 and 12):

* frames: ``max_views`` (32 officially) sampled uniformly, ``linspace(0, n - 1, k)`` cast to int (the official
  ``uniform`` strategy; a Scene with fewer views gives all of them, none repeated);
* RGB: resized to height 384 with the depth map's aspect ratio, centre-cropped, SigLIP normalisation
  (:func:`~sem3r.models.ross3d.preprocess.frame_pixel_values`);
* 3D position encoding: every pixel's world point, from the Scene's ``depth``, ``intrinsics`` and
  ``cam_from_world`` (:func:`~sem3r.models.ross3d.position_encoding.world_points_from_depth`; depth 0 lands on the
  camera centre, as officially), or the Scene's ``world_points`` when it has no depth (non-finite points are put
  on the camera centre likewise); the map goes through the frame's resize and crop
  (:func:`~sem3r.models.ross3d.position_encoding.resize_crop_points`); on CUDA the coordinates are rounded to the
  model's dtype first (the official evaluation casts them to float16);
* text: the official ``qwen_1_5`` layout with the question after ``<image>``
  (:func:`~sem3r.models.ross3d.prompt.chat_ids`); greedy decoding until ``<|im_end|>`` or ``max_new_tokens``
  (512 in the official evaluation); the reply is decoded without special tokens and stripped.

Before any model work, one-line :class:`~sem3r.errors.Sem3RError` for: a blank question, a Scene (or views) without
depth and without world points (the 3D position encoding needs them), frame counts that differ between images,
depth / points, intrinsics and poses, and a prompt longer than the model's ``max_position_embeddings``
(text + ``S * tokens_per_frame`` visual + ``max_new_tokens`` reply tokens).

The :class:`~sem3r.reasoning.lmm.LMM` protocol's ``chat(prompt, images)`` has no geometry, so it is refused with a
pointer to :meth:`Ross3DLMM.chat_scene` (``sem3r ask SCENE QUESTION --lmm ross3d:PATH`` uses that).
``make_lmm("ross3d:PATH")`` builds it (PATH a checkpoint folder or a hub id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sem3r.errors import Sem3RError

SPEC_PREFIX = "ross3d:"
"""``make_lmm`` specs starting with this build a :class:`Ross3DLMM` from the rest (folder or hub id)."""

NO_GEOMETRY = "the 3D position encoding needs depth or points: reconstruct the Scene first (sem3r reconstruct)"


@dataclass
class Ross3DLMMConfig:
    """Settings of :class:`Ross3DLMM`.

    Attributes:
        model: ROSS3D checkpoint folder or hub id (``"HaochenWang/llava-video-qwen2-7b-ross3d"``).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: weight dtype name; ``None`` = float16 on CUDA (official), fp32 on CPU.
        max_new_tokens: longest reply in tokens (512 in the official evaluation).
        max_views: frames shown to the model, sampled uniformly (32 officially).
    """

    model: str
    device: str = "auto"
    dtype: str | None = None
    max_new_tokens: int = 512
    max_views: int = 32

    def validate(self) -> None:
        """Raise :class:`Sem3RError` for a value out of range."""
        if self.max_new_tokens < 1:
            raise Sem3RError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.max_views < 1:
            raise Sem3RError(f"max_views must be at least 1, got {self.max_views}")


def uniform_frame_indices(n: int, k: int) -> np.ndarray:
    """The official uniform sampling: ``linspace(0, n - 1, min(k, n))`` cast to int (floor).

    Example:
        >>> uniform_frame_indices(10, 4).tolist(), uniform_frame_indices(3, 32).tolist()
        ([0, 3, 6, 9], [0, 1, 2])
    """
    if n < 1 or k < 1:
        raise Sem3RError(f"cannot sample {k} frames from {n}")
    return np.linspace(0, n - 1, min(k, n)).astype(np.int64)


def check_scene_geometry(scene) -> None:
    """Raise the one-line error when a Scene has neither depth nor world points."""
    if scene.depth is None and scene.world_points is None:
        raise Sem3RError(NO_GEOMETRY)


class Ross3DLMM:
    """ROSS3D answering a question about a Scene's posed views (see the module docstring).

    Args:
        config: which checkpoint and how to run it; the model is loaded here
            (:func:`~sem3r.reasoning.ross3d_loading.load_ross3d`).
    """

    def __init__(self, config: Ross3DLMMConfig) -> None:
        from sem3r.reasoning.ross3d_loading import load_ross3d

        config.validate()
        model, tokenizer = load_ross3d(config.model, config.device, config.dtype)
        self._setup(config, model, tokenizer)

    @classmethod
    def from_components(cls, config: Ross3DLMMConfig, model, tokenizer) -> Ross3DLMM:
        """Wrap an already loaded :class:`~sem3r.models.ross3d.model.Ross3D` and tokenizer (no disk access)."""
        config.validate()
        lmm = cls.__new__(cls)
        lmm._setup(config, model, tokenizer)
        return lmm

    def _setup(self, config: Ross3DLMMConfig, model, tokenizer) -> None:
        self.config, self.model, self.tokenizer = config, model.eval(), tokenizer

    # ------------------------------------------------------------------ prompt
    def prompt_ids(self, question: str) -> list[int]:
        """The official prompt ids for ``question`` (``<image>`` prepended when absent).

        Raises:
            Sem3RError: a blank question.
        """
        from sem3r.models.ross3d.prompt import IMAGE_TOKEN, chat_ids

        if not question.strip():
            raise Sem3RError("the question is empty")
        text = question if IMAGE_TOKEN in question else f"{IMAGE_TOKEN} {question.strip()}"
        cfg = self.model.config

        def encode(s: str) -> list[int]:
            return list(self.tokenizer(s, add_special_tokens=False).input_ids)

        return chat_ids(encode, text, cfg.im_start_id, cfg.im_end_id, image_token_index=cfg.image_token_index)

    def token_counts(self, question: str, num_frames: int) -> dict[str, int]:
        """``{"text", "visual", "reply", "total"}`` tokens of one chat (sizes only, no model work)."""
        ids = self.prompt_ids(question)
        counts = {"text": len(ids) - 1, "visual": int(num_frames) * self.model.config.tokens_per_frame,
                  "reply": int(self.config.max_new_tokens)}
        counts["total"] = sum(counts.values())
        return counts

    # ------------------------------------------------------------------ chat
    def chat(self, prompt: str, images: Sequence[np.ndarray] = ()) -> str:
        """Refused: ROSS3D needs the views' geometry; use :meth:`chat_scene` or :meth:`chat_views`."""
        raise Sem3RError("ROSS3D needs the views' depth or points, not images alone: use chat_scene(question, scene) "
                         "(CLI: sem3r ask SCENE QUESTION --lmm ross3d:PATH)")

    def chat_scene(self, prompt: str, scene, max_views: int | None = None) -> str:
        """Answer ``prompt`` about a :class:`~sem3r.scene.Scene` (images + depth or world points + cameras).

        Args:
            prompt: the question.
            scene: the Scene; needs ``depth`` (with ``intrinsics`` and ``cam_from_world``) or ``world_points``.
            max_views: frames sampled uniformly (default ``config.max_views``, 32).

        Returns:
            The reply text, stripped.
        """
        self.prompt_ids(prompt)  # a blank question first
        check_scene_geometry(scene)
        idx = uniform_frame_indices(scene.num_views, int(max_views or self.config.max_views))
        pick = lambda a: None if a is None else np.asarray(a)[idx]
        return self.chat_views(prompt, scene.images[idx], depth=pick(scene.depth), intrinsics=pick(scene.intrinsics),
                               cam_from_world=pick(scene.cam_from_world),
                               world_points=None if scene.depth is not None else pick(scene.world_points))

    def chat_views(self, prompt: str, images: np.ndarray, depth: np.ndarray | None = None,
                   intrinsics: np.ndarray | None = None, cam_from_world: np.ndarray | None = None,
                   world_points: np.ndarray | None = None) -> str:
        """Answer ``prompt`` about the given frames (all of them, in order).

        Args:
            prompt: the question.
            images: ``(S, H, W, 3)`` uint8.
            depth: ``(S, H, W)`` metres (0 = invalid), with ``intrinsics (S, 3, 3)`` and ``cam_from_world (S, 3|4, 4)``.
            world_points: ``(S, H, W, 3)`` used when ``depth`` is ``None`` (non-finite points: camera centre).

        Raises:
            Sem3RError: see the module docstring.
        """
        import torch

        from sem3r.models.ross3d.position_encoding import (
            resize_crop_points,
            world_points_from_depth,
        )
        from sem3r.models.ross3d.preprocess import frame_pixel_values

        ids = self.prompt_ids(prompt)
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
            raise Sem3RError(f"ROSS3D frames must be uint8 (S, H, W, 3) with S >= 1, got {images.dtype} {images.shape}")
        if depth is None and world_points is None:
            raise Sem3RError(NO_GEOMETRY)
        S = len(images)
        needed = {"depth": depth, "intrinsics": intrinsics, "cam_from_world": cam_from_world} if depth is not None else {
            "world_points": world_points, "cam_from_world": cam_from_world}
        for name, value in needed.items():
            if value is None:
                raise Sem3RError(f"ROSS3D's 3D position encoding needs {name} with the {'depth' if depth is not None else 'points'}")
            if len(value) != S:
                counts = ", ".join(f"{len(v)} {n}" for n, v in needed.items() if v is not None)
                raise Sem3RError(f"mismatched frame counts: {S} images, {counts}")
        counts = self.token_counts(prompt, S)
        limit = self.model.config.max_position_embeddings
        if counts["total"] > limit:
            raise Sem3RError(f"the ROSS3D prompt is too long: {counts['text']} text + {counts['visual']} visual "
                             f"({S} frames) + {counts['reply']} reply tokens = {counts['total']} > max positions {limit}; "
                             "use fewer views (--max-views), a shorter question or lower max_new_tokens")

        size = self.model.config.vision.image_size
        pose = np.tile(np.eye(4), (S, 1, 1))
        pose[:, :3] = np.asarray(cam_from_world, np.float64)[:, :3]
        cam_to_world = np.linalg.inv(pose)
        if depth is not None:
            depth = np.nan_to_num(np.asarray(depth, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
            reference_hw = depth.shape[1:3]
            points = world_points_from_depth(torch.from_numpy(depth), torch.from_numpy(np.asarray(intrinsics, np.float32)),
                                             torch.from_numpy(cam_to_world.astype(np.float32)))
        else:
            pts = np.asarray(world_points, np.float32)
            reference_hw = pts.shape[1:3]
            centre = cam_to_world[:, None, None, :3, 3].astype(np.float32)
            points = torch.from_numpy(np.where(np.isfinite(pts).all(-1, keepdims=True), pts, centre))
        if tuple(reference_hw) != images.shape[1:3]:
            raise Sem3RError(f"the depth / points maps are {reference_hw[0]}x{reference_hw[1]}, the images "
                             f"{images.shape[1]}x{images.shape[2]}")
        pixel_values = frame_pixel_values(images, size, reference_hw)
        points = resize_crop_points(points, size)
        model = self.model
        with torch.inference_mode():
            points = points.to(model.device).to(model.dtype).float()
            reply = model.generate(torch.tensor(ids, device=model.device), pixel_values.to(model.device, model.dtype),
                                   points, self.config.max_new_tokens)
        return self.tokenizer.decode(reply, skip_special_tokens=True).strip()


def make_ross3d_lmm(spec: str, **options: Any) -> Ross3DLMM:
    """Build a :class:`Ross3DLMM` from ``"ross3d:PATH"`` and :class:`Ross3DLMMConfig` fields.

    Example:
        >>> make_ross3d_lmm("ross3d:", device="cpu")
        Traceback (most recent call last):
        ...
        sem3r.errors.Sem3RError: 'ross3d:' names no checkpoint; use ross3d:FOLDER or ross3d:OWNER/NAME
    """
    from sem3r.reasoning.lmm import lmm_config, spec_checkpoint

    return Ross3DLMM(lmm_config(Ross3DLMMConfig, "model", spec_checkpoint(spec, SPEC_PREFIX), spec, options))


__all__ = ["Ross3DLMM", "Ross3DLMMConfig", "check_scene_geometry", "make_ross3d_lmm", "uniform_frame_indices"]
