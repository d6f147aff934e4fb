"""The ``sem3r`` command line: thin subcommands that parse options, call the library and report.

Every subcommand turns bad input into a one-line ``sem3r: error: ...`` message and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import tyro

from sem3r.errors import Sem3RError

Positional = tyro.conf.Positional


def synth(
    out: Path,
    scenes: int = 4,
    views: int = 8,
    height: int = 256,
    width: int = 256,
    seed: int = 0,
    camera_path: Literal["orbit", "walk", "random_large"] = "orbit",
    resume: bool = True,
) -> None:
    """Write a dataset of procedural indoor scenes with full ground truth.

    Each scene folder holds a Sem3R Scene (RGB, metric depth, cameras, 3D-consistent instance and
    semantic masks, instance table) and ground_truth.npz (labelled point cloud and mesh);
    manifest.json lists them. Scene i uses seed SEED+i. An interrupted run resumes.

    Args:
        out: dataset folder to write.
        scenes: number of scenes.
        views: views per scene.
        height: image height in pixels.
        width: image width in pixels.
        seed: seed of the first scene.
        camera_path: camera trajectory: orbit (around the room centre), walk, or random_large (wide baselines).
        resume: skip scenes already complete in the manifest.
    """
    from sem3r.data.synthetic import SynthConfig, write_dataset

    if scenes < 1 or views < 1:
        raise Sem3RError(f"--scenes and --views must be at least 1, got {scenes} and {views}")
    config = SynthConfig(seed=seed, num_views=views, height=height, width=width, camera_path=camera_path)
    manifest = write_dataset(out, scenes, config, resume=resume)
    print(f"wrote {scenes} scenes to {out} (manifest: {manifest})")


def demo(
    out: Path = Path("sem3r-demo"),
    seed: int = 0,
    views: int = 8,
    height: int = 384,
    width: int = 512,
) -> None:
    """Run the whole pipeline offline on a generated scene and write every output.

    Writes the Scene, a labelled PLY point cloud, a GLB with camera frusta, a standalone HTML
    viewer and report.md with the metrics against the scene's ground truth.

    Args:
        out: output folder.
        seed: seed of the generated scene.
        views: number of views.
        height: image height in pixels.
        width: image width in pixels.
    """
    from sem3r.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(out=out, seed=seed, num_views=views, height=height, width=width))
    print(result.summary())


def import_(
    source: Positional[Path],
    out: Path,
    layout: str = "auto",
    stride: int = 1,
    max_frames: int | None = None,
) -> None:
    """Read a dataset (image folder, video, 7-Scenes, ScanNet export, TUM RGB-D, COLMAP model) into a Scene.

    Args:
        source: folder or video file to read.
        out: Scene folder to write.
        layout: auto, or one of the reader names (see sem3r.data.readers.LAYOUTS).
        stride: keep every STRIDE-th frame (sequences).
        max_frames: keep at most this many frames.
    """
    from sem3r.data.readers import read_scene

    scene = read_scene(source, layout=layout, stride=stride, max_frames=max_frames)
    scene.save(out)
    print(f"read {scene.num_views} views ({scene.height}x{scene.width}, source: {scene.metadata.get('source')}) -> {out}")


def export(
    scene_dir: Positional[Path],
    out: Path | None = None,
    formats: tuple[Literal["ply", "glb", "html"], ...] = ("ply", "glb", "html"),
    color_by: Literal["rgb", "instance", "semantic"] = "rgb",
    voxel_size: float | None = 0.01,
    conf_percentile: float | None = None,
    max_points: int = 200_000,
) -> None:
    """Export a Scene as a labelled PLY point cloud, a GLB with camera frusta and/or an offline HTML viewer.

    Args:
        scene_dir: a Scene folder (written by sem3r demo, import, synth, ...).
        out: output folder (default: the scene folder).
        formats: which files to write.
        color_by: colouring of the GLB point cloud.
        voxel_size: voxel downsampling in metres (none to keep every pixel).
        conf_percentile: drop the lowest P percent of points by confidence.
        max_points: points embedded in the HTML viewer.
    """
    from sem3r.scene import Scene
    from sem3r.viz import export_scene

    scene = Scene.load(scene_dir)
    written = export_scene(
        scene,
        out or scene_dir,
        formats=formats,
        color_by=color_by,
        voxel_size=voxel_size,
        conf_percentile=conf_percentile,
        max_points=max_points,
    )
    for path in written:
        print(f"wrote {path}")


def eval_(
    pred: Positional[Path],
    gt: Positional[Path],
    out: Path | None = None,
) -> None:
    """Evaluate a predicted Scene against a ground-truth Scene and print a metrics table.

    Depth (AbsRel, delta<1.25, inlier<1.03), cameras (RRA/RTA, AUC@30), point cloud
    (accuracy/completeness/normal consistency), instance tracking (T-mIoU, T-SR), 2D semantics and 3D
    instance AP, each where both scenes have the needed fields. A ground-truth folder written by
    sem3r synth also supplies its labelled point cloud.

    Args:
        pred: predicted Scene folder.
        gt: ground-truth Scene folder.
        out: also write the metrics as JSON here.
    """
    from sem3r.data.synthetic import load_ground_truth
    from sem3r.eval import evaluate_scene, format_metrics_table
    from sem3r.io import write_json_atomic
    from sem3r.scene import Scene

    pred_scene, gt_scene = Scene.load(pred), Scene.load(gt)
    gt_cloud = load_ground_truth(gt).cloud if (gt / "ground_truth.npz").is_file() else None
    metrics = evaluate_scene(pred_scene, gt_scene, gt_cloud)
    print(format_metrics_table(metrics))
    if out is not None:
        write_json_atomic(out, metrics)
        print(f"wrote {out}")


def info(scene_dir: Positional[Path]) -> None:
    """Print what a Scene folder holds: views, size, fields, instances.

    Args:
        scene_dir: a Scene folder.
    """
    from sem3r.scene import Scene

    print(Scene.load(scene_dir).describe())


def train(what: Positional[Literal["geometry"]], config: Path) -> None:
    """Train a model from a JSON config (resumable: set train.resume to continue a run).

    geometry: the VGGT-style geometry transformer on a `sem3r synth` dataset, with the VGGT or
    G2VLM losses. The trained weights land in TRAIN.OUT_DIR/model/, ready for
    `sem3r reconstruct --checkpoint`.

    Args:
        what: which model to train.
        config: JSON file; see sem3r.training.geometry for the fields.
    """
    from sem3r.training import train_geometry

    last = train_geometry(config)
    print(f"last checkpoint: {last}; model: {last.parent.parent / 'model'}")


COMMANDS = {"synth": synth, "demo": demo, "import": import_, "export": export, "eval": eval_, "info": info, "train": train}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sem3r`` console script; returns the exit code."""
    try:
        tyro.extras.subcommand_cli_from_dict(
            COMMANDS,
            prog="sem3r",
            description="Sem3R: semantic 3D reconstruction and spatial understanding.",
            args=argv,
        )
    except Sem3RError as exc:
        print(f"sem3r: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sem3r: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
