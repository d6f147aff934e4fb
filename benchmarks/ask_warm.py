"""`sem3r ask` speed: a cold first question, warm questions from the scene-graph cache, and a batch.

Builds a synthetic room (``--views`` views of ``--size`` pixels, oracle geometry and ground-truth
instances) saved as a Scene in a temporary folder, or takes an existing Scene folder (``--scene``,
which must have geometry and instance masks; its ``scene_graph.npz`` is removed and rewritten).
Then times, in this process (after one untimed build that loads the lazily imported modules):

* ``no cache``: what ``ask`` did before the cache: load the Scene, build the graph, answer;
* ``cold``: the first question with the cache: load the Scene, build the graph, write the cache, answer;
* ``warm``: a later question, as a new ``sem3r ask`` process does it: read the graph from the
  folder's cache (no Scene load), build the QA engine, answer (median of ``--repeats``);
* ``batch``: 10 questions with one graph read (``sem3r ask --questions``), total and per question;

and, unless ``--no-process``, the wall time of whole ``sem3r ask`` processes (Python start-up and
imports included) for a cold and a warm question. Nothing is asserted; the target is a warm
answer under 1 s.

Example:
    python benchmarks/ask_warm.py                                  # 12 views of 384x512
    python benchmarks/ask_warm.py --scene /tmp/askdemo/scene --no-process
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import size_arg

from sem3r.reasoning.graph_cache import CACHE_FILE, load_or_build_scene_graph
from sem3r.reasoning.qa import QAEngine
from sem3r.reasoning.scene_graph import build_scene_graph
from sem3r.scene import Scene

QUESTION = "how far is the {a} from the {b}?"
BATCH = ["how many {a}s are there?", "how tall is the {a}?", "how wide is the {b}?", "how long is the {b}?",
         "how far is the {a} from the {b}?", "which is closest to the {a}? {b}, {c}",
         "how big is this room?", "what is the depth of the {c} in view 0?",
         "how far did the camera move from view 0 to view 1?", "in what order do {a}s, {b}s, {c}s appear?"]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def pick_labels(graph) -> dict[str, str]:
    """Three labels of the scene, the most frequent first, for the question templates."""
    labels, counts = np.unique([o.label for o in graph.objects if o.label], return_counts=True)
    if len(labels) < 3:
        raise SystemExit("the scene needs at least three labelled object classes for the question set")
    order = np.argsort(-counts, kind="stable")
    return {k: str(labels[i]).replace("_", " ") for k, i in zip("abc", order[:3])}


def process_seconds(folder: Path, question: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sem3r.cli", "ask", str(folder), question], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", type=Path, default=None, help="an existing Scene folder (default: a synthetic room)")
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--size", type=size_arg, default=(384, 512), help="HxW of the synthetic views")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-process", action="store_true", help="skip the whole-process timings")
    args = parser.parse_args()

    tmp = None
    if args.scene is None:
        from sem3r.data.synthetic import SynthConfig, generate_scene

        tmp = tempfile.TemporaryDirectory(prefix="sem3r-ask-warm-")
        h, w = args.size
        scene = generate_scene(SynthConfig(seed=args.seed, num_views=args.views, height=h, width=w, num_points=0)).scene
        folder = scene.save(Path(tmp.name) / "scene")
    else:
        folder = args.scene
    cache = folder / CACHE_FILE
    cache.unlink(missing_ok=True)

    graph = build_scene_graph(Scene.load(folder))  # untimed warm-up: lazy imports (scipy, ...) and file cache
    names = pick_labels(graph)
    question = QUESTION.format(**names)
    QAEngine(graph).answer(question)
    t_nocache, _ = timed(lambda: QAEngine(build_scene_graph(Scene.load(folder))).answer(question))

    t_cold, _ = timed(lambda: QAEngine(load_or_build_scene_graph(folder)).answer(question))
    warm = [timed(lambda: QAEngine(load_or_build_scene_graph(folder)).answer(question))[0] for _ in range(args.repeats)]
    t_read, graph = timed(lambda: load_or_build_scene_graph(folder))

    batch = [q.format(**names) for q in BATCH]
    t_engine, engine = timed(lambda: QAEngine(graph))
    per_question = [timed(lambda q=q: engine.answer(q))[0] for q in batch]
    answers = [engine.answer(q) for q in batch]

    scene_info = f"{folder} ({graph.num_views} views, {len(graph.objects)} objects, cache {cache.stat().st_size / 1e6:.1f} MB)"
    print(f"scene: {scene_info}")
    print(f"question: {question!r}\n")
    rows = [
        ("no cache: load Scene + build graph + answer", t_nocache),
        ("cold: load + build + write cache + answer", t_cold),
        (f"warm: cache read + engine + answer (median of {args.repeats})", float(np.median(warm))),
        ("  of which the cache read", t_read),
        (f"batch of {len(batch)}: cache read + engine + all answers", t_read + t_engine + sum(per_question)),
        ("  per question (mean / max)", f"{np.mean(per_question):.4f} / {np.max(per_question):.4f}"),
    ]
    if not args.no_process:
        cache.unlink(missing_ok=True)
        rows.append(("process `sem3r ask`, cold (imports included)", process_seconds(folder, question)))
        rows.append(("process `sem3r ask`, warm (imports included)", process_seconds(folder, question)))
    width = max(len(r[0]) for r in rows)
    cells = [(name, value if isinstance(value, str) else f"{value:.3f}") for name, value in rows]
    right = max(len("seconds"), *(len(c) for _, c in cells))
    print(f"| {'step':<{width}} | {'seconds':>{right}} |")
    print(f"|{'-' * (width + 2)}|{'-' * (right + 2)}|")
    for name, cell in cells:
        print(f"| {name:<{width}} | {cell:>{right}} |")
    print(f"\nwarm answer under 1 s: {'yes' if np.median(warm) < 1.0 else 'no'}")
    print("batch answers: " + "; ".join(f"{a.headline()}" for a in answers))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
