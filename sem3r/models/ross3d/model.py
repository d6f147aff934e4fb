"""ROSS3D: a video LMM (LLaVA-Video-Qwen2) with 3D-aware visual tokens (ROSS3D paper section 3; facts 1-7).

With :class:`Ross3DConfig` defaults (vocabulary rows from the checkpoint, :func:`config_for_state_dict`) the
module tree matches ``HaochenWang/llava-video-qwen2-7b-ross3d`` key for key (779 keys, 8,080,277,536
parameters); ``training=True`` adds the denoiser ``model.mm_inv_projector``. :meth:`Ross3DConfig.small` is
the CPU-sized variant.

Inference forward for one scene (batch 1, as the official code asserts):

1. frames ``(S, 3, 384, 384)`` in [-1, 1] -> SigLIP (26 layers, no post-layernorm) -> ``(S, 729, 1152)``;
2. ``mm_projector`` -> ``(S, 729, D)`` (kept: the grounding object features read this grid);
3. bilinear pooling 27 -> 14 per side -> ``(S, 196, D)``;
4. (training only) masked frames replaced by ``mask_token``;
5. + the 3D position encoding of the frames' world points (:mod:`.position_encoding`);
6. newline tokens (``grid``: after every row) -> ``(S * 210, D)``;
7. spliced into the prompt embeddings at the placeholder id -200 (:mod:`.prompt`); ``<coord>`` tokens get the
   encoding of a query point added;
8. the Qwen2 decoder (positions 0..L-1, causal) -> final hidden states -> ``lm_head`` logits; greedy decoding
   continues with a KV cache and stops at ``<|im_end|>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.models.ross3d.config import Ross3DConfig
from sem3r.models.ross3d.decoder import KVCache, Qwen2Decoder
from sem3r.models.ross3d.denoiser import Ross3DDenoiser
from sem3r.models.ross3d.grounding import build_ground_mlp, ground_scores, object_features, patch_coverage
from sem3r.models.ross3d.position_encoding import WorldPositionEmbedding
from sem3r.models.ross3d.prompt import split_at_image
from sem3r.models.ross3d.vision import SigLIPTower, build_projector, insert_newlines, spatial_pool

#: Checkpoint prefixes of the training-only modules (denoiser, FLUX VAE); an inference load skips them.
TRAINING_ONLY_PREFIXES = ("model.mm_inv_projector.", "model.mm_pixel_decoder.")


def split_training_only(state: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
    """``state`` -> (inference keys, training-only keys under :data:`TRAINING_ONLY_PREFIXES`)."""
    keep, skip = {}, {}
    for k, v in state.items():
        (skip if k.startswith(TRAINING_ONLY_PREFIXES) else keep)[k] = v
    return keep, skip


@dataclass
class VisualTokens:
    """The visual block of one scene.

    Attributes:
        embeds: ``(N, D)`` the block spliced into the prompt (pooled tokens + 3D encoding, newlines).
        index: ``(S, P * P)`` long: position of every pooled token inside ``embeds`` (newlines excluded).
        patch_features: ``(S, n * n, D)`` projector outputs before pooling (grounding object features).
        frame_mask: ``(S,)`` bool, frames replaced by the mask token (all False at inference).
    """

    embeds: torch.Tensor
    index: torch.Tensor
    patch_features: torch.Tensor
    frame_mask: torch.Tensor


@dataclass
class Ross3DOutput:
    """One forward pass.

    Attributes:
        logits: ``(L', vocab)`` float32 (``L'`` = prompt length with the visual block spliced in).
        hidden: ``(L', D)`` final hidden states (after the last RMSNorm).
        visual: the :class:`VisualTokens` (``None`` without frames).
        visual_index: ``(S, P * P)`` positions of the pooled visual tokens in the sequence (``None`` without frames).
        cache: the filled :class:`KVCache` when one was requested.
    """

    logits: torch.Tensor
    hidden: torch.Tensor
    visual: VisualTokens | None
    visual_index: torch.Tensor | None
    cache: KVCache | None


class Ross3DBackbone(Qwen2Decoder):
    """The official ``model.*`` subtree: Qwen2 (``embed_tokens``, ``layers``, ``norm``), ``vision_tower``,
    ``mm_projector``, ``mask_token``, ``image_newline`` (and ``mm_inv_projector`` when training)."""

    def __init__(self, config: Ross3DConfig, training: bool = False) -> None:
        super().__init__(config)
        D = config.hidden_size
        self.vision_tower = SigLIPTower(config.vision, config.attn_implementation)
        self.mm_projector = build_projector(config.vision.hidden_size, D)
        self.mask_token = nn.Parameter(torch.randn(D) * D ** -0.5)
        self.image_newline = nn.Parameter(torch.randn(D) * D ** -0.5)
        if training:
            self.mm_inv_projector = Ross3DDenoiser(config)


class Ross3D(nn.Module):
    """ROSS3D (see the module docstring).

    Args:
        config: sizes (vocabulary rows from the checkpoint: :func:`config_for_state_dict`).
        training: also build the denoiser ``model.mm_inv_projector`` (training-only; the VAE teacher is a hook,
            :attr:`Ross3DDenoiser.latent_teacher`).

    Example:
        >>> torch.manual_seed(0) and None
        >>> cfg = Ross3DConfig.small()
        >>> model = Ross3D(cfg).eval()
        >>> ids = torch.tensor([292, 5, 6, -200, 10, 7, 293])
        >>> out = model(ids, torch.zeros(2, 3, 70, 70), torch.zeros(2, 70, 70, 3))
        >>> out.logits.shape, out.visual_index[1].tolist()
        (torch.Size([30, 300]), [15, 16, 17, 19, 20, 21, 23, 24, 25])
    """

    def __init__(self, config: Ross3DConfig, training: bool = False) -> None:
        super().__init__()
        self.config = config
        D = config.hidden_size
        self.model = Ross3DBackbone(config, training)
        self.lm_head = nn.Linear(D, config.vocab_size, bias=False)
        if config.ground_head_type == "infonce":
            self.ground_head_zero_target = nn.Parameter(torch.randn(D))
            self.ground_head_obj = build_ground_mlp(D)
            self.ground_head_query = build_ground_mlp(D)
        v = config.vision
        self.world_position_embedding = None
        if config.world_position_embedding_type is not None:
            discrete = "discrete" in config.world_position_embedding_type
            self.world_position_embedding = WorldPositionEmbedding(
                D, v.grid, v.patch_size, config.pooled_grid, config.voxel_size if discrete else None,
                config.min_xyz_range, config.max_xyz_range, config.position_temperature)

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    # ------------------------------------------------------------------ visual tokens
    def encode_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(S, 3, H, W)`` frames in [-1, 1] -> ``(S, n * n, D)`` projector outputs (before pooling)."""
        feats = self.model.vision_tower(pixel_values.to(self.device))
        return self.model.mm_projector(feats.to(self.dtype))

    def visual_tokens(self, pixel_values: torch.Tensor, world_points: torch.Tensor | None = None,
                      frame_mask: torch.Tensor | None = None) -> VisualTokens:
        """The visual block of one scene.

        Args:
            pixel_values: ``(S, 3, H, W)`` frames normalised to [-1, 1].
            world_points: ``(S, H, W, 3)`` world coordinates aligned with the frames (required when the config has a
                world position embedding); see :func:`~sem3r.models.ross3d.position_encoding.world_points_from_depth`.
            frame_mask: ``(S,)`` bool, frames whose pooled tokens are replaced by ``mask_token`` (cross-view
                training); ``None`` = none.

        Returns:
            :class:`VisualTokens`.
        """
        cfg = self.config
        patch = self.encode_frames(pixel_values)
        pooled = spatial_pool(patch, cfg.vision.grid, cfg.mm_spatial_pool_stride)
        S = pooled.shape[0]
        mask = torch.zeros(S, dtype=torch.bool, device=pooled.device) if frame_mask is None else frame_mask.to(pooled.device).bool()
        if mask.shape != (S,):
            raise Sem3RError(f"frame_mask must be ({S},), got {tuple(mask.shape)}")
        if bool(mask.any()):
            pooled = torch.where(mask[:, None, None], self.model.mask_token.to(pooled.dtype), pooled)
        if self.world_position_embedding is not None:
            if world_points is None:
                raise Sem3RError("this ROSS3D model adds a 3D position encoding: pass world_points (S, H, W, 3)")
            if world_points.shape[0] != S:
                raise Sem3RError(f"world_points has {world_points.shape[0]} frames, pixel_values {S}")
            pe = self.world_position_embedding(world_points.to(pooled.device))
            pooled = pooled + pe.to(pooled.dtype)
        embeds, index = insert_newlines(pooled, self.model.image_newline, cfg.mm_newline_position)
        return VisualTokens(embeds, index, patch, mask)

    # ------------------------------------------------------------------ prompt
    def embed_prompt(self, input_ids: torch.Tensor, visual: torch.Tensor | None = None,
                     coord_xyz: torch.Tensor | None = None) -> tuple[torch.Tensor, int | None]:
        """Prompt embeddings with the visual block spliced in at the placeholder.

        Args:
            input_ids: ``(L,)`` ids; at most one ``image_token_index`` (-200).
            visual: ``(N, D)`` visual block (required when the placeholder is present).
            coord_xyz: ``(3,)`` metres: its 3D encoding is added to every ``<coord>`` token (Scan2Cap).

        Returns:
            ``(L - 1 + N, D)`` embeddings and the offset of the visual block (``None`` without placeholder).
        """
        cfg = self.config
        input_ids = torch.as_tensor(input_ids, device=self.device).long().flatten()
        text_ids, at = split_at_image(input_ids, cfg.image_token_index)
        if text_ids.numel() and (int(text_ids.min()) < 0 or int(text_ids.max()) >= cfg.embed_vocab_size):
            raise Sem3RError(f"token ids must lie in [0, {cfg.embed_vocab_size}) besides the image placeholder")
        text = self.model.embed_tokens(text_ids)
        if coord_xyz is not None and cfg.coord_token_ids and self.world_position_embedding is not None:
            is_coord = text_ids == cfg.coord_token_ids[0]
            if bool(is_coord.any()):
                pe = self.world_position_embedding.encode_xyz(torch.as_tensor(coord_xyz, device=text.device).reshape(3))
                text = text + is_coord[:, None] * pe.to(text.dtype)
        if at is None:
            return text, None
        if visual is None:
            raise Sem3RError("the prompt holds an image placeholder but no frames were given")
        at = int(at)
        return torch.cat((text[:at], visual.to(text.dtype), text[at:])), at

    # ------------------------------------------------------------------ language model
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` -> ``(..., vocab)`` float32 (the official upcast)."""
        return self.lm_head(hidden).float()

    def forward(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                world_points: torch.Tensor | None = None, frame_mask: torch.Tensor | None = None,
                coord_xyz: torch.Tensor | None = None, use_cache: bool = False) -> Ross3DOutput:
        """One pass over a prompt (and its scene).

        Args:
            input_ids: ``(L,)`` prompt ids with the -200 placeholder (see :func:`~sem3r.models.ross3d.prompt.chat_ids`).
            pixel_values: ``(S, 3, H, W)`` frames in [-1, 1], or ``None``.
            world_points: ``(S, H, W, 3)``, see :meth:`visual_tokens`.
            frame_mask: ``(S,)`` training-time masked frames.
            coord_xyz: ``(3,)`` query point for ``<coord>`` tokens.
            use_cache: return the filled KV cache (for :meth:`decode_step`).

        Returns:
            :class:`Ross3DOutput`.
        """
        visual = None
        if pixel_values is not None:
            visual = self.visual_tokens(pixel_values, world_points, frame_mask)
        embeds, at = self.embed_prompt(input_ids, visual.embeds if visual is not None else None, coord_xyz)
        cache = KVCache() if use_cache else None
        hidden = self.model.decode(embeds[None], cache)[0]
        index = visual.index + at if (visual is not None and at is not None) else None
        return Ross3DOutput(self.logits(hidden), hidden, visual, index, cache)

    def decode_step(self, token: int, cache: KVCache) -> torch.Tensor:
        """Embed ``token`` at the next position and extend ``cache``; returns its ``(vocab,)`` logits."""
        embeds = self.model.embed_tokens(torch.tensor([[int(token)]], device=self.device))
        return self.logits(self.model.decode(embeds, cache)[0, -1])

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                 world_points: torch.Tensor | None = None, max_new_tokens: int = 512,
                 stop_ids: Sequence[int] | None = None, coord_xyz: torch.Tensor | None = None) -> list[int]:
        """Greedy decoding (the official temperature-0, one-beam setting) with a KV cache.

        Args:
            input_ids, pixel_values, world_points, coord_xyz: as in :meth:`forward`.
            max_new_tokens: 512 in the official evaluation.
            stop_ids: ids that end the answer (default: ``<|im_end|>``); the stop id is not returned.

        Returns:
            The generated ids.
        """
        stop = {self.config.im_end_id} if stop_ids is None else {int(i) for i in stop_ids}
        out = self.forward(input_ids, pixel_values, world_points, coord_xyz=coord_xyz, use_cache=True)
        token, ids = int(out.logits[-1].argmax()), []
        while token not in stop and len(ids) < max_new_tokens:
            ids.append(token)
            if len(ids) == max_new_tokens:
                break
            token = int(self.decode_step(token, out.cache).argmax())
        return ids

    # ------------------------------------------------------------------ grounding
    def object_features(self, visual: VisualTokens, world_points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Proposal features ``(K, D)`` (``patch14-pe``): mean projector output of the covered patches + the 3D
        encoding of the box centre.

        Args:
            visual: from :meth:`visual_tokens` (its ``patch_features``).
            world_points: ``(S, H, W, 3)`` aligned with the frames.
            boxes: ``(K, 6)`` centre and size, same world frame.
        """
        v = self.config.vision
        boxes = torch.as_tensor(boxes, device=world_points.device).to(world_points.dtype)
        cover = patch_coverage(world_points, boxes, v.grid, v.patch_size)
        feats = object_features(visual.patch_features, cover.to(visual.patch_features.device))
        if self.world_position_embedding is not None:
            feats = feats + self.world_position_embedding.encode_xyz(boxes[:, :3].to(feats.device)).to(feats.dtype)
        return feats

    def ground_scores(self, query_hidden: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
        """``(K + 1,)`` cosine scores of ``(K, D)`` object features and the zero target (last) for the ``(D,)``
        hidden state at ``<ground>``."""
        if self.config.ground_head_type is None:
            raise Sem3RError("this ROSS3D model has no grounding head (ground_head_type None)")
        return ground_scores(query_hidden, objects, self.ground_head_zero_target, self.ground_head_obj,
                             self.ground_head_query)

    @torch.no_grad()
    def ground(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, world_points: torch.Tensor,
               boxes: torch.Tensor) -> torch.Tensor:
        """The official grounding pass (ScanRefer / Multi3DRefer): the prompt *with* its answer ``<ground>``
        (``chat_ids(..., answer="<ground>")``) in one forward; returns ``(K + 1,)`` scores (last: no target)."""
        if not self.config.ground_token_ids:
            raise Sem3RError("the config names no ground_token_ids")
        out = self.forward(input_ids, pixel_values, world_points)
        ids = torch.as_tensor(input_ids, device=self.device).flatten()
        text_ids, at = split_at_image(ids, self.config.image_token_index)
        lo, hi = self.config.ground_token_ids[0], self.config.ground_token_ids[-1]
        where = torch.nonzero((text_ids >= lo) & (text_ids <= hi)).flatten()
        if len(where) != 1:
            raise Sem3RError(f"the grounding prompt must hold exactly one <ground> token, got {len(where)}")
        pos = int(where[0]) + (out.visual.embeds.shape[0] if at is not None and where[0] >= at else 0)
        objects = self.object_features(out.visual, world_points.to(self.device), boxes)
        return self.ground_scores(out.hidden[pos], objects)
