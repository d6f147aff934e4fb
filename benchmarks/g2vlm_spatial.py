"""Small G2VLM on synthetic spatial QA: does the geometry expert help? (G2VLM's central claim, at CPU scale.)

Runs (each resumable, and skipped when its model folder exists):

1. ``sem3r synth``-style datasets of 4-view rooms on the ``walk`` camera path (``--train-scenes`` from
   seed 0, ``--test-scenes`` held out from seed 1000), ``--size`` pixels.
2. ``geo``: G2VLM stage 1, the geometry expert from scratch with the visual-geometry loss.
3. ``g2vlm``: stage 2 from ``geo``, cross-entropy on the spatial QA of the training rooms, geometry
   expert frozen (the paper's main recipe).
4. ``twin``: the semantic-expert-only model (no DINO, no geometry expert) trained from scratch with the
   same stage-2 data, steps and batch.
5. ``vggt``: the small VGGT trained with the same steps, batch and data as stage 1 (geometry baseline).

Then prints, on the held-out rooms:

* spatial QA per family (MRA for numbers, accuracy for choices) for (a) the twin, (b) small G2VLM, and
  (c) Sem3R's exact scene-graph engine on the same views with ground-truth instance masks, on oracle
  geometry and on G2VLM's own reconstruction (its depth and cameras, aligned to metres with the
  median ground-truth depth ratio per scene, ground-truth intrinsics);
* G2VLM's geometry against the small VGGT: depth AbsRel and delta<1.25 (per-scene median scale) and
  camera AUC@30.

Example:
    python benchmarks/g2vlm_spatial.py --out runs/g2vlm_bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from sem3r.data.synthetic import SynthConfig, write_dataset
from sem3r.eval import camera_metrics, depth_metrics
from sem3r.geometry.pose_encoding import pose_encoding_to_extri_intri
from sem3r.reasoning.g2vlm_chat import chat_ids, parse_number, recon_ids
from sem3r.reasoning.qa import FAMILIES, Answer, QAEngine
from sem3r.reasoning.questions import NUMERIC_FAMILIES, QuestionConfig, score_by_family
from sem3r.reasoning.scene_graph import build_scene_graph
from sem3r.reconstruct.feedforward import Sem3RGeometry
from sem3r.training.dataset import scene_folders
from sem3r.training.g2vlm import G2VLMTrainingConfig, train_g2vlm
from sem3r.training.g2vlm_data import load_qa_scene
from sem3r.training.geometry import GeometryTrainingConfig, train_geometry

QUESTIONS = {"per_family": 3, "min_pixels": 40}


def load_model(folder: Path):
    from sem3r.reconstruct.g2vlm import load_g2vlm

    model, tok = load_g2vlm(folder, device="cpu")
    return model.eval(), tok


def run_stage(out: Path, name: str, doc: dict, steps: int, batch: int, lr: float) -> tuple[Path, float]:
    """Train one model unless ``out/name/model`` exists; returns the folder and the minutes spent now."""
    folder = out / name / "model"
    if (folder / "model.safetensors").is_file():
        return folder, 0.0
    train = {"steps": steps, "batch_size": batch, "lr": lr, "warmup_steps": max(1, steps // 15), "log_every": 25,
             "ckpt_every": 250, "out_dir": str(out / name), "resume": True, "device": "cpu", "progress": True}
    start = time.perf_counter()
    if name == "vggt":
        cfg = GeometryTrainingConfig.from_dict({**doc, "loss": {"preset": "g2vlm"}, "train": train})
        train_geometry(cfg)
    else:
        train_g2vlm(G2VLMTrainingConfig.from_dict({**doc, "train": train}))
    return folder, (time.perf_counter() - start) / 60


def reply_to_answer(reply: str, family: str) -> Answer:
    """A model reply as an engine :class:`Answer` (first number for numeric families, the text otherwise)."""
    if family in NUMERIC_FAMILIES:
        value = parse_number(reply)
        return Answer("number", value) if value is not None else Answer("unknown", None)
    return Answer("choice", reply.strip())


@torch.no_grad()
def model_answers(model, tok, qa_scene, max_new_tokens: int = 24) -> list[Answer]:
    images = torch.from_numpy(qa_scene.images).permute(0, 3, 1, 2).float() / 255.0
    answers = []
    for q in qa_scene.questions:
        ids = chat_ids(tok, q.text)
        _, cache = model.prefill(torch.tensor(ids.system), torch.tensor(ids.user),
                                 images if model.config.geometry_expert else None,
                                 qa_scene.pixel_values, qa_scene.grid_thw)
        reply = tok.decode(model.generate(cache, ids.start, max_new_tokens), skip_special_tokens=True)
        answers.append(reply_to_answer(reply, q.family))
    return answers


@torch.no_grad()
def g2vlm_geometry(model, tok, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Depth ``(S, H, W)`` (local z) and cam_from_world ``(S, 3, 4)`` from the reconstruction pass."""
    out = model.reconstruct(images, torch.tensor(recon_ids(tok)))
    c2w = out["camera_poses"].double()
    return out["local_points"][..., 2].numpy(), torch.linalg.inv(c2w)[:, :3].numpy()


def engine_answers(scene, questions) -> list[Answer]:
    engine = QAEngine(build_scene_graph(scene))
    return [engine.answer(q.query) for q in questions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/g2vlm_bench"))
    parser.add_argument("--train-scenes", type=int, default=240)
    parser.add_argument("--test-scenes", type=int, default=24)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--geo-steps", type=int, default=1500)
    parser.add_argument("--qa-steps", type=int, default=1000)
    parser.add_argument("--geo-batch", type=int, default=4)
    parser.add_argument("--qa-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    synth = {"num_views": 4, "height": args.size, "width": args.size, "camera_path": "walk", "num_points": 20_000}
    train_root, test_root = args.out / "train_data", args.out / "test_data"
    write_dataset(train_root, args.train_scenes, SynthConfig(seed=0, **synth))
    write_dataset(test_root, args.test_scenes, SynthConfig(seed=1000, **synth))
    size = [args.size, args.size]
    base = {"dataset_root": str(train_root), "image_size": size, "vit_size": args.size, "questions": QUESTIONS}
    geo_doc = {**base, "stage": "geometry", "model": "small", "min_views": 2, "max_views": 4}
    minutes = {}
    geo, minutes["geo"] = run_stage(args.out, "geo", geo_doc, args.geo_steps, args.geo_batch, 5e-4)
    g2, minutes["g2vlm"] = run_stage(args.out, "g2vlm", {**base, "stage": "joint", "model": str(geo)},
                                     args.qa_steps, args.qa_batch, 1e-3)
    twin, minutes["twin"] = run_stage(args.out, "twin", {**base, "stage": "joint", "model": "small",
                                                         "geometry_expert": False}, args.qa_steps, args.qa_batch, 1e-3)
    vggt_doc = {"dataset_root": str(train_root), "model": "small", "image_size": size, "min_views": 2, "max_views": 4}
    vggt, minutes["vggt"] = run_stage(args.out, "vggt", vggt_doc, args.geo_steps, args.geo_batch, 5e-4)

    g2_model, g2_tok = load_model(g2)
    twin_model, twin_tok = load_model(twin)
    vggt_model = Sem3RGeometry.from_pretrained(vggt, device="cpu").model.eval()
    qcfg = QuestionConfig(**QUESTIONS)
    questions, answers = [], {k: [] for k in ("twin", "g2vlm", "oracle", "own")}
    geometry = {"g2vlm": [], "vggt": []}
    from sem3r.scene import Scene

    folders, _ = scene_folders(test_root, 4)
    for folder in folders:
        qa = load_qa_scene(folder, 4, tuple(size), args.size, g2_model.config.vit, qcfg)
        questions += qa.questions
        answers["twin"] += model_answers(twin_model, twin_tok, qa)
        answers["g2vlm"] += model_answers(g2_model, g2_tok, qa)
        scene = Scene.load(folder).select_views(slice(0, 4))
        answers["oracle"] += engine_answers(scene, qa.questions)
        images = torch.from_numpy(scene.images).permute(0, 3, 1, 2).float() / 255.0
        depth, cams = g2vlm_geometry(g2_model, g2_tok, images)
        gt_depth = scene.depth
        valid = gt_depth > 0
        scale = float(np.median(gt_depth[valid] / np.maximum(depth[valid], 1e-6)))
        own = Scene.load(folder).select_views(slice(0, 4))
        own.depth = (depth * scale).astype(np.float32)
        cams = cams.copy()
        cams[:, :, 3] *= scale
        own.cam_from_world = cams.astype(np.float64)
        own.world_points = None
        answers["own"] += engine_answers(own, qa.questions)
        gt_rel = scene.cam_from_world
        geometry["g2vlm"].append((depth_metrics(depth, gt_depth, alignment="median"), camera_metrics(cams, gt_rel)))
        with torch.inference_mode():
            out = vggt_model(images[None])
        v_cams, _ = pose_encoding_to_extri_intri(out["pose_enc"][0], tuple(images.shape[-2:]))
        geometry["vggt"].append((depth_metrics(out["depth"][0, ..., 0].numpy(), gt_depth, alignment="median"),
                                 camera_metrics(v_cams.numpy().astype(np.float64), gt_rel)))

    tables = {k: score_by_family(questions, v) for k, v in answers.items()}
    print(f"budget (CPU, {args.threads} threads): stage 1 {args.geo_steps} steps x batch {args.geo_batch}; "
          f"stage 2 and twin {args.qa_steps} steps x batch {args.qa_batch}; VGGT {args.geo_steps} x {args.geo_batch}; "
          f"minutes this run {json.dumps({k: round(v, 1) for k, v in minutes.items()})}")
    print(f"held-out: {len(folders)} rooms x 4 views ({args.size}px, walk path), {len(questions)} questions\n")
    print("| family | metric | n | (a) twin | (b) G2VLM | (c) engine, oracle geometry | (c) engine, G2VLM geometry |")
    print("|---|---|---|---|---|---|---|")
    for fam in FAMILIES:
        if fam not in tables["twin"]:
            continue
        kind, n, _ = tables["twin"][fam]
        cells = " | ".join(f"{tables[k][fam][2]:.3f}" for k in ("twin", "g2vlm", "oracle", "own"))
        print(f"| {fam} | {kind} | {n} | {cells} |")
    for label, numeric in (("mean of numeric families", True), ("mean of choice families", False)):
        cells = []
        for k in ("twin", "g2vlm", "oracle", "own"):
            rows = [(n, s) for f, (_, n, s) in tables[k].items() if (f in NUMERIC_FAMILIES) == numeric]
            cells.append(f"{sum(n * s for n, s in rows) / max(sum(n for n, _ in rows), 1):.3f}")
        print(f"| {label} | | | {' | '.join(cells)} |")
    print("\n| geometry (held-out) | AbsRel | delta<1.25 | AUC@30 |")
    print("|---|---|---|---|")
    for name, rows in geometry.items():
        d = np.mean([[r[0]["abs_rel"], r[0]["delta_1.25"], r[1]["auc@30"]] for r in rows], axis=0)
        print(f"| {name} | {d[0]:.4f} | {d[1]:.4f} | {d[2]:.4f} |")


if __name__ == "__main__":
    main()
