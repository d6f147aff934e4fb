"""ROSS3D's training-only denoiser ``mm_inv_projector`` (``denoiser_vit3x``, facts section 9).

Not part of the inference model: :class:`~sem3r.models.ross3d.model.Ross3D` builds it only with
``training=True`` (checkpoint prefix ``model.mm_inv_projector``; a loader for inference skips it).

:class:`Ross3DDenoiser` = ``ln_pre`` (non-affine LayerNorm over the condition channels, eps 1e-5) + ``net``, a
two-branch DiT (:class:`DiT`): one branch reconstructs masked *views* (target ``(N, 64, 14, 14)``), the other the
*BEV* image (target ``(N, 64, 27, 27)``). Per branch:

* ``x_embedder_{view,bev}``: 1x1 conv ``C_x -> W`` (W = 1024) on the noised latent, plus a frozen position table
  ``pos_embed_{view,bev}`` ``(1, h*w, W)`` (it is a saved parameter; the official sin-cos initialiser is never
  called, so it holds what the pretrained 2D adapter provided);
* ``z_embedder_{view,bev}`` (attention pooling): SiLU then ``Linear(C_z -> W)`` on every condition token; ALL
  condition tokens of ALL condition frames form one key / value set; ``Q`` learned queries (``cls_token``, no query
  projection; ``Q = h*w``) attend with ``heads`` heads (scale ``head_dim^-0.5``) through bias-free ``k`` / ``v``;
  bias-free ``linear`` -> one condition of ``(1, Q, W)`` shared by every target of the call.

Shared: ``t_embedder`` (256-d sinusoid, cos half first, max period 10000 -> Linear -> SiLU -> Linear), ``blocks``
(adaLN-Zero DiT blocks with per-token modulation ``c = t_emb + z``, non-affine LayerNorms eps 1e-6, timm-style
attention with qkv bias and a tanh-GELU MLP of ratio 4) and ``final_layer`` (LayerNorm, shift / scale, Linear to
``C_x``). The output is the predicted noise, ``(N, C_x, h, w)``.

**VAE teacher hook.** The targets are latents of a frozen diffusers ``AutoencoderKL`` (FLUX.1-dev; checkpoint
prefix ``model.mm_pixel_decoder.pixel_decoder``), which Sem3R does NOT re-implement. Set
:attr:`Ross3DDenoiser.latent_teacher` to a callable ``images (N, 3, H, W) in [-1, 1] -> latents (N, 16, H/8, W/8)``
that already applies ``(sample - shift_factor) * scaling_factor`` (FLUX: 0.1159 / 0.3611), e.g. a wrapper around
``AutoencoderKL.encode(x).latent_dist.sample()``; :func:`sem3r.training.ross3d_objectives.fold_2x2` then folds
them to the 64-channel targets (after a bilinear resize to even sides). The teacher is stored outside the module
tree, so it never enters this module's state dict.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.models.ross3d.config import Ross3DConfig

#: ``images (N, 3, H, W) in [-1, 1] -> shifted and scaled latents (N, 16, H/8, W/8)`` (the VAE teacher's role).
LatentTeacher = Callable[[torch.Tensor], torch.Tensor]


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation ``x (1 + scale) + shift``."""
    return x * (1 + scale) + shift


def timestep_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """``(N,)`` timesteps -> ``(N, dim)`` ``[cos(t f_k), sin(t f_k)]`` with ``f_k = max_period^(-k / (dim/2))``.

    Example:
        >>> timestep_embedding(torch.tensor([0.0]), 4).tolist()
        [[1.0, 1.0, 0.0, 0.0]]
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half).to(t.device)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat((torch.cos(args), torch.sin(args)), dim=-1)
    if dim % 2:
        emb = torch.cat((emb, torch.zeros_like(emb[:, :1])), dim=-1)
    return emb


class PatchEmbed(nn.Module):
    """``proj``: conv with kernel = stride = ``patch`` (1 in Ross3D); ``(N, C, H, W) -> (N, HW / p^2, W')``."""

    def __init__(self, size: int, patch: int, in_channels: int, width: int) -> None:
        super().__init__()
        self.size, self.patch = size, patch
        self.proj = nn.Conv2d(in_channels, width, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise Sem3RError(f"denoiser input must be {self.size}x{self.size}, got {tuple(x.shape[-2:])}")
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    """``mlp``: Linear(256, W), SiLU, Linear(W, W) on :func:`timestep_embedding`."""

    def __init__(self, width: int, frequency_size: int = 256) -> None:
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(nn.Linear(frequency_size, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``(N,)`` -> ``(N, W)``."""
        return self.mlp(timestep_embedding(t, self.frequency_size))


class AttentionPooling(nn.Module):
    """The condition encoder ("attention pooling classifier" without averaging).

    Args:
        in_features: condition channels (3584).
        width: W.
        num_queries: Q.
        num_heads: heads (16).
    """

    def __init__(self, in_features: int, width: int, num_queries: int, num_heads: int = 16) -> None:
        super().__init__()
        self.num_heads, self.num_queries = num_heads, num_queries
        self.proj = nn.Sequential(nn.SiLU(), nn.Linear(in_features, width))
        self.k = nn.Linear(width, width, bias=False)
        self.v = nn.Linear(width, width, bias=False)
        self.cls_token = nn.Parameter(torch.randn(1, num_queries, width) * 0.02)
        self.linear = nn.Linear(width, width, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(M, T, C)`` condition tokens of M frames -> ``(1, Q, W)`` (all ``M T`` tokens pooled jointly)."""
        x = self.proj(z).flatten(0, 1)[None]
        _, N, C = x.shape
        h = self.num_heads
        q = self.cls_token.reshape(1, self.num_queries, h, C // h).transpose(1, 2)
        k = self.k(x).reshape(1, N, h, C // h).transpose(1, 2)
        v = self.v(x).reshape(1, N, h, C // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, self.num_queries, C)
        return self.linear(out)


class Attention(nn.Module):
    """timm-style self-attention: ``qkv`` (with bias), softmax scale ``head_dim^-0.5``, ``proj``."""

    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, C = x.shape
        q, k, v = self.qkv(x).reshape(N, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(N, T, C))


class Mlp(nn.Module):
    """``fc1`` -> tanh-GELU -> ``fc2``."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """adaLN-Zero block: ``x += g1 * attn(mod(LN(x), b1, s1)); x += g2 * mlp(mod(LN(x), b2, s2))``, with
    ``(b1, s1, g1, b2, s2, g2) = Linear(SiLU(c))`` per token."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, num_heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, T, W)``; ``c``: ``(N, T, W)`` per-token conditions."""
        b1, s1, g1, b2, s2, g2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + g1 * self.attn(modulate(self.norm1(x), b1, s1))
        return x + g2 * self.mlp(modulate(self.norm2(x), b2, s2))


class FinalLayer(nn.Module):
    """Non-affine LayerNorm, adaLN shift / scale, ``linear`` to ``patch^2 * C_x``."""

    def __init__(self, width: int, patch: int, out_channels: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """The two-branch DiT (``net``; see the module docstring).

    Args:
        view_grid, bev_grid: target sides of the two branches (14, 27).
        in_channels: C_x (64).
        width: W (1024).
        cond_channels: C_z (3584).
        depth, num_heads, mlp_ratio: blocks (3), heads (16), MLP ratio (4).
        patch: patch side (1).
    """

    def __init__(self, view_grid: int = 14, bev_grid: int = 27, in_channels: int = 64, width: int = 1024,
                 cond_channels: int = 3584, depth: int = 3, num_heads: int = 16, mlp_ratio: float = 4.0,
                 patch: int = 1) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.patch = in_channels, in_channels, patch
        self.x_embedder_bev = PatchEmbed(bev_grid, patch, in_channels, width)
        n_bev = (bev_grid // patch) ** 2
        self.pos_embed_bev = nn.Parameter(torch.zeros(1, n_bev, width), requires_grad=False)
        self.z_embedder_bev = AttentionPooling(cond_channels, width, n_bev, num_heads)
        self.x_embedder_view = PatchEmbed(view_grid, patch, in_channels, width)
        n_view = (view_grid // patch) ** 2
        self.pos_embed_view = nn.Parameter(torch.zeros(1, n_view, width), requires_grad=False)
        self.z_embedder_view = AttentionPooling(cond_channels, width, n_view, num_heads)
        self.t_embedder = TimestepEmbedder(width)
        self.blocks = nn.ModuleList(DiTBlock(width, num_heads, mlp_ratio) for _ in range(depth))
        self.final_layer = FinalLayer(width, patch, self.out_channels)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, T, p^2 C)`` -> ``(N, C, h p, w p)`` (square grid)."""
        N, T, _ = x.shape
        h = math.isqrt(T)
        p, c = self.patch, self.out_channels
        x = x.reshape(N, h, h, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(N, c, h * p, h * p)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, bev: bool = False) -> torch.Tensor:
        """Predict the noise.

        Args:
            x: ``(N, C_x, h, w)`` noised latents.
            t: ``(N,)`` timesteps.
            context: ``(M, C_z, h', w')`` conditions (normalised by ``ln_pre``), pooled jointly.
            bev: use the BEV branch.

        Returns:
            ``(N, C_x, h, w)``.
        """
        z = context.flatten(2).transpose(1, 2)
        if bev:
            x = self.x_embedder_bev(x) + self.pos_embed_bev
            z = self.z_embedder_bev(z)
        else:
            x = self.x_embedder_view(x) + self.pos_embed_view
            z = self.z_embedder_view(z)
        c = self.t_embedder(t)[:, None] + z
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))


class Ross3DDenoiser(nn.Module):
    """``mm_inv_projector``: ``ln_pre`` + :class:`DiT` (``net``), built from a :class:`Ross3DConfig`.

    Example:
        >>> cfg = Ross3DConfig.small()
        >>> den = Ross3DDenoiser(cfg)
        >>> cond = den.condition(torch.randn(2, 9, cfg.hidden_size))
        >>> den(torch.randn(3, 8, 3, 3), torch.tensor([0, 5, 999]), cond).shape
        torch.Size([3, 8, 3, 3])
    """

    def __init__(self, config: Ross3DConfig) -> None:
        super().__init__()
        self.ln_pre = nn.LayerNorm(config.hidden_size, elementwise_affine=False)
        self.net = DiT(view_grid=config.pooled_grid, bev_grid=config.bev_grid, in_channels=config.mm_inv_hidden_size,
                       width=config.inv_width, cond_channels=config.hidden_size, depth=config.inv_depth,
                       num_heads=config.denoiser_heads)
        object.__setattr__(self, "_latent_teacher", None)

    @property
    def latent_teacher(self) -> LatentTeacher | None:
        """The VAE teacher hook (see the module docstring); not part of the module tree."""
        return self._latent_teacher

    def __setattr__(self, name: str, value) -> None:
        if name == "latent_teacher":  # kept out of the module tree even when it is an nn.Module (a diffusers VAE)
            object.__setattr__(self, "_latent_teacher", value)
        else:
            super().__setattr__(name, value)

    def condition(self, hidden: torch.Tensor) -> torch.Tensor:
        """LLM hidden states of the visual tokens of M frames ``(M, P*P, D)`` -> ``(M, D, P, P)`` after ``ln_pre``."""
        M, T, D = hidden.shape
        side = math.isqrt(T)
        if side * side != T:
            raise Sem3RError(f"denoiser conditions need a square token grid per frame, got {T}")
        return self.ln_pre(hidden).transpose(1, 2).reshape(M, D, side, side)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor, bev: bool = False) -> torch.Tensor:
        """Predicted noise ``(N, C_x, h, w)`` for noised latents ``x_t`` at timesteps ``t`` (see :meth:`DiT.forward`)."""
        return self.net(x_t, t, context, bev)
