"""Small ROSS3D on synthetic spatial QA: do the reconstructive objectives help? (ROSS3D's ablation, at CPU scale.)

The same small LMM (:meth:`Ross3DConfig.small` with a character tokenizer, 70x70 frames, 4 views, the 3D position
encoding from ground-truth depth and poses) and the same budget (steps, batch, learning rate) trained four ways:

* ``text``: answer cross-entropy only;
* ``cv``: + cross-view reconstruction (``view_mask_ratio`` 0.25, masking every ``--mask-every`` steps);
* ``bev``: + BEV reconstruction (the room's top-down render of the shown views);
* ``both``: + both (the paper's recipe),

each with ``--seeds`` seeds, on a ``sem3r synth`` dataset (``--train-scenes`` rooms from seed 0, ``--test-scenes``
held-out rooms from seed 1000, walk camera path). Targets are pixels folded into the denoiser's channels
(no FLUX VAE at this scale; see :mod:`sem3r.training.ross3d`). Evaluation on the held-out rooms per QA family:
MRA for numeric families, accuracy for choices (:func:`sem3r.reasoning.questions.score_by_family`), greedy
replies parsed like ``benchmarks/g2vlm_spatial.py``; mean and spread (std over seeds). Reference: Sem3R's exact
scene-graph engine (:class:`~sem3r.reasoning.qa.QAEngine`) on the ground-truth scene of the same views.

Every run is resumable and skipped when its model folder exists; evaluations are cached as JSON.

Example:
    python benchmarks/ross3d_ablation.py --out runs/ross3d_ablation --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from sem3r.data.synthetic import SynthConfig, write_dataset
from sem3r.errors import Sem3RError
from sem3r.reasoning.g2vlm_chat import (
    IM_END,
    IM_START,
    encode,
    parse_number,
    special_id,
)
from sem3r.reasoning.qa import Answer, QAEngine
from sem3r.reasoning.questions import NUMERIC_FAMILIES, QuestionConfig, score_by_family
from sem3r.reasoning.scene_graph import build_scene_graph
from sem3r.training.dataset import scene_folders
from sem3r.training.ross3d import (
    Ross3DQADataset,
    Ross3DTrainingConfig,
    load_scene_questions,
    question_prompt,
    train_ross3d,
)

QUESTIONS = {"per_family": 3, "min_pixels": 40}
VARIANTS = {"text": (False, False), "cv": (True, False), "bev": (False, True), "both": (True, True)}


def reply_to_answer(reply: str, family: str) -> Answer:
    """A model reply as an engine :class:`Answer` (first number for numeric families, the text otherwise)."""
    if family in NUMERIC_FAMILIES:
        value = parse_number(reply)
        return Answer("number", value) if value is not None else Answer("unknown", None)
    return Answer("choice", reply.strip())


def make_data(root: Path, n: int, seed: int, size: int, views: int) -> Path:
    if not (root / "done").is_file():
        write_dataset(root, n, SynthConfig(seed=seed, num_views=views, height=size, width=size, num_points=5000,
                                           camera_path="walk"), progress=True)
        (root / "done").write_text("ok")
    return root


def run(out: Path, name: str, data: Path, args, cross_view: bool, bev: bool, seed: int) -> tuple[Path, float]:
    folder = out / name / "model"
    if (folder / "model.safetensors").is_file():
        return folder, 0.0
    cfg = Ross3DTrainingConfig.from_dict({
        "dataset_root": str(data), "num_views": args.views, "cross_view": cross_view, "bev": bev,
        "view_mask_every": args.mask_every, "questions": QUESTIONS,
        "train": {"steps": args.steps, "batch_size": args.batch, "lr": args.lr, "warmup_steps": max(1, args.steps // 15),
                  "log_every": 25, "ckpt_every": 100, "out_dir": str(out / name), "resume": True, "device": "cpu",
                  "seed": seed, "progress": False}})
    start = time.perf_counter()
    train_ross3d(cfg)
    return folder, (time.perf_counter() - start) / 60


@torch.no_grad()
def evaluate(folder: Path, test: Path, views: int, max_new_tokens: int = 16) -> list[dict]:
    from sem3r.models.ross3d.prompt import chat_ids
    from sem3r.reasoning.ross3d_loading import load_ross3d

    cache = folder.parent / "eval.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    model, tok = load_ross3d(folder, device="cpu")
    model.eval()
    ds = Ross3DQADataset(test, tok, views, model.config.vision.image_size, QuestionConfig(**QUESTIONS), progress=False)
    start, end = special_id(tok, IM_START), special_id(tok, IM_END)
    rows = []
    for s, (inputs, qs) in enumerate(zip(ds.scenes, ds.questions)):
        for q in qs:
            ids = chat_ids(lambda t: encode(tok, t), question_prompt(q.text), start, end)
            reply = tok.decode(model.generate(torch.tensor(ids), inputs["pixel_values"], inputs["world_points"],
                                              max_new_tokens), skip_special_tokens=True)
            rows.append({"scene": s, "family": q.family, "reply": reply})
    cache.write_text(json.dumps(rows))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ross3d_ablation"))
    parser.add_argument("--train-scenes", type=int, default=120)
    parser.add_argument("--test-scenes", type=int, default=20)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", type=int, default=56, help="rendered image side (frames are resized to 70)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--mask-every", type=int, default=1, help="cross-view masking every k steps (official 4)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default="text,cv,bev,both")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = args.out
    train = make_data(out / "data_train", args.train_scenes, 0, args.size, args.views)
    test = make_data(out / "data_test", args.test_scenes, 1000, args.size, args.views)
    variants = [v for v in args.variants.split(",") if v]
    minutes, results = {}, {}
    for v in variants:
        for seed in range(args.seeds):
            name = f"{v}_s{seed}"
            folder, minutes[name] = run(out, name, train, args, *VARIANTS[v], seed)
            results[name] = evaluate(folder, test, args.views)
    # reference: the exact engine on the ground-truth scenes of the same views
    folders, _ = scene_folders(test, args.views)
    questions, engine = [], []
    for f in folders:
        try:
            scene, qs = load_scene_questions(f, args.views, QuestionConfig(**QUESTIONS))
        except Sem3RError:  # no object in the shown views: skipped by the dataset too
            continue
        eng = QAEngine(build_scene_graph(scene))
        questions += qs
        engine += [eng.answer(q.query) for q in qs]
    ref = score_by_family(questions, engine)
    scores = {}
    for name, rows in results.items():
        answers = [reply_to_answer(r["reply"], r["family"]) for r in rows]
        scores[name] = score_by_family(questions, answers)
    print(f"\nbudget: {args.steps} steps x batch {args.batch} per run, lr {args.lr}, masking every {args.mask_every} "
          f"step(s); {args.train_scenes} train / {args.test_scenes} test rooms x {args.views} views "
          f"({len(questions)} test questions); CPU, {torch.get_num_threads()} threads; "
          f"training minutes this call: {sum(minutes.values()):.2f} "
          f"(per run: {', '.join(f'{k} {m:.2f}' for k, m in minutes.items() if m)})")
    head = " | ".join(f"{v} (mean ± std)" for v in variants)
    print(f"\n| family | metric | n | {head} | engine, GT scene |")
    print("|---|---|---|" + "---|" * len(variants) + "---|")
    means = {v: [] for v in variants}
    for fam, (kind, n, ref_score) in ref.items():
        cells = []
        for v in variants:
            vals = [scores[f"{v}_s{s}"][fam][2] for s in range(args.seeds) if fam in scores[f"{v}_s{s}"]]
            means[v].append(np.mean(vals))
            cells.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f}")
        print(f"| {fam} | {kind} | {n} | {' | '.join(cells)} | {ref_score:.3f} |")
    ref_mean = np.mean([r[2] for r in ref.values()])
    print(f"| **mean over families** | | {len(questions)} | {' | '.join(f'{np.mean(means[v]):.3f}' for v in variants)} "
          f"| {ref_mean:.3f} |")


if __name__ == "__main__":
    main()
