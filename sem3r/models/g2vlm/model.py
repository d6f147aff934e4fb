"""G2VLM: a geometry-grounded VLM with a geometric and a semantic perception expert (G2VLM section 3).

With the configs of the official checkpoint (:meth:`G2VLMConfig.from_folder` on its folder) the module
tree matches ``G2VLM-2B-MoT`` key for key; :meth:`G2VLMConfig.small` is the CPU-sized variant.

Two passes share the language model:

* **Reconstruction** (:meth:`G2VLM.reconstruct`): text ``<|im_start|> Reconstruct the 3D scene.``, then
  one DINO segment with all S frames (global attention across frames); the geometry expert's final
  hidden states of the DINO tokens feed the point, camera and global-point decoders. Outputs (world
  frame = camera-to-world of the model, up to scale): ``local_points (S, H, W, 3)`` camera frame,
  ``camera_poses (S, 4, 4)`` camera-to-world, ``points (S, H, W, 3)`` = R local + t, and
  ``global_points (S, H, W, 3)`` from the global head.
* **Understanding** (:meth:`G2VLM.prefill`, :meth:`G2VLM.generate`): system text, the DINO segment, one
  ViT segment per image, the user text; then greedy decoding token by token with a KV cache.

Inputs are token ids (the tokenizer lives outside the model) and prepared images
(:mod:`sem3r.models.g2vlm.preprocess`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.models.g2vlm.config import G2VLMConfig
from sem3r.models.g2vlm.dino import DinoEncoder
from sem3r.models.g2vlm.heads import (
    CameraHead,
    Pi3Decoder,
    PointHead,
    local_points_activation,
)
from sem3r.models.g2vlm.mot import KVCache, MoTLanguageModel
from sem3r.models.g2vlm.sequence import PackedSequence, pad_batch
from sem3r.models.g2vlm.vit import build_vision_tower, run_vision_tower
from sem3r.models.vggt.rope import patch_positions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class GeometryTokens:
    """Where a DINO segment's image tokens sit: ``index (F, h*w)`` into the sequence, grid ``(h, w)``."""

    index: torch.Tensor
    grid: tuple[int, int]


class G2VLM(nn.Module):
    """The two-expert model (see the module docstring).

    Args:
        config: sizes; ``config.geometry_expert=False`` builds the semantic-only twin (no DINO, no
            geometry copy, no geometry heads).

    Example:
        >>> torch.manual_seed(0) and None
        >>> model = G2VLM(G2VLMConfig.small()).eval()
        >>> out = model.reconstruct(torch.rand(2, 3, 28, 42), torch.tensor([990, 5, 6]))
        >>> out["points"].shape, out["camera_poses"].shape
        (torch.Size([2, 28, 42, 3]), torch.Size([2, 4, 4]))
    """

    def __init__(self, config: G2VLMConfig) -> None:
        super().__init__()
        self.config = config
        D = config.text.hidden_size
        self.language_model = MoTLanguageModel(config.text, config.geometry_expert)
        self.vit_model = build_vision_tower(config.vit)
        if config.geometry_expert:
            dec = {"depth": config.decoder_depth, "num_heads": config.decoder_heads,
                   "rope_frequency": config.rope2d_frequency}
            self.dino_model = DinoEncoder(config.dino)
            self.dino2llm = nn.Linear(config.dino.hidden_size, D)
            self.point_decoder = Pi3Decoder(D, config.point_features, **dec)
            self.point_head = PointHead(config.point_features, config.head_patch_size)
            self.camera_decoder = Pi3Decoder(D, config.camera_features, **dec)
            self.camera_head = CameraHead(config.camera_features, config.camera_head_blocks)
            self.global_points_decoder = Pi3Decoder(D, config.point_features, cross_attention=True, **dec)
            self.global_point_head = PointHead(config.point_features, config.head_patch_size)
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ inputs
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """``(n,)`` token ids -> ``(n, D)`` embeddings."""
        return self.language_model.model.embed_tokens(ids.to(self.image_mean.device))

    def _brackets(self) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.config.text
        ids = torch.tensor([t.vision_start_token_id, t.vision_end_token_id], device=self.image_mean.device)
        start, end = self.embed(ids)
        return start, end

    def dino_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``(S, 3, H, W)`` in [0, 1] -> ``(S, h*w, D)`` DINO tokens projected by ``dino2llm``."""
        if not self.config.geometry_expert:
            raise Sem3RError("this G2VLM has no geometry expert (geometry_expert=False)")
        p = self.config.dino.patch_size
        if images.ndim != 4 or images.shape[0] < 1 or images.shape[-1] % p or images.shape[-2] % p:
            raise Sem3RError(f"G2VLM needs (S, 3, H, W) images with H, W multiples of {p}, got {tuple(images.shape)}")
        x = (images.to(self.image_mean) - self.image_mean) / self.image_std
        return self.dino2llm(self.dino_model(x, self.config.dino_windows))

    def add_geometry(self, seq: PackedSequence, images: torch.Tensor) -> GeometryTokens:
        """Append the DINO segment of ``images`` ``(S, 3, H, W)`` to ``seq``."""
        tokens = self.dino_tokens(images)
        p = self.config.dino.patch_size
        grid = (images.shape[-2] // p, images.shape[-1] // p)
        start, end = self._brackets()
        _, index = seq.add_images(start, tokens, end, grid, geometry=True)
        return GeometryTokens(index, grid)

    def add_vit_images(self, seq: PackedSequence, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> None:
        """Append one ViT segment per image (``pixel_values`` / ``grid_thw`` from ``vit_pixel_values``)."""
        merged = run_vision_tower(self.vit_model, pixel_values.to(self.image_mean.device), grid_thw.to(self.image_mean.device))
        m = self.config.vit.spatial_merge_size
        start, end = self._brackets()
        offset = 0
        for t, h, w in grid_thw.tolist():
            n = t * (h // m) * (w // m)
            seq.add_images(start, merged[offset:offset + n][None], end, (h // m, w // m), geometry=False)
            offset += n

    # ------------------------------------------------------------------ running the language model
    def run(self, sequences: list[PackedSequence], cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the language model once over padded samples (a prefill when ``cache`` is given, B = 1).

        Returns:
            ``(B, L, D)`` final hidden states and ``(B, L)`` valid-token flags.
        """
        batch = pad_batch(sequences)
        hidden = self.language_model(batch["embeds"], batch["positions"], batch["geo"], batch["mask"], cache)
        if cache is not None:
            cache.next_position = sequences[0].next_position
        return hidden, batch["valid"]

    # ------------------------------------------------------------------ geometry
    def decode_geometry(self, hidden: torch.Tensor, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
        """The three decoders and heads on the geometry expert's output.

        Args:
            hidden: ``(B, S, h*w, D)`` final hidden states of the DINO tokens.
            grid: ``(h, w)`` patch grid.

        Returns:
            ``local_points``, ``points``, ``global_points`` ``(B, S, H, W, 3)`` and ``camera_poses``
            ``(B, S, 4, 4)`` camera-to-world; ``H = 14 h``, ``W = 14 w``.
        """
        B, S, N, D = hidden.shape
        h, w = grid
        x = hidden.reshape(B * S, N, D)
        pos = patch_positions(B * S, h, w, device=x.device)
        context = hidden[:, :1].expand(B, S, N, D).reshape(B * S, N, D)
        point_tokens = self.point_decoder(x, pos)
        camera_tokens = self.camera_decoder(x, pos)
        global_tokens = self.global_points_decoder(x, pos, context)
        with torch.autocast(x.device.type, enabled=False):
            local = local_points_activation(self.point_head(point_tokens.float(), h, w))
            poses = self.camera_head(camera_tokens.float())
            global_points = self.global_point_head(global_tokens.float(), h, w)
        points = torch.einsum("sij,shwj->shwi", poses[:, :3, :3], local) + poses[:, None, None, :3, 3]
        shape = (B, S) + local.shape[1:]
        return {"local_points": local.view(shape), "points": points.view(shape),
                "global_points": global_points.view(shape), "camera_poses": poses.view(B, S, 4, 4)}

    def reconstruct(self, images: torch.Tensor, prompt_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """The reconstruction pass for one scene.

        Args:
            images: ``(S, 3, H, W)`` in [0, 1], H and W multiples of 14.
            prompt_ids: ``(n,)`` ids of ``<|im_start|>Reconstruct the 3D scene.``.

        Returns:
            ``local_points``, ``points``, ``global_points`` ``(S, H, W, 3)``, ``camera_poses`` ``(S, 4, 4)``.
        """
        seq = PackedSequence()
        seq.add_text(self.embed(prompt_ids))
        geo = self.add_geometry(seq, images)
        hidden, _ = self.run([seq])
        out = self.decode_geometry(hidden[0, geo.index][None], geo.grid)
        return {k: v[0] for k, v in out.items()}

    # ------------------------------------------------------------------ understanding
    def prefill(self, system_ids: torch.Tensor, user_ids: torch.Tensor, geometry_images: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, grid_thw: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, KVCache]:
        """Run the chat prompt: system text, DINO segment, ViT segments, user text.

        Args:
            system_ids: ``(n_s,)``; user_ids: ``(n_u,)`` (ending in ``<|im_end|>\\n<|im_start|>assistant``).
            geometry_images: ``(S, 3, H, W)`` in [0, 1] for the DINO branch, or ``None``.
            pixel_values, grid_thw: the ViT rows and grids, or ``None``.

        Returns:
            ``(n_u, vocab)`` logits at the user-text positions and the filled :class:`KVCache`.
        """
        seq = PackedSequence()
        seq.add_text(self.embed(system_ids))
        if geometry_images is not None and self.config.geometry_expert:
            self.add_geometry(seq, geometry_images)
        if pixel_values is not None:
            self.add_vit_images(seq, pixel_values, grid_thw)
        user = seq.add_text(self.embed(user_ids))
        cache = KVCache()
        hidden, _ = self.run([seq], cache)
        return self.language_model.logits(hidden[0, user]), cache

    def decode_step(self, token: int, cache: KVCache) -> torch.Tensor:
        """One greedy step: embed ``token`` at the next position, extend ``cache``; returns ``(vocab,)`` logits."""
        p = cache.next_position
        embeds = self.embed(torch.tensor([token]))[None]
        positions = torch.full((1, 3, 1), p, dtype=torch.long, device=embeds.device)
        hidden = self.language_model(embeds, positions, None, None, cache)
        cache.next_position = p + 1
        return self.language_model.logits(hidden[0, -1])

    @torch.no_grad()
    def generate(self, cache: KVCache, start_id: int, max_new_tokens: int) -> list[int]:
        """Greedy decoding from ``start_id`` until ``<|im_end|>`` (not emitted) or ``max_new_tokens`` steps.

        Returns up to ``max_new_tokens`` ids (the official loop with ``max_length=n`` returns ``n - 1``:
        it counts the start token and drops its last argmax).
        """
        out, token = [], int(start_id)
        for _ in range(max_new_tokens):
            token = int(self.decode_step(token, cache).argmax())
            if token == self.config.text.eos_token_id:
                break
            out.append(token)
        return out
