"""``sem3r demo``: the whole pipeline, offline, on a generated scene.

Stages and the method each uses today (later releases plug stronger ones into the same places):

1. **scene**: a procedural room from :mod:`sem3r.data.synthetic` (RGB, metric depth, cameras,
   instance and semantic ground truth);
2. **geometry**: the ``oracle`` backend of :func:`sem3r.reconstruct.reconstruct`, the generator's
   cameras and depth;
3. **instances**: the best segmentation method available (:func:`sem3r.instances.segment`):
   ``iggt`` (clustering of IGGT instance features) when an IGGT checkpoint is given, otherwise
   ``combined``, which needs no weights: the floor, walls and ceiling are found and removed, the
   remaining surface is grouped into objects across convex joins and split at concave ones, with
   the lifted masks of a classical 2D over-segmentation as a second cue (flat objects on walls);
4. **instance table**: 3D boxes, centroids and point counts from the fused, voxelised point cloud;
5. **evaluation** against the ground truth with :func:`sem3r.eval.evaluate_scene`;
6. **export**: Scene folder, labelled PLY, GLB with camera frusta, standalone HTML viewer,
   ``metrics.json`` and ``report.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from sem3r.io import write_json_atomic, write_text_atomic
from sem3r.scene import Scene


@dataclass
class DemoConfig:
    """Options of :func:`run_demo`.

    Attributes:
        out: output folder.
        seed: seed of the generated scene.
        num_views: number of rendered views.
        height: image height in pixels.
        width: image width in pixels.
        voxel_size: voxel size in metres of the exported point cloud and of the instance table.
        checkpoint: IGGT weights (file, folder or hub id); when given, instances come from the
            ``iggt`` method, otherwise from ``combined`` (structure + geometric proposals + lifted
            ``oversegment`` 2D masks).
        resolution: model resolution for ``checkpoint`` (a multiple of 14).
    """

    out: Path = Path("sem3r-demo")
    seed: int = 0
    num_views: int = 8
    height: int = 384
    width: int = 512
    voxel_size: float = 0.01
    checkpoint: str | None = None
    resolution: int = 518


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes:
        out: output folder.
        files: name -> path of every file or folder written.
        metrics: metric name -> value (see ``report.md``).
        timings: stage -> seconds.
        scene: the final Scene.
    """

    out: Path
    files: dict[str, Path]
    metrics: dict[str, float]
    timings: dict[str, float]
    scene: Scene = field(repr=False)

    def summary(self) -> str:
        """Lines telling the user where every output is."""
        lines = [f"sem3r demo finished in {sum(self.timings.values()):.1f} s; outputs in {self.out}/"]
        lines += [f"  {name:<8} {path}" for name, path in self.files.items()]
        return "\n".join(lines)


def run_demo(config: DemoConfig) -> DemoResult:
    """Generate a scene, run every available stage, evaluate and export; see the module docstring.

    Args:
        config: demo options.

    Returns:
        A :class:`DemoResult` whose ``files`` name the Scene folder, ``ply``, ``glb``, ``html``,
        ``metrics`` and ``report`` outputs.
    """
    from sem3r.data.synthetic import SynthConfig, generate_scene, save_ground_truth
    from sem3r.eval import evaluate_scene, object_metrics
    from sem3r.instances import segment
    from sem3r.reconstruct import reconstruct
    from sem3r.viz import export_scene

    out = Path(config.out)
    timings: dict[str, float] = {}
    stages = tqdm(total=5, desc="sem3r demo", unit="stage")

    def stage(name: str, start: float) -> None:
        timings[name] = time.perf_counter() - start
        stages.set_postfix_str(name)
        stages.update()

    t = time.perf_counter()
    synth = generate_scene(
        SynthConfig(seed=config.seed, num_views=config.num_views, height=config.height, width=config.width)
    )
    gt = synth.scene
    stage("scene", t)

    t = time.perf_counter()
    scene = reconstruct(gt, "oracle")
    if config.checkpoint is not None:
        scene = segment(scene, "iggt", checkpoint=config.checkpoint, resolution=config.resolution)
    else:
        scene = segment(scene, "combined")
    scene.update_instances(voxel_size=config.voxel_size)
    stage("geometry+instances", t)

    t = time.perf_counter()
    metrics = evaluate_scene(scene, gt, synth.cloud)
    metrics.update({f"objects/{name}": value for name, value in object_metrics(scene, gt).items()})
    stage("evaluation", t)

    t = time.perf_counter()
    files = {"scene": scene.save(out / "scene")}
    save_ground_truth(synth, out / "scene")
    for path in export_scene(scene, out, voxel_size=config.voxel_size, color_by="instance"):
        files[path.suffix.lstrip(".")] = path
    files["metrics"] = write_json_atomic(out / "metrics.json", metrics)
    stage("export", t)

    files["report"] = write_text_atomic(out / "report.md", _report(config, scene, metrics, timings, files))
    stage("report", time.perf_counter())
    stages.close()
    return DemoResult(out=out, files=files, metrics=metrics, timings=timings, scene=scene)


def _instances_method(scene: Scene) -> str:
    """One line naming the segmentation method the demo used."""
    method = scene.metadata.get("segmentation")
    if method == "iggt":
        return f"iggt: HDBSCAN clustering of the instance features of {scene.metadata['segmentation_config']['checkpoint']}"
    source = scene.metadata["segmentation_config"]["source"]
    return (f"combined: floor / walls / ceiling removed, superpoints grouped into objects across convex joins, "
            f"with the 2D masks of '{source}' lifted into 3D as a second cue")


def _report(config: DemoConfig, scene: Scene, metrics: dict[str, float], timings: dict[str, float], files: dict[str, Path]) -> str:
    """Markdown report of one demo run."""
    from sem3r.eval import format_metrics_table

    rows = "\n".join(f"| {name} | {path.relative_to(config.out) if path.is_relative_to(config.out) else path} |" for name, path in files.items())
    times = "\n".join(f"| {name} | {sec:.2f} |" for name, sec in timings.items())
    return f"""# Sem3R demo report

Scene: procedural room, seed {config.seed}, {scene.num_views} views at {scene.height}x{scene.width}.

| stage | method |
|---|---|
| geometry | {scene.metadata.get('geometry')} (generator cameras and metric depth) |
| instances | {_instances_method(scene)} |

The geometry is the generator's ground truth, so the geometry metrics below are exact by
construction. The instance metrics measure the segmentation against the generator's 3D-consistent
instance masks:

- `objects/*` (class-agnostic AP, predicted vs ground-truth instance counts) use **no class labels**:
  they measure the segmentation alone. This is the number to read.
- `instance3d/*`, `semantic2d/*` and `semantic3d/*` are class-aware; the demo has no open-vocabulary
  labelling step, so each predicted instance takes the majority class of the **generator's labels**
  under it. They show what the masks would score with perfect class names, not a labelling result.

Up (gravity) came from the {scene.metadata.get('structure', {}).get('up_source', 'scene metadata')}.

## Scene

```
{scene.describe()}
```

## Metrics against ground truth

{format_metrics_table(metrics)}

## Files

| output | path |
|---|---|
{rows}

## Timings (s)

| stage | seconds |
|---|---|
{times}
"""
