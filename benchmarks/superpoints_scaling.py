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

Table 3 (mesh mode): :func:`~sem3r.superpoints.segment.mesh_superpoints` on real meshes, Sem3R's
graph (``default``) and ScanNet's (``compat="scannet"``), median of ``--repeats`` calls after a
warm-up, and vertices per second. Meshes: every ``--ply FILE`` given, else the depth maps of a
7-Scenes sequence (``--frames``, default the sample in ``/work/shared/data/7scenes-sample``) as
pixel-grid meshes tiled side by side until ``--mesh-sizes`` vertices (:func:`depth_mesh`; real
sensor noise, 2 triangles per pixel), else a synthetic room mesh tiled the same way. With
``--segmentator PATH`` (ScanNet's ``Segmentator`` binary, built separately: it is not part of
Sem3R) the same mesh is written to a temporary PLY and the tool is run on it ``--repeats`` times:
its process wall time includes reading the PLY and writing the JSON, so the table also shows
``--segmentator-io PATH``'s time when given (any program that does the tool's I/O alone:
``PATH mesh.ply``) and their difference as the tool's compute time; otherwise the I/O is not
subtracted (the column says so). The tool's partition is compared with ``compat="scannet"`` by
the adjusted Rand index (1.0: the same partition).

First calls: the cost of a fresh interpreter's first ``compute_superpoints`` / ``mesh_superpoints``
call is measured with an empty numba cache (compilation) and with the package's cache (loading).

Example:
    python benchmarks/superpoints_scaling.py
    python benchmarks/superpoints_scaling.py --sizes 100000 1000000 --seeds 0 --depth-noise 0.003
    python benchmarks/superpoints_scaling.py --skip-quality --skip-time --ply scene0000_00_vh_clean_2.ply \
        --segmentator /tmp/segmentator/segmentator
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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
    mesh_superpoints,
    scene_superpoints,
)

FIRST_CALL = """
import time, numpy as np
from sem3r.superpoints.segment import SuperpointConfig, compute_superpoints, mesh_superpoints
pts = np.random.default_rng(0).normal(size=(200, 3))
v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.2]]); f = np.array([[0, 1, 2], [2, 1, 3]])
calls = {"points": lambda: compute_superpoints(pts, viewpoints=np.zeros(3)),
         "mesh": lambda: mesh_superpoints(v, f),
         "scannet": lambda: mesh_superpoints(v, f, SuperpointConfig(compat="scannet"))}
for name, call in calls.items():
    start = time.perf_counter(); call(); cold = time.perf_counter() - start
    start = time.perf_counter(); call(); warm = time.perf_counter() - start
    print(name, cold, warm)
"""


def first_call_cost(empty_cache: bool) -> dict[str, tuple[float, float]]:
    """Seconds of the first and of a second call per mode (points, mesh, scannet) in a fresh interpreter."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if empty_cache:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, check=True, capture_output=True, text=True)
    return {line.split()[0]: (float(line.split()[1]), float(line.split()[2])) for line in out.stdout.splitlines()}


def stage_times(pts: np.ndarray, views: np.ndarray, config: SuperpointConfig, repeats: int) -> tuple[list[float], int, int]:
    """Median seconds of each stage and of one ``compute_superpoints`` call; the edge and superpoint counts."""
    columns = max(config.k + 1, config.normal_k)

    def graph():
        nb = knn_neighbours(pts, columns - 1, distances=False)
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
          f"{'end-to-end':>10} {'points/s':>9} {'superpts':>8}")
    for size in sorted(args.sizes):
        pick = np.sort(rng.choice(len(syn.cloud.xyz), size, replace=False))
        pts = syn.cloud.xyz[pick].astype(np.float64)
        (t_graph, t_normals, t_weights, t_felz, t_all), num_edges, num_sp = stage_times(
            pts, pts + syn.normals[pick], config, args.repeats)
        total = t_graph + t_normals + t_weights + t_felz
        print(f"{size:>9} {num_edges:>9} {t_graph:>9.2f} {t_normals:>8.2f} {t_weights:>8.2f} {t_felz:>8.2f} {total:>7.2f} "
              f"{t_all:>10.2f} {size / t_all:>9.3g} {num_sp:>8}", flush=True)


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


def depth_mesh(scene, frames: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A real triangle mesh: each frame's depth map as a pixel-grid mesh in world coordinates, frames tiled.

    Every pixel with valid depth is a vertex (unprojected with the frame's intrinsics and pose); each
    2x2 pixel block gives up to two triangles ``(a, c, b)`` and ``(b, c, d)`` (``a b`` on top, ``c d``
    below, wound so their normals face the camera), kept when all three depths are valid and within
    5 % of each other (no triangles across depth discontinuities). Frame ``t`` is shifted by
    ``10 t`` metres along x so the tiles do not overlap.

    Returns:
        ``vertices (M, 3) float32`` and ``faces (F, 3) int32`` (every vertex in at least one face).
    """
    all_v, all_f, offset = [], [], 0
    for tile, t in enumerate(frames):
        depth = scene.depth[t].astype(np.float64)
        h, w = depth.shape
        k = scene.intrinsics[t]
        rows, cols = np.mgrid[0:h, 0:w]
        cam = np.stack([(cols - k[0, 2]) / k[0, 0] * depth, (rows - k[1, 2]) / k[1, 1] * depth, depth], -1)
        rot, trans = scene.cam_from_world[t][:, :3], scene.cam_from_world[t][:, 3]
        world = (cam.reshape(-1, 3) - trans) @ rot + np.array([10.0 * tile, 0, 0])
        pix = np.arange(h * w).reshape(h, w)
        a, b, c, d = pix[:-1, :-1].ravel(), pix[:-1, 1:].ravel(), pix[1:, :-1].ravel(), pix[1:, 1:].ravel()
        flat = depth.ravel()
        tris = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
        z = flat[tris]
        ok = (z.min(1) > 0) & (z.max(1) < 1.05 * z.min(1))
        tris = tris[ok]
        used = np.zeros(h * w, bool)
        used[tris.ravel()] = True
        remap = np.cumsum(used) - 1
        all_v.append(world[used])
        all_f.append(remap[tris] + offset)
        offset += int(used.sum())
    return np.concatenate(all_v).astype(np.float32), np.concatenate(all_f).astype(np.int32)


def mesh_of_size(scene, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`depth_mesh` of as many frames as needed (cycling through them), cut to ``num_vertices``."""
    verts, faces = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    frames = []
    while len(verts) < num_vertices:
        frames.append(len(frames) % len(scene.depth))
        verts, faces = depth_mesh(scene, frames)
    faces = faces[(faces < num_vertices).all(1)]
    used = np.zeros(num_vertices, bool)
    used[faces.ravel()] = True
    remap = (np.cumsum(used) - 1).astype(np.int32)
    return verts[:num_vertices][used], remap[faces]


def write_ply(path: str, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Binary little-endian PLY: float32 ``x y z`` and a ``vertex_indices`` list (uchar count, int32)."""
    import plyfile

    vert = np.empty(len(vertices), [("x", "f4"), ("y", "f4"), ("z", "f4")])
    vert["x"], vert["y"], vert["z"] = vertices.T
    face = np.empty(len(faces), [("vertex_indices", "i4", (3,))])
    face["vertex_indices"] = faces
    plyfile.PlyData([plyfile.PlyElement.describe(vert, "vertex"), plyfile.PlyElement.describe(face, "face")],
                    byte_order="<").write(path)


def read_ply_mesh(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``vertices (M, 3) float32`` and triangles ``(F, 3) int64`` of a PLY mesh (``vertex_indices`` or ``vertex_index``)."""
    import plyfile

    data = plyfile.PlyData.read(path)
    v = data["vertex"]
    verts = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32)
    name = "vertex_indices" if "vertex_indices" in data["face"].data.dtype.names else "vertex_index"
    faces = np.stack(list(data["face"][name])) if data["face"].data[name].dtype == object else data["face"][name]
    return verts, np.asarray(faces, np.int64).reshape(-1, 3)


def synthetic_mesh(seed: int, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic room's mesh tiled (shifted 10 m along x per copy) and cut to ``num_vertices``."""
    mesh = generate_scene(SynthConfig(seed=seed, num_views=1, height=16, width=16, num_points=0)).mesh
    copies = -(-num_vertices // len(mesh.vertices))
    verts = np.concatenate([mesh.vertices + [10.0 * c, 0, 0] for c in range(copies)]).astype(np.float32)
    faces = np.concatenate([mesh.faces + c * len(mesh.vertices) for c in range(copies)])
    faces = faces[(faces < num_vertices).all(1)]
    used = np.zeros(num_vertices, bool)
    used[faces.ravel()] = True
    return verts[:num_vertices][used], ((np.cumsum(used) - 1).astype(np.int32))[faces]


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings of the same items (from their contingency table)."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    pairs = np.unique(a.astype(np.int64) * (int(b.max()) + 1) + b, return_counts=True)[1]

    def comb(counts: np.ndarray) -> float:
        counts = counts.astype(np.float64)
        return float((counts * (counts - 1) / 2).sum())

    both, rows, cols = comb(pairs), comb(np.bincount(a)), comb(np.bincount(b))
    expected = rows * cols / comb(np.array([len(a)]))
    top = (rows + cols) / 2
    return 1.0 if top == expected else float((both - expected) / (top - expected))


def run_tool(tool: str, ply: str, repeats: int) -> float:
    """Median process wall time (s) of ``tool ply`` (ScanNet's Segmentator with its default settings)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([tool, ply], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def mesh_table(args: argparse.Namespace) -> None:
    """Table 3: mesh mode, Sem3R's graph and ScanNet's, optionally against the C++ tool on the same meshes."""
    meshes = []
    if args.ply:
        for path in args.ply:
            meshes.append((os.path.basename(path), *read_ply_mesh(path)))
    else:
        scene = None
        if args.frames and os.path.isdir(args.frames):
            from sem3r.data.readers.sevenscenes import read_7scenes

            scene = read_7scenes(args.frames)
        for size in args.mesh_sizes:
            v, f = mesh_of_size(scene, size) if scene is not None else synthetic_mesh(args.seeds[0], size)
            meshes.append((f"{'7scenes' if scene is not None else 'synthetic'} {len(v) / 1e6:.2f}M", v, f))
    default, scannet = SuperpointConfig(), SuperpointConfig(compat="scannet")
    mesh_superpoints(meshes[0][1][:100], meshes[0][2][(meshes[0][2] < 100).all(1)])  # load numba kernels
    mesh_superpoints(meshes[0][1][:100], meshes[0][2][(meshes[0][2] < 100).all(1)], scannet)
    tool_note = ""
    if args.segmentator:
        tool_note = (", C++ compute = tool wall - I/O-only wall" if args.segmentator_io else
                     ", C++ = tool process wall time, PLY read and JSON write NOT subtracted")
    print(f"\nTable 3: mesh mode, time (s, median of {args.repeats}), kthresh=0.01, min_size=20, 2 cores{tool_note}")
    head = f"{'mesh':>16} {'vertices':>9} {'faces':>9} {'default':>8} {'Mvert/s':>7} {'#sp':>6} {'scannet':>8} {'#sp':>6}"
    if args.segmentator:
        head += f" {'C++ wall':>8} {'C++ I/O':>7} {'C++ comp':>8} {'default/C++':>11} {'ARI':>6}"
    print(head)
    for name, v, f in meshes:
        t_def, ids = timed(lambda v=v, f=f: mesh_superpoints(v, f, default), args.repeats)
        t_scn, ids_scn = timed(lambda v=v, f=f: mesh_superpoints(v, f, scannet), args.repeats)
        row = (f"{name:>16} {len(v):>9} {len(f):>9} {t_def:>8.3f} {len(v) / t_def / 1e6:>7.2f} {ids.max() + 1:>6} "
               f"{t_scn:>8.3f} {ids_scn.max() + 1:>6}")
        if args.segmentator:
            with tempfile.TemporaryDirectory() as tmp:
                ply = os.path.join(tmp, "mesh.ply")
                write_ply(ply, v, f)
                # back to back on the same file: the tool, then its I/O alone
                t_tool = run_tool(args.segmentator, ply, args.repeats)
                t_io = run_tool(args.segmentator_io, ply, args.repeats) if args.segmentator_io else float("nan")
                segs = [p for p in os.listdir(tmp) if p.endswith(".segs.json")]
                with open(os.path.join(tmp, segs[0])) as fh:
                    ref = np.array(json.load(fh)["segIndices"])
            compute = t_tool - t_io if args.segmentator_io else t_tool
            row += (f" {t_tool:>8.3f} {t_io:>7.3f} {compute:>8.3f} {t_def / compute:>10.2f}x "
                    f"{adjusted_rand_index(ref, ids_scn):>6.4f}")
        print(row, flush=True)


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
    parser.add_argument("--mesh-sizes", type=int, nargs="+", default=[81_000, 1_000_000, 3_000_000],
                        help="vertices of the meshes of table 3")
    parser.add_argument("--frames", default="/work/shared/data/7scenes-sample",
                        help="7-Scenes sequence whose depth maps become the meshes of table 3 (else a synthetic room)")
    parser.add_argument("--ply", nargs="+", default=None, help="time these PLY meshes in table 3 instead")
    parser.add_argument("--segmentator", default=None, help="ScanNet's Segmentator binary, timed on the same meshes")
    parser.add_argument("--segmentator-io", default=None,
                        help="a program doing only the tool's I/O (PATH mesh.ply), subtracted from its wall time")
    parser.add_argument("--skip-time", action="store_true", help="skip table 1 and the first-call costs")
    parser.add_argument("--skip-quality", action="store_true", help="skip table 2")
    parser.add_argument("--skip-mesh", action="store_true", help="skip table 3")
    args = parser.parse_args()
    config = SuperpointConfig(k=args.k, normal_k=args.normal_k, kthresh=args.kthresh, min_size=args.min_size)
    config.validate()

    compute_superpoints(np.random.default_rng(0).normal(size=(50, 3)), viewpoints=np.zeros(3))  # compile / load numba
    if not args.skip_time:
        compiled = first_call_cost(empty_cache=True)
        cached = first_call_cost(empty_cache=False)
        print("first call in a fresh process (200 points / a 2-face mesh): s with an empty numba cache (compile) | "
              "with the package cache (load) | warm call ms")
        for mode in compiled:
            print(f"  {mode:>8}: {compiled[mode][0]:6.2f} | {cached[mode][0]:6.2f} | "
                  f"{min(compiled[mode][1], cached[mode][1]) * 1e3:6.1f}")
        time_table(args, config)
    if not args.skip_mesh:
        mesh_table(args)
    if not args.skip_quality:
        quality_table(args, config)


if __name__ == "__main__":
    main()
