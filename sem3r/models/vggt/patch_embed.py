"""DINOv2 ViT with register tokens: the aggregator's patch embedder (``aggregator.patch_embed``).

VGGT-1B uses DINOv2 ViT-L/14 with 4 registers: dim 1024, 24 blocks, 16 heads, LayerScale (initial
gain 1.0), LayerNorms with eps 1e-6, learned position embeddings for a 37 x 37 grid (518 px) plus
the class token. Per image the encoder

1. cuts the (already ImageNet-normalised) image into 14 x 14 patches with a strided convolution,
2. prepends the class token and adds the position embedding (class + patches; interpolated to the
   actual patch grid, see :meth:`DINOv2Encoder.interpolate_pos_encoding`),
3. inserts the register tokens right after the class token (registers get no position embedding),
4. runs the blocks and the final ``norm``,

and returns the normalised patch tokens (DINOv2's ``x_norm_patchtokens``); the class and register
outputs are not used by VGGT. ``mask_token`` exists only so the checkpoint loads; it is frozen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.models.vggt.layers import Block


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection ``Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)``.

    Args:
        patch_size: patch side in pixels.
        in_chans: input channels.
        embed_dim: output channels C.
    """

    def __init__(self, patch_size: int = 14, in_chans: int = 3, embed_dim: int = 1024) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: ``(N, in_chans, H, W)`` -> ``(N, (H / p) * (W / p), C)`` tokens, row-major."""
        return self.proj(images).flatten(2).transpose(1, 2)


class DINOv2Encoder(nn.Module):
    """DINOv2 vision transformer with registers, returning normalised patch tokens.

    Args:
        img_size: training image side; the position embedding covers ``img_size // patch_size``
            patches per side (518 -> 37).
        patch_size: patch side in pixels.
        embed_dim: token channels C.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width as a multiple of C.
        num_register_tokens: register tokens inserted after the class token.
        init_values: LayerScale initial gain.

    Example:
        >>> enc = DINOv2Encoder(img_size=56, embed_dim=32, depth=1, num_heads=2)
        >>> enc(torch.randn(3, 3, 28, 42)).shape
        torch.Size([3, 6, 32])
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
        init_values: float = 1.0,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.num_register_tokens = num_register_tokens
        grid = img_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim), requires_grad=False)
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, init_values=init_values, norm_eps=1e-6) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        """DINOv2 initialisation: truncated normal (std 0.02) for the position embedding and linear
        weights, zero linear biases, near-zero class and register tokens."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.normal_(self.register_tokens, std=1e-6)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def interpolate_pos_encoding(self, rows: int, cols: int, dtype: torch.dtype) -> torch.Tensor:
        """Position embedding for a ``rows x cols`` patch grid.

        At the native square grid the stored embedding is returned as is. Otherwise the patch part
        (a ``G x G`` grid) is resized to ``rows x cols`` with bicubic interpolation with
        anti-aliasing (PyTorch's ``antialias=True`` kernel, a = -0.5), computed in float32; the class
        token's embedding is kept.

        Args:
            rows: patch rows (H / patch_size).
            cols: patch columns (W / patch_size).
            dtype: dtype of the result.

        Returns:
            ``(1, 1 + rows * cols, C)``.
        """
        n_stored = self.pos_embed.shape[1] - 1
        grid = math.isqrt(n_stored)
        if rows == grid and cols == grid:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        dim = pos_embed.shape[-1]
        patch_pos = pos_embed[:, 1:].reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=(rows, cols), mode="bicubic", antialias=True)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, rows * cols, dim)
        return torch.cat((pos_embed[:, :1], patch_pos), dim=1).to(dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode images into normalised patch tokens.

        Args:
            images: ``(N, 3, H, W)`` ImageNet-normalised, H and W multiples of ``patch_size``.

        Returns:
            ``(N, P, C)`` with ``P = (H / p) * (W / p)`` patch tokens in row-major order.
        """
        n, _, h, w = images.shape
        x = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(n, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(h // self.patch_size, w // self.patch_size, x.dtype)
        x = torch.cat((x[:, :1], self.register_tokens.expand(n, -1, -1), x[:, 1:]), dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1 + self.num_register_tokens :]
