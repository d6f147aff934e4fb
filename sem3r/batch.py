"""``sem3r batch``: :func:`sem3r.pipeline.run_pipeline` over many scenes, locally or on Ray.

Each input (a frames folder, video, dataset or Scene folder) is run into ``OUT/<name>/`` with the same
:class:`~sem3r.pipeline.RunConfig`; ``<name>`` is the input's folder or file stem (made unique with
``-2``, ``-3``, ... when two inputs share one). Scenes run in a local process pool by default
(``workers`` processes; one runs in this process) or as Ray tasks (``ray=True``: a local Ray instance,
or the cluster at ``ray_address``; ``pip install 'sem3r[ray]'``).

A scene that fails is recorded (its one-line error) and the others go on. A scene whose
``run.json`` shows a finished run is skipped, so re-running the same command resumes after the last
finished scene (and an interrupted scene resumes at its last finished stage). ``OUT/batch.json`` and
``OUT/batch.md`` hold the summary table.

A manifest lists the inputs: a text file with one path per line (``#`` comments; relative paths are
relative to the manifest's folder), a JSON list of paths, or the ``manifest.json`` of a
``sem3r synth`` dataset.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from sem3r.errors import Sem3RError
from sem3r.io import read_json, write_json_atomic, write_text_atomic
from sem3r.pipeline import RUN_STATE, RunConfig

FINISHED = ("done", "resumed", "skipped")


@dataclass
class BatchConfig:
    """Options of :func:`run_batch`.

    Attributes:
        run: the pipeline options every scene runs with.
        workers: local worker processes (1 runs the scenes one after another in this process).
        ray: run each scene as a Ray task instead of in the local pool.
        ray_address: address of a running Ray cluster (``None`` starts a local instance).
        ray_cpus_per_scene: CPUs Ray reserves for each scene.
    """

    run: RunConfig = field(default_factory=RunConfig)
    workers: int = 1
    ray: bool = False
    ray_address: str | None = None
    ray_cpus_per_scene: float = 1.0

    def validate(self) -> None:
        """Raise :class:`Sem3RError` (one line) for impossible options."""
        if self.workers < 1:
            raise Sem3RError(f"--workers must be at least 1, got {self.workers}")
        if self.ray_address is not None and not self.ray:
            raise Sem3RError("--ray-address needs --ray")
        if not self.ray_cpus_per_scene > 0:
            raise Sem3RError(f"ray_cpus_per_scene must be positive, got {self.ray_cpus_per_scene}")
        self.run.validate()


@dataclass
class SceneResult:
    """One row of the batch summary.

    Attributes:
        name: output sub-folder name.
        source: the input path.
        status: ``done``, ``skipped`` (finished by an earlier batch) or ``failed``.
        seconds: wall time of this batch's run of the scene (0 when skipped).
        geometry: the geometry backend used.
        instances: number of instances in the final Scene (-1 when none were segmented).
        error: the one-line error of a failed scene.
    """

    name: str
    source: str
    status: str
    seconds: float = 0.0
    geometry: str = ""
    instances: int = -1
    error: str = ""


def read_manifest(path: str | Path) -> list[Path]:
    """The input paths a manifest lists (see the module docstring for the formats).

    Raises:
        Sem3RError: unreadable manifest, an unknown JSON shape, or no inputs.
    """
    path = Path(path)
    if not path.is_file():
        raise Sem3RError(f"manifest '{path}' does not exist")
    base = path.parent
    if path.suffix.lower() == ".json":
        doc = read_json(path)
        if isinstance(doc, dict) and doc.get("format") == "sem3r.synthetic_dataset":
            entries = [entry.get("folder", "") for entry in doc.get("scenes", [])]
        elif isinstance(doc, list) and all(isinstance(x, str) for x in doc):
            entries = doc
        else:
            raise Sem3RError(f"manifest '{path}' is neither a JSON list of paths nor a sem3r synth manifest.json")
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise Sem3RError(f"cannot read manifest '{path}': {exc}") from None
        entries = [line.split("#", 1)[0].strip() for line in lines]
    inputs = [p if p.is_absolute() else base / p for p in (Path(e) for e in entries if e)]
    if not inputs:
        raise Sem3RError(f"manifest '{path}' lists no inputs")
    return inputs


def scene_names(sources: Sequence[Path]) -> list[str]:
    """A unique output folder name per input: its stem, with ``-2``, ``-3``, ... for repeats.

    Example:
        >>> scene_names([Path("a/room"), Path("b/room"), Path("clip.mp4")])
        ['room', 'room-2', 'clip']
    """
    names: list[str] = []
    for source in sources:
        stem = source.stem if source.suffix else source.name
        name, k = stem or "scene", 2
        while name in names:
            name, k = f"{stem}-{k}", k + 1
        names.append(name)
    return names


def is_finished(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a finished run (every stage of its ``run.json`` done, resumed or skipped)."""
    try:
        stages = read_json(out_dir / RUN_STATE)["stages"]
    except (Sem3RError, OSError, KeyError, TypeError):
        return False
    return "report" in stages and all(rec.get("status") in FINISHED for rec in stages.values())


def run_one(name: str, source: str, out_dir: str, config: RunConfig) -> SceneResult:
    """Run the pipeline on one scene; a failure becomes a ``failed`` row instead of an exception."""
    from sem3r.pipeline import run_pipeline

    start = time.perf_counter()
    try:
        result = run_pipeline(source, out_dir, config)
    except Exception as exc:  # noqa: BLE001 - one scene's failure must not stop the batch
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return SceneResult(name, source, "failed", time.perf_counter() - start, error=message)
    return _row(name, source, Path(out_dir), "done", time.perf_counter() - start, result.stages["geometry"].method)


def _row(name: str, source: str, out_dir: Path, status: str, seconds: float, geometry: str = "") -> SceneResult:
    """A summary row read from a scene's output folder."""
    import json

    instances = -1
    try:
        doc = json.loads((out_dir / "scene" / "scene.json").read_text())
        if doc["metadata"].get("segmentation"):
            instances = len(doc["instance_labels"])
        if not geometry:
            geometry = read_json(out_dir / RUN_STATE)["stages"]["geometry"]["method"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, Sem3RError):
        pass
    return SceneResult(name, source, status, seconds, geometry, instances)


def run_batch(sources: Sequence[str | Path], out: str | Path, config: BatchConfig | None = None) -> list[SceneResult]:
    """Run :func:`~sem3r.pipeline.run_pipeline` over ``sources`` into ``out/<name>/`` (module docstring).

    Args:
        sources: input paths (frames folders, videos, dataset or Scene folders).
        out: output folder; gets one sub-folder per scene plus ``batch.json`` and ``batch.md``.
        config: a :class:`BatchConfig`.

    Returns:
        One :class:`SceneResult` per input, in input order.

    Raises:
        Sem3RError: bad options, no inputs, a missing input or an unwritable ``out`` (before any
            scene runs); a missing ``[ray]`` extra with ``ray=True``.
    """
    config = config or BatchConfig()
    config.validate()
    sources = [Path(s) for s in sources]
    if not sources:
        raise Sem3RError("no scenes given: pass input paths or --manifest FILE")
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        raise Sem3RError(f"{len(missing)} input(s) do not exist, e.g. '{missing[0]}'")
    from sem3r.io import check_writable_dir

    out = check_writable_dir(out, "the batch folder --out")
    ray = None
    if config.ray:
        from sem3r.errors import require

        ray = require("ray", "ray", "sem3r batch --ray")

    out.mkdir(parents=True, exist_ok=True)
    names = scene_names(sources)
    rows: dict[str, SceneResult] = {}
    todo = []
    for name, source in zip(names, sources):
        if is_finished(out / name):
            rows[name] = _row(name, str(source), out / name, "skipped", 0.0)
        else:
            todo.append((name, str(source), str(out / name)))
    bar = tqdm(total=len(sources), initial=len(rows), desc="sem3r batch", unit="scene")
    runner = _run_ray(ray, todo, config) if ray is not None else _run_local(todo, config)
    for row in runner:
        rows[row.name] = row
        bar.set_postfix_str(f"{row.name}: {row.status}")
        bar.update()
        write_batch_summary(out, [rows[n] for n in names if n in rows])
    bar.close()
    results = [rows[n] for n in names]
    write_batch_summary(out, results)
    return results


def _run_local(todo: list[tuple[str, str, str]], config: BatchConfig) -> Iterator[SceneResult]:
    """Scene results as they finish, in this process (``workers == 1``) or a process pool."""
    if config.workers == 1 or len(todo) <= 1:
        for name, source, out_dir in todo:
            yield run_one(name, source, out_dir, config.run)
        return
    import multiprocessing

    with ProcessPoolExecutor(max_workers=config.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_one, name, source, out_dir, config.run) for name, source, out_dir in todo]
        for future in as_completed(futures):
            yield future.result()


def _run_ray(ray, todo: list[tuple[str, str, str]], config: BatchConfig) -> Iterator[SceneResult]:
    """Scene results as their Ray tasks finish (starts a local Ray instance unless one is given)."""
    started = not ray.is_initialized()
    if started:
        ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True, configure_logging=False)
    try:
        task = ray.remote(num_cpus=config.ray_cpus_per_scene)(run_one)
        pending = {task.remote(name, source, out_dir, config.run): name for name, source, out_dir in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pending.pop(ref)
                yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def format_batch_table(rows: Sequence[SceneResult]) -> str:
    """The summary as a Markdown table (one row per scene, then totals)."""
    lines = ["| scene | status | seconds | geometry | instances | error |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {r.seconds:.1f} | {r.geometry} | {'' if r.instances < 0 else r.instances} | {r.error} |"
              for r in rows]
    counts = {s: sum(r.status == s for r in rows) for s in ("done", "skipped", "failed")}
    lines.append(f"\n{len(rows)} scenes: {counts['done']} done, {counts['skipped']} skipped (finished earlier), "
                 f"{counts['failed']} failed")
    return "\n".join(lines)


def write_batch_summary(out: Path, rows: Sequence[SceneResult]) -> None:
    """Write ``batch.json`` and ``batch.md`` (rewritten atomically as scenes finish)."""
    write_json_atomic(out / "batch.json", {"scenes": [dataclasses.asdict(r) for r in rows]})
    write_text_atomic(out / "batch.md", "# Sem3R batch\n\n" + format_batch_table(rows) + "\n")
