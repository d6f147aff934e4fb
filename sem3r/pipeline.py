"""``sem3r run``: a user's frames, video or dataset to a labelled, queryable scene in one call.

Stages, in order (each timed; ``report.md`` lists what ran and how long it took):

1. **input**: read the frames with :func:`sem3r.data.readers.read_scene` (any layout it detects:
   image folder, video, 7-Scenes, ScanNet, TUM, COLMAP model, Scene folder);
2. **geometry**: the best backend available (:func:`choose_geometry`): ``rgbd`` when the input has
   sensor depth and poses, ``feedforward`` when a checkpoint is given, else ``colmap`` (structure from
   motion: cameras and sparse points);
3. **instances**: on dense geometry, ``combined`` (floor, walls and ceiling found and labelled as
   structure, the rest grouped into objects, with lifted 2D masks as a second cue; no weights) or
   any method of :func:`sem3r.instances.segment`; skipped on sparse geometry, with a note;
4. **labels**: with ``vlm`` and ``classes``, open-vocabulary labels by mask pooling a CLIP/SigLIP
   model's dense features (:func:`sem3r.semantics.label_scene`);
5. **export**: :func:`sem3r.viz.export_scene` (PLY, GLB, HTML viewer, ...);
6. **questions**: the given questions answered by the spatial QA engine into ``answers.jsonl``;
7. **report**: ``report.md``.

The output folder::

    OUT/geometry/    Scene after the geometry stage (so changed instance options re-run without it)
    OUT/scene/       the final Scene: `sem3r ask OUT/scene "how far is the chair from the table?"`
    OUT/scene.ply, OUT/scene.glb, OUT/viewer.html   (the export formats asked for)
    OUT/answers.jsonl   (with questions)
    OUT/run.json     per stage: options, status, seconds, summary (what a re-run resumes from)
    OUT/report.md

Re-running the same command resumes: a stage is skipped when it finished before with the same
options and input and every stage before it was skipped too. A failed stage is recorded in
``run.json`` and ``report.md``; what earlier stages wrote is kept.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sem3r.errors import Sem3RError
from sem3r.io import read_json, write_json_atomic, write_text_atomic
from sem3r.scene import DENSE_GEOMETRY_HINT, InstanceTable, Scene

STAGES = ("input", "geometry", "instances", "labels", "export", "questions", "report")
"""Every stage :func:`run_pipeline` knows, in order."""

SEQUENCE_LAYOUTS = ("7scenes", "scannet", "tum")
"""Layouts that carry sensor depth and poses (the ``rgbd`` backend reads them)."""

RUN_STATE = "run.json"
STATE_VERSION = 1


@dataclass
class RunConfig:
    """Options of :func:`run_pipeline`.

    Attributes:
        layout: input layout (``auto`` detects it; see :data:`sem3r.data.readers.LAYOUTS`).
        max_frames: use at most this many frames, spread evenly (sequences, folders, videos).
        geometry: ``auto`` (see :func:`choose_geometry`) or a registered backend name.
        checkpoint: geometry checkpoint (local path or hub id) for ``feedforward`` / ``g2vlm``;
            giving one makes ``auto`` pick ``feedforward`` for images and videos.
        geometry_options: fields of the backend's config, e.g. ``{"max_depth": 4.0}`` for rgbd, or
            ``KEY=VALUE`` strings typed by those fields.
        instances: ``auto`` (``combined`` on dense geometry, none on sparse), ``none``, or a method of
            :func:`sem3r.instances.segment` (``combined``, ``geometric``, ``lift``, ``iggt``, ...).
        instances_options: fields of the method's config, e.g. ``{"source": "sam"}``, or ``KEY=VALUE``
            strings.
        classes: open-vocabulary class names for the labels stage.
        vlm: CLIP/SigLIP model folder or hub id that labels the instances (needs ``classes``).
        up: world up as ``x,y,z`` (or ``+z``, ``-y``, ...) instead of the floor plane's normal.
        formats: export formats (:data:`sem3r.viz.export.FORMATS`).
        voxel_size: voxel size in metres of the exported cloud.
        questions: questions answered into ``answers.jsonl`` after the export.
        device: ``auto``, ``cpu`` or ``cuda`` for the models.
    """

    layout: str = "auto"
    max_frames: int | None = None
    geometry: str = "auto"
    checkpoint: str | None = None
    geometry_options: dict[str, Any] | tuple[str, ...] = field(default_factory=dict)
    instances: str = "auto"
    instances_options: dict[str, Any] | tuple[str, ...] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    vlm: str | None = None
    up: str | None = None
    formats: tuple[str, ...] = ("ply", "glb", "html")
    voxel_size: float = 0.01
    questions: tuple[str, ...] = ()
    device: str = "auto"

    def validate(self) -> None:
        """Raise :class:`Sem3RError` (one line) for options that cannot work together."""
        from sem3r.viz.export import FORMATS

        if self.max_frames is not None and self.max_frames < 1:
            raise Sem3RError(f"max_frames must be at least 1, got {self.max_frames}")
        if self.vlm is not None and not self.classes:
            raise Sem3RError("--vlm labels the instances with --classes; give the class names, e.g. --classes chair,table")
        if self.classes and self.vlm is None:
            raise Sem3RError("--classes needs --vlm (a CLIP/SigLIP model folder or hub id) to label the instances")
        if self.classes and self.instances == "none":
            raise Sem3RError("--classes labels instances, but --instances none turns the instances stage off")
        unknown = sorted(set(self.formats) - set(FORMATS))
        if unknown:
            raise Sem3RError(f"unknown export format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
        if not self.voxel_size > 0:
            raise Sem3RError(f"voxel_size must be positive, got {self.voxel_size}")
        if any(not q.strip() for q in self.questions):
            raise Sem3RError("a question is empty")
        if self.up is not None:
            from sem3r.instances.structure import parse_up

            parse_up(self.up)


@dataclass
class StageRecord:
    """One stage of a run as stored in ``run.json``.

    Attributes:
        status: ``done``, ``skipped`` (not applicable), ``resumed`` (done by an earlier run) or ``failed``.
        seconds: wall time of the stage (of the earlier run when resumed).
        method: what the stage used, e.g. ``rgbd`` or ``combined``.
        summary: one line on what it produced.
        key: fingerprint of the options and input the stage's output depends on.
        error: the one-line error of a failed stage.
    """

    status: str
    seconds: float = 0.0
    method: str = ""
    summary: str = ""
    key: str = ""
    error: str = ""


@dataclass
class RunResult:
    """What :func:`run_pipeline` produced.

    Attributes:
        out: output folder.
        stages: stage name -> :class:`StageRecord`, in run order.
        files: output name -> path.
        answers: one dict per question (:func:`sem3r.reasoning.qa.answer_records`).
        peak_memory_gib: peak resident memory of the process.
    """

    out: Path
    stages: dict[str, StageRecord]
    files: dict[str, Path]
    answers: list[dict] = field(default_factory=list)
    peak_memory_gib: float = 0.0

    def summary(self) -> str:
        """Lines telling the user what ran and where the outputs are."""
        total = sum(r.seconds for r in self.stages.values() if r.status == "done")
        lines = [f"sem3r run finished in {total:.1f} s (peak memory {self.peak_memory_gib:.2f} GiB); outputs in {self.out}/"]
        lines += [f"  {name:<10} {rec.status:<8} {rec.method:<12} {rec.summary}" for name, rec in self.stages.items()]
        lines += [f"  ask:       sem3r ask {self.out / 'scene'} \"how many objects are there?\""]
        return "\n".join(lines)


def choose_geometry(layout: str, scene: Scene | None, checkpoint: str | None) -> str:
    """The geometry backend ``auto`` picks for an input.

    ``rgbd`` when the input has sensor depth and poses (7-Scenes, ScanNet, TUM, or a Scene folder
    with depth and finite cameras, e.g. ``sem3r synth``), ``feedforward`` when a checkpoint is given,
    else ``colmap``.

    Args:
        layout: the input's layout.
        scene: the input Scene (only read for layouts whose content decides, i.e. ``sem3r``).
        checkpoint: the user's geometry checkpoint, if any.

    Example:
        >>> choose_geometry("7scenes", None, None), choose_geometry("video", None, "ckpt"), choose_geometry("image_folder", None, None)
        ('rgbd', 'feedforward', 'colmap')
    """
    import numpy as np

    if layout in SEQUENCE_LAYOUTS:
        return "rgbd"
    if scene is not None and scene.depth is not None and np.isfinite(scene.cam_from_world).all() \
            and scene.metadata.get("poses_known", True):
        return "rgbd"
    return "feedforward" if checkpoint is not None else "colmap"


def _key(*parts: Any) -> str:
    """A stable fingerprint of JSON-able parts."""
    import hashlib

    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _input_key(source: Path) -> dict:
    """What identifies the input: its resolved path, and the names, sizes and times of its files."""
    files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())
    stats = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]
    return {"path": str(source.resolve()), "files": _key(stats)}


def _load_state(out: Path) -> dict[str, StageRecord]:
    """The stage records of an earlier run in ``out`` (empty when there is none or it is unreadable)."""
    path = out / RUN_STATE
    try:
        data = read_json(path)
        if data.get("version") != STATE_VERSION:
            return {}
        return {name: StageRecord(**rec) for name, rec in data["stages"].items()}
    except (Sem3RError, OSError, KeyError, TypeError, AttributeError):
        return {}


def _save_state(out: Path, stages: dict[str, StageRecord]) -> None:
    write_json_atomic(out / RUN_STATE, {"version": STATE_VERSION,
                                        "stages": {k: dataclasses.asdict(v) for k, v in stages.items()}})


def _check_out(out: Path, source: Path) -> None:
    """Raise one line when ``out`` cannot hold the run's outputs or would overwrite the input."""
    from sem3r.io import check_writable_dir

    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents and (source / "scene.json").is_file():
        raise Sem3RError(f"--out '{out}' is the input or inside the input Scene; give another folder")
    check_writable_dir(out, "the run folder --out")


def _strip_labels(scene: Scene) -> Scene:
    """The geometry of ``scene`` without any instance or semantic labels the input carried."""
    out = scene.select_views(slice(None))
    out.instance_masks = out.semantic_masks = None
    out.instances = InstanceTable()
    out.metadata.pop("class_names", None)
    return out


def _read_input(source: Path, layout: str, backend: str, max_frames: int | None) -> Scene:
    """The input Scene as ``backend`` needs it (photos of different sizes are resized to the first's size)."""
    from sem3r.data.readers import frame_options, read_scene
    from sem3r.data.readers.common import image_size, list_images

    options = frame_options(layout, max_frames=max_frames)
    if layout == "image_folder" and backend in ("feedforward", "g2vlm", "colmap"):
        files = list_images(source)
        if files and len({image_size(f) for f in files}) > 1:
            options["resize"] = image_size(files[0])
    return read_scene(source, layout=layout, **options)


def _typed(options: dict[str, Any] | Sequence[str], config_cls: type, label: str) -> dict[str, Any]:
    """``options`` as a dict; ``KEY=VALUE`` strings are typed by the fields of ``config_cls``."""
    if isinstance(options, dict):
        return dict(options)
    from sem3r.config import parse_options

    return parse_options(config_cls, options, label)


def _geometry_config(backend: str, config: RunConfig) -> Any:
    """The backend's validated config from the run's options (fails before any frame is read)."""
    from sem3r.reconstruct import get_backend, make_config

    options = _typed(config.geometry_options, get_backend(backend).load()[1], f"geometry backend '{backend}'")
    if backend in ("feedforward", "g2vlm"):
        if config.checkpoint is not None:
            options.setdefault("checkpoint", config.checkpoint)
        options.setdefault("device", config.device)
    elif config.checkpoint is not None:
        raise Sem3RError(f"--checkpoint is for the feedforward or g2vlm geometry backend, not '{backend}'")
    return make_config(backend, **options)


def _instances_config(method: str, config: RunConfig) -> Any:
    """The validated config of segmentation ``method`` from the run's options."""
    from sem3r.instances.segmentation import get_method, make_segment_config

    options = _typed(config.instances_options, get_method(method).load()[1], f"segmentation method '{method}'")
    if config.up is not None and method in ("geometric", "combined"):
        from sem3r.instances.proposals import ProposalConfig
        from sem3r.instances.structure import StructureConfig, parse_up

        options.setdefault("proposals", ProposalConfig(structure=StructureConfig(up=tuple(parse_up(config.up)))))
    if method in ("iggt", "perview"):
        options.setdefault("device", config.device)
    return make_segment_config(method, **options)


def run_pipeline(source: str | Path, out: str | Path, config: RunConfig | None = None,
                 on_stage: Callable[[str, int, int], None] | None = None) -> RunResult:
    """Run every applicable stage on ``source`` and write the outputs to ``out`` (module docstring).

    Options, the input's layout, the geometry backend's config and the labelling model are checked
    (and the model loaded) before anything is written.

    Args:
        source: a frames folder, a video file, or any dataset layout / Scene folder.
        out: output folder (created; must not be the input).
        config: a :class:`RunConfig` (default options when ``None``).
        on_stage: called as ``on_stage(stage_name, index, total)`` when a stage starts (e.g. a web
            app's progress bar).

    Returns:
        A :class:`RunResult`.

    Raises:
        Sem3RError: bad options or input (before anything is written), or a failed stage: the message
            names the stage; ``run.json`` and ``report.md`` record it and earlier outputs are kept.
    """
    from sem3r.data.readers import detect_layout

    config = config or RunConfig()
    config.validate()
    source, out = Path(source), Path(out)
    layout, reader_path = detect_layout(source) if config.layout == "auto" else (config.layout, source)
    input_scene = Scene.load(reader_path) if layout == "sem3r" else None
    backend = config.geometry if config.geometry != "auto" else choose_geometry(layout, input_scene, config.checkpoint)
    geometry_config = _geometry_config(backend, config)
    if backend == "feedforward":  # a bad checkpoint or hub id fails before the frames are read
        from sem3r.reconstruct.checkpoint import resolve_checkpoint

        resolve_checkpoint(geometry_config.checkpoint)
    method = config.instances if config.instances != "auto" else "combined"
    instances_config = None if method == "none" else _instances_config(method, config)
    encoder = None
    if config.vlm is not None:  # load the model before the long work, so a bad one fails in seconds
        from sem3r.semantics import make_image_encoder

        encoder = make_image_encoder(config.vlm, **({} if config.device == "auto" else {"device": config.device}))
    _check_out(out, source)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(source, out, layout, config, on_stage)

    keys = {"input": _key(_input_key(source), layout, config.max_frames, backend, dataclasses.asdict(geometry_config))}
    keys["geometry"] = keys["input"]
    keys["instances"] = _key(keys["geometry"], method, None if instances_config is None else dataclasses.asdict(instances_config))
    keys["labels"] = _key(keys["instances"], list(config.classes), config.vlm)
    keys["export"] = _key(keys["labels"], list(config.formats), config.voxel_size)
    from sem3r.viz.export import FILE_NAMES

    outputs = {"input": out / "geometry" / "scene.json", "geometry": out / "geometry" / "scene.json",
               "instances": out / "scene" / "scene.json", "labels": out / "scene" / "scene.json",
               "export": [out / FILE_NAMES[f] for f in config.formats]}
    start = run.first_stage_to_run(keys, outputs)
    scene = None if start in ("input", "geometry") else Scene.load(out / ("geometry" if start == "instances" else "scene"))

    def read_stage() -> tuple[str, str]:
        nonlocal scene
        scene = input_scene if input_scene is not None else _read_input(reader_path, layout, backend, config.max_frames)
        return layout, f"{scene.num_views} views at {scene.height}x{scene.width}"

    def geometry_stage() -> tuple[str, str]:
        from sem3r.reconstruct import reconstruct

        nonlocal scene
        scene = _strip_labels(reconstruct(scene, backend, geometry_config))
        scene.save(out / "geometry")
        return backend, describe_geometry(scene)

    def instances_stage() -> tuple[str, str] | str:
        nonlocal scene
        dense = scene.depth is not None or scene.world_points is not None
        if instances_config is None or (config.instances == "auto" and not dense):
            scene.save(out / "scene")
            return "turned off" if dense else (f"instances need dense geometry (depth or a point map) from {DENSE_GEOMETRY_HINT}; "
                                               "give RGB-D input or --checkpoint for the feedforward backend")
        from sem3r.instances import segment

        scene = segment(scene, method, instances_config)
        scene.save(out / "scene")
        structure = scene.metadata.get("structure") or {}
        up = f"; up from the {structure['up_source']}" if structure.get("up_source") else ""
        return method, f"{len(scene.instances)} instances{up}"

    def labels_stage() -> tuple[str, str] | str:
        nonlocal scene
        if encoder is None:
            return "no --vlm"
        if scene.instance_masks is None:
            return "no instances to label"
        from sem3r.semantics import label_scene

        scene = label_scene(scene, list(config.classes), encoder)
        scene.save(out / "scene")
        named = sum(bool(x) for x in scene.instances.labels)
        return config.vlm, f"{named} of {len(scene.instances)} instances labelled"

    def export_stage() -> tuple[str, str]:
        from sem3r.viz import export_scene

        colour = "instance" if scene.instance_masks is not None else "rgb"
        written = export_scene(scene, out, formats=config.formats, color_by=colour, voxel_size=config.voxel_size)
        return ",".join(config.formats), ", ".join(p.name for p in written)

    def questions_stage() -> tuple[str, str] | str:
        if not config.questions:
            return "no questions"
        from sem3r.reasoning.graph_cache import load_or_build_scene_graph
        from sem3r.reasoning.qa import QAEngine, answer_records
        from sem3r.reasoning.scene_graph import SceneGraphConfig

        try:
            graph = load_or_build_scene_graph(out / "scene", scene, SceneGraphConfig(up=config.up or "auto"), progress=True)
        except Sem3RError as exc:  # e.g. a sparse scene without instances: every answer says why
            reason = str(exc).splitlines()[0]
            run.answers = [{"question": q, "answer": "cannot answer", "kind": "error", "value": None, "unit": "",
                            "explanation": reason, "objects": []} for q in config.questions]
        else:
            run.answers = answer_records(QAEngine(graph), config.questions)
        write_text_atomic(out / "answers.jsonl", "".join(json.dumps(a, allow_nan=False) + "\n" for a in run.answers))
        run.files["answers"] = out / "answers.jsonl"
        answered = sum(a["kind"] in ("number", "choice") for a in run.answers)
        return "qa engine", f"{answered} of {len(run.answers)} answered"

    functions = {"input": read_stage, "geometry": geometry_stage, "instances": instances_stage,
                 "labels": labels_stage, "export": export_stage, "questions": questions_stage}
    for name, fn in functions.items():
        run.stage(name, fn, keys.get(name, ""), resume=STAGES.index(name) < STAGES.index(start))
    run.files.update({"scene": out / "scene"} | {f: out / FILE_NAMES[f] for f in config.formats})
    return run.finish()


def describe_geometry(scene: Scene) -> str:
    """One line on what a geometry backend recovered: cameras, dense or sparse points, scale."""
    import numpy as np

    registered = int(np.isfinite(scene.cam_from_world).all(axis=(1, 2)).sum())
    dense = ("dense depth" if scene.depth is not None else "world points" if scene.world_points is not None
             else "no dense geometry")
    sparse = getattr(scene, "sparse_points", None)
    extra = f", {len(sparse)} sparse points" if sparse is not None else ""
    scale = "metric" if scene.metadata.get("metric") else "arbitrary scale"
    return f"{registered}/{scene.num_views} cameras, {dense}{extra}, {scale}"


class _Run:
    """Stage bookkeeping of one :func:`run_pipeline` call: progress, ``run.json``, timings, failures."""

    def __init__(self, source: Path, out: Path, layout: str, config: RunConfig,
                 on_stage: Callable[[str, int, int], None] | None) -> None:
        self.source, self.out, self.layout, self.config, self.on_stage = source, out, layout, config, on_stage
        self.previous = _load_state(out)
        self.stages: dict[str, StageRecord] = {}
        self.files: dict[str, Path] = {}
        self.answers: list[dict] = []
        self.start = time.perf_counter()
        self.bar = tqdm(total=len(STAGES), desc="sem3r run", unit="stage")

    def first_stage_to_run(self, keys: dict[str, str], outputs: dict[str, Path | list[Path]]) -> str:
        """The first stage whose earlier result cannot be reused (``export`` runs when nothing else must)."""
        for name in ("input", "geometry", "instances", "labels", "export"):
            old = self.previous.get(name)
            paths = outputs[name] if isinstance(outputs[name], list) else [outputs[name]]
            if old is None or old.status == "failed" or old.key != keys[name] or not all(p.exists() for p in paths):
                return name
        return "questions"

    def stage(self, name: str, fn: Callable[[], tuple[str, str] | str], key: str, resume: bool) -> None:
        """Run (or resume) stage ``name``; a failure is recorded, reported and re-raised naming the stage.

        ``fn`` returns ``(method, summary)`` when it did the stage's work, or a reason (str) when the
        stage does not apply.
        """
        self.bar.set_postfix_str(name)
        if self.on_stage is not None:
            self.on_stage(name, STAGES.index(name), len(STAGES))
        if resume:
            old = self.previous[name]
            self.stages[name] = dataclasses.replace(old, status="resumed" if old.status != "skipped" else "skipped")
            self.bar.update()
            return
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.stages[name] = StageRecord("failed", time.perf_counter() - start, error=message, key=key)
            self.write_records()
            self.bar.close()
            if isinstance(exc, Sem3RError):
                raise Sem3RError(f"stage '{name}' failed: {message} (earlier outputs kept in {self.out}; "
                                 "re-run to resume)") from None
            raise
        seconds = time.perf_counter() - start
        self.stages[name] = (StageRecord("skipped", summary=result, key=key) if isinstance(result, str)
                             else StageRecord("done", seconds, result[0], result[1], key))
        _save_state(self.out, self.stages)
        self.bar.update()

    def write_records(self, peak: float | None = None) -> None:
        _save_state(self.out, self.stages)
        self.files["report"] = write_text_atomic(self.out / "report.md", render_report(
            self.source, self.layout, self.stages, self.files, self.answers, self.config, peak))

    def finish(self) -> RunResult:
        peak = peak_memory_gib()
        self.stages["report"] = StageRecord("done", method="report.md",
                                            summary=f"this run {time.perf_counter() - self.start:.1f} s")
        self.write_records(peak)
        self.bar.update()
        self.bar.close()
        return RunResult(out=self.out, stages=self.stages, files=self.files, answers=self.answers, peak_memory_gib=peak)


def peak_memory_gib() -> float:
    """Peak resident memory of this process and its finished children, in GiB."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return kib / 2**20


def render_report(source: Path, layout: str, stages: dict[str, StageRecord], files: dict[str, Path],
                  answers: list[dict], config: RunConfig, peak_gib: float | None = None) -> str:
    """The Markdown ``report.md`` of a run: input, stages with methods and timings, files, answers."""
    rows = "\n".join(f"| {name} | {r.status} | {r.method} | {r.seconds:.2f} | {r.error or r.summary} |"
                     for name, r in stages.items())
    file_rows = "\n".join(f"| {name} | {path.name} |" for name, path in files.items())
    answer_rows = "\n".join(f"| {a['question']} | {a['answer']} | {a['explanation']} |" for a in answers)
    memory = f"\nPeak memory: {peak_gib:.2f} GiB.\n" if peak_gib is not None else ""
    failed = [name for name, r in stages.items() if r.status == "failed"]
    status = f"**Stopped at stage '{failed[0]}'**; re-run the same command to resume.\n" if failed else ""
    defaults = RunConfig()
    changed = [f"`{f.name}={getattr(config, f.name)!r}`" for f in dataclasses.fields(config)
               if f.name != "questions" and getattr(config, f.name) != getattr(defaults, f.name)]
    options = f"Options: {', '.join(changed)}.\n" if changed else "Options: the defaults.\n"
    return f"""# Sem3R run report

Input: `{source}` (layout: {layout}).
{options}{status}{memory}
## Stages

| stage | status | method | seconds | result |
|---|---|---|---|---|
{rows}

## Files

| output | file |
|---|---|
{file_rows}
""" + (f"""
## Answers

| question | answer | explanation |
|---|---|---|
{answer_rows}
""" if answers else "") + """
Ask more: `sem3r ask scene "how far is #1 from #2?"` (from this folder).
"""
