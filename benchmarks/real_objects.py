"""Objects, not specks: instance segmentation without learned weights on clean and sensor-realistic rooms.

For held-out procedural rooms (seeds ``--seed .. --seed + rooms - 1``, never used for tuning),
rendered twice: **clean** (exact depth, world +z up) and **sensor** (``SynthConfig(sensor="kinect")``:
Kinect-like depth noise, quantisation and holes, noisy colour, world frame at the first camera so
gravity is unknown), every method segments the Scene with its ground-truth masks removed:

* ``geometric``: structure removed, superpoints grouped across convex / flat joins (no 2D masks);
* ``combined``: ``geometric`` plus the lifted ``oversegment`` 2D masks (what ``sem3r demo`` runs);
* ``lift``: the ``oversegment`` 2D masks lifted and merged across views;
* ``lift (old)``: the same with the over-segmentation settings of release 0.1 (no noise allowance,
  no size scaling, no normal smoothing): the baseline this benchmark replaces.

Metrics, averaged over rooms, on the Scene's valid pixels merged into 2 cm voxels (ground truth per
voxel: the majority of its pixels' exact labels):

* class-agnostic AP / AP50 / AP25 (:func:`sem3r.eval.object_metrics`: ScanNet protocol, every object
  one class, instances under 100 voxels ignored, prediction scores from the instance table);
* T-mIoU / T-SR (:func:`sem3r.eval.tracking_metrics`, per pixel, identities across views);
* predicted and ground-truth instance counts;
* ``struct``: the fraction of floor / wall / ceiling voxels labelled structure, ``obj->struct``: the
  fraction of object voxels labelled structure (flat wall objects are the usual ones);
* ``up err``: degrees between the detected up and the true up.

Example:
    python benchmarks/real_objects.py --rooms 6
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from common import size_arg
from tqdm import tqdm

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.eval import object_metrics, tracking_metrics
from sem3r.instances import segment
from sem3r.reconstruct.correspondence import CorrespondenceConfig, build_correspondence
from sem3r.scene import InstanceTable

OLD_OVERSEGMENT = {"k": 0.5, "min_size": 32, "reference_pixels": None, "depth_cut": 0.01, "depth_noise": 0.0,
                   "normal_sigma": 0.0}
"""The ``oversegment`` settings of release 0.1 in today's option names (pixels without depth are no
longer cuts in either; on these rooms that only matters for the sensor ones)."""

METHODS = {
    "geometric": ("geometric", {}),
    "combined": ("combined", {}),
    "lift": ("lift", {"source": "oversegment"}),
    "lift (old)": ("lift", {"source": "oversegment", "source_options": OLD_OVERSEGMENT}),
}


def _input(scene):
    """The Scene without its ground-truth masks and instance table."""
    meta = {k: v for k, v in scene.metadata.items() if k not in ("class_names", "objects")}
    return dataclasses.replace(scene, instance_masks=None, semantic_masks=None, instances=InstanceTable(),
                               metadata=meta)


def _angle(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def evaluate(pred, gt, corr, gt_ids, gt_struct, true_up) -> dict[str, float]:
    """One method's metrics on one room (see the module docstring)."""
    objects = object_metrics(pred, gt, corr)
    track = tracking_metrics(pred.instance_masks, gt.instance_masks)
    out = {"AP": objects["ap"], "AP50": objects["ap50"], "AP25": objects["ap25"], "T-mIoU": track["t_miou"],
           "T-SR": track["t_sr"], "pred": objects["predicted"], "gt": objects["ground_truth"]}
    structure = pred.metadata.get("structure")
    if structure is not None and pred.semantic_masks is not None:
        labelled = corr.point_labels(pred.semantic_masks) >= 0
        out["struct"] = float(labelled[gt_struct].mean())
        out["obj->struct"] = float(labelled[gt_ids >= 0].mean())
        out["up err"] = _angle(structure["up"], true_up)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=6, help="held-out rooms per condition")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first room")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=size_arg, default=(384, 512), help="image size HxW")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args()

    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    runs = [(cond, i) for cond in ("clean", "sensor") for i in range(args.rooms)]
    for cond, i in tqdm(runs, desc="rooms", unit="room"):
        h, w = args.size
        config = SynthConfig(seed=args.seed + i, num_views=args.views, height=h, width=w, num_points=0,
                             sensor="kinect" if cond == "sensor" else "none")
        gt = generate_scene(config).scene
        true_up = gt.metadata.get("gt_up", [0.0, 0.0, 1.0])
        scene = _input(gt)
        corr = build_correspondence(scene, CorrespondenceConfig(voxel_size=0.02))
        gt_ids = corr.point_labels(gt.instance_masks)
        gt_sem = corr.point_labels(gt.semantic_masks)
        gt_struct = (gt_sem >= 0) & (gt_sem < 3)
        for name in args.methods:
            method, options = METHODS[name]
            start = time.perf_counter()
            pred = segment(scene, method, **options)
            seconds.setdefault((cond, name), []).append(time.perf_counter() - start)
            results.setdefault((cond, name), []).append(evaluate(pred, gt, corr, gt_ids, gt_struct, true_up))

    columns = ["AP", "AP50", "AP25", "T-mIoU", "T-SR", "pred", "gt", "struct", "obj->struct", "up err"]
    print(f"\n{args.rooms} held-out rooms per condition (seeds {args.seed}..{args.seed + args.rooms - 1}), "
          f"{args.views} views at {args.size[0]}x{args.size[1]}; class-agnostic AP on 2 cm voxels\n")
    print("| rooms | method | " + " | ".join(columns) + " | s/room |")
    print("|---" * (len(columns) + 3) + "|")
    for (cond, name), rows in results.items():
        cells = []
        for col in columns:
            values = [r[col] for r in rows if col in r]
            if not values:
                cells.append("-")
            elif col == "up err":
                cells.append(f"{np.mean(values):.2f} (max {np.max(values):.2f})")
            elif col in ("pred", "gt"):
                cells.append(f"{np.mean(values):.1f}")
            else:
                cells.append(f"{np.nanmean(values):.3f}")
        print(f"| {cond} | {name} | " + " | ".join(cells) + f" | {np.mean(seconds[(cond, name)]):.1f} |")


if __name__ == "__main__":
    main()
