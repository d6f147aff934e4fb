"""ROSS3D's frame preparation (facts section 2; numpy / PIL in, tensors out, no file access).

The official video processor resizes every RGB frame so that its height is ``size`` (384) and its width is
``int(W_ref * size / H_ref)``, where ``(H_ref, W_ref)`` is the *depth map's* size (480 x 640 for ScanNet, so 512;
the RGB frames' own aspect ratio is not used), with PIL's default filter (bicubic), centre-crops ``size x size``
and applies the SigLIP processor: rescale by 1/255, normalise with mean 0.5 / std 0.5 (values in [-1, 1]). The
world-point map of the same frame goes through the same geometry with nearest-neighbour resampling
(:func:`~sem3r.models.ross3d.position_encoding.resize_crop_points`), so both stay aligned.
"""

from __future__ import annotations

import numpy as np
import torch

from sem3r.errors import Sem3RError


def frame_pixel_values(frames: np.ndarray, size: int = 384, reference_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """SigLIP inputs of a video.

    Args:
        frames: ``(S, H, W, 3)`` uint8 RGB.
        size: output side (384).
        reference_hw: ``(H_ref, W_ref)`` whose aspect ratio sets the resize width (the depth map's size in the
            official pipeline); ``None`` uses the frames' own size.

    Returns:
        ``(S, 3, size, size)`` float32 in [-1, 1].

    Example:
        >>> x = frame_pixel_values(np.zeros((2, 48, 64, 3), np.uint8), 24)
        >>> tuple(x.shape), float(x.min())
        ((2, 3, 24, 24), -1.0)
    """
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise Sem3RError(f"ROSS3D frames must be uint8 (S, H, W, 3) with S >= 1, got {frames.dtype} {frames.shape}")
    h_ref, w_ref = reference_hw if reference_hw is not None else frames.shape[1:3]
    new_w = int(w_ref * (size / h_ref))
    if new_w < size:
        raise Sem3RError(f"frames narrower than tall ({h_ref}x{w_ref}) cannot be centre-cropped to {size}x{size}")
    left = (new_w - size) // 2
    out = []
    for frame in frames:
        im = Image.fromarray(frame).resize((new_w, size), Image.BICUBIC).crop((left, 0, left + size, size))
        x = (np.asarray(im).astype(np.float64) * (1 / 255)).astype(np.float32)
        out.append((x - np.float32(0.5)) / np.float32(0.5))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()
