"""Benchmark of the synthetic scene generator: whole scenes and views per second.

For each image size (256x256 and 512x384 by default) it generates ``--repeats`` scenes (seeds
0, 1, ...) of ``--views`` views and prints the best and mean wall time of ``generate_scene``
(layout, mesh, cameras, rendering and the ground-truth cloud together), the views per second
that best time gives, and the best time of rendering alone (rasteriser plus shading).

Usage:
    python benchmarks/synthetic_render.py --repeats 3 --views 8 --points 200000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sem3r.data.synthetic import SynthConfig, generate_scene, render_views
from sem3r.data.synthetic.mesh import build_mesh


def main() -> None:
    parser = argparse.ArgumentParser(description="Time synthetic scene generation and rendering.")
    parser.add_argument("--repeats", type=int, default=3, help="scenes per image size (seeds 0..repeats-1)")
    parser.add_argument("--views", type=int, default=8, help="views per scene")
    parser.add_argument("--points", type=int, default=200_000, help="points of the ground-truth cloud")
    parser.add_argument("--path", default="orbit", help="camera path: orbit, walk or random_large")
    args = parser.parse_args()

    generate_scene(SynthConfig(seed=0, num_views=1, height=16, width=16, num_points=10))  # warm-up
    header = f"{'H x W':>10} {'views':>6} {'scene s best':>13} {'scene s mean':>13} {'views/s':>8} {'render s':>9} {'faces':>6}"
    print(header)
    print("-" * len(header))
    for height, width in ((256, 256), (384, 512)):
        totals, renders, faces = [], [], []
        for seed in range(args.repeats):
            config = SynthConfig(seed=seed, num_views=args.views, height=height, width=width,
                                 num_points=args.points, camera_path=args.path)
            start = time.perf_counter()
            syn = generate_scene(config)
            totals.append(time.perf_counter() - start)
            mesh, paint = build_mesh(syn.layout)
            start = time.perf_counter()
            render_views(mesh, paint, syn.scene.intrinsics, syn.scene.cam_from_world, height, width, config.near)
            renders.append(time.perf_counter() - start)
            faces.append(len(mesh.faces))
        print(f"{height:>4} x {width:<3} {args.views:>6} {min(totals):>13.3f} {np.mean(totals):>13.3f} "
              f"{args.views / min(totals):>8.1f} {min(renders):>9.3f} {int(np.mean(faces)):>6}")


if __name__ == "__main__":
    main()
