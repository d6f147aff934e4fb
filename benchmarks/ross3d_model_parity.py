"""Sem3R's ROSS3D against reference outputs of the official implementation (tiny config, seeded weights).

The reference folder holds what the official ROSS3D code computed on CPU in fp32 (eager attention) at a tiny
configuration (LLM width 512 = 4 heads of 128, 2 layers; SigLIP width 32, 3 pretrained layers, 384 px frames;
denoiser width 64) with seeded random weights: ``config.json`` / ``vision_config.json`` /
``training_config.json``, ``weights.safetensors`` (official inference keys), ``training_only.safetensors``
(``model.mm_inv_projector.*``), ``case_a_inference`` (4 frames of a fake ScanNet scene through the official
video processor, one ScanQA-style question, the forward pass and 6 greedy tokens) and ``case_b_training`` (the
same scene in a training sample with one masked view, the denoiser calls of both objectives with their random
draws injected). This script loads the same weights into ``sem3r.models.ross3d.Ross3D`` strictly (vocabulary
rows read from the tensors), feeds the same raw inputs and prints the largest absolute difference of every
intermediate and output. The official loader resizes the vocabulary to the tokenizer's rows, so logits are
compared on those rows.

Example:
    python benchmarks/ross3d_model_parity.py --reference /tmp/ross3d_parity
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from sem3r.models.ross3d import (
    Ross3D,
    Ross3DConfig,
    SigLIPConfig,
    config_for_state_dict,
    split_training_only,
)
from sem3r.models.ross3d.position_encoding import (
    resize_crop_points,
    world_points_from_depth,
)
from sem3r.models.ross3d.preprocess import frame_pixel_values
from sem3r.models.ross3d.vision import spatial_pool
from sem3r.reconstruct.checkpoint import load_state_dict_strict
from sem3r.training.ross3d_objectives import bev_loss, cross_view_loss


def build(reference: Path, attn: str) -> Ross3D:
    doc = json.loads((reference / "config.json").read_text())
    vdoc = json.loads((reference / "vision_config.json").read_text())
    tdoc = json.loads((reference / "training_config.json").read_text())
    vision = SigLIPConfig(**{k: vdoc[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                  "num_attention_heads", "image_size", "patch_size", "layer_norm_eps",
                                                  "hidden_act")})
    weights = load_file(str(reference / "weights.safetensors"))
    cfg = Ross3DConfig.from_dict(doc, vision=vision, attn_implementation=attn, denoiser_width=tdoc["embed_dim"],
                                 im_start_id=286, im_end_id=287)
    cfg = config_for_state_dict(cfg, weights)
    model = Ross3D(cfg, training=True).eval()
    inference, skipped = split_training_only(weights)
    assert not skipped
    load_state_dict_strict(model, {**inference, **load_file(str(reference / "training_only.safetensors"))},
                           "official weights")
    return model


def diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def inference_case(model: Ross3D, ref: dict, meta: dict) -> tuple[list, list[int], list[int]]:
    rows_v = meta["tokenizer_len"]
    depth_hw = tuple(ref["depth_mm_uint16_as_int32"].shape[1:])
    px = frame_pixel_values(ref["frames_rgb_uint8"].numpy(), 384, depth_hw)
    depth = ref["depth_mm_uint16_as_int32"].float() / 1000
    K = ref["depth_cam2img"].float()[:3, :3].expand(depth.shape[0], 3, 3)
    pose = (ref["axis_align_matrix"].double() @ ref["pose_cam2world"].double()).float()
    raw = world_points_from_depth(depth, K, pose)
    wp = resize_crop_points(raw, 384)
    rows = [("pixel_values (preprocessing)", diff(px, ref["pixel_values"]), 1.0),
            ("world points 480x640 (unprojection)", diff(raw, ref["world_coords_raw"]),
             float(ref["world_coords_raw"].abs().max())),
            ("world points 384x384 (resize + crop)", diff(wp, ref["world_coords_384"]),
             float(ref["world_coords_384"].abs().max()))]
    ids = ref["input_ids"]
    proj = model.encode_frames(px)
    vis = model.visual_tokens(px, wp)
    pe = model.world_position_embedding
    out = model(ids, px, wp)
    embeds, _ = model.embed_prompt(ids, vis.embeds)
    for name, ours, theirs in [
        ("SigLIP features (layer -2)", model.model.vision_tower(px), ref["siglip_features"]),
        ("projector output", proj, ref["projector_out"]),
        ("bilinear pooling", spatial_pool(proj, model.config.vision.grid, 2), ref["pooled"]),
        ("per-token coordinates (avg)", pe.token_coordinates(wp), ref["coords_avg"]),
        ("3D position encoding", pe(wp), ref["pos_embed_3d"]),
        ("visual block (pooled + 3D encoding + newlines)", vis.embeds, ref["visual_tokens"]),
        ("LLM input embeddings", embeds, ref["inputs_embeds"]),
        ("final hidden states", out.hidden, ref["hidden_states"][-1]),
        ("logits", out.logits[:, :rows_v], ref["logits"]),
    ]:
        rows.append((name, diff(ours, theirs), float(theirs.abs().max())))
    official = meta["generated_ids"]
    ours = model.generate(ids, px, wp, max_new_tokens=len(official), stop_ids=[model.config.im_end_id])
    first = model(ids, px, wp, use_cache=True)
    steps, cur = [], first.logits[-1]
    for i, token in enumerate(official[:ref["generation_step_logits"].shape[0]]):
        steps.append(cur[:rows_v])
        cur = model.decode_step(token, first.cache)
    rows.append(("greedy step logits (KV cache)", diff(torch.stack(steps), ref["generation_step_logits"]),
                 float(ref["generation_step_logits"].abs().max())))
    return rows, ours, official


def training_case(model: Ross3D, ref: dict, meta: dict, rows_v: int) -> list:
    px, wp, ids = ref["pixel_values"], ref["world_coords_384"], ref["input_ids"]
    mask = ref["view_mask"].bool()
    out = model(ids, px, wp, frame_mask=mask)
    embeds, _ = model.embed_prompt(ids, out.visual.embeds)
    den = model.model.mm_inv_projector
    cond = den.condition(out.hidden[out.visual_index[~mask]])
    r = ref["denoiser_view_z"].shape[0] // cond.shape[0]
    eps_view = den(ref["denoiser_view_x_t"], ref["denoiser_view_t"], ref["denoiser_view_z"])
    eps_bev = den(ref["denoiser_bev_x_t"], ref["denoiser_bev_t"], ref["denoiser_bev_z"], bev=True)
    valid = ref["bev_loss_mask"].bool()
    losses = meta["losses"]
    ce = torch.nn.functional.cross_entropy(out.logits[:-1, :rows_v], ref["labels_expanded"][1:], ignore_index=-100)
    cv = cross_view_loss(eps_view, ref["inject_eps_view"])
    bev = bev_loss(eps_bev, ref["inject_eps_bev"], valid[:, :1])
    rows = []
    for name, ours, theirs in [
        ("LLM input embeddings (masked view)", embeds, ref["inputs_embeds"]),
        ("final hidden states", out.hidden, ref["llm_last_hidden"]),
        ("logits", out.logits[:, :rows_v], ref["logits"]),
        ("cross-view condition (ln_pre, visible views)", cond.repeat(r, 1, 1, 1), ref["denoiser_view_z"]),
        ("BEV condition", cond, ref["denoiser_bev_z"]),
        ("denoiser view eps prediction", eps_view, ref["denoiser_view_eps_pred"]),
        ("denoiser BEV eps prediction", eps_bev, ref["denoiser_bev_eps_pred"]),
        ("text CE loss", ce, torch.tensor(losses["text"])),
        ("cross-view loss", cv, torch.tensor(losses["cross_view"])),
        ("BEV loss", bev, torch.tensor(losses["bev"])),
    ]:
        rows.append((name, diff(ours, theirs), float(theirs.abs().max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="folder of the official reference outputs")
    parser.add_argument("--attn", choices=("eager", "sdpa"), default="eager", help="attention kernel of our model")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = build(args.reference, args.attn)
    print("| case | output | max abs diff | max abs value |")
    print("|---|---|---|---|")
    meta_a = json.loads((args.reference / "case_a_inference.json").read_text())
    rows, ours, official = inference_case(model, load_file(str(args.reference / "case_a_inference.safetensors")), meta_a)
    for name, d, scale in rows:
        print(f"| a | {name} | {d:.2e} | {scale:.3g} |")
    case_b = args.reference / "case_b_training.safetensors"
    if case_b.is_file():
        meta_b = json.loads((args.reference / "case_b_training.json").read_text())
        for name, d, scale in training_case(model, load_file(str(case_b)), meta_b, meta_a["tokenizer_len"]):
            print(f"| b | {name} | {d:.2e} | {scale:.3g} |")
    print(f"\ngreedy tokens: ours {ours}\n               official {official}  -> "
          f"{'identical' if ours == official else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
