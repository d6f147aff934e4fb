"""The alternating-attention aggregator: VGGT's (and IGGT's) large unified transformer.

Per frame the token sequence is ``[camera (1), registers (R), patches (P_patch)]``: the DINOv2
patch tokens of the frame, preceded by a learned camera token and R learned register tokens. Both
special tokens come in two versions (index 0 for the first frame, which defines the world frame;
index 1 for every other frame), which is all that distinguishes the reference frame; otherwise the
model is equivariant to the order of frames 2..S.

Then ``depth`` rounds of

* a frame block: self-attention within each frame, tokens shaped ``(B * S, P, C)``;
* a global block: self-attention across all frames, tokens shaped ``(B, S * P, C)``;

both with qk-norm and 2D RoPE (patch tokens at their (row, column) + 1, special tokens at (0, 0);
frames share positions, so global attention carries no frame index). Round i outputs
``concat(frame_out_i, global_out_i)`` along channels (``2 C``), the input of every head.

Input images are in [0, 1]; the ImageNet mean / std normalisation happens here.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from sem3r.models.vggt.layers import Block
from sem3r.models.vggt.patch_embed import DINOv2Encoder
from sem3r.models.vggt.rope import RotaryPositionEmbedding2D, patch_positions

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def expand_special_tokens(tokens: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
    """Give every frame its special tokens: index 0 to the first frame, index 1 to the others.

    Args:
        tokens: ``(1, 2, n, C)`` learned tokens.
        batch: B.
        frames: S.

    Returns:
        ``(B * S, n, C)``, frame-major within each batch element.

    Example:
        >>> t = torch.tensor([0.0, 1.0]).reshape(1, 2, 1, 1)
        >>> expand_special_tokens(t, 2, 3).flatten().tolist()
        [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    """
    first = tokens[:, :1].expand(batch, 1, *tokens.shape[2:])
    others = tokens[:, 1:].expand(batch, frames - 1, *tokens.shape[2:])
    return torch.cat((first, others), dim=1).reshape(batch * frames, *tokens.shape[2:])


class Aggregator(nn.Module):
    """DINOv2 patch embedding followed by alternating frame / global attention.

    Args:
        img_size: image side the patch embedder's position embedding was trained for (518).
        patch_size: patch side in pixels (14).
        embed_dim: token channels C (1024).
        depth: number of frame blocks and of global blocks (24 each).
        num_heads: attention heads of every block (16).
        mlp_ratio: MLP width multiple (4).
        num_register_tokens: registers, in the DINOv2 encoder and per frame (4).
        patch_embed_depth: DINOv2 blocks (24).
        rope_frequency: RoPE base frequency (100).
        init_values: LayerScale initial gain of the frame / global blocks (0.01).
        gradient_checkpointing: recompute the frame / global blocks in the backward pass while
            training (what VGGT does to fit its training batches); no effect in eval mode.

    Example:
        >>> agg = Aggregator(img_size=56, embed_dim=32, depth=2, num_heads=2, patch_embed_depth=1)
        >>> layers, patch_start_idx = agg(torch.rand(1, 3, 3, 28, 42))
        >>> len(layers), tuple(layers[-1].shape), patch_start_idx
        (2, (1, 3, 11, 64), 5)
    """

    def __init__(
        self,
        img_size: int = 518,
        patch_size: int = 14,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_register_tokens: int = 4,
        patch_embed_depth: int = 24,
        rope_frequency: float = 100.0,
        init_values: float = 0.01,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.depth = depth
        self.patch_start_idx = 1 + num_register_tokens
        self.gradient_checkpointing = gradient_checkpointing
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, embed_dim))
        self.register_token = nn.Parameter(torch.zeros(1, 2, num_register_tokens, embed_dim))
        self.patch_embed = DINOv2Encoder(
            img_size, patch_size, embed_dim, patch_embed_depth, num_heads, mlp_ratio, num_register_tokens
        )
        self.rope = RotaryPositionEmbedding2D(rope_frequency)
        block_args = (embed_dim, num_heads, mlp_ratio, init_values)
        self.frame_blocks = nn.ModuleList(self._block(*block_args) for _ in range(depth))
        self.global_blocks = nn.ModuleList(self._block(*block_args) for _ in range(depth))
        nn.init.normal_(self.camera_token, std=1e-6)
        nn.init.normal_(self.register_token, std=1e-6)
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1), persistent=False)

    def _block(self, dim: int, num_heads: int, mlp_ratio: float, init_values: float) -> Block:
        return Block(dim, num_heads, mlp_ratio, init_values=init_values, qk_norm=True, rope=self.rope)

    def _run(self, block: Block, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        if self.training and self.gradient_checkpointing:
            return checkpoint(block, tokens, pos, use_reentrant=False)
        return block(tokens, pos=pos)

    def forward(
        self, images: torch.Tensor, keep_layers: Iterable[int] | None = None
    ) -> tuple[list[torch.Tensor | None], int]:
        """Aggregate the frames of each scene.

        Args:
            images: ``(B, S, 3, H, W)`` in [0, 1], H and W multiples of ``patch_size``.
            keep_layers: indices of the layer outputs to keep (the others come back as ``None`` so
                that indices stay stable, saving memory); ``None`` keeps all.

        Returns:
            ``(layers, patch_start_idx)``: ``layers`` has ``depth`` entries of shape
            ``(B, S, P, 2 C)`` with ``P = patch_start_idx + (H / p) * (W / p)`` (frame block output
            in the first C channels, global block output in the last C); ``patch_start_idx`` is
            ``1 + num_register_tokens``, the index of the first patch token.
        """
        B, S, _, H, W = images.shape
        keep = set(range(self.depth)) if keep_layers is None else {i % self.depth for i in keep_layers}
        images = (images - self.image_mean) / self.image_std
        patch_tokens = self.patch_embed(images.reshape(B * S, 3, H, W))
        tokens = torch.cat(
            (
                expand_special_tokens(self.camera_token, B, S).to(patch_tokens.dtype),
                expand_special_tokens(self.register_token, B, S).to(patch_tokens.dtype),
                patch_tokens,
            ),
            dim=1,
        )
        _, P, C = tokens.shape
        pos = patch_positions(B * S, H // self.patch_size, W // self.patch_size, images.device) + 1
        pos = torch.cat((pos.new_zeros(B * S, self.patch_start_idx, 2), pos), dim=1)
        global_pos = pos.reshape(B, S * P, 2)

        layers: list[torch.Tensor | None] = []
        for i in range(self.depth):
            tokens = self._run(self.frame_blocks[i], tokens.reshape(B * S, P, C), pos)
            frame_out = tokens.reshape(B, S, P, C)
            tokens = self._run(self.global_blocks[i], tokens.reshape(B, S * P, C), global_pos)
            layers.append(torch.cat((frame_out, tokens.reshape(B, S, P, C)), dim=-1) if i in keep else None)
        return layers, self.patch_start_idx
