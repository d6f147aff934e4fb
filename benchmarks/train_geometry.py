"""Train the small geometry model on synthetic scenes and compare it on held-out scenes.

1. Writes a training set and a held-out set with ``sem3r.data.synthetic.write_dataset`` (disjoint
   seeds), unless they exist.
2. Trains ``VGGTConfig.small()`` with :func:`sem3r.training.train_geometry` for ``--steps`` steps
   (resumable: rerun the command after an interruption).
3. Evaluates on every held-out scene, on ``--eval-views`` of its views drawn with a fixed seed and
   expressed in the first drawn camera's frame: depth AbsRel and delta<1.25 (per-scene median scale alignment,
   :func:`sem3r.eval.depth_metrics`) and camera RRA@15 / RTA@15 / AUC@30 over all view pairs
   (:func:`sem3r.eval.camera_metrics`), for

   * ``constant``: depth 1 everywhere and every camera at the identity,
   * ``untrained``: the same architecture and initialisation before training,
   * ``trained``: after training,

   and prints a table (means over scenes).

Example:
    python benchmarks/train_geometry.py --steps 300 --out runs/bench_geometry
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
from sem3r.models.vggt import VGGT
from sem3r.reconstruct.feedforward import Sem3RGeometry
from sem3r.training import train_geometry
from sem3r.training.dataset import SyntheticGeometryDataset
from sem3r.training.geometry import GeometryTrainingConfig, build_model_config


def evaluate(model, dataset: SyntheticGeometryDataset, num_views: int) -> dict[str, float]:
    """Mean held-out metrics of ``model`` (``None``: the constant baseline)."""
    rows = []
    for index in range(len(dataset.folders)):
        sample = dataset.sample(index, 0, num_views)
        images, gt_depth = sample["images"], sample["depth"].numpy()
        gt_poses = sample["cam_from_world"].numpy().astype(np.float64)
        if model is None:
            depth = np.ones_like(gt_depth)
            poses = np.tile(np.eye(3, 4), (num_views, 1, 1))
        else:
            with torch.inference_mode():
                out = model(images[None])
            depth = out["depth"][0, ..., 0].numpy()
            poses, _ = pose_encoding_to_extri_intri(out["pose_enc"][0], tuple(images.shape[-2:]))
            poses = poses.numpy().astype(np.float64)
        d = depth_metrics(depth, gt_depth, valid=sample["valid_mask"].numpy(), alignment="median")
        c = camera_metrics(poses, gt_poses)
        rows.append([d["abs_rel"], d["delta_1.25"], c["rra@15"], c["rta@15"], c["auc@30"]])
    return dict(zip(["abs_rel", "delta_1.25", "rra@15", "rta@15", "auc@30"], np.mean(rows, axis=0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_geometry"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--train-scenes", type=int, default=40)
    parser.add_argument("--test-scenes", type=int, default=8)
    parser.add_argument("--size", type=int, default=112, help="square image side (multiple of 14)")
    parser.add_argument("--max-views", type=int, default=4)
    parser.add_argument("--eval-views", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--camera-path", default="walk")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--loss", default="vggt", help="loss preset: vggt or g2vlm")
    parser.add_argument("--loss-overrides", default="{}", help='JSON of loss config fields, e.g. {"camera_weight": 10}')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    synth = dict(num_views=8, height=args.size, width=args.size, camera_path=args.camera_path, num_points=20_000)
    train_root, test_root = args.out / "train_data", args.out / "test_data"
    write_dataset(train_root, args.train_scenes, SynthConfig(seed=0, **synth))
    write_dataset(test_root, args.test_scenes, SynthConfig(seed=100_000, **synth))

    cfg = GeometryTrainingConfig.from_dict({
        "dataset_root": str(train_root), "model": "small", "min_views": 2, "max_views": args.max_views,
        "loss": {"preset": args.loss, **json.loads(args.loss_overrides)},
        "train": {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "warmup_steps": max(1, args.steps // 10),
                  "ckpt_every": 50, "log_every": 10, "out_dir": str(args.out / "run"), "resume": True,
                  "device": args.device, "seed": 0},
    })
    start = time.perf_counter()
    train_geometry(cfg)
    minutes = (time.perf_counter() - start) / 60

    test = SyntheticGeometryDataset(test_root, args.eval_views, args.eval_views, None, seed=0)
    torch.manual_seed(cfg.train.seed)
    untrained = VGGT(build_model_config("small")).eval()
    trained = Sem3RGeometry.from_pretrained(args.out / "run" / "model", device="cpu").model
    results = {"constant": evaluate(None, test, args.eval_views),
               "untrained": evaluate(untrained, test, args.eval_views),
               "trained": evaluate(trained, test, args.eval_views)}
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    print(f"small VGGT, {args.loss} losses {args.loss_overrides}, {args.steps} steps x batch {args.batch_size} (2-{args.max_views} views, {args.size}x{args.size}), "
          f"{args.train_scenes} training scenes, {device}, {minutes:.1f} min this run (0 if already trained)")
    print(f"held-out: {args.test_scenes} scenes x {args.eval_views} views ({args.camera_path} path)")
    header = f"{'model':>10} {'AbsRel':>8} {'d<1.25':>8} {'RRA@15':>8} {'RTA@15':>8} {'AUC@30':>8}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(f"{name:>10} {r['abs_rel']:>8.4f} {r['delta_1.25']:>8.4f} {r['rra@15']:>8.4f} {r['rta@15']:>8.4f} {r['auc@30']:>8.4f}")
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
