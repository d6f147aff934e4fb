"""Instance spatial tracking on held-out synthetic scenes (IGGT section 4): T-mIoU and T-SR per method.

1. Writes a training set and a held-out set of synthetic rooms (disjoint seeds; several instances
   per category; the held-out views follow the ``random_large`` camera path: wide baselines, large
   rotations), unless they exist.
2. Trains the small IGGT with :func:`sem3r.training.train_iggt` on the config
   ``benchmarks/configs/iggt_small.json`` (the bounded budget; ``--steps`` overrides it; resumable:
   rerun after an interruption), unless ``--checkpoint`` names a trained model.
3. On every held-out scene, with the scene's own (oracle) geometry, segments with

   * ``iggt``: the trained model's instance features clustered over all views jointly,
   * ``iggt (untrained)``: the same architecture and initialisation before training (control),
   * ``perview``: the trained model's features clustered view by view (no association),
   * ``lift (oversegment)``: classical 2D over-segmentation lifted and merged by view consensus,
   * ``lift (gt 2D masks)``: the ground-truth 2D masks with per-view random ids lifted and merged
     (the upper bound of the association step: perfect 2D masks, only identity is lost),
   * ``cluster (oracle features)``: the ``iggt`` clustering applied to ideal features (a random unit
     vector per ground-truth instance plus noise 0.05): what the clustering recovers when the
     features are right, i.e. the ceiling the trained model is measured against,
   * ``gt masks``: the ground truth itself (sanity check of the metric: 1.0),

   and prints a table of T-mIoU / T-SR (:func:`sem3r.eval.tracking_metrics`, Hungarian identity
   matching, success IoU > 0.5) averaged over scenes, with the seconds per scene (model inference
   included for the rows that use a model).

Example:
    python benchmarks/instance_tracking.py --out runs/bench_tracking
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from sem3r.data.synthetic import SynthConfig, write_dataset
from sem3r.eval import tracking_metrics
from sem3r.instances import predict_instance_features, segment
from sem3r.reconstruct.feedforward import Sem3RGeometry
from sem3r.scene import Scene
from sem3r.training.iggt import IGGTTrainingConfig, build_iggt, train_iggt

CONFIG = Path(__file__).parent / "configs" / "iggt_small.json"


def held_out_scenes(root: Path) -> list[Path]:
    """Scene folders of a dataset written by ``write_dataset``, in manifest order."""
    manifest = json.loads((root / "manifest.json").read_text())
    return [root / e["folder"] for e in manifest["scenes"] if e.get("complete")]


def oracle_features(scene: Scene, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """``(N, H, W, 8)`` unit features: one random direction per ground-truth instance (structure: per
    class), plus Gaussian noise of standard deviation ``noise``."""
    rng = np.random.default_rng(seed)
    key = np.where(scene.instance_masks >= 0, scene.instance_masks + 64, scene.semantic_masks + 1)
    table = rng.normal(size=(int(key.max()) + 1, 8))
    feats = table[key] / np.linalg.norm(table[key], axis=-1, keepdims=True)
    feats = feats + rng.normal(scale=noise, size=feats.shape)
    return (feats / np.linalg.norm(feats, axis=-1, keepdims=True)).astype(np.float16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_tracking"))
    parser.add_argument("--config", type=Path, default=CONFIG, help="IGGT training config (JSON)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a trained IGGT model folder (skips training)")
    parser.add_argument("--steps", type=int, default=None, help="override the config's training steps")
    parser.add_argument("--train-scenes", type=int, default=48)
    parser.add_argument("--test-scenes", type=int, default=6)
    parser.add_argument("--test-views", type=int, default=10)
    parser.add_argument("--train-size", type=int, nargs=2, default=(168, 224), metavar=("H", "W"))
    parser.add_argument("--test-size", type=int, nargs=2, default=(192, 256), metavar=("H", "W"))
    parser.add_argument("--resolution", type=int, default=224, help="model resolution at inference (multiple of 14)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    doc = json.loads(args.config.read_text())
    train_root, test_root = args.out / "train_data", args.out / "test_data"
    h, w = args.train_size
    write_dataset(train_root, args.train_scenes, SynthConfig(seed=0, num_views=8, height=h, width=w,
                                                             camera_path="random_large", num_points=0))
    h, w = args.test_size
    write_dataset(test_root, args.test_scenes, SynthConfig(seed=500_000, num_views=args.test_views, height=h, width=w,
                                                           camera_path="random_large", num_points=0))
    doc["dataset_root"] = str(train_root)
    doc.setdefault("train", {})["out_dir"] = str(args.out / "run")
    doc["train"]["resume"] = True
    if args.steps is not None:
        doc["train"]["steps"] = args.steps
    cfg = IGGTTrainingConfig.from_dict(doc)
    minutes = 0.0
    model_dir = args.checkpoint
    if model_dir is None:
        start = time.perf_counter()
        train_iggt(cfg)
        minutes = (time.perf_counter() - start) / 60
        model_dir = args.out / "run" / "model"
    trained = Sem3RGeometry.from_pretrained(model_dir, device="cpu")
    torch.manual_seed(cfg.train.seed)  # as train_iggt does before building the model: the same initialisation
    untrained = Sem3RGeometry(build_iggt(cfg), device="cpu")

    methods = ["iggt", "iggt (untrained)", "perview", "lift (oversegment)", "lift (gt 2D masks)",
               "cluster (oracle features)", "gt masks"]
    scores = {m: [] for m in methods}
    seconds = {m: [] for m in methods}
    for folder in held_out_scenes(test_root):
        scene = Scene.load(folder)
        gt = scene.instance_masks
        start = time.perf_counter()
        featured = predict_instance_features(scene, trained, args.resolution)
        inference = time.perf_counter() - start
        oracle = scene.select_views(slice(None))
        oracle.instance_features = oracle_features(scene)
        inputs = {"iggt": featured, "perview": featured, "cluster (oracle features)": oracle}
        for name in methods:
            start = time.perf_counter()
            if name == "gt masks":
                pred = gt
            elif name == "iggt (untrained)":
                pred = segment(predict_instance_features(scene, untrained, args.resolution), "iggt").instance_masks
            elif name.startswith("lift"):
                pred = segment(scene, "lift", source="gt" if "gt" in name else "oversegment").instance_masks
            else:
                pred = segment(inputs[name], "perview" if name == "perview" else "iggt").instance_masks
            seconds[name].append(time.perf_counter() - start + (inference if name in ("iggt", "perview") else 0.0))
            scores[name].append(tracking_metrics(pred, gt))

    train = cfg.train
    print(f"small IGGT: {train.steps} steps x batch {train.batch_size} ({cfg.min_views}-{cfg.max_views} views, "
          f"{cfg.image_size or args.train_size}), {args.train_scenes} training scenes, "
          f"{minutes:.1f} min this run (0 if already trained); inference at {args.resolution}")
    print(f"held-out: {args.test_scenes} scenes x {args.test_views} views at {args.test_size[0]}x{args.test_size[1]}, "
          "random_large camera path, oracle geometry")
    header = f"{'method':<22} {'T-mIoU':>8} {'T-SR':>8} {'objects':>8} {'s/scene':>8}"
    print(header)
    print("-" * len(header))
    results = {}
    for name in methods:
        t_miou = float(np.mean([s["t_miou"] for s in scores[name]]))
        t_sr = float(np.mean([s["t_sr"] for s in scores[name]]))
        objects = int(np.sum([s["num_objects"] for s in scores[name]]))
        results[name] = {"t_miou": t_miou, "t_sr": t_sr, "objects": objects, "seconds": float(np.mean(seconds[name]))}
        print(f"{name:<22} {t_miou:>8.4f} {t_sr:>8.4f} {objects:>8d} {np.mean(seconds[name]):>8.2f}")
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
