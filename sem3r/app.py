"""``sem3r app``: a local web app (gradio) around :func:`sem3r.pipeline.run_pipeline`.

The page takes uploaded frames (several images, a video, or one ``.zip`` of a frames / dataset /
Scene folder) or a folder path on the server, and the options of ``sem3r run`` that matter most
(max frames, geometry backend, checkpoint, instances method). **Run** writes a run folder under the
work folder (one per run: ``WORKDIR/run-XXXX/{input,out}``) with a progress bar fed by the
pipeline's stages, then shows:

* the standalone HTML point-cloud viewer of the run (``OUT/viewer.html``, embedded in a sandboxed
  ``<iframe srcdoc>``; it needs no network, so the app works offline);
* the instance list (id, label, score, box size in metres, occupied voxels);
* ``report.md``, and the PLY / GLB / viewer files for download;
* a question box answered by the spatial QA engine on ``OUT/scene`` (with the cached scene graph of
  :mod:`sem3r.reasoning.graph_cache`, so repeated questions skip the graph build).

Bad input (a :class:`~sem3r.errors.Sem3RError`) shows as one line in the status box, never as a
traceback. The app serves the host's files to whoever can reach it (the folder box reads any path
the server can): keep the default ``127.0.0.1`` unless the network is trusted.

The handlers (:func:`prepare_input`, :func:`run_session`, :func:`answer_question`,
:func:`instance_rows`) are plain functions, usable and testable without a browser.

Example:
    >>> import tempfile
    >>> from sem3r.data.synthetic import SynthConfig, generate_scene
    >>> folder = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64)).scene.save(tempfile.mkdtemp())
    >>> session = run_session(tempfile.mkdtemp(), folder=str(folder))
    >>> session.status.startswith("Done")
    True
    >>> answer_question(session.scene_dir, "how big is the room?").splitlines()[0]
    '**... m2**'
"""

from __future__ import annotations

import html
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sem3r.errors import Sem3RError, require

GEOMETRY_CHOICES = ("auto", "rgbd", "feedforward", "colmap")
"""Geometry backends offered in the UI (``auto`` picks as ``sem3r run`` does)."""

INSTANCE_CHOICES = ("auto", "combined", "geometric", "lift", "iggt", "perview", "none")
"""Instance methods offered in the UI."""

TABLE_HEADERS = ["id", "label", "score", "size (m)", "voxels"]
"""Columns of the instance table."""

VIEWER_HEIGHT = 560
"""Height in pixels of the embedded viewer."""


@dataclass
class Session:
    """What one run of the app produced (the outputs of the Run button).

    Attributes:
        status: one line: ``Done ...`` or ``Error: ...``.
        out: the run's output folder (``None`` when the run failed before it was made).
        scene_dir: ``out / "scene"`` when the run finished, else ``None``.
        viewer: HTML of the embedded viewer (``""`` without one).
        rows: the instance table (see :func:`instance_rows`).
        report: the Markdown of ``report.md`` (``""`` without one).
        files: downloadable outputs (PLY, GLB, viewer, report) that exist.
    """

    status: str
    out: Path | None = None
    scene_dir: Path | None = None
    viewer: str = ""
    rows: list[list[Any]] = field(default_factory=list)
    report: str = ""
    files: list[str] = field(default_factory=list)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip into ``dest``, refusing members that would land outside it."""
    try:
        with zipfile.ZipFile(archive) as zf:
            root = dest.resolve()
            for member in zf.infolist():
                target = (dest / member.filename).resolve()
                if target != root and root not in target.parents:
                    raise Sem3RError(f"'{archive.name}' has a member outside the archive folder: {member.filename}")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise Sem3RError(f"cannot read the zip '{archive.name}': {_one_line(exc)}") from None


def _single_folder(folder: Path) -> Path:
    """The one folder inside ``folder`` when it holds nothing else (a zipped folder), else ``folder``."""
    entries = [p for p in folder.iterdir() if p.name != "__MACOSX" and not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def prepare_input(run_dir: str | Path, files: Sequence[str | Path] | None = None, folder: str | None = None) -> Path:
    """The path :func:`run_pipeline` reads, from what the user gave.

    A typed ``folder`` (a path on the server) wins over uploads. Uploads: one video is used as is;
    one ``.zip`` is extracted into ``run_dir/input`` (a zipped folder is unwrapped); anything else
    (images, or a dataset's frame, depth and pose files) is copied into ``run_dir/input``, whose
    layout :func:`sem3r.data.readers.detect_layout` then recognises.

    Args:
        run_dir: the run's folder (``input/`` is made inside it).
        files: uploaded file paths.
        folder: a folder or video path on the server.

    Returns:
        The input path.

    Raises:
        Sem3RError: no input, a path that does not exist, an unreadable zip, or two uploads with
            the same name.
    """
    from sem3r.data.readers.video import VIDEO_EXTENSIONS

    if folder is not None and folder.strip():
        path = Path(folder.strip()).expanduser()
        if not path.exists():
            raise Sem3RError(f"'{path}' does not exist on the server; give a frames folder, a video or a dataset folder")
        return path
    paths = [Path(f) for f in (files or [])]
    if not paths:
        raise Sem3RError("no input: upload images, a video or a .zip, or type a folder path on the server")
    dest = Path(run_dir) / "input"
    dest.mkdir(parents=True, exist_ok=True)
    if len(paths) == 1 and paths[0].suffix.lower() in VIDEO_EXTENSIONS:
        return paths[0]
    if len(paths) == 1 and paths[0].suffix.lower() == ".zip":
        _safe_extract(paths[0], dest)
        return _single_folder(dest)
    names = [p.name for p in paths]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise Sem3RError(f"two uploaded files are named '{duplicate}'; upload a .zip of the folder instead")
    for p in paths:
        shutil.copy2(p, dest / p.name)
    return dest


def instance_rows(scene_dir: str | Path) -> list[list[Any]]:
    """The instance table of a run's Scene: ``[id, label, score, size (m), voxels]`` per instance (voxels: the
    instance table's point count, on the voxelised cloud it was computed from).

    The size is the scene graph's box (length x width x height, height along up) when the graph can
    be built, else the axis-aligned box of the instance table; an instance without a label shows a dash.
    """
    import numpy as np

    from sem3r.scene import Scene

    scene = Scene.load(scene_dir)
    table = scene.instances
    sizes: dict[int, np.ndarray] = {}
    try:
        sizes = {o.id: o.box_size for o in _scene_graph(Path(scene_dir)).objects}
    except Sem3RError:
        pass
    rows = []
    for i, iid in enumerate(table.ids.tolist()):
        size = sizes.get(iid, np.asarray(table.box_max[i], np.float64) - np.asarray(table.box_min[i], np.float64))
        rows.append([int(iid), table.labels[i] or "\u2014", f"{float(table.scores[i]):.2f}",
                     " x ".join(f"{float(s):.2f}" for s in size), int(table.point_counts[i])])
    return rows


def _scene_graph(scene_dir: Path):
    """The scene graph of a Scene folder, from the cache when there is one."""
    try:
        from sem3r.reasoning.graph_cache import load_or_build_scene_graph
    except ImportError:  # an older tree without the cache
        from sem3r.reasoning.scene_graph import build_scene_graph
        from sem3r.scene import Scene

        return build_scene_graph(Scene.load(scene_dir))
    return load_or_build_scene_graph(scene_dir)


def answer_question(scene_dir: str | Path | None, question: str) -> str:
    """Markdown answer of the spatial QA engine to ``question`` about the Scene in ``scene_dir``.

    Raises:
        Sem3RError: no finished run, an empty question, or a scene the engine cannot read.
    """
    from sem3r.reasoning.qa import QAEngine

    if scene_dir is None or not (Path(scene_dir) / "scene.json").is_file():
        raise Sem3RError("no scene yet: run the pipeline first")
    if not question or not question.strip():
        raise Sem3RError("the question is empty")
    answer = QAEngine(_scene_graph(Path(scene_dir))).answer(question.strip())
    return f"**{answer.headline()}**\n\n{answer.explanation}".strip()


def viewer_html(path: str | Path, height: int = VIEWER_HEIGHT) -> str:
    """An ``<iframe>`` showing the standalone viewer at ``path`` (inlined with ``srcdoc``, sandboxed
    to scripts only: gradio serves ``.html`` files as downloads, and the viewer needs no network)."""
    text = Path(path).read_text(encoding="utf-8")
    return (f'<iframe class="sem3r-viewer" title="Sem3R 3D viewer" sandbox="allow-scripts" '
            f'style="width:100%;height:{height}px;border:0;border-radius:8px;background:#111" '
            f'srcdoc="{html.escape(text, quote=True)}"></iframe>')


def run_session(workdir: str | Path, files: Sequence[str | Path] | None = None, folder: str | None = None,
                max_frames: float | None = None, geometry: str = "auto", checkpoint: str | None = None,
                instances: str = "auto", on_stage: Callable[[str, int, int], None] | None = None) -> Session:
    """Run the pipeline on the user's input in a new run folder under ``workdir``.

    Args:
        workdir: the app's work folder; the run gets ``workdir/run-XXXX/``.
        files: uploaded files (see :func:`prepare_input`).
        folder: a path on the server (wins over ``files``).
        max_frames: at most this many frames (``None`` or 0: all).
        geometry: one of :data:`GEOMETRY_CHOICES`.
        checkpoint: feedforward checkpoint (local path or hub id); blank for none.
        instances: one of :data:`INSTANCE_CHOICES`.
        on_stage: progress callback, as :func:`run_pipeline` calls it.

    Returns:
        The :class:`Session`; a :class:`Sem3RError` becomes ``status="Error: <one line>"``.
    """
    from sem3r.pipeline import RunConfig, run_pipeline
    from sem3r.viz.export import FILE_NAMES

    workdir = Path(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    except OSError as exc:
        return Session(f"Error: cannot write to the work folder '{workdir}': {exc.strerror or exc}")
    out = run_dir / "out"
    try:
        source = prepare_input(run_dir, files, folder)
        frames = int(max_frames) if max_frames else None
        config = RunConfig(max_frames=frames, geometry=geometry or "auto",
                           checkpoint=checkpoint.strip() if checkpoint and checkpoint.strip() else None,
                           instances=instances or "auto")
        result = run_pipeline(source, out, config, on_stage=on_stage)
    except Sem3RError as exc:
        report = out / "report.md"
        return Session(f"Error: {_one_line(exc)}", out=out,
                       report=report.read_text(encoding="utf-8") if report.is_file() else "")
    scene_dir = out / "scene"
    viewer = out / FILE_NAMES["html"]
    session = Session("", out=out, scene_dir=scene_dir,
                      viewer=viewer_html(viewer) if viewer.is_file() else "",
                      report=(out / "report.md").read_text(encoding="utf-8"),
                      files=[str(p) for p in (out / FILE_NAMES["ply"], out / FILE_NAMES["glb"], viewer, out / "report.md")
                             if p.is_file()])
    try:
        session.rows = instance_rows(scene_dir)
    except Sem3RError:
        session.rows = []
    total = sum(r.seconds for r in result.stages.values() if r.status == "done")
    methods = ", ".join(f"{k}: {r.method}" for k, r in result.stages.items()
                        if k in ("geometry", "instances") and r.status == "done" and r.method)
    session.status = f"Done in {total:.1f} s ({methods}); {len(session.rows)} instances; outputs in {out}"
    return session


def build_app(workdir: str | Path | None = None):
    """The gradio ``Blocks`` of the app (not launched).

    Args:
        workdir: where runs are written (default: a new temporary folder).

    Returns:
        A ``gradio.Blocks``.
    """
    gr = require("gradio", "app", "sem3r app")
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="sem3r-app-"))

    def on_run(files, folder, max_frames, geometry, checkpoint, instances, progress=gr.Progress()):  # noqa: B008 - gradio's idiom
        progress(0.0, desc="starting")

        def stage(name: str, index: int, total: int) -> None:
            progress(index / total, desc=f"stage {index + 1}/{total}: {name}")

        try:
            session = run_session(workdir, files=[getattr(f, "name", f) for f in files or []], folder=folder,
                                  max_frames=max_frames, geometry=geometry, checkpoint=checkpoint,
                                  instances=instances, on_stage=stage)
        except Exception as exc:  # noqa: BLE001 - a bug, not bad input: one line in the UI, the traceback on the console
            import traceback

            traceback.print_exc()
            session = Session(f"Error: internal error ({type(exc).__name__}: {_one_line(exc)})")
        table = session.rows
        return (session.status, session.viewer or "<p>No viewer (run first, or the run made none).</p>",
                gr.update(value=table), session.report, session.files or None,
                str(session.scene_dir) if session.scene_dir else None)

    def on_ask(scene_dir, question):
        try:
            return answer_question(scene_dir, question)
        except Sem3RError as exc:
            return f"Error: {_one_line(exc)}"
        except Exception as exc:  # noqa: BLE001 - shown as one line; the traceback goes to the console
            import traceback

            traceback.print_exc()
            return f"Error: internal error ({type(exc).__name__}: {_one_line(exc)})"

    with gr.Blocks(title="Sem3R", analytics_enabled=False) as demo:
        gr.Markdown("# Sem3R\nPhotos, a video or an RGB-D sequence to a labelled, queryable 3D scene "
                    "(the `sem3r run` pipeline).")
        scene_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                files = gr.File(label="Upload frames (images), a video, or a .zip of a folder",
                                file_count="multiple", type="filepath", elem_id="sem3r-files")
                folder = gr.Textbox(label="...or a folder / video path on the server", elem_id="sem3r-folder",
                                    placeholder="/data/7scenes/chess/seq-01")
                with gr.Accordion("Options", open=True):
                    max_frames = gr.Number(label="Max frames (0: all)", value=30, precision=0, minimum=0,
                                           elem_id="sem3r-max-frames")
                    geometry = gr.Dropdown(list(GEOMETRY_CHOICES), value="auto", label="Geometry",
                                           elem_id="sem3r-geometry")
                    checkpoint = gr.Textbox(label="Checkpoint (feedforward; optional)", elem_id="sem3r-checkpoint")
                    instances = gr.Dropdown(list(INSTANCE_CHOICES), value="auto", label="Instances",
                                            elem_id="sem3r-instances")
                run = gr.Button("Run", variant="primary", elem_id="sem3r-run")
                status = gr.Textbox(label="Status", interactive=False, elem_id="sem3r-status", lines=2)
            with gr.Column(scale=2):
                viewer = gr.HTML("<p>Run the pipeline to see the 3D scene here.</p>", elem_id="sem3r-viewer")
                with gr.Row():
                    question = gr.Textbox(label="Ask about the scene", placeholder="how big is the room?",
                                          scale=4, elem_id="sem3r-question")
                    ask = gr.Button("Ask", scale=1, elem_id="sem3r-ask")
                answer = gr.Markdown(elem_id="sem3r-answer")
        with gr.Row():
            with gr.Column(scale=3):
                table = gr.Dataframe(headers=TABLE_HEADERS, label="Instances", interactive=False,
                                     elem_id="sem3r-instances-table")
            with gr.Column(scale=2):
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                    elem_id="sem3r-downloads")
        with gr.Accordion("Report", open=False):
            report = gr.Markdown(elem_id="sem3r-report")

        run.click(on_run, [files, folder, max_frames, geometry, checkpoint, instances],
                  [status, viewer, table, report, downloads, scene_state], concurrency_limit=1)
        ask.click(on_ask, [scene_state, question], answer)
        question.submit(on_ask, [scene_state, question], answer)
    demo.sem3r_workdir = workdir
    return demo


def launch(host: str = "127.0.0.1", port: int = 7860, workdir: str | Path | None = None, share: bool = False,
           block: bool = True):
    """Build and serve the app.

    Args:
        host: address to listen on (``0.0.0.0`` for every interface; see the module note on access).
        port: port to listen on.
        workdir: where runs are written (default: a new temporary folder).
        share: also open a public gradio share link (needs the network).
        block: wait until the server stops (``False``: return once it serves, e.g. in tests).

    Returns:
        The ``gradio.Blocks``, launched.
    """
    demo = build_app(workdir)
    try:
        demo.queue().launch(server_name=host, server_port=port, share=share, allowed_paths=[str(demo.sem3r_workdir)],
                            prevent_thread_lock=not block, quiet=not block, inbrowser=False)
    except OSError as exc:
        raise Sem3RError(f"cannot serve on {host}:{port}: {_one_line(exc)}") from None
    return demo
