"""The ``sem3r`` command line: thin subcommands that parse options, call the library and report.

Every subcommand turns bad input into a one-line ``sem3r: error: ...`` message and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import tyro

from sem3r.errors import Sem3RError

Positional = tyro.conf.Positional
Options = Annotated[tuple[str, ...], tyro.conf.UseAppendAction, tyro.conf.arg(metavar="KEY=VALUE")]
"""A repeatable ``KEY=VALUE`` option: a field of a stage's config, typed by the field."""
SourceOptions = Annotated[tuple[str, ...], tyro.conf.UseAppendAction, tyro.conf.arg(metavar="KEY=VALUE")]
"""A repeatable ``--source-option KEY=VALUE``: a field of the 2D mask source's config."""


def _check_device(device: str) -> None:
    """``--device``: auto, cpu, cuda or cuda:N, and CUDA only where it is available (checked before any input is read).

    Only a CUDA device imports torch here, so a bad option fails at once.
    """
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise Sem3RError(f"unknown device '{device}' (expected auto, cpu, cuda or cuda:N)")
    if device.startswith("cuda"):
        from sem3r.reconstruct.g2vlm import resolve_device

        resolve_device(device)


def _check_count(option: str, value: int | None, minimum: int = 1, multiple: int | None = None) -> None:
    """``value`` of ``option`` is at least ``minimum`` (and a multiple of ``multiple``); ``None`` passes."""
    if value is None:
        return
    if value < minimum:
        raise Sem3RError(f"{option} must be at least {minimum}, got {value}")
    if multiple is not None and value % multiple:
        raise Sem3RError(f"{option} must be a multiple of {multiple} (the patch size), got {value}")


def _mask_source_options(source: str, items: tuple[str, ...] = (), sam_model: str | None = None) -> dict:
    """Typed config overrides of the 2D mask source ``source`` from ``KEY=VALUE`` items.

    ``sam_model`` is a shortcut for ``model=SAM_MODEL`` (an explicit ``model=`` item wins). Values
    are typed by the fields of the source's config dataclass (:func:`sem3r.config.parse_options`).

    Raises:
        Sem3RError: unknown source, an unknown key or a value that does not parse (one line naming
            the key and the valid keys).
    """
    from sem3r.config import parse_options
    from sem3r.instances.mask_sources import get_mask_source

    _, config_cls = get_mask_source(source).load()
    items = ([f"model={sam_model}"] if sam_model else []) + list(items)
    return parse_options(config_cls, items, f"mask source '{source}'")


def synth(
    out: Path,
    scenes: int = 4,
    views: int = 8,
    height: int = 256,
    width: int = 256,
    seed: int = 0,
    camera_path: Literal["orbit", "walk", "random_large"] = "orbit",
    resume: bool = True,
    sensor: Literal["none", "kinect"] = "none",
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
        sensor: degrade the renders like a real RGB-D sensor: kinect (Kinect-v1-like depth noise,
            quantisation and holes, colour noise, world frame at the first camera; the ground
            truth stays exact) or none (perfect renders, +z up).
    """
    from sem3r.data.synthetic import SynthConfig, write_dataset
    from sem3r.io import check_writable_dir

    if scenes < 1 or views < 1:
        raise Sem3RError(f"--scenes and --views must be at least 1, got {scenes} and {views}")
    _check_count("--height", height)
    _check_count("--width", width)
    check_writable_dir(out, "the dataset folder")
    config = SynthConfig(seed=seed, num_views=views, height=height, width=width, camera_path=camera_path, sensor=sensor)
    manifest = write_dataset(out, scenes, config, resume=resume)
    print(f"wrote {scenes} scenes to {out} (manifest: {manifest})")


def demo(
    out: Path = Path("sem3r-demo"),
    seed: int = 0,
    views: int = 8,
    height: int = 384,
    width: int = 512,
    checkpoint: str | None = None,
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
        checkpoint: IGGT weights (e.g. from `sem3r train iggt`); instances then come from clustering
            its instance features instead of lifting a classical 2D over-segmentation.
    """
    from sem3r.demo import DemoConfig, run_demo
    from sem3r.io import check_writable_dir

    for option, value in (("--views", views), ("--height", height), ("--width", width)):
        _check_count(option, value)
    check_writable_dir(out, "the demo folder")
    if checkpoint is not None:  # a bad path or an unreachable hub id fails before the scene is generated
        from sem3r.reconstruct.checkpoint import resolve_checkpoint

        resolve_checkpoint(checkpoint)
    result = run_demo(DemoConfig(out=out, seed=seed, num_views=views, height=height, width=width, checkpoint=checkpoint))
    print(result.summary())


def import_(
    source: Positional[Path],
    out: Path,
    layout: str = "auto",
    stride: int = 1,
    max_frames: int | None = None,
    resize: tuple[int, int] | None = None,
) -> None:
    """Read a dataset (image folder, video, 7-Scenes, ScanNet export, TUM RGB-D, COLMAP model) into a Scene.

    Args:
        source: folder or video file to read.
        out: Scene folder to write.
        layout: auto, or one of the reader names (see sem3r.data.readers.LAYOUTS).
        stride: keep every STRIDE-th frame (7-Scenes, ScanNet, TUM).
        max_frames: keep at most this many frames (spread evenly for image folders and videos).
        resize: H W to resize every image to (image folders and COLMAP models of mixed sizes).
    """
    from sem3r.data.readers import detect_layout, frame_options, read_scene
    from sem3r.io import check_writable_dir

    _check_count("--stride", stride)
    _check_count("--max-frames", max_frames)
    check_writable_dir(out, "the Scene folder")
    kind = layout if layout != "auto" else detect_layout(source)[0]
    options = frame_options(kind, stride, max_frames) | ({"resize": resize} if resize is not None else {})
    scene = read_scene(source, layout=kind, **options)
    scene.save(out)
    print(f"read {scene.num_views} views ({scene.height}x{scene.width}, source: {scene.metadata.get('source')}) -> {out}")


def run(
    input: Positional[Path],
    out: Path,
    layout: str = "auto",
    max_frames: int | None = None,
    geometry: str = "auto",
    checkpoint: str | None = None,
    geometry_option: Options = (),
    instances: str = "auto",
    instances_option: Options = (),
    classes: str | None = None,
    vlm: str | None = None,
    up: str | None = None,
    formats: tuple[str, ...] = ("ply", "glb", "html"),
    voxel_size: float = 0.01,
    question: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = (),
    questions: Path | None = None,
    device: str = "auto",
) -> None:
    """Photos, a video or an RGB-D sequence to a labelled, queryable scene in one command.

    Stages: input (any layout `sem3r import` reads), geometry (auto: rgbd when the input has sensor
    depth and poses, feedforward with --checkpoint, else colmap), instances (floor, walls and ceiling
    as structure plus objects, on dense geometry), labels (with --vlm and --classes), export (PLY,
    GLB, HTML viewer, ...), questions (--question / --questions into answers.jsonl) and report.md
    with the stages chosen and their times. OUT/scene is the final Scene for `sem3r ask`. A failed
    stage names itself and keeps what earlier stages wrote; the same command again resumes.

    Args:
        input: a folder of photos, a video, or a dataset / Scene folder (7-Scenes, ScanNet, TUM, COLMAP).
        out: output folder.
        layout: input layout, auto-detected by default (image_folder, video, 7scenes, scannet, tum, colmap, sem3r).
        max_frames: use at most this many frames, spread evenly.
        geometry: auto, rgbd, feedforward, g2vlm, colmap, oracle or a registered backend.
        checkpoint: feedforward / g2vlm geometry checkpoint (local path or hub id).
        geometry_option: set a field of the geometry backend's config, e.g. max_depth=4.0 (rgbd).
        instances: auto (combined on dense geometry), none, combined, geometric, lift, iggt, perview.
        instances_option: set a field of the segmentation method's config, e.g. source=sam.
        classes: comma-separated class names the --vlm labels the instances with.
        vlm: CLIP/SigLIP model folder or hub id.
        up: world up as x,y,z (or +z, -y, ...) instead of the floor plane's normal.
        formats: export formats (ply, glb, html, ...).
        voxel_size: voxel size in metres of the exported point cloud.
        question: a question to answer at the end (repeatable).
        questions: a text file with one question per line.
        device: auto, cpu or cuda.
    """
    from sem3r.pipeline import run_pipeline

    config = _run_config(layout, max_frames, geometry, checkpoint, geometry_option, instances, instances_option,
                         classes, vlm, up, formats, voxel_size, question, questions, device)
    result = run_pipeline(input, out, config)
    print(result.summary())
    for answer in result.answers:
        print(f"Q: {answer['question']}\nA: {answer['answer']}")


def _run_config(layout, max_frames, geometry, checkpoint, geometry_option, instances, instances_option, classes, vlm,
                up, formats, voxel_size, question, questions, device):
    """The :class:`sem3r.pipeline.RunConfig` of ``sem3r run`` / ``sem3r batch`` options."""
    from sem3r.pipeline import RunConfig

    _check_device(device)
    from sem3r.reasoning.qa import read_questions

    asked = list(question) + (read_questions(questions) if questions is not None else [])
    return RunConfig(
        layout=layout, max_frames=max_frames, geometry=geometry, checkpoint=checkpoint,
        geometry_options=tuple(geometry_option), instances=instances, instances_options=tuple(instances_option),
        classes=tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else (), vlm=vlm, up=up,
        formats=tuple(formats), voxel_size=voxel_size, questions=tuple(asked), device=device,
    )


def batch(
    scenes: Positional[tuple[Path, ...]] = (),
    out: Path = Path("sem3r-batch"),
    manifest: Path | None = None,
    workers: int = 1,
    ray: bool = False,
    ray_address: str | None = None,
    layout: str = "auto",
    max_frames: int | None = None,
    geometry: str = "auto",
    checkpoint: str | None = None,
    geometry_option: Options = (),
    instances: str = "auto",
    instances_option: Options = (),
    classes: str | None = None,
    vlm: str | None = None,
    up: str | None = None,
    formats: tuple[str, ...] = ("ply", "glb", "html"),
    voxel_size: float = 0.01,
    question: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = (),
    questions: Path | None = None,
    device: str = "auto",
) -> None:
    """Run `sem3r run` over many scenes: a local process pool, or Ray with --ray.

    Each scene goes to OUT/<name>/; a failed scene is recorded and the others go on; scenes that
    finished in an earlier batch are skipped (re-running resumes); the summary table is printed
    and written to OUT/batch.md and OUT/batch.json. The stage options are those of `sem3r run`.

    Args:
        scenes: input paths (frames folders, videos, dataset or Scene folders).
        out: output folder.
        manifest: a file listing the inputs (one path per line, a JSON list, or a sem3r synth manifest.json).
        workers: local worker processes.
        ray: run the scenes as Ray tasks (needs the [ray] extra); a local Ray instance unless --ray-address.
        ray_address: address of a running Ray cluster, e.g. ray://head:10001 or auto.
        layout: input layout of every scene, auto-detected by default.
        max_frames: use at most this many frames per scene.
        geometry: auto, rgbd, feedforward, g2vlm, colmap, oracle or a registered backend.
        checkpoint: feedforward / g2vlm geometry checkpoint.
        geometry_option: set a field of the geometry backend's config.
        instances: auto, none, combined, geometric, lift, iggt, perview.
        instances_option: set a field of the segmentation method's config.
        classes: comma-separated class names for --vlm.
        vlm: CLIP/SigLIP model folder or hub id.
        up: world up as x,y,z instead of the floor plane's normal.
        formats: export formats.
        voxel_size: voxel size in metres of the exported point cloud.
        question: a question to answer for every scene (repeatable).
        questions: a text file with one question per line.
        device: auto, cpu or cuda.
    """
    from sem3r.batch import BatchConfig, format_batch_table, read_manifest, run_batch

    run_config = _run_config(layout, max_frames, geometry, checkpoint, geometry_option, instances, instances_option,
                             classes, vlm, up, formats, voxel_size, question, questions, device)
    sources = list(scenes) + (read_manifest(manifest) if manifest is not None else [])
    rows = run_batch(sources, out, BatchConfig(run=run_config, workers=workers, ray=ray, ray_address=ray_address))
    print(format_batch_table(rows))
    print(f"summary: {out / 'batch.md'}")
    failed = [r for r in rows if r.status == "failed"]
    if failed:
        raise Sem3RError(f"{len(failed)} of {len(rows)} scenes failed, first: {failed[0].name}: {failed[0].error}")


def reconstruct(
    images: Positional[Path],
    out: Path,
    backend: str = "feedforward",
    checkpoint: str | None = None,
    resolution: int | None = None,
    mode: Literal["crop", "pad"] = "crop",
    points_from: Literal["points", "depth"] = "points",
    conf_percentile: float | None = None,
    layout: str = "auto",
    max_frames: int | None = None,
    device: str = "auto",
) -> None:
    """Recover cameras, depth and points and write a Scene.

    Backends: feedforward (the geometry transformer; any checkpoint with the VGGT-1B layout or one
    trained by `sem3r train geometry`), g2vlm (G2VLM's geometry expert; the official
    InternRobotics/G2VLM-2B-MoT or a folder trained by Sem3R; needs the [vlm] extra; the Scene has
    the size of the first image), rgbd (sensor depth and poses: 7-Scenes, ScanNet, TUM,
    synthetic), colmap (pycolmap SfM: cameras and sparse points; needs the [sfm] extra), oracle
    (ground truth of a synthetic scene).

    Args:
        images: a folder of images (any sizes for feedforward and g2vlm), a video, or a dataset /
            Scene folder.
        out: Scene folder to write.
        backend: feedforward, g2vlm, rgbd, colmap, oracle or a registered plugin.
        checkpoint: feedforward / g2vlm: local file / folder or hub id (default: facebook/VGGT-1B,
            InternRobotics/G2VLM-2B-MoT).
        resolution: feedforward: model resolution (multiple of 14, default 518); g2vlm: image width
            (multiple of 14, default: the checkpoint's, 518 for the official model).
        mode: feedforward: crop to the resolution's width, or pad to a square.
        points_from: feedforward: world points from the point head, or from depth and cameras.
        conf_percentile: feedforward: mark the lowest P percent of pixels by confidence invalid.
        layout: input layout, auto-detected by default.
        max_frames: use at most this many frames, spread evenly.
        device: feedforward / g2vlm: auto, cpu or cuda.
    """
    from sem3r.io import check_writable_dir
    from sem3r.reconstruct import reconstruct as run_backend
    from sem3r.reconstruct.feedforward import FeedforwardConfig, reconstruct_image_files
    from sem3r.reconstruct.preprocess import PreprocessConfig

    _check_count("--resolution", resolution, 14, multiple=14)
    _check_count("--max-frames", max_frames)
    if conf_percentile is not None and not 0 <= conf_percentile <= 100:
        raise Sem3RError(f"--conf-percentile must be between 0 and 100, got {conf_percentile}")
    if backend in ("feedforward", "g2vlm"):
        _check_device(device)
    check_writable_dir(out, "the Scene folder")
    options = {}
    if backend == "feedforward":
        options["config"] = FeedforwardConfig(
            checkpoint=checkpoint or FeedforwardConfig.checkpoint,
            preprocess=PreprocessConfig(mode=mode, target_size=resolution or PreprocessConfig.target_size),
            points_from=points_from,
            conf_percentile=conf_percentile,
            device=device,
        )
        from sem3r.reconstruct.checkpoint import resolve_checkpoint

        resolve_checkpoint(options["config"].checkpoint)  # a bad checkpoint fails before the images are read
    elif backend == "g2vlm":
        from sem3r.reconstruct.g2vlm import G2VLMReconstructConfig

        options["config"] = G2VLMReconstructConfig(checkpoint=checkpoint or G2VLMReconstructConfig.checkpoint,
                                                   width=resolution, device=device)
        options["config"].validate()  # bad options and checkpoint folders fail before the images are read
        from sem3r.models.g2vlm.config import G2VLMConfig
        from sem3r.reconstruct.g2vlm import resolve_g2vlm_folder

        G2VLMConfig.from_folder(resolve_g2vlm_folder(options["config"].checkpoint))
    # the readers import torch: only after the cheap checks above
    from sem3r.data.readers import detect_layout, frame_options, read_scene
    from sem3r.data.readers.common import even_indices, image_size, list_images

    kind = layout if layout != "auto" else detect_layout(images)[0]
    if backend == "feedforward" and kind == "image_folder":
        files = list_images(images)
        if not files:
            raise Sem3RError(f"no images in '{images}'")
        scene = reconstruct_image_files([files[i] for i in even_indices(len(files), max_frames)], options["config"])
    else:
        reader_options = frame_options(kind, max_frames=max_frames)
        if backend == "g2vlm" and kind == "image_folder" and list_images(images):
            # G2VLM resizes every view to the size computed from the first, so photos may differ in size
            reader_options["resize"] = image_size(list_images(images)[0])
        scene = run_backend(read_scene(images, layout=kind, **reader_options), backend, **options)
    scene.save(out)
    print(f"{backend}: {scene.num_views} views at {scene.height}x{scene.width} -> {out}")


def export(
    scene_dir: Positional[Path],
    out: Path | None = None,
    formats: tuple[Literal["ply", "glb", "html", "colmap", "nerfstudio"], ...] = ("ply", "glb", "html"),
    color_by: Literal["rgb", "instance", "semantic"] = "rgb",
    voxel_size: float | None = 0.01,
    conf_percentile: float | None = None,
    max_points: int = 200_000,
    colmap_text: bool = False,
) -> None:
    """Export a Scene as a labelled PLY point cloud, a GLB with camera frusta, an offline HTML viewer and/or training datasets.

    colmap writes OUT/colmap (images/ and sparse/0/*.bin, the layout Gaussian splatting and
    nerfstudio's colmap dataparser read); nerfstudio writes OUT/nerfstudio (transforms.json,
    images/, depths/ in millimetres when the scene has depth, sparse_pc.ply). Both start from the
    scene's sparse points when it has them (colmap backend), else from its fused dense cloud.
    Views COLMAP did not register are skipped and counted.

    Args:
        scene_dir: a Scene folder (written by sem3r demo, import, synth, ...).
        out: output folder (default: the scene folder).
        formats: which files to write.
        color_by: colouring of the GLB point cloud.
        voxel_size: voxel downsampling in metres (none to keep every pixel).
        conf_percentile: drop the lowest P percent of points by confidence.
        max_points: points embedded in the HTML viewer, and dense points in the colmap/nerfstudio datasets.
        colmap_text: also write the COLMAP model as text files (OUT/colmap/sparse_text/0).
    """
    from sem3r.io import check_writable_dir
    from sem3r.scene import Scene
    from sem3r.viz import export_scene

    _check_count("--max-points", max_points)
    if voxel_size is not None and not voxel_size > 0:
        raise Sem3RError(f"--voxel-size must be positive (or none), got {voxel_size}")
    if conf_percentile is not None and not 0 <= conf_percentile <= 100:
        raise Sem3RError(f"--conf-percentile must be between 0 and 100, got {conf_percentile}")
    check_writable_dir(out or scene_dir, "the export folder")
    scene = Scene.load(scene_dir)
    written = export_scene(
        scene,
        out or scene_dir,
        formats=formats,
        color_by=color_by,
        voxel_size=voxel_size,
        conf_percentile=conf_percentile,
        max_points=max_points,
        colmap_text=colmap_text,
        report=lambda line: print(f"dataset {line}"),
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
    from sem3r.io import check_writable_file, write_json_atomic
    from sem3r.scene import Scene

    if out is not None:
        check_writable_file(out, "the metrics file")
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


def train(what: Positional[Literal["geometry", "iggt", "segmenter3d", "g2vlm", "ross3d"]], config: Path) -> None:
    """Train a model from a JSON config (resumable: set train.resume to continue a run).

    geometry: the VGGT-style geometry transformer on a `sem3r synth` dataset, with the VGGT or
    G2VLM losses. iggt: the same transformer with IGGT's instance head, trained with the geometry
    losses plus the 3D-consistent contrastive loss on the instance features. segmenter3d: the
    OVSeg3R 3D instance segmenter, trained from per-view 2D masks only (VIP, IBSp superpoints).
    g2vlm: a small G2VLM in two stages (stage "geometry": the geometry expert with the
    visual-geometry loss; stage "joint": spatial QA of the synthetic rooms as chat; needs the [vlm]
    extra). ross3d: ROSS3D with its reconstructive objectives (sem3r.training.ross3d). The trained
    weights land in TRAIN.OUT_DIR/model/, ready for `sem3r reconstruct --checkpoint` (--backend
    g2vlm for G2VLM), `sem3r segment --checkpoint`, `sem3r segment3d --checkpoint`, `sem3r ask
    --lmm g2vlm:FOLDER` and `sem3r ask --lmm ross3d:FOLDER`.

    Args:
        what: which model to train.
        config: JSON file; see sem3r.training.geometry, sem3r.training.iggt,
            sem3r.training.segmenter3d, sem3r.training.g2vlm and sem3r.training.ross3d for the fields.
    """
    config = _read_training_config(what, config)
    if what in ("segmenter3d", "g2vlm", "ross3d"):
        if what == "g2vlm":
            from sem3r.training.g2vlm import train_g2vlm as fn
        elif what == "ross3d":
            from sem3r.training.ross3d import train_ross3d as fn
        else:
            from sem3r.training.segmenter3d import train_segmenter3d as fn
        print(f"model: {fn(config)}")
        return
    from sem3r.training import train_geometry, train_iggt

    last = (train_iggt if what == "iggt" else train_geometry)(config)
    print(f"last checkpoint: {last}; model: {last.parent.parent / 'model'}")


def _read_training_config(what: str, path: Path):
    """The training config of ``what`` read from ``path``, its ``train.out_dir`` checked writable.

    Raises:
        Sem3RError: invalid JSON, unknown or invalid fields (one line naming ``path``), or an output
            folder that cannot be written.
    """
    import importlib

    from sem3r.io import check_writable_dir

    module, name = {"geometry": ("geometry", "GeometryTrainingConfig"), "iggt": ("iggt", "IGGTTrainingConfig"),
                    "segmenter3d": ("segmenter3d", "Segmenter3DTrainingConfig"),
                    "g2vlm": ("g2vlm", "G2VLMTrainingConfig"), "ross3d": ("ross3d", "Ross3DTrainingConfig")}[what]
    config_cls = getattr(importlib.import_module(f"sem3r.training.{module}"), name)
    try:
        config = config_cls.from_file(path)
    except Sem3RError as exc:
        raise Sem3RError(str(exc) if str(path) in str(exc) else f"'{path}': {exc}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a value of the wrong JSON type
        raise Sem3RError(f"'{path}' is not a valid {what} training config: {type(exc).__name__}: {exc}") from None
    check_writable_dir(config.train.out_dir, "the training output folder")
    return config


def segment(
    scene_dir: Positional[Path],
    method: Literal["iggt", "perview", "lift", "geometric", "combined"] = "iggt",
    out: Path | None = None,
    checkpoint: str | None = None,
    preset: Literal["small", "medium", "large"] | None = None,
    min_cluster_size: int | None = None,
    source: str = "oversegment",
    sam_model: str | None = None,
    source_option: SourceOptions = (),
    resolution: int = 518,
    device: str = "auto",
    up: str | None = None,
) -> None:
    """Segment a reconstructed Scene into instances whose ids are shared across views.

    iggt clusters IGGT instance features of all views jointly (the Scene's own features, written
    by `sem3r reconstruct --checkpoint IGGT`, or predicted here with --checkpoint); perview clusters
    each view alone (baseline); lift lifts per-view 2D masks (--source gt | oversegment | sam) into
    3D and merges them across views by view consensus; geometric needs no weights and no 2D masks:
    it finds the floor, walls and ceiling (and gravity from the floor), removes them and groups the
    remaining surface into objects across convex joins, splitting at concave ones; combined adds
    the lifted 2D masks of --source (default oversegment) as a second cue, the best method without
    downloaded weights. The masks and the instance table are written into the Scene (or into --out).

    Args:
        scene_dir: a Scene folder with geometry (sem3r reconstruct, import of RGB-D, synth).
        method: iggt, perview or lift.
        out: Scene folder to write (default: SCENE_DIR itself).
        checkpoint: iggt/perview: IGGT weights (file, folder or hub id) to predict instance features.
        preset: iggt/perview: clustering preset for small, medium or large objects.
        min_cluster_size: iggt/perview: HDBSCAN minimum cluster size (overrides the preset).
        source: lift: 2D mask source (gt: the scene's masks with per-view random ids; oversegment; sam).
        sam_model: lift with --source sam: SAM model folder or hub id (same as --source-option model=...).
        source_option: lift: set a field of the 2D mask source's config, typed by the field.
            E.g. min_size=200 or depth_cut=none for oversegment; an unknown key lists the valid ones.
        resolution: iggt/perview with --checkpoint: model resolution (multiple of 14).
        device: auto, cpu or cuda.
        up: geometric/combined: world up as x,y,z (or +z, -y, ...) instead of the floor plane's normal.
    """
    from sem3r.io import check_writable_dir
    from sem3r.scene import Scene

    _check_device(device)
    _check_count("--resolution", resolution, 14, multiple=14)
    _check_count("--min-cluster-size", min_cluster_size, 2)
    check_writable_dir(out or scene_dir, "the Scene folder")
    if checkpoint is not None and method in ("iggt", "perview"):  # a bad checkpoint fails before any work
        from sem3r.reconstruct.checkpoint import resolve_checkpoint

        resolve_checkpoint(checkpoint)
    # sem3r.instances imports torch: only after the cheap checks above
    from sem3r.instances import ClusteringConfig
    from sem3r.instances import segment as run_segment

    scene = Scene.load(scene_dir)
    if source_option and method not in ("lift", "combined"):
        raise Sem3RError(f"--source-option sets the 2D mask source of --method lift or combined; --method {method} uses none")
    source_options = _mask_source_options(source, source_option, sam_model) if method in ("lift", "combined") else {}
    if method == "lift":
        options = {"source": source, "source_options": source_options}
    elif method in ("geometric", "combined"):
        from sem3r.instances.proposals import ProposalConfig
        from sem3r.instances.structure import StructureConfig, parse_up

        proposals = ProposalConfig(structure=StructureConfig(up=None if up is None else tuple(parse_up(up))))
        options = {"proposals": proposals}
        if method == "combined":
            options |= {"source": source, "source_options": source_options}
    else:
        clustering = ClusteringConfig(preset=preset or "medium", min_cluster_size=min_cluster_size)
        options = {"checkpoint": checkpoint, "clustering": clustering, "resolution": resolution, "device": device}
    result = run_segment(scene, method, **options)
    result.save(out or scene_dir)
    print(f"{method}: {len(result.instances)} instances in {result.num_views} views -> {out or scene_dir}")
    structure = result.metadata.get("structure") if method in ("geometric", "combined") else None
    if structure:
        print(f"up: {', '.join(f'{v:.3f}' for v in structure['up'])} (from the {structure['up_source']}; "
              f"{structure['camera_up_error_deg']:.1f} deg from the cameras' mean up)")
        if structure.get("note"):
            print(f"note: {structure['note']}")


def segment3d(
    scene_dir: Positional[Path],
    classes: str,
    checkpoint: str | None = None,
    source: str = "auto",
    sam_model: str | None = None,
    source_option: SourceOptions = (),
    text_encoder: str | None = None,
    vlm: str | None = None,
    out: Path | None = None,
    export: Path | None = None,
    score_threshold: float = 0.1,
    device: str = "cpu",
    up: str | None = None,
) -> None:
    """Open-vocabulary 3D instance segmentation (OVSeg3R): 3D instances with labels and scores.

    With --checkpoint (a `sem3r train segmenter3d` run) the trained 3D segmenter predicts instance
    masks over IBSp superpoints and classifies them by similarity to the text embeddings of
    --classes; without it the training-free path lifts the per-view 2D masks, merges them across
    views (with --source oversegment: combined with the geometric object proposals of
    `sem3r segment --method combined`) and snaps them to superpoints. The per-view 2D masks (and their class names) come from
    --source: gt (the scene's own 2D masks, e.g. a `sem3r synth` scene), oversegment or sam;
    auto takes gt when the scene has instance and semantic masks, else oversegment.
    Instance masks, semantic masks (indices into --classes) and the instance table are written
    into the Scene (or --out); --export also writes scene.ply (instance_id and semantic_id
    fields), scene.glb and viewer.html coloured by instance. --vlm (re)labels the instances with a
    CLIP/SigLIP model by mask pooling its dense features over all views, for 2D sources that
    name no classes (oversegment, sam).

    Args:
        scene_dir: a Scene folder with geometry.
        classes: comma-separated class names, e.g. "chair,table,painting".
        checkpoint: trained segmenter folder (TRAIN.OUT_DIR or its model/).
        source: 2D mask source: auto, gt, oversegment or sam.
        sam_model: with --source sam: SAM model folder or hub id (same as --source-option model=...).
        source_option: set a field of the 2D mask source's config, typed by the field.
            E.g. min_size=200 for oversegment or miss_rate=0.2 for gt; an unknown key lists the valid ones.
        text_encoder: hash, clip, or a CLIP/SigLIP folder or hub id (default: the checkpoint's).
        vlm: CLIP/SigLIP folder or hub id that labels the instances from their pixels.
        out: Scene folder to write (default: SCENE_DIR itself).
        export: also export PLY/GLB/HTML into this folder.
        score_threshold: drop instances scoring below this (trained path).
        device: cpu, cuda or auto.
        up: training-free path with geometric proposals: world up as x,y,z (or +z, -y, ...)
            instead of the floor plane's normal.
    """
    from sem3r.io import check_writable_dir
    from sem3r.scene import Scene
    from sem3r.semantics.segment3d import Segment3DConfig
    from sem3r.semantics.segment3d import segment3d as run_segment3d
    from sem3r.viz import export_scene

    _check_device(device)
    check_writable_dir(out or scene_dir, "the Scene folder")
    if export is not None:
        check_writable_dir(export, "the export folder")
    encoder = None
    if vlm is not None:  # load the labelling model first: a bad model fails in seconds, not after the segmentation
        from sem3r.semantics import make_image_encoder

        encoder = make_image_encoder(vlm, device=device)
    scene = Scene.load(scene_dir)
    if source == "auto":
        source = "gt" if scene.instance_masks is not None and scene.semantic_masks is not None else "oversegment"
    proposals = "auto"
    if up is not None:
        from sem3r.instances.proposals import ProposalConfig
        from sem3r.instances.structure import StructureConfig, parse_up

        proposals = ProposalConfig(structure=StructureConfig(up=tuple(parse_up(up))))
    config = Segment3DConfig(checkpoint=checkpoint, mask_source=source,
                             mask_options=_mask_source_options(source, source_option, sam_model), text_encoder=text_encoder,
                             score_threshold=score_threshold, device=device, proposals=proposals)
    result = run_segment3d(scene, classes.split(","), config)
    segmented = result.scene
    if encoder is not None:
        from sem3r.semantics import label_scene

        segmented = label_scene(segmented, result.class_names, encoder)
    written = export_scene(segmented, export, color_by="instance") if export is not None else []
    segmented.save(out or scene_dir)  # after the export: a failed export leaves the input Scene as it was
    table = segmented.instances
    counts = {}
    for label in table.labels:
        counts[label or "unlabelled"] = counts.get(label or "unlabelled", 0) + 1
    summary = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
    print(f"segment3d: {len(table)} instances ({summary or 'none'}) -> {out or scene_dir}")
    if len(table) and not any(table.labels):
        print(f"note: the 2D masks of --source {source} carry no class names, so the instances are unlabelled; "
              "--vlm labels them")
    for path in written:
        print(f"wrote {path}")


def bev(
    scene_dir: Positional[Path],
    out: Path | None = None,
    resolution: int = 432,
    markers: bool = False,
    up: str = "auto",
) -> None:
    """Render a bird's-eye view of a Scene's coloured point cloud (ROSS3D section 4.3).

    Top-down orthographic render keeping the highest point per pixel; empty pixels are black and
    written as a second mask image. --markers draws each instance's id at its centroid (GPT4Scene).

    Args:
        scene_dir: a Scene folder with geometry.
        out: PNG to write (default: SCENE_DIR/bev.png; the mask goes beside it as *_mask.png).
        resolution: image side in pixels.
        markers: draw instance ids.
        up: world up: auto (the Scene's recorded up, else the floor plane's normal), x,y,z, or +z, -y, ...
    """
    from sem3r.io import check_writable_file
    from sem3r.reasoning.bev import BEVConfig, render_bev, save_bev
    from sem3r.scene import Scene

    _check_count("--resolution", resolution)
    target = out or scene_dir / "bev.png"
    check_writable_file(target, "the BEV image")
    check_writable_file(target.with_name(f"{target.stem}_mask.png"), "the BEV mask")
    image = render_bev(Scene.load(scene_dir), BEVConfig(resolution=resolution, markers=markers, up=up))
    for path in save_bev(image, target):
        print(f"wrote {path}")


def ask(
    scene_dir: Positional[Path],
    question: Positional[Annotated[str | None, tyro.conf.arg(metavar="QUESTION")]] = None,
    questions: Annotated[Path | None, tyro.conf.arg(metavar="FILE")] = None,
    json: bool = False,
    cache: bool = True,
    lmm: str | None = None,
    lmm_model: str = "default",
    up: str = "auto",
    max_views: int | None = None,
    max_new_tokens: int | None = None,
    device: str = "auto",
) -> None:
    """Answer a spatial question about a segmented Scene, with a number and a short explanation.

    Families (VSI-Bench / SPAR-Bench): counting, distance between objects, object size, room size,
    relative distance, relative direction, object depth and distance from a camera, camera motion
    between views, appearance order. Other questions go to --lmm when given, else the answer says
    it cannot answer. Objects are named by label ("chair") or label#id ("chair#3"). "How tall" asks
    for the extent along the up axis, "how long" for the longer horizontal side of the object's
    up-aligned box, "how wide" for the extent across it as one faces it (the shorter horizontal side
    of a table, the longer one of a shelf, door or window), "how big" for its longest side.
    The scene graph is cached in SCENE_DIR/scene_graph.npz and rebuilt when the Scene changes, so
    questions after the first are fast. --questions FILE answers many questions with one graph and
    prints one JSON line per question ({"question", "answer", "kind", "value", "unit", "explanation",
    "objects"}); a question that cannot be answered gets kind "error" there instead of ending the run.
    With --lmm g2vlm:PATH (a G2VLM checkpoint folder or hub id) G2VLM answers every question itself
    from the Scene's views through its chat path (geometry and semantic branches); the Scene then
    needs only images. With --lmm ross3d:PATH (a ROSS3D checkpoint folder or hub id) ROSS3D answers
    from up to --max-views frames sampled uniformly (default 32) with its 3D position encoding, which
    needs the Scene's depth (or world points) and cameras.

    Args:
        scene_dir: a Scene folder with geometry and instances (sem3r segment / segment3d / synth).
        question: e.g. "how far is the sofa from the door?".
        questions: a file of questions (- for stdin): one per line, or JSON lines with a "question"
            key; blank lines are skipped.
        json: print the answer as one JSON line (always so with --questions).
        cache: read and write the scene-graph cache (--no-cache builds the graph afresh and writes nothing).
        lmm: an OpenAI-compatible endpoint (http://host:port/v1), g2vlm:PATH, ross3d:PATH, or a local
            vision-language model.
        lmm_model: model name sent to the endpoint.
        up: world up: auto (the Scene's recorded up, else the floor plane's normal), x,y,z, or +z, -y, ...
        max_views: g2vlm / ross3d: show the model at most this many views, spread evenly (default:
            all for g2vlm, 32 for ross3d).
        max_new_tokens: g2vlm / ross3d: longest reply in tokens (default 64 / 512).
        device: g2vlm / ross3d: auto, cpu or cuda.
    """
    import json as jsonlib

    from sem3r.reasoning.qa import QAEngine, answer_records, read_questions

    if question is not None and questions is not None:
        raise Sem3RError("give either a QUESTION or --questions FILE, not both")
    if question is None and questions is None:
        raise Sem3RError("give a QUESTION or --questions FILE")
    if question is not None and not question.strip():
        raise Sem3RError("the question is empty")
    if lmm is not None and lmm.startswith(("g2vlm:", "ross3d:")) and (questions is not None or json):
        raise Sem3RError("--questions and --json use the scene-graph engine; --lmm g2vlm:/ross3d: answer one QUESTION")
    asked = [question.strip()] if question is not None else read_questions(questions)
    if lmm is not None and lmm.startswith("g2vlm:"):
        _ask_g2vlm(scene_dir, question, lmm, max_views, max_new_tokens, device)
        return
    if lmm is not None and lmm.startswith("ross3d:"):
        _ask_ross3d(scene_dir, question, lmm, max_views, max_new_tokens, device)
        return
    if max_views is not None or max_new_tokens is not None or device != "auto":
        raise Sem3RError("--max-views, --max-new-tokens and --device apply to --lmm g2vlm:PATH only (and ross3d:PATH)")
    backend = None
    if lmm is not None:
        from sem3r.reasoning.lmm import check_lmm_spec, make_lmm

        check_lmm_spec(lmm)
        model = make_lmm(lmm, model=lmm_model) if lmm.lower().startswith(("http://", "https://")) else make_lmm(lmm)
        backend = model.chat
    from sem3r.reasoning.graph_cache import load_or_build_scene_graph
    from sem3r.reasoning.scene_graph import SceneGraphConfig, build_scene_graph
    from sem3r.scene import Scene

    graph_config = SceneGraphConfig(up=up)
    if cache:
        graph = load_or_build_scene_graph(scene_dir, config=graph_config, progress=True)
    else:
        graph = build_scene_graph(Scene.load(scene_dir), graph_config)
    engine = QAEngine(graph, lmm=backend)
    if questions is not None:
        for record in answer_records(engine, asked):
            print(jsonlib.dumps(record, allow_nan=False))
        return
    answer = engine.answer(asked[0])
    if answer.kind == "error":
        raise Sem3RError(answer.explanation)
    if json:
        print(jsonlib.dumps({"question": asked[0]} | answer.to_dict(), allow_nan=False))
        return
    print(answer.headline())
    if answer.explanation:
        print(answer.explanation)


def _ask_g2vlm(scene_dir: Path, question: str, spec: str, max_views: int | None, max_new_tokens: int | None,
               device: str) -> None:
    """``ask --lmm g2vlm:PATH``: cheap checks first (question, Scene, view count), then the model, then one chat."""
    from sem3r.data.readers.common import even_indices
    from sem3r.reasoning.lmm import make_lmm
    from sem3r.scene import Scene

    if not question.strip():
        raise Sem3RError("the question is empty")
    scene = Scene.load(scene_dir)
    views = even_indices(scene.num_views, max_views)
    options = {"device": device} | ({} if max_new_tokens is None else {"max_new_tokens": max_new_tokens})
    model = make_lmm(spec, **options)
    reply = model.chat(question, list(scene.images[views]))
    print(reply if reply else "(empty reply)")
    print(f"answered by G2VLM ({spec[len('g2vlm:'):]}) from {len(views)} of {scene.num_views} views")


def _ask_ross3d(scene_dir: Path, question: str, spec: str, max_views: int | None, max_new_tokens: int | None,
                device: str) -> None:
    """``ask --lmm ross3d:PATH``: cheap checks first (question, Scene geometry, options), then the model, then one chat."""
    from sem3r.reasoning.lmm import make_lmm
    from sem3r.reasoning.ross3d_lmm import check_scene_geometry, uniform_frame_indices
    from sem3r.scene import Scene

    if not question.strip():
        raise Sem3RError("the question is empty")
    scene = Scene.load(scene_dir)
    check_scene_geometry(scene)
    options = {"device": device} | ({} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}) | (
        {} if max_views is None else {"max_views": max_views})
    if max_views is not None and max_views < 1:
        raise Sem3RError(f"--max-views must be at least 1, got {max_views}")
    model = make_lmm(spec, **options)
    reply = model.chat_scene(question, scene)
    shown = len(uniform_frame_indices(scene.num_views, model.config.max_views))
    print(reply if reply else "(empty reply)")
    print(f"answered by ROSS3D ({spec[len('ross3d:'):]}) from {shown} of {scene.num_views} views")


def app(host: str = "127.0.0.1", port: int = 7860, workdir: Path | None = None, share: bool = False) -> None:
    """A local web app around `sem3r run`: upload frames or a video (or type a folder on the server),
    run, then look at the 3D viewer, the instance list and the report, download PLY/GLB, and ask
    spatial questions. Needs the [app] extra (gradio).

    Args:
        host: address to listen on (0.0.0.0 serves every interface: the app reads server paths).
        port: port to listen on.
        workdir: folder for the runs' inputs and outputs (default: a new temporary folder).
        share: also open a public gradio share link (needs the network).
    """
    from sem3r.app import launch

    print(f"sem3r app on http://{host}:{port} (Ctrl+C stops it)")
    launch(host=host, port=port, workdir=workdir, share=share)

COMMANDS = {
    "demo": demo,
    "run": run,
    "app": app,
    "batch": batch,
    "synth": synth,
    "import": import_,
    "reconstruct": reconstruct,
    "train": train,
    "segment": segment,
    "segment3d": segment3d,
    "bev": bev,
    "ask": ask,
    "export": export,
    "eval": eval_,
    "info": info,
}


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
