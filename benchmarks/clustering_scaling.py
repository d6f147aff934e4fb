"""Instance-feature clustering (IGGT instance spatial tracking) versus the number of pixels.

Synthetic rooms are rendered in ``--views`` views at ``--size`` (default 10 x 392x518, about 2M
pixels); lower resolutions take every ``s``-th pixel of those renders (``--strides``). Instance
features are built from the ground truth as in ``tests/instances/test_clustering.py``: one random
unit vector per semantic class (8 channels, like IGGT's) plus Gaussian noise (``--noise`` per
channel), so instances of one category have identical features; points come from the ground-truth
depth. Two configurations are timed:

* ``voxel+sub``: the default :class:`~sem3r.instances.clustering.ClusteringConfig` (3D voxel pooling,
  at most ``max_samples`` clustered samples, nearest-neighbour assignment of the rest);
* ``every px``: the reference that clusters every valid pixel (``voxel_size=None``,
  ``max_samples=None``; same features, xyz term and HDBSCAN settings), run only up to
  ``--ref-max-pixels`` pixels. Larger sizes are compared with the reference at the largest size
  that ran (a lower resolution of the same renders), and the table says so.

Times are warm (median of ``--repeats`` calls); the cost of the first call in the process (numba
compilation or cache loading of fast_hdbscan and of Sem3R's pooling kernel) is measured once on a
tiny input and printed separately. T-mIoU / T-SR are :func:`sem3r.eval.tracking.tracking_metrics`
against the ground-truth instance masks at the same resolution.

Example:
    python benchmarks/clustering_scaling.py                       # 2 rooms, strides 8 4 2 1
    python benchmarks/clustering_scaling.py --seeds 0 --strides 4 1 --noise 0.15
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import size_arg, timed

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.eval.tracking import tracking_metrics
from sem3r.instances.clustering import ClusteringConfig, cluster_instance_features


def category_features(semantic: np.ndarray, num_classes: int, dim: int, noise: float, seed: int) -> np.ndarray:
    """``(N, H, W, dim) float32``: a random unit vector per semantic class plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(num_classes, dim))
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    feats = basis[semantic].astype(np.float32)
    feats += (noise * rng.standard_normal(size=feats.shape, dtype=np.float32))
    return feats


def first_call_cost() -> tuple[float, float]:
    """Seconds of the first clustering call in this process and of the same call warm."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2, 24, 32, 8)).astype(np.float32)
    pts = rng.uniform(1.0, 2.0, size=(2, 24, 32, 3)).astype(np.float32)
    start = time.perf_counter()
    cluster_instance_features(feats, pts)
    cold = time.perf_counter() - start
    warm, _ = timed(lambda: cluster_instance_features(feats, pts), 3)
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description="Time and accuracy of instance-feature clustering versus pixels.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="synthetic rooms")
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--size", type=size_arg, default=(392, 518), help="render size HxW")
    parser.add_argument("--strides", type=int, nargs="+", default=[8, 4, 2, 1], help="pixel strides of the rows")
    parser.add_argument("--noise", type=float, default=0.05, help="feature noise per channel")
    parser.add_argument("--dim", type=int, default=8, help="feature channels")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per row (median)")
    parser.add_argument("--max-samples", type=int, default=ClusteringConfig.max_samples)
    parser.add_argument("--ref-max-pixels", type=int, default=600_000,
                        help="run the every-pixel reference only up to this many pixels")
    args = parser.parse_args()

    cold, warm = first_call_cost()
    print(f"first call in the process (JIT compile / cache load): {cold:.2f} s; the same call warm: {warm:.3f} s")
    fast = ClusteringConfig(max_samples=args.max_samples)
    reference = ClusteringConfig(voxel_size=None, max_samples=None)
    h, w = args.size
    rows = []
    print(f"{'seed':>4} {'pixels':>9} {'method':>9} {'time s':>7} {'K':>4} {'T-mIoU':>7} {'T-SR':>6}")
    for seed in args.seeds:
        start = time.perf_counter()
        scene = generate_scene(SynthConfig(seed=seed, num_views=args.views, height=h, width=w, num_points=1000)).scene
        print(f"# room {seed}: rendered {args.views} x {h}x{w} in {time.perf_counter() - start:.1f} s")
        points, valid = scene.points()
        feats = category_features(scene.semantic_masks, len(scene.class_names), args.dim, args.noise, seed)
        for stride in args.strides:
            sl = (slice(None), slice(None, None, stride), slice(None, None, stride))
            f, p, v, gt = feats[sl], points[sl], valid[sl], scene.instance_masks[sl]
            pixels = gt.size
            for name, cfg in (("voxel+sub", fast), ("every px", reference)):
                if name == "every px" and pixels > args.ref_max_pixels:
                    continue
                repeats = args.repeats if name == "voxel+sub" else 1
                inputs = (f, p, v, scene.cam_from_world, cfg)
                seconds, labels = timed(lambda inputs=inputs: cluster_instance_features(*inputs), repeats)
                m = tracking_metrics(labels, gt)
                rows.append((seed, pixels, name, seconds, m["t_miou"], m["t_sr"]))
                print(f"{seed:>4} {pixels:>9} {name:>9} {seconds:>7.2f} {labels.max() + 1:>4} {m['t_miou']:>7.3f} {m['t_sr']:>6.3f}",
                      flush=True)

    print("\nmean over rooms")
    print(f"{'pixels':>9} {'time s':>7} {'T-mIoU':>7} {'T-SR':>6} | {'ref px':>9} {'ref s':>7} {'ref mIoU':>8} {'ref SR':>6} {'dmIoU':>6}")
    table = np.array([(r[1], r[2] == "every px", r[3], r[4], r[5]) for r in rows])
    ref_sizes = sorted(set(table[table[:, 1] == 1, 0]))
    for pixels in sorted(set(table[:, 0])):
        ours = table[(table[:, 0] == pixels) & (table[:, 1] == 0)].mean(axis=0)
        line = f"{int(pixels):>9} {ours[2]:>7.2f} {ours[3]:>7.3f} {ours[4]:>6.3f} |"
        if ref_sizes:
            ref_px = pixels if pixels in ref_sizes else ref_sizes[-1]
            ref = table[(table[:, 0] == ref_px) & (table[:, 1] == 1)].mean(axis=0)
            note = "" if ref_px == pixels else "  (reference at a lower resolution)"
            line += f" {int(ref_px):>9} {ref[2]:>7.2f} {ref[3]:>8.3f} {ref[4]:>6.3f} {100 * (ours[3] - ref[3]):>+6.1f}{note}"
        print(line)


if __name__ == "__main__":
    main()
