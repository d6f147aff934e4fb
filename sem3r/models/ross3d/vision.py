"""ROSS3D's visual path up to the LLM input (facts section 3): SigLIP, projector, pooling, newline tokens.

* :class:`SigLIPTower` (checkpoint prefix ``model.vision_tower``): transformers' ``SiglipVisionModel`` (its keys fit)
  held as ``vision_tower.vision_model``, built with ``num_hidden_layers - 1`` layers (the official tower deletes
  its last layer) and without the attention-pooling head. The feature is the output of the last built layer,
  *without* ``post_layernorm`` (its weights exist in the checkpoint but are not applied).
* :func:`build_projector`: ``mlp2x_gelu``, ``Linear(1152, D)``, exact GELU, ``Linear(D, D)`` (keys ``0``, ``2``).
* :func:`spatial_pool`: the ``n x n`` patch grid bilinearly resized (``align_corners=False``, no antialias) to
  ``ceil(n / stride)`` per side.
* :func:`insert_newlines`: frame-major, row-major tokens with the learned newline vector placed as
  ``mm_newline_position`` says (``grid``: after every row of every frame).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.errors import Sem3RError, require
from sem3r.models.ross3d.config import SigLIPConfig


class _VisionModelHolder(nn.Module):
    """Holds transformers' ``SiglipVisionModel`` as ``vision_model`` (the official key path)."""

    def __init__(self, vision_model: nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model


class SigLIPTower(nn.Module):
    """SigLIP with its last encoder layer removed and no pooling head.

    Args:
        config: the *pretrained* tower's sizes (``num_hidden_layers`` = 27 builds 26 layers).
        attn_implementation: ``sdpa`` or ``eager``.

    Input ``(S, 3, image_size, image_size)`` normalised to [-1, 1] (mean 0.5, std 0.5); output
    ``(S, grid * grid, hidden_size)``.
    """

    def __init__(self, config: SigLIPConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        tf = require("transformers", "vlm", "ROSS3D's SigLIP tower")
        doc = asdict(config)
        doc["num_hidden_layers"] = config.num_hidden_layers - 1
        hf_config = tf.SiglipVisionConfig(**doc, vision_use_head=False)
        hf_config._attn_implementation = attn_implementation
        self.config = config
        self.vision_tower = _VisionModelHolder(tf.SiglipVisionModel(hf_config))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(S, 3, H, W)`` -> ``(S, n * n, C)`` output of the last kept layer (no post-layernorm)."""
        model = self.vision_tower.vision_model
        size = self.config.image_size
        if pixel_values.ndim != 4 or pixel_values.shape[1:] != (3, size, size):
            raise Sem3RError(f"ROSS3D frames must be (S, 3, {size}, {size}), got {tuple(pixel_values.shape)}")
        emb = model.embeddings
        x = emb.patch_embedding(pixel_values.to(emb.patch_embedding.weight.dtype))
        x = x.flatten(2).transpose(1, 2) + emb.position_embedding.weight[None]
        return model.encoder(inputs_embeds=x).last_hidden_state


def build_projector(vision_width: int, width: int) -> nn.Sequential:
    """``mlp2x_gelu``: ``(.., vision_width) -> (.., width)``."""
    return nn.Sequential(nn.Linear(vision_width, width), nn.GELU(), nn.Linear(width, width))


def spatial_pool(features: torch.Tensor, grid: int, stride: int = 2) -> torch.Tensor:
    """Bilinear 2D pooling of per-frame patch features.

    Args:
        features: ``(S, grid * grid, D)`` row-major.
        grid: patches per side (27).
        stride: 2 -> ``ceil(grid / 2)`` per side.

    Returns:
        ``(S, P * P, D)``, ``P = ceil(grid / stride)`` (14).
    """
    S, N, D = features.shape
    if N != grid * grid:
        raise Sem3RError(f"expected {grid * grid} patch features per frame, got {N}")
    side = math.ceil(grid / stride)
    x = features.view(S, grid, grid, D).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(S, side * side, D)


def insert_newlines(tokens: torch.Tensor, newline: torch.Tensor, position: str = "grid") -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten the frames into one sequence and place the newline vector.

    Args:
        tokens: ``(S, P * P, D)`` pooled tokens, row-major per frame.
        newline: ``(D,)`` the learned ``image_newline``.
        position: ``grid`` (after every row of P tokens), ``frame`` (after every frame), ``one_token`` (once at
            the end), ``no_token``.

    Returns:
        ``(N, D)`` the sequence and ``(S, P * P)`` long: where each input token landed in it.

    Example:
        >>> seq, index = insert_newlines(torch.zeros(2, 4, 3), torch.ones(3))
        >>> seq.shape[0], index[1].tolist(), seq[2].tolist()
        (12, [6, 7, 9, 10], [1.0, 1.0, 1.0])
    """
    S, N, D = tokens.shape
    p = math.isqrt(N)
    newline = newline.to(tokens.dtype)
    ar = torch.arange(S * N, device=tokens.device).view(S, N)
    if position == "grid":
        if p * p != N:
            raise Sem3RError(f"grid newlines need square frames, got {N} tokens")
        rows = tokens.view(S * p, p, D)
        seq = torch.cat((rows, newline.expand(S * p, 1, D)), dim=1).reshape(S * p * (p + 1), D)
        return seq, ar + ar // p
    if position == "frame":
        seq = torch.cat((tokens, newline.expand(S, 1, D)), dim=1).reshape(S * (N + 1), D)
        return seq, ar + ar // N
    if position == "one_token":
        return torch.cat((tokens.reshape(S * N, D), newline[None]), dim=0), ar
    if position == "no_token":
        return tokens.reshape(S * N, D), ar
    raise Sem3RError(f"unknown mm_newline_position {position!r}")
