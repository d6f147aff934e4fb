"""Image preparation for G2VLM's two branches (no model code; numpy / PIL in, tensors out).

* Geometry branch (DINO), :func:`dino_images`: every frame resized (PIL LANCZOS) to the size computed
  from the first one, width ``width`` and height ``round(H * width / W / 14) * 14``, scaled to [0, 1];
  the model normalises with the ImageNet mean / std. No centre crop (portrait frames get heights above
  ``width``).
* Semantic branch (Qwen2-VL ViT), :func:`vit_pixel_values`: the rows the Qwen2-VL image processor makes.
"""

from __future__ import annotations

import numpy as np
import torch

from sem3r.errors import Sem3RError
from sem3r.models.g2vlm.config import VisionConfig

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def dino_size(height: int, width: int, target_width: int = 518, patch: int = 14) -> tuple[int, int]:
    """``(H', W')`` of the geometry branch for a ``height x width`` first frame.

    Example:
        >>> dino_size(480, 640)
        (392, 518)
    """
    return max(patch, round(height * target_width / width / patch) * patch), target_width


def dino_images(images: np.ndarray, target_width: int = 518, patch: int = 14) -> torch.Tensor:
    """Frames for the geometry branch.

    Args:
        images: ``(N, H, W, 3)`` uint8 RGB (one size).
        target_width: output width, a multiple of ``patch`` (official: 518).
        patch: the DINO patch size.

    Returns:
        ``(N, 3, H', W')`` float32 in [0, 1], ``(H', W') = dino_size(H, W, target_width)``.
    """
    from PIL import Image

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] != 3:
        raise Sem3RError(f"G2VLM needs at least one RGB image (N, H, W, 3), got shape {images.shape}")
    if target_width % patch:
        raise Sem3RError(f"the G2VLM image width must be a multiple of {patch}, got {target_width}")
    h, w = dino_size(images.shape[1], images.shape[2], target_width, patch)
    frames = [np.asarray(Image.fromarray(np.asarray(im, np.uint8)).resize((w, h), Image.LANCZOS)) for im in images]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 14 * 14 * 4 * 16384) -> tuple[int, int]:
    """Qwen2-VL's target size: sides rounded to multiples of ``factor``, area kept within the limits.

    Example:
        >>> smart_resize(768, 768)
        (756, 756)
    """
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = np.sqrt(height * width / max_pixels)
        h = max(factor, int(np.floor(height / beta / factor)) * factor)
        w = max(factor, int(np.floor(width / beta / factor)) * factor)
    elif h * w < min_pixels:
        beta = np.sqrt(min_pixels / (height * width))
        h = int(np.ceil(height * beta / factor)) * factor
        w = int(np.ceil(width * beta / factor)) * factor
    return h, w


def vit_pixel_values(images: np.ndarray, size: int, config: VisionConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and grids of the semantic branch for each image (G2VLM's chat preparation).

    Each image is resized to ``size x size`` (bicubic, PIL), then to Qwen2-VL's smart size (multiples
    of ``2 * 14``, bicubic), scaled to [0, 1], normalised with the CLIP mean / std and repeated to
    ``temporal_patch_size`` frames. Rows run over the 2x2 merge windows in row-major order, the four
    patches of a window row-major inside it; a row holds channel, then frame, then the patch's pixels.

    Args:
        images: ``(N, H, W, 3)`` uint8 RGB.
        size: square side before the smart resize (the official chat path uses 768).
        config: patching of the tower.

    Returns:
        ``pixel_values`` ``(sum_i h_i w_i, 3 * T * p * p)`` float32 and ``grid_thw`` ``(N, 3)`` int64.

    Example:
        >>> from sem3r.models.g2vlm.config import VisionConfig
        >>> rows, grid = vit_pixel_values(np.zeros((1, 40, 50, 3), np.uint8), 56, VisionConfig())
        >>> rows.shape, grid.tolist()
        (torch.Size([16, 1176]), [[1, 4, 4]])
    """
    from PIL import Image

    p, m, T = config.patch_size, config.spatial_merge_size, config.temporal_patch_size
    mean, std = np.array(CLIP_MEAN, np.float32), np.array(CLIP_STD, np.float32)
    rows, grids = [], []
    for image in images:
        pil = Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.BICUBIC)
        h, w = smart_resize(size, size, factor=p * m)
        arr = np.asarray(pil.resize((w, h), Image.BICUBIC), np.float32) / 255.0
        arr = ((arr - mean) / std).transpose(2, 0, 1)  # (3, h, w)
        frames = np.repeat(arr[None], T, axis=0)  # (T, 3, h, w)
        gh, gw = h // p, w // p
        x = frames.reshape(1, T, 3, gh // m, m, p, gw // m, m, p)
        x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(gh * gw, 3 * T * p * p)
        rows.append(torch.from_numpy(np.ascontiguousarray(x)))
        grids.append((1, gh, gw))
    return torch.cat(rows), torch.tensor(grids, dtype=torch.int64)
