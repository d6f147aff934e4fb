"""Sem3R's ROSS3D objectives against reference outputs of the official implementation (tiny config).

The reference folder holds what the official ROSS3D code computed on CPU in fp32 at a tiny configuration
with seeded random weights and injected random draws (``case_b_training.safetensors``: view-mask draws,
timesteps, noise, the VAE latents of the masked view and of the BEV, the denoiser's predictions and the
losses). This script recomputes, from the same inputs, what :mod:`sem3r.training.ross3d_objectives` owns:
the view mask, the latent targets (shift / scale, the odd view latent resized to an even side, 2x2 fold),
the noised latents, the BEV loss mask and the cross-view and BEV losses, and prints the largest differences.
(``benchmarks/ross3d_model_parity.py`` checks the model itself.)

Example:
    python benchmarks/ross3d_objectives_parity.py --reference /tmp/ross3d_parity
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from sem3r.training.ross3d_objectives import (
    bev_loss,
    bev_valid_mask,
    cosine_alphas_cumprod,
    cross_view_loss,
    latent_targets,
    q_sample,
    view_mask,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    args = parser.parse_args()
    ref = load_file(str(args.reference / "case_b_training.safetensors"))
    meta = json.loads((args.reference / "case_b_training.json").read_text())
    ratio = float(meta.get("view_mask_ratio", 0.25))
    abar = cosine_alphas_cumprod(1000)
    rows = []
    masked = view_mask(ref["inject_mask_noise"], ratio)
    rows.append(("view mask", float((masked.float() - ref["view_mask"].float()).abs().max())))
    view = latent_targets(ref["inject_vae_latent_view_raw"])
    view = view.repeat_interleave(ref["denoiser_view_target"].shape[0] // view.shape[0], 0)
    rows.append(("view target latents", float((view - ref["denoiser_view_target"]).abs().max())))
    bev = latent_targets(ref["inject_vae_latent_bev_raw"])
    rows.append(("BEV target latents", float((bev - ref["denoiser_bev_target"]).abs().max())))
    x_view = q_sample(ref["denoiser_view_target"], ref["inject_t_view"], ref["inject_eps_view"], abar)
    x_bev = q_sample(ref["denoiser_bev_target"], ref["inject_t_bev"], ref["inject_eps_bev"], abar)
    rows.append(("noised view latents", float((x_view - ref["denoiser_view_x_t"]).abs().max())))
    rows.append(("noised BEV latents", float((x_bev - ref["denoiser_bev_x_t"]).abs().max())))
    valid = bev_valid_mask(ref["bev_image"][None], 27)
    rows.append(("BEV loss mask", float((valid.expand(-1, 64, -1, -1).float() - ref["bev_loss_mask"].float()).abs().max())))
    cv = cross_view_loss(ref["denoiser_view_eps_pred"], ref["inject_eps_view"])
    bl = bev_loss(ref["denoiser_bev_eps_pred"], ref["inject_eps_bev"], valid)
    rows.append((f"cross-view loss (official {float(ref['loss_cross_view']):.6f})", abs(float(cv - ref["loss_cross_view"]))))
    rows.append((f"BEV loss (official {float(ref['loss_bev']):.6f})", abs(float(bl - ref["loss_bev"]))))
    print("| quantity | max abs diff |")
    print("|---|---|")
    for name, d in rows:
        print(f"| {name} | {d:.2e} |")


if __name__ == "__main__":
    main()
