"""G2VLM's semantic encoder: the Qwen2-VL vision tower (transformers' module; its keys fit) and its input rows.

The tower embeds each row of ``3 * temporal_patch * patch * patch`` values (a Conv3d without bias),
runs full-attention blocks with a 2D rotary embedding per image and merges every 2x2 window of patch
vectors into one language-model token (LayerNorm, concatenate 4, Linear-GELU-Linear).
:func:`sem3r.models.g2vlm.preprocess.vit_pixel_values` builds its input rows.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from sem3r.errors import require
from sem3r.models.g2vlm.config import VisionConfig


def build_vision_tower(config: VisionConfig) -> nn.Module:
    """transformers' ``Qwen2VisionTransformerPretrainedModel`` for ``config`` (checkpoint prefix ``vit_model``)."""
    modeling = require("transformers.models.qwen2_vl.modeling_qwen2_vl", "vlm", "G2VLM's vision tower")
    configuration = require("transformers.models.qwen2_vl.configuration_qwen2_vl", "vlm", "G2VLM's vision tower")
    vit_config = configuration.Qwen2VLVisionConfig(**asdict(config))
    vit_config._attn_implementation = "sdpa"
    return modeling.Qwen2VisionTransformerPretrainedModel._from_config(vit_config)


def run_vision_tower(tower: nn.Module, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
    """Merged tokens of all images: ``pixel_values`` ``(P, 1176)``, ``grid_thw`` ``(I, 3)`` -> ``(P / 4, D)``."""
    out = tower(pixel_values.to(next(tower.parameters()).dtype), grid_thw=grid_thw)
    return out.pooler_output if hasattr(out, "pooler_output") else out
