"""Image preprocessing for the feed-forward geometry model (the reference model's conventions).

Two modes, both giving sides that are multiples of the patch size (14):

* ``crop`` (default): resize to a width of ``target_size`` (518) keeping the aspect ratio, the height
  rounded to a multiple of 14; a height above ``target_size`` is centre-cropped to it.
* ``pad``: resize the longer side to ``target_size``, the other rounded to a multiple of 14, and pad
  to ``target_size x target_size`` with white.

Images with transparency are composited onto white by the image loader. When the processed images
of one call differ in size (mixed aspect ratios in ``crop`` mode) they are padded with white,
centred, to the largest height and width. Every image keeps the affine map from its original pixels
to model pixels, ``u_model = sx * (u + 0.5) - 0.5 + ox`` (likewise ``v``), so results can be related
to the original photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from PIL import Image

from sem3r.errors import Sem3RError

MIN_SIDE = 28
"""Smallest accepted image side in pixels (two patches)."""


@dataclass
class PreprocessConfig:
    """Options of :func:`preprocess_images`.

    Attributes:
        mode: ``"crop"`` or ``"pad"`` (see the module docstring).
        target_size: model resolution; 518 for the official checkpoints.
        patch_size: sides are rounded to multiples of this.
    """

    mode: Literal["crop", "pad"] = "crop"
    target_size: int = 518
    patch_size: int = 14


@dataclass
class PreprocessedImages:
    """Images ready for the model.

    Attributes:
        images: ``(S, H, W, 3) uint8`` model-resolution RGB (white padding included).
        original_sizes: ``(S, 2) int64`` ``(H, W)`` of each input image.
        scale: ``(S, 2) float64`` ``(sx, sy)`` resize factors from original to model pixels.
        offset: ``(S, 2) float64`` ``(ox, oy)`` shift in model pixels (crop < 0, padding > 0).
    """

    images: np.ndarray
    original_sizes: np.ndarray
    scale: np.ndarray
    offset: np.ndarray

    def to_tensor(self):
        """``(S, 3, H, W) float32`` torch tensor in ``[0, 1]``."""
        import torch

        return torch.from_numpy(self.images).permute(0, 3, 1, 2).float().div_(255.0)


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def preprocess_images(
    images: Sequence[np.ndarray], config: PreprocessConfig | None = None, names: Sequence[str] | None = None
) -> PreprocessedImages:
    """Resize, crop or pad images of any sizes to the model's resolution.

    Args:
        images: ``S`` arrays ``(H_i, W_i, 3) uint8`` (greyscale ``(H_i, W_i)`` is replicated to RGB).
        config: preprocessing options.
        names: image names used in error messages.

    Returns:
        :class:`PreprocessedImages` with ``images (S, H, W, 3)``, ``H`` and ``W`` multiples of 14.

    Raises:
        Sem3RError: no images, an image smaller than :data:`MIN_SIDE`, or a wrong array shape.

    Example:
        >>> out = preprocess_images([np.zeros((480, 640, 3), np.uint8)])
        >>> out.images.shape, out.scale[0].round(4).tolist()
        ((1, 392, 518, 3), [0.8094, 0.8167])
    """
    config = config or PreprocessConfig()
    if config.mode not in ("crop", "pad"):
        raise Sem3RError(f"unknown preprocessing mode '{config.mode}' (expected crop or pad)")
    if len(images) == 0:
        raise Sem3RError("no images to reconstruct: pass at least one image")
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    target, patch = config.target_size, config.patch_size
    out, sizes, scales, offsets = [], [], [], []
    for name, img in zip(names, images):
        img = np.asarray(img)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise Sem3RError(f"{name}: expected an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}")
        h, w = img.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise Sem3RError(f"{name} is {w}x{h} pixels; the model needs at least {MIN_SIDE}x{MIN_SIDE}")
        if config.mode == "crop" or w >= h:
            new_w, new_h = target, _round_to(h * target / w, patch)
        else:
            new_w, new_h = _round_to(w * target / h, patch), target
        resized = np.asarray(Image.fromarray(img).resize((new_w, new_h), Image.Resampling.BICUBIC))
        oy = 0
        if config.mode == "crop" and new_h > target:
            oy = (new_h - target) // 2
            resized = resized[oy : oy + target]
        out.append(resized)
        sizes.append((h, w))
        scales.append((new_w / w, new_h / h))
        offsets.append((0.0, -float(oy)))
    height = target if config.mode == "pad" else max(im.shape[0] for im in out)
    width = target if config.mode == "pad" else max(im.shape[1] for im in out)
    batch = np.full((len(out), height, width, 3), 255, np.uint8)
    for i, im in enumerate(out):
        top, left = (height - im.shape[0]) // 2, (width - im.shape[1]) // 2
        batch[i, top : top + im.shape[0], left : left + im.shape[1]] = im
        offsets[i] = (offsets[i][0] + left, offsets[i][1] + top)
    return PreprocessedImages(batch, np.array(sizes, np.int64), np.array(scales), np.array(offsets))
