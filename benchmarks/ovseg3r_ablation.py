"""OVSeg3R ablation on held-out synthetic scenes: ScanNet-protocol 3D instance AP per training scheme.

1. Writes a training set and a held-out set of synthetic rooms (disjoint seeds, ``random_large``
   camera paths: wide baselines), unless they exist.
2. Trains the 3D instance segmenter three times from the same initialisation and budget
   (``benchmarks/configs/segmenter3d_small.json``; ``--steps`` overrides it; resumable), with the
   per-view 2D masks as the only annotation:

   * ``VIP + IBSp``: OVSeg3R's scheme,
   * ``no VIP``: every prediction supervised by every view's annotations (the paper's ablation),
   * ``geometric superpoints``: VIP, but superpoints without the 2D instance-boundary cuts,

3. and compares, on every held-out scene reconstructed by the oracle backend (the rendered depth
   and cameras; ``--geometry CHECKPOINT`` reconstructs with a trained feed-forward model instead),
   with the training-free path (per-view 2D masks lifted, merged by view consensus and snapped to
   IBSp superpoints: ``lift + superpoints``).

The 2D segmenter is the ``gt`` mask source: the rendered instance masks with unrelated ids in every
view and each mask's class, degraded as a real 2D open-vocabulary detector errs (each view
independently misses an object with probability ``--miss-rate``, merges two touching objects with
probability ``--merge-rate`` and drops objects under ``--min-area`` pixels), for training and
testing alike; one more row gives the training-free path the perfect 2D masks. AP follows the
ScanNet protocol (:class:`sem3r.eval.InstanceAPEvaluator`) on the points of the reconstruction (one
per 4 cm voxel; ground truth = majority of the rendered 3D-consistent instance ids), with
``min_region_size`` lowered from ScanNet's 100 mesh vertices to ``--min-region`` points, over the
29 object categories, split into head / common / tail by frequency; ``wall-flat`` averages the
paintings, posters, whiteboards and clocks (geometrically non-salient, the case IBSp exists for).

Example:
    python benchmarks/ovseg3r_ablation.py --out runs/bench_ovseg3r
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from sem3r.data.synthetic import (
    CATEGORIES,
    CATEGORY_SPLITS,
    CLASS_NAMES,
    WALL_FLAT_CATEGORIES,
    SynthConfig,
    write_dataset,
)
from sem3r.eval import InstanceAPEvaluator
from sem3r.scene import Scene
from sem3r.semantics.segment3d import Segment3DConfig, segment3d
from sem3r.training.dataset import scene_folders
from sem3r.training.segmenter3d import Segmenter3DTrainingConfig, train_segmenter3d

CONFIG = Path(__file__).parent / "configs" / "segmenter3d_small.json"
VARIANTS = {
    "VIP + IBSp": {"loss": {"vip": True}, "inputs": {"ibsp": True}},
    "no VIP": {"loss": {"vip": False}, "inputs": {"ibsp": True}},
    "geometric superpoints": {"loss": {"vip": True}, "inputs": {"ibsp": False}},
}


def variant_config(base: dict, name: str, out: Path, data: Path, steps: int | None,
                   mask_options: dict, seed: int) -> Segmenter3DTrainingConfig:
    """The base run config with one variant's changes (and the training seed)."""
    doc = copy.deepcopy(base)
    doc["dataset_root"] = str(data)
    doc["mask_options"] = mask_options
    for section, change in VARIANTS[name].items():
        doc.setdefault(section, {}).update(change)
    folder = name.replace(" ", "_").replace("+", "plus") + (f"_seed{seed}" if seed else "")
    doc.setdefault("train", {})["out_dir"] = str(out / "runs" / folder)
    doc["train"]["resume"] = True
    doc["train"]["seed"] = seed
    if steps is not None:
        doc["train"]["steps"] = steps
    return Segmenter3DTrainingConfig.from_dict(doc)


def reconstruct(scene: Scene, geometry: str | None, resolution: int) -> Scene:
    """The oracle reconstruction (the scene itself), or a feed-forward one at model resolution with the
    ground-truth masks and depth resampled to its pixels (nearest pixel through the resize and crop)
    and its scale aligned to metres by the median ratio of true to predicted depth (the reconstruction
    is up to scale; the voxels and superpoints are in metres)."""
    if geometry is None:
        return scene
    from sem3r.reconstruct import reconstruct as run
    from sem3r.reconstruct.preprocess import PreprocessConfig, preprocess_images

    preprocess = PreprocessConfig(target_size=resolution)
    pred = run(scene, "feedforward", checkpoint=geometry, preprocess=preprocess, device="cpu")
    prep = preprocess_images(list(scene.images), preprocess)
    h, w = pred.height, pred.width
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    resampled = {}
    for name in ("instance_masks", "semantic_masks", "depth"):
        source = getattr(scene, name)
        out = np.full((scene.num_views, h, w), -1 if name != "depth" else 0, source.dtype)
        for v in range(scene.num_views):
            (sx, sy), (ox, oy) = prep.scale[v], prep.offset[v]
            x = np.rint((xs - ox + 0.5) / sx - 0.5).astype(int)
            y = np.rint((ys - oy + 0.5) / sy - 0.5).astype(int)
            inside = (x >= 0) & (x < scene.width) & (y >= 0) & (y < scene.height)
            out[v][inside] = source[v][y[inside], x[inside]]
        resampled[name] = out
    true_depth = resampled.pop("depth")
    both = (true_depth > 0) & (pred.depth > 0)
    scale = float(np.median(true_depth[both] / pred.depth[both]))
    pose = pred.cam_from_world.copy()
    pose[:, :, 3] *= scale
    return dataclasses.replace(
        pred, **resampled, depth=pred.depth * scale, cam_from_world=pose,
        world_points=None if pred.world_points is None else pred.world_points * scale,
        metadata={**pred.metadata, "class_names": scene.class_names, "metric": True},
    )


def evaluate(result, scene: Scene, evaluator: InstanceAPEvaluator) -> None:
    """Add one scene's predictions to the evaluator (classes mapped from CLASS_NAMES to CATEGORIES)."""
    corr = result.inputs.correspondence
    gt_ids = corr.point_labels(scene.instance_masks)
    gt_sem = corr.point_labels(scene.semantic_masks)
    to_cat = np.array([CATEGORIES.index(c) if c in CATEGORIES else -1 for c in result.class_names] + [-1])
    gt_cls = np.where(gt_sem >= 0, np.array([CATEGORIES.index(c) if c in CATEGORIES else -1 for c in CLASS_NAMES])[gt_sem], -1)
    pred_cls = to_cat[np.where(result.classes >= 0, result.classes, len(result.class_names))]
    keep = pred_cls >= 0
    evaluator.add_scene(result.masks[keep], pred_cls[keep], result.scores[keep], gt_ids, gt_cls)


def summary(evaluator: InstanceAPEvaluator) -> dict[str, float]:
    """AP / AP50 / AP25 overall and per split, plus the wall-flat classes' AP50."""
    splits = {c: split for split, names in CATEGORY_SPLITS.items() for c in names}
    out = evaluator.compute(splits)
    ap50 = evaluator.class_ap()[0]  # rows: IoU 0.50, 0.55, ..., 0.90, then 0.25
    flat = ap50[[CATEGORIES.index(c) for c in WALL_FLAT_CATEGORIES]]
    out["ap50_wallflat"] = float(np.nanmean(flat)) if np.isfinite(flat).any() else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ovseg3r"))
    parser.add_argument("--config", type=Path, default=CONFIG, help="segmenter training config (JSON)")
    parser.add_argument("--steps", type=int, default=None, help="override the config's training steps")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0, help="training seed (initialisation, queries, 2D mask errors of the training scenes)")
    parser.add_argument("--train-scenes", type=int, default=40)
    parser.add_argument("--test-scenes", type=int, default=6)
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, default=(192, 256), metavar=("H", "W"))
    parser.add_argument("--min-region", type=int, default=10, help="minimum points of a counted instance")
    parser.add_argument("--geometry", default=None, help="feed-forward checkpoint (default: oracle geometry)")
    parser.add_argument("--geometry-resolution", type=int, default=224, help="feed-forward model resolution")
    parser.add_argument("--miss-rate", type=float, default=0.2, help="2D segmenter: chance a view misses an object")
    parser.add_argument("--merge-rate", type=float, default=0.1, help="2D segmenter: chance two touching objects merge")
    parser.add_argument("--min-area", type=int, default=20, help="2D segmenter: smallest object in pixels")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    synth = {"num_views": args.views, "height": args.size[0], "width": args.size[1], "camera_path": "random_large",
             "num_points": 0}
    train_root, test_root = args.out / "train", args.out / "test"
    write_dataset(train_root, args.train_scenes, SynthConfig(seed=0, **synth))
    write_dataset(test_root, args.test_scenes, SynthConfig(seed=10_000, **synth))
    base = json.loads(args.config.read_text())

    noise = {"miss_rate": args.miss_rate, "merge_rate": args.merge_rate, "min_area": args.min_area}
    models, budgets = {}, {}
    for name in args.variants:
        config = variant_config(base, name, args.out, train_root, args.steps, noise, args.seed)
        timing = Path(config.train.out_dir) / "train_seconds.json"
        start = time.perf_counter()
        models[name] = train_segmenter3d(config)
        if not timing.is_file():  # a finished run that is rerun keeps the time of its training
            timing.write_text(json.dumps(time.perf_counter() - start))
        log = [json.loads(line) for line in (Path(config.train.out_dir) / "log.jsonl").read_text().splitlines()]
        budgets[name] = (config.train.steps, json.loads(timing.read_text()), log[-1]["loss"] if log else float("nan"))

    methods = {name: Segment3DConfig(checkpoint=str(path), mask_options=noise) for name, path in models.items()}
    methods["lift + superpoints (training-free)"] = Segment3DConfig(mask_options=noise)
    methods["lift + superpoints, perfect 2D masks"] = Segment3DConfig()
    evaluators = {name: InstanceAPEvaluator(CATEGORIES, min_region_size=args.min_region) for name in methods}
    seconds = {name: 0.0 for name in methods}
    folders, _ = scene_folders(test_root)
    for folder in folders:
        scene = reconstruct(Scene.load(folder), args.geometry, args.geometry_resolution)
        for name, config in methods.items():
            start = time.perf_counter()
            result = segment3d(scene, list(CLASS_NAMES), config)
            seconds[name] += time.perf_counter() - start
            evaluate(result, scene, evaluators[name])

    print(f"\nheld-out scenes: {len(folders)} x {args.views} views at {args.size[0]}x{args.size[1]}, "
          f"geometry: {'oracle' if args.geometry is None else args.geometry}, 2D segmenter: miss {args.miss_rate}, "
          f"merge {args.merge_rate}, min area {args.min_area} px")
    for name, (steps, secs, loss) in budgets.items():
        print(f"training budget {name}: {steps} steps, {secs / 60:.1f} min (incl. data preparation), final loss {loss:.3f}")
    cols = ["ap", "ap50", "ap25", "ap_head", "ap_common", "ap_tail", "ap50_head", "ap50_tail", "ap50_wallflat"]
    print(f"\n{'method':38s}" + "".join(f"{c:>14s}" for c in cols) + f"{'s/scene':>9s}")
    print("-" * (38 + 14 * len(cols) + 9))
    for name, evaluator in evaluators.items():
        row = summary(evaluator)
        print(f"{name:38s}" + "".join(f"{100 * row[c]:14.1f}" for c in cols) + f"{seconds[name] / len(folders):9.2f}")


if __name__ == "__main__":
    main()
