"""Benchmark of the ``colmap`` backend: camera accuracy and run time on synthetic scenes and 7-Scenes.

For every camera path, number of views and image size it generates ``--scenes`` synthetic rooms
(seeds 0, 1, ...), runs ``reconstruct(scene, "colmap")`` and prints one row per scene and the mean
of each group: registered views, view pairs with verified matches, RRA/RTA at 5/15/30 degrees and
AUC@30 (:func:`sem3r.eval.camera.camera_metrics`, over the registered views, so in the metrics'
similarity-invariant sense) and the wall time of the backend alone. Two ground-truth columns
describe how hard the views are to match: ``ovl``, the fraction of a view's pixels that its best
partner view also sees (depth reprojection, 5 cm + 2 % tolerance), and ``rot``, the rotation in
degrees between a view and that partner, both averaged over views. A scene where COLMAP
registers fewer than two views counts as 0 registered views and is left out of the metric means.
Synthetic intrinsics are exact, so they are passed to COLMAP (``--intrinsics estimate`` lets COLMAP
estimate a SIMPLE_RADIAL camera instead).

With the 7-Scenes sample present (``--seven-scenes``, default ``../shared/data/7scenes-sample``),
its 20 frames are reconstructed against their ground-truth poses twice: with the dataset's
intrinsics (fx = fy = 585) and with COLMAP's own estimate.

Usage:
    python benchmarks/colmap_synthetic.py --scenes 3 --views 8 10 --size 256x256 --path orbit walk random_large
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import size_arg

from sem3r.data.readers import read_7scenes
from sem3r.data.synthetic import CAMERA_PATHS, SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.eval.camera import camera_metrics
from sem3r.geometry.camera import unproject_depth
from sem3r.geometry.transforms import rotation_angle
from sem3r.geometry.visibility import observed_by_views
from sem3r.reconstruct import reconstruct
from sem3r.scene import Scene

METRICS = ("rra@5", "rra@15", "rra@30", "rta@5", "rta@15", "rta@30", "auc@30")
DEFAULT_SEVEN_SCENES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "7scenes-sample"



def view_overlap(scene: Scene, stride: int = 7) -> tuple[float, float]:
    """Mean over views of the co-visible fraction with the best partner view and the rotation (degrees) to it.

    Every ``stride``-th valid pixel of view ``i`` is unprojected with the true depth and tested
    against view ``j``'s depth map (:func:`~sem3r.geometry.visibility.observed_by_views`).
    """
    n = scene.num_views
    points = unproject_depth(scene.depth, scene.intrinsics, scene.cam_from_world)
    overlap = np.zeros((n, n))
    for i in range(n):
        sample = points[i][scene.depth[i] > 0][::stride]
        for j in range(n):
            if j != i:
                one = slice(j, j + 1)
                seen = observed_by_views(sample, scene.depth[one], scene.intrinsics[one], scene.cam_from_world[one], 0.05, 0.02)
                overlap[i, j] = seen.mean()
    best = overlap.argmax(axis=1)
    R = scene.cam_from_world[:, :, :3]
    angles = rotation_angle(np.swapaxes(R, 1, 2) @ R[best])
    return float(overlap.max(axis=1).mean()), float(angles.mean())


def evaluate(scene: Scene, **options) -> dict:
    """Run the colmap backend against the scene's true cameras and depth.

    Returns:
        registered count, verified pairs, overlap statistics, metrics (when two or more views
        registered) and the backend's seconds.
    """
    n = scene.num_views
    ovl, rot = view_overlap(scene)
    start = time.perf_counter()
    try:
        out = reconstruct(scene, "colmap", progress=False, **options)
    except Sem3RError:
        return {"registered": 0, "views": n, "pairs": None, "ovl": ovl, "rot": rot, "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    reg = np.array(out.metadata["registered"])
    row = {"registered": int(reg.sum()), "views": n, "pairs": out.metadata["sfm"]["num_verified_pairs"], "ovl": ovl, "rot": rot,
           "seconds": seconds}
    gt_cam_from_world = scene.cam_from_world
    row.update({k: v for k, v in camera_metrics(out.cam_from_world[reg], gt_cam_from_world[reg]).items() if k in METRICS})
    return row


HEADER = (
    f"{'scene':<30} {'HxW':>8} {'reg':>9} {'pairs':>7} {'ovl':>5} {'rot':>5} "
    + " ".join(f"{m.upper():>7}" for m in METRICS)
    + f" {'time s':>7}"
)


def format_row(name: str, size: str, row: dict) -> str:
    """One table line; a float ``registered`` is a group mean; metrics print as '-' when absent."""
    reg = row["registered"]
    reg_text = f"{reg:.1f}/{row['views']}" if isinstance(reg, float) else f"{reg}/{row['views']}"
    pairs = "-" if row["pairs"] is None else f"{row['pairs']}/{row['views'] * (row['views'] - 1) // 2}"
    metrics = " ".join(f"{row[m]:>7.3f}" if m in row else f"{'-':>7}" for m in METRICS)
    return f"{name:<30} {size:>8} {reg_text:>9} {pairs:>7} {row['ovl']:>5.2f} {row['rot']:>5.1f} {metrics} {row['seconds']:>7.1f}"


def mean_row(rows: list[dict]) -> dict:
    """Means of a group: registered views and time over all scenes, metrics over scenes that have them."""
    out = {
        "registered": float(np.mean([r["registered"] for r in rows])),
        "views": rows[0]["views"],
        "pairs": None,
        "ovl": float(np.mean([r["ovl"] for r in rows])),
        "rot": float(np.mean([r["rot"] for r in rows])),
        "seconds": float(np.mean([r["seconds"] for r in rows])),
    }
    scored = [r for r in rows if "rra@15" in r]
    if scored:
        out.update({m: float(np.mean([r[m] for r in scored])) for m in METRICS})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Camera accuracy of the colmap backend on synthetic scenes and 7-Scenes.")
    parser.add_argument("--scenes", type=int, default=3, help="synthetic scenes per setting (seeds 0..scenes-1)")
    parser.add_argument("--views", type=int, nargs="+", default=[8, 10], help="views per scene")
    parser.add_argument("--size", type=size_arg, nargs="+", default=[(256, 256)], help="image sizes HxW")
    parser.add_argument("--path", nargs="+", default=list(CAMERA_PATHS), choices=CAMERA_PATHS, help="camera paths")
    parser.add_argument("--intrinsics", default="known", choices=("known", "estimate"), help="for the synthetic scenes")
    parser.add_argument("--threads", type=int, default=-1, help="COLMAP threads (-1: all)")
    parser.add_argument("--seven-scenes", type=Path, default=DEFAULT_SEVEN_SCENES, help="7-Scenes sequence folder")
    args = parser.parse_args()

    print(HEADER)
    print("-" * len(HEADER))
    for path in args.path:
        for views in args.views:
            for h, w in args.size:
                size = f"{h}x{w}"
                rows = []
                for seed in range(args.scenes):
                    scene = generate_scene(SynthConfig(seed=seed, num_views=views, height=h, width=w, camera_path=path, num_points=0)).scene
                    rows.append(evaluate(scene, intrinsics=args.intrinsics, num_threads=args.threads))
                    print(format_row(f"{path} seed {seed}", size, rows[-1]), flush=True)
                print(format_row(f"{path} {views}v mean", size, mean_row(rows)))
                print()
    if args.seven_scenes.is_dir():
        scene = read_7scenes(args.seven_scenes)
        size = f"{scene.height}x{scene.width}"
        for mode, label in (("known", "given K"), ("estimate", "estimated K")):
            row = evaluate(scene, intrinsics=mode, num_threads=args.threads)
            print(format_row(f"7-Scenes sample, {label}", size, row), flush=True)
    else:
        print(f"(7-Scenes sample not found at {args.seven_scenes}; row skipped)")


if __name__ == "__main__":
    main()
