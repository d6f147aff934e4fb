"""Superpoints: time versus the number of points, and quality of geometric versus IBSp superpoints.

Table 1 (time): points drawn (seeded, without replacement) from the area-sampled ground-truth
cloud of one synthetic room (``SyntheticScene.cloud``, ``--max-points`` points). Each pipeline
stage of :func:`sem3r.superpoints.segment.compute_superpoints` is timed on its own (median of
``--repeats`` calls): the KNN query and the undirected graph (``knn+graph``), PCA normals from the
same neighbour table, flipped toward a viewpoint one metre out along the true normal (standing in
for the camera centre the cloud has none of), the ScanNet weights, and Felzenszwalb (sort,
union-find, min-size pass, relabelling); ``total`` is the sum and ``end-to-end`` one call of
``compute_superpoints`` with the same inputs. numba kernels are compiled (or loaded from their
cache) before the table; the cost of that first call is measured in fresh subprocesses, once with
an empty numba cache (compilation) and once with the package's cache (loading).

Table 2 (quality): ``--seeds`` rooms rendered in ``--views`` views (camera path ``random_large``),
oracle geometry voxelised by :func:`~sem3r.reconstruct.correspondence.build_correspondence`
(``--voxel``), optionally with multiplicative Gaussian depth noise (``--depth-noise``, relative
sigma; a stand-in for the over-smoothed, noisy geometry of a feed-forward reconstruction), and
the ground-truth 2D masks of the ``gt`` mask source (per-view random ids). Per point, the
ground-truth instance is ``corr.point_labels(scene.instance_masks)``. Geometric superpoints
(``scene_superpoints(corr)``) are compared with IBSp superpoints (``scene_superpoints(corr,
view_masks=masks)``), reading each edge in its endpoints' views only (``IBSp-ends``, the paper's
Algorithm 1) or in every view (``IBSp-all``, the default), by
:func:`sem3r.eval.superpoints.superpoint_metrics` on the 10-NN graph;
``rec all`` / ``rec flat`` are the recovered fractions of all objects and of the wall-flat
objects (:data:`sem3r.data.synthetic.WALL_FLAT_CATEGORIES`), averaged over rooms.

Example:
    python benchmarks/superpoints_scaling.py
    python benchmarks/superpoints_scaling.py --sizes 100000 1000000 --seeds 0 --depth-noise 0.003
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from common import size_arg, timed

from sem3r.data.synthetic import WALL_FLAT_CATEGORIES, SynthConfig, generate_scene
from sem3r.eval.superpoints import instance_recovery, superpoint_metrics
from sem3r.geometry.felzenszwalb import felzenszwalb_segment
from sem3r.geometry.normals import normals_from_neighbours
from sem3r.instances.mask_sources import view_masks
from sem3r.reconstruct.correspondence import CorrespondenceConfig, build_correspondence
from sem3r.superpoints.graph import (
    edges_from_neighbours,
    geometric_weights,
    knn_neighbours,
)
from sem3r.superpoints.segment import (
    SuperpointConfig,
    compute_superpoints,
    scene_superpoints,
)

FIRST_CALL = """
import time, numpy as np
from sem3r.superpoints.segment import compute_superpoints
pts = np.random.default_rng(0).normal(size=(200, 3))
start = time.perf_counter(); compute_superpoints(pts, viewpoints=np.zeros(3)); cold = time.perf_counter() - start
start = time.perf_counter(); compute_superpoints(pts, viewpoints=np.zeros(3)); warm = time.perf_counter() - start
print(cold, warm)
"""



def first_call_cost(empty_cache: bool) -> tuple[float, float]:
    """Seconds of the first and of a second ``compute_superpoints`` call in a fresh interpreter."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if empty_cache:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, check=True, capture_output=True, text=True)
    cold, warm = (float(v) for v in out.stdout.split())
    return cold, warm


def stage_times(pts: np.ndarray, views: np.ndarray, config: SuperpointConfig, repeats: int) -> tuple[list[float], int, int]:
    """Median seconds of each stage and of one ``compute_superpoints`` call; the edge and superpoint counts."""
    columns = max(config.k + 1, config.normal_k)

    def graph():
        _, nb = knn_neighbours(pts, columns - 1)
        return nb, edges_from_neighbours(nb[:, : config.k + 1])

    t_graph, (nb, edges) = timed(graph, repeats)
    t_normals, normals = timed(lambda: normals_from_neighbours(pts, nb[:, : config.normal_k], views), repeats)
    t_weights, weights = timed(lambda: geometric_weights(pts, normals, edges), repeats)
    t_felz, ids = timed(lambda: felzenszwalb_segment(len(pts), edges, weights, config.kthresh, config.min_size), repeats)
    t_all, ids_all = timed(lambda: compute_superpoints(pts, config, viewpoints=views), repeats)
    if not np.array_equal(ids, ids_all):
        raise RuntimeError("the staged pipeline and compute_superpoints disagree")
    return [t_graph, t_normals, t_weights, t_felz, t_all], len(edges), int(ids.max()) + 1


def time_table(args: argparse.Namespace, config: SuperpointConfig) -> None:
    """Table 1: stage times versus the number of points."""
    syn = generate_scene(SynthConfig(seed=args.seeds[0], num_views=1, height=16, width=16, num_points=max(args.sizes)))
    rng = np.random.default_rng(args.seeds[0])
    print(f"\nTable 1: time (s, median of {args.repeats}) vs points; k={config.k}, normal_k={config.normal_k}, "
          f"kthresh={config.kthresh}, min_size={config.min_size}, 2 cores")
    print(f"{'points':>9} {'edges':>9} {'knn+graph':>9} {'normals':>8} {'weights':>8} {'felzensz':>8} {'total':>7} "
          f"{'end-to-end':>10} {'superpts':>8}")
    for size in sorted(args.sizes):
        pick = np.sort(rng.choice(len(syn.cloud.xyz), size, replace=False))
        pts = syn.cloud.xyz[pick].astype(np.float64)
        (t_graph, t_normals, t_weights, t_felz, t_all), num_edges, num_sp = stage_times(
            pts, pts + syn.normals[pick], config, args.repeats)
        total = t_graph + t_normals + t_weights + t_felz
        print(f"{size:>9} {num_edges:>9} {t_graph:>9.2f} {t_normals:>8.2f} {t_weights:>8.2f} {t_felz:>8.2f} {total:>7.2f} "
              f"{t_all:>10.2f} {num_sp:>8}", flush=True)


def quality_table(args: argparse.Namespace, config: SuperpointConfig) -> None:
    """Table 2: geometric versus IBSp superpoints on synthetic rooms."""
    h, w = args.size
    rows = {}
    flat_total = 0
    for seed in args.seeds:
        syn = generate_scene(SynthConfig(seed=seed, num_views=args.views, height=h, width=w,
                                         camera_path="random_large", num_points=0))
        scene = syn.scene
        masks = view_masks(scene, "gt", seed=seed)
        flat = scene.instances.ids[np.isin(np.array(scene.instances.labels), WALL_FLAT_CATEGORIES)]
        for noise in args.depth_noise:
            depth = scene.depth.copy()
            valid = depth > 0
            depth[valid] *= 1 + noise * np.random.default_rng(seed).standard_normal(int(valid.sum())).astype(np.float32)
            noisy = dataclasses.replace(scene, depth=depth)
            corr = build_correspondence(noisy, CorrespondenceConfig(voxel_size=args.voxel, source="depth"))
            gt = corr.point_labels(scene.instance_masks)
            flat_here = np.intersect1d(flat, gt)
            if noise == args.depth_noise[0]:
                flat_total += len(flat_here)
            for mode, views in (("geometric", None), ("IBSp-ends", "endpoints"), ("IBSp-all", "all")):
                start = time.perf_counter()
                mode_config = config if views is None else dataclasses.replace(config, ibsp_views=views)
                ids = scene_superpoints(corr, mode_config, None if views is None else masks)
                seconds = time.perf_counter() - start
                m = superpoint_metrics(ids, gt, points=corr.points)
                rows.setdefault((noise, mode), []).append(
                    [corr.num_points, m["undersegmentation_error"], m["boundary_recall"], m["boundary_precision"],
                     m["num_superpoints"], m["recovered"], instance_recovery(ids, gt, flat_here), seconds])
        print(f"# room {seed}: {len(flat)} wall-flat objects", flush=True)
    print(f"\nTable 2: quality, mean over {len(args.seeds)} rooms ({args.views} views {h}x{w}, random_large, voxel "
          f"{args.voxel} m, gt masks; {flat_total} wall-flat objects seen in all); kthresh={config.kthresh}, "
          f"min_size={config.min_size}")
    print(f"{'depth noise':>11} {'mode':>9} {'points':>7} {'UE':>6} {'BR':>6} {'BP':>6} {'#sp':>6} {'rec all':>7} "
          f"{'rec flat':>8} {'time s':>6}")
    for (noise, mode), values in rows.items():
        v = np.nanmean(np.array(values, np.float64), axis=0)
        print(f"{noise:>11.3f} {mode:>9} {int(v[0]):>7} {v[1]:>6.4f} {v[2]:>6.3f} {v[3]:>6.3f} {round(v[4]):>6} "
              f"{v[5]:>7.3f} {v[6]:>8.3f} {v[7]:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Superpoint time versus points, and geometric vs IBSp quality.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000], help="points of table 1")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per stage (median)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="synthetic rooms of table 2")
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--size", type=size_arg, default=(192, 256), help="render size HxW")
    parser.add_argument("--voxel", type=float, default=0.02, help="voxel size of the correspondence (m)")
    parser.add_argument("--depth-noise", type=float, nargs="+", default=[0.0, 0.003], help="relative depth noise sigmas")
    parser.add_argument("--k", type=int, default=SuperpointConfig.k, help="graph neighbours")
    parser.add_argument("--normal-k", type=int, default=SuperpointConfig.normal_k, help="PCA patch points")
    parser.add_argument("--kthresh", type=float, default=SuperpointConfig.kthresh, help="Felzenszwalb scale")
    parser.add_argument("--min-size", type=int, default=SuperpointConfig.min_size, help="minimum superpoint size")
    parser.add_argument("--skip-time", action="store_true", help="only table 2")
    parser.add_argument("--skip-quality", action="store_true", help="only table 1")
    args = parser.parse_args()
    config = SuperpointConfig(k=args.k, normal_k=args.normal_k, kthresh=args.kthresh, min_size=args.min_size)
    config.validate()

    compute_superpoints(np.random.default_rng(0).normal(size=(50, 3)), viewpoints=np.zeros(3))  # compile / load numba
    if not args.skip_time:
        compile_cold, compile_warm = first_call_cost(empty_cache=True)
        cached_cold, cached_warm = first_call_cost(empty_cache=False)
        print(f"first call in a fresh process, 200 points: {compile_cold:.2f} s with an empty numba cache (compile), "
              f"{cached_cold:.2f} s with the package cache (load); warm call {min(compile_warm, cached_warm) * 1e3:.1f} ms")
        time_table(args, config)
    if not args.skip_quality:
        quality_table(args, config)


if __name__ == "__main__":
    main()
