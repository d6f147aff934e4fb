"""Sem3R's G2VLM against reference outputs of the official implementation (tiny config, seeded weights).

The reference folder holds what the official G2VLM code computed on CPU in fp32 (its bf16 casts removed,
flash-attention replaced by a plain per-window attention that gives uncovered rows a zero output) at a
tiny configuration with seeded random weights: ``configs/{text,vit,dino}_config.json``,
``weights.safetensors`` (official key names) and ``case_{a,b,c}.safetensors`` + ``.json`` (inputs,
intermediate tensors and outputs; a and b: reconstruction of 2 frames 224x224 and 3 frames 168x224,
c: the chat path with one image). This script loads the same weights into ``sem3r.models.g2vlm.G2VLM``
strictly, feeds the same inputs and prints the largest absolute difference of every output.

Example:
    python benchmarks/g2vlm_parity.py --reference /tmp/g2vlm_parity
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from sem3r.models.g2vlm.config import G2VLMConfig
from sem3r.models.g2vlm.model import G2VLM
from sem3r.models.g2vlm.preprocess import dino_images, vit_pixel_values
from sem3r.models.g2vlm.sequence import PackedSequence
from sem3r.reconstruct.checkpoint import load_state_dict_strict


def build(reference: Path, windows: str) -> G2VLM:
    cfg = G2VLMConfig.from_folder(reference / "configs", dino_windows=windows)
    ids = json.loads((reference / "case_a.json").read_text())["new_token_ids"]
    cfg.text.bos_token_id, cfg.text.eos_token_id = ids["bos_token_id"], ids["eos_token_id"]
    cfg.text.vision_start_token_id, cfg.text.vision_end_token_id = ids["start_of_image"], ids["end_of_image"]
    model = G2VLM(cfg).eval()
    load_state_dict_strict(model, load_file(str(reference / "weights.safetensors")), "official weights")
    return model


def diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def recon_case(model: G2VLM, ref: dict) -> list[tuple[str, float, float]]:
    images = ref["images"]
    with torch.no_grad():
        x = (images - model.image_mean) / model.image_std
        dino = model.dino_model(x, model.config.dino_windows)
        out = model.reconstruct(images, ref["text_ids"])
        seq = PackedSequence()
        seq.add_text(model.embed(ref["text_ids"]))
        geo = model.add_geometry(seq, images)
        hidden, _ = model.run([seq])
    rows = [("dino_out", diff(dino, ref["dino_out"]), float(ref["dino_out"].abs().max())),
            ("geo_hidden", diff(hidden[0, geo.index], ref["geo_hidden"]), float(ref["geo_hidden"].abs().max()))]
    for key in ("local_points", "points", "global_points", "camera_poses"):
        rows.append((key, diff(out[key], ref[key][0]), float(ref[key].abs().max())))
    return rows


def chat_case(model: G2VLM, ref: dict, meta: dict) -> tuple[list, list[int], list[int]]:
    image = ref["image_uint8"].numpy().astype(np.uint8)
    ours_dino = dino_images(image[None], 518)
    ours_rows, ours_grid = vit_pixel_values(image[None], 768, model.config.vit)
    rows = [("dino image (preprocessing)", diff(ours_dino, ref["dino_image_01"]), 1.0),
            ("vit pixel_values (preprocessing)", diff(ours_rows, ref["vit_pixel_values"]),
             float(ref["vit_pixel_values"].abs().max())),
            ("vit grid_thw (preprocessing)", diff(ours_grid, ref["vit_grid_thw"]), 54.0)]
    with torch.no_grad():
        logits, cache = model.prefill(ref["system_ids"], ref["user_ids"], ref["dino_image_01"],
                                      ref["vit_pixel_values"], ref["vit_grid_thw"])
        rows.append(("prompt logits (user text)", diff(logits, ref["logits_user"]), float(ref["logits_user"].abs().max())))
        token, steps, argmax = int(meta["start_token_id"]), [], []
        for _ in range(ref["decode_logits"].shape[0]):
            step = model.decode_step(token, cache)
            steps.append(step)
            token = int(step.argmax())
            argmax.append(token)
    rows.append(("decode logits (8 steps)", diff(torch.stack(steps), ref["decode_logits"]),
                 float(ref["decode_logits"].abs().max())))
    return rows, argmax, ref["decode_argmax"].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="folder of the official reference outputs")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = build(args.reference, "official")
    print("| case | output | max abs diff | max abs value |")
    print("|---|---|---|---|")
    for case in ("a", "b"):
        for name, d, scale in recon_case(model, load_file(str(args.reference / f"case_{case}.safetensors"))):
            print(f"| {case} | {name} | {d:.2e} | {scale:.3g} |")
    meta = json.loads((args.reference / "case_c.json").read_text())
    rows, ours, theirs = chat_case(model, load_file(str(args.reference / "case_c.safetensors")), meta)
    for name, d, scale in rows:
        print(f"| c | {name} | {d:.2e} | {scale:.3g} |")
    print(f"\ngreedy tokens: ours {ours}\n               official {theirs}  -> {'identical' if ours == theirs else 'DIFFERENT'}")
    per_image = build(args.reference, "per_image")
    ref = load_file(str(args.reference / "case_a.safetensors"))
    d = diff(per_image.reconstruct(ref["images"], ref["text_ids"])["points"], ref["points"][0])
    print(f"dino_windows='per_image' (the corrected variant) moves case a points by {d:.3g} (expected: far from 0)")


if __name__ == "__main__":
    main()
