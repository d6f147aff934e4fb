"""G2VLM's geometry encoder: DINOv2 with registers, run on all frames as one packed sequence.

Layout and names are transformers' ``Dinov2WithRegistersModel`` (``embeddings.*``, ``encoder.layer.N.*``,
``layernorm``), so the official ``dino_model.*`` keys load unchanged. The forward is our own because the
official call is not a per-image DINOv2: it flattens all S frames into one sequence of
``S * (1 + R + h*w)`` tokens (CLS, R registers, patches per frame) and runs variable-length attention
with window boundaries computed from the PATCH count only, ``[0, hw), [hw, 2hw), ..., [(S-1)hw, S*hw)``.
So window i holds the tail of frame i-1 and the head of frame i, and the last ``S * (1 + R)`` rows belong
to no window; on the official GPU path their attention output is uninitialised memory, and we give them
a ZERO attention output (deterministic; the output projection's bias still applies). The checkpoint
was trained with this, so it is the default (``windows="official"``); ``windows="per_image"`` gives every
frame its own window (what a plain DINOv2 computes).

Embeddings per frame: Conv2d patchify -> prepend CLS -> add position embeddings (the table is used as
is only for a square image with exactly the table's patch count; otherwise the patch part is resized
to (h, w) bicubic with antialiasing in fp32) -> insert the registers after CLS (no position embedding).
Layers: pre-norm attention and GELU MLP, each with a LayerScale (``lambda1``). Final LayerNorm; CLS and
registers dropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.models.g2vlm.config import DinoConfig


class _LayerScale(nn.Module):
    def __init__(self, dim: int, value: float) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.full((dim,), float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.lambda1


class _PatchEmbeddings(nn.Module):
    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size, config.patch_size)


class DinoEmbeddings(nn.Module):
    """CLS + registers + patch tokens with (interpolated) position embeddings."""

    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        C, grid = config.hidden_size, config.image_size // config.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.mask_token = nn.Parameter(torch.zeros(1, C))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, C))
        self.position_embeddings = nn.Parameter(torch.zeros(1, grid * grid + 1, C))
        self.patch_embeddings = _PatchEmbeddings(config)
        self.patch_size = config.patch_size

    def _positions(self, h: int, w: int, square: bool) -> torch.Tensor:
        table = self.position_embeddings
        n = table.shape[1] - 1
        if h * w == n and square:
            return table
        side = round(n**0.5)
        patch = table[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        patch = F.interpolate(patch.float(), size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        patch = patch.to(table.dtype).permute(0, 2, 3, 1).reshape(1, h * w, -1)
        return torch.cat((table[:, :1], patch), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: ``(S, 3, H, W)`` normalised -> ``(S, 1 + R + h*w, C)`` tokens."""
        S, _, H, W = images.shape
        h, w = H // self.patch_size, W // self.patch_size
        x = self.patch_embeddings.projection(images.to(self.cls_token.dtype)).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(S, -1, -1), x), dim=1) + self._positions(h, w, H == W)
        return torch.cat((x[:, :1], self.register_tokens.expand(S, -1, -1), x[:, 1:]), dim=1)


class _SelfAttention(nn.Module):
    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        C = config.hidden_size
        self.query = nn.Linear(C, C, bias=config.qkv_bias)
        self.key = nn.Linear(C, C, bias=config.qkv_bias)
        self.value = nn.Linear(C, C, bias=config.qkv_bias)


class _Output(nn.Module):
    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)


class _Attention(nn.Module):
    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        self.attention = _SelfAttention(config)
        self.output = _Output(config)
        self.num_heads = config.num_attention_heads

    def forward(self, x: torch.Tensor, window: int, covered: int) -> torch.Tensor:
        """``x``: ``(N, C)`` flattened tokens; rows ``[0, covered)`` attend inside windows of ``window`` rows."""
        N, C = x.shape
        heads = self.num_heads
        q, k, v = (lin(x[:covered]).view(covered // window, window, heads, C // heads).transpose(1, 2)
                   for lin in (self.attention.query, self.attention.key, self.attention.value))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(covered, C)
        if covered < N:
            out = torch.cat((out, out.new_zeros(N - covered, C)), dim=0)
        return self.output.dense(out)


class _Mlp(nn.Module):
    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        hidden = int(config.hidden_size * config.mlp_ratio)
        self.fc1 = nn.Linear(config.hidden_size, hidden)
        self.fc2 = nn.Linear(hidden, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class DinoLayer(nn.Module):
    """Pre-norm attention + MLP block with LayerScale on both branches."""

    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = _Attention(config)
        self.layer_scale1 = _LayerScale(config.hidden_size, config.layerscale_value)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = _Mlp(config)
        self.layer_scale2 = _LayerScale(config.hidden_size, config.layerscale_value)

    def forward(self, x: torch.Tensor, window: int, covered: int) -> torch.Tensor:
        """``x``: ``(N, C)`` -> ``(N, C)``."""
        x = x + self.layer_scale1(self.attention(self.norm1(x), window, covered))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class _Encoder(nn.Module):
    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(DinoLayer(config) for _ in range(config.num_hidden_layers))


class DinoEncoder(nn.Module):
    """DINOv2-with-registers over S frames packed into one sequence (see the module docstring).

    Args:
        config: encoder sizes.

    Example:
        >>> from sem3r.models.g2vlm.config import DinoConfig
        >>> enc = DinoEncoder(DinoConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=56))
        >>> enc(torch.randn(2, 3, 28, 42)).shape
        torch.Size([2, 6, 32])
    """

    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = DinoEmbeddings(config)
        self.encoder = _Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, images: torch.Tensor, windows: str = "official") -> torch.Tensor:
        """Encode frames.

        Args:
            images: ``(S, 3, H, W)`` ImageNet-normalised, H and W multiples of the patch size.
            windows: ``"official"`` (shifted patch-count windows, uncovered rows zero) or ``"per_image"``.

        Returns:
            ``(S, h*w, C)`` patch features after the final LayerNorm, row-major patches.
        """
        tokens = self.embeddings(images)
        S, T, C = tokens.shape
        specials = T - (images.shape[-2] // self.config.patch_size) * (images.shape[-1] // self.config.patch_size)
        window = T - specials if windows == "official" else T
        x = tokens.reshape(S * T, C)
        for layer in self.encoder.layer:
            x = layer(x, window, S * window)
        return self.layernorm(x).view(S, T, C)[:, specials:]
