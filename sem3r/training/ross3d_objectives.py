"""ROSS3D's reconstructive objectives, model-free parts: view masking, targets, diffusion, the two losses.

ROSS3D (section 3.3 of the paper; facts sections 8-9) trains the LMM with two extra losses computed by a
small denoiser from the LMM's hidden states of the visual tokens:

* **cross-view**: a fraction ``ratio`` of the M frames is masked (their pooled tokens replaced by the
  learned mask token, after which the 3D position encoding is still added); the denoiser reconstructs
  the masked frames' target latents from the visible frames' hidden states. Kept frames:
  ``int(M (1 - ratio))``, chosen by sorting one uniform draw per frame (:func:`view_mask`). Loss: the
  mean of the per-element epsilon MSE (:func:`cross_view_loss`).
* **global view (BEV)**: the denoiser reconstructs the latent of the scene's bird's-eye-view image from
  all visible frames' hidden states; the loss is averaged over the latent cells where the BEV has any
  colour (:func:`bev_valid_mask`, :func:`bev_loss`).

Targets are latents folded 2x2 into channels (:func:`fold_2x2`: the official FLUX VAE latent of 16 x 2k x 2k
becomes 64 x k x k); without a VAE, :func:`pixel_targets` folds the pixels themselves (``3 p^2`` channels
on the same k x k grid), the small-scale option. The diffusion process is the improved-DDPM cosine schedule with 1000 steps
(:func:`cosine_alphas_cumprod`), ``z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps`` (:func:`q_sample`) and
epsilon prediction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sem3r.errors import Sem3RError


def cosine_alphas_cumprod(num_steps: int = 1000, max_beta: float = 0.999) -> torch.Tensor:
    """``abar_t`` of the cosine schedule, float64 ``(num_steps,)``.

    ``alpha_bar(s) = cos^2(((s + 0.008) / 1.008) pi / 2)``; ``beta_i = min(1 - alpha_bar((i + 1) / T) /
    alpha_bar(i / T), max_beta)`` and ``abar_t = prod_{i <= t} (1 - beta_i)``.

    Example:
        >>> abar = cosine_alphas_cumprod(1000)
        >>> round(float(abar[0]), 6), bool(abar[-1] < 1e-4), bool((abar[1:] < abar[:-1]).all())
        (0.999959, True, True)
    """
    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = torch.tensor([min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta)
                          for i in range(num_steps)], dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


def q_sample(z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Noised latents ``sqrt(abar_t) z0 + sqrt(1 - abar_t) noise``.

    Args:
        z0: ``(N, C, H, W)`` clean latents.
        t: ``(N,)`` integer timesteps.
        noise: ``(N, C, H, W)`` standard normal draws.
        alphas_cumprod: ``(T,)`` from :func:`cosine_alphas_cumprod`.

    Returns:
        ``(N, C, H, W)`` in ``z0``'s dtype.
    """
    abar = alphas_cumprod.to(z0.device)[t].view(-1, 1, 1, 1)
    return (abar.sqrt() * z0.double() + (1 - abar).sqrt() * noise.double()).to(z0.dtype)


def fold_2x2(latent: torch.Tensor) -> torch.Tensor:
    """Fold every 2x2 window into channels: ``(N, C, 2h, 2w)`` -> ``(N, 4C, h, w)``.

    Channel ``4 c + 2 dy + dx`` of the output holds input channel ``c`` at offset ``(dy, dx)`` (latent
    channel major, then the offsets row-major).

    Example:
        >>> x = torch.arange(8.0).view(1, 2, 2, 2)
        >>> fold_2x2(x)[0, :, 0, 0].tolist()
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    """
    N, C, H, W = latent.shape
    if H % 2 or W % 2:
        raise Sem3RError(f"fold_2x2 needs even latent sides, got {H}x{W}")
    x = latent.view(N, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(N, C * 4, H // 2, W // 2)


FLUX_SHIFT, FLUX_SCALE = 0.1159, 0.3611
"""The FLUX.1 VAE's latent shift and scale (``latent = (sample - shift) * scale``)."""


def latent_targets(raw: torch.Tensor, shift: float = FLUX_SHIFT, scale: float = FLUX_SCALE) -> torch.Tensor:
    """Denoiser targets from raw VAE samples: ``(raw - shift) * scale``, an odd side resized (bilinear) to
    the next even one (the official 27 x 27 view latent becomes 28 x 28), then :func:`fold_2x2`.

    Args:
        raw: ``(N, C, H, W)`` VAE posterior samples.

    Returns:
        ``(N, 4C, ceil(H / 2), ceil(W / 2))``.
    """
    z = (raw - shift) * scale
    H, W = z.shape[-2:]
    if H % 2 or W % 2:
        z = F.interpolate(z, size=(H + H % 2, W + W % 2), mode="bilinear", align_corners=False)
    return fold_2x2(z)


def view_mask(uniform: torch.Tensor, ratio: float) -> torch.Tensor:
    """Which frames to mask: keep the ``int(M (1 - ratio))`` frames with the smallest draws.

    Args:
        uniform: ``(M,)`` one uniform draw per frame (inject it to reproduce a run).
        ratio: fraction masked (official 0.25).

    Returns:
        ``(M,)`` bool, True for masked frames.

    Example:
        >>> view_mask(torch.tensor([0.9, 0.1, 0.5, 0.3]), 0.25).tolist()
        [True, False, False, False]
    """
    M = uniform.numel()
    keep = int(M * (1 - ratio))
    masked = torch.ones(M, dtype=torch.bool, device=uniform.device)
    masked[torch.argsort(uniform)[:keep]] = False
    return masked


def images_to_unit_range(images01: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, 3, H, W)`` in [0, 1] -> ``(N, 3, size, size)`` in [-1, 1] (bilinear), the VAE's input range."""
    x = F.interpolate(images01.float(), size=(size, size), mode="bilinear", align_corners=False)
    return (x * 2 - 1).clamp(-1, 1)


def pixel_targets(images01: torch.Tensor, grid: int, patch: int) -> torch.Tensor:
    """Pixel-space targets on a ``grid x grid`` latent grid (no VAE).

    Args:
        images01: ``(N, 3, H, W)`` in [0, 1].
        grid: latent side k.
        patch: pixels per latent cell side p.

    Returns:
        ``(N, 3 p^2, k, k)``: the images resized to ``k p`` (bilinear), mapped to [-1, 1], every ``p x p``
        cell folded into channels (channel major, then the offsets row-major, as :func:`fold_2x2`).

    Example:
        >>> pixel_targets(torch.ones(1, 3, 10, 10), 2, 2).shape
        torch.Size([1, 12, 2, 2])
    """
    return F.pixel_unshuffle(images_to_unit_range(images01, grid * patch), patch)


def bev_valid_mask(bev01: torch.Tensor, grid: int) -> torch.Tensor:
    """Latent cells of a BEV image that have colour.

    Args:
        bev01: ``(N, 3, H, W)`` BEV in [0, 1] (empty pixels black).
        grid: latent side (official 27).

    Returns:
        ``(N, 1, grid, grid)`` bool: the bilinearly downsampled BEV's channel mean is positive.
    """
    small = F.interpolate(bev01.float(), size=(grid, grid), mode="bilinear", align_corners=False)
    return small.mean(dim=1, keepdim=True) > 0


def cross_view_loss(pred_noise: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mean per-element epsilon MSE over all masked-view targets ``(N, C, h, w)``; 0 when there is none."""
    if pred_noise.numel() == 0:
        return pred_noise.sum() * 0
    return F.mse_loss(pred_noise.float(), noise.float())


def bev_loss(pred_noise: torch.Tensor, noise: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Epsilon MSE summed over valid cells (all channels) divided by their element count.

    Args:
        pred_noise, noise: ``(N, C, h, w)``.
        valid: ``(N, 1, h, w)`` bool from :func:`bev_valid_mask`.
    """
    weight = valid.expand_as(noise).float()
    return ((pred_noise.float() - noise.float()) ** 2 * weight).sum() / weight.sum().clamp_min(1)
