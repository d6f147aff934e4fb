"""VSI/SPAR-style spatial QA on synthetic rooms: per-family scores of the QA engine, and its speed.

1. For ``--scenes`` synthetic rooms (seeds 20000+, ``--views`` views of ``--size`` pixels on the
   ``random_large`` camera path), generates questions with ground-truth answers from the rooms' 3D
   ground truth (:func:`sem3r.reasoning.questions.generate_questions`; objects are named by label).
2. Answers them with :class:`sem3r.reasoning.qa.QAEngine` on

   * (a) oracle geometry + ground-truth instance masks (the scene itself): the engine's upper bound;
   * (b) oracle geometry + the training-free lift of imperfect 2D masks
     (:func:`sem3r.semantics.segment3d.segment3d`, ground-truth 2D masks with 20% of the masks
     dropped and 10% merged with a neighbour): the best available real pipeline on CPU.

3. Prints a table ``family | kind | n | (a) | (b)``: MRA for numbers, exact-match accuracy for
   choices, plus the seconds to build the scene graphs and answer all questions.
4. Times 1000 random structured queries (all families, objects named ``label#id``, seeded) on
   one room with more than 50 objects.

Example:
    python benchmarks/spatial_qa.py --scenes 6
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import size_arg

from sem3r.data.synthetic import CLASS_NAMES, SynthConfig, generate_scene
from sem3r.reasoning.qa import FAMILIES, QAEngine, Query
from sem3r.reasoning.questions import (
    NUMERIC_FAMILIES,
    QuestionConfig,
    generate_questions,
    score_by_family,
)
from sem3r.reasoning.scene_graph import build_scene_graph
from sem3r.semantics.segment3d import Segment3DConfig, segment3d

SEGMENT = Segment3DConfig(mask_options={"miss_rate": 0.2, "merge_rate": 0.1, "min_area": 20})


def answer_all(scene, questions) -> tuple[list, float]:
    """Answers of the engine on ``scene`` and the seconds taken (scene graph included)."""
    start = time.perf_counter()
    engine = QAEngine(build_scene_graph(scene))
    answers = [engine.answer(q.query) for q in questions]
    return answers, time.perf_counter() - start


def overall(table: dict, numeric: bool) -> float:
    """Question-weighted mean score of the numeric (or choice) families of a ``score_by_family`` table."""
    rows = [(n, s) for f, (_, n, s) in table.items() if (f in NUMERIC_FAMILIES) == numeric]
    return sum(n * s for n, s in rows) / max(sum(n for n, _ in rows), 1)


def random_queries(graph, count: int, seed: int) -> list[Query]:
    """``count`` random structured queries over every family, objects named ``label#id``."""
    rng = np.random.default_rng(seed)
    refs = [f"{o.label}#{o.id}" for o in graph.objects if o.label]
    labels = sorted({o.label for o in graph.objects if o.label})
    views = graph.num_views

    def pick(k: int, pool: list[str]) -> tuple[str, ...]:
        return tuple(str(x) for x in rng.choice(pool, size=k, replace=False))

    makers = {
        "count": lambda: Query("count", pick(1, labels)),
        "abs_distance": lambda: Query("abs_distance", pick(2, refs)),
        "object_size": lambda: Query("object_size", pick(1, refs)),
        "room_size": lambda: Query("room_size"),
        "rel_distance": lambda: Query("rel_distance", pick(1, refs), choices=pick(4, labels)),
        "rel_direction": lambda: Query("rel_direction", pick(3, refs)),
        "object_depth": lambda: Query("object_depth", pick(1, refs), views=(int(rng.integers(views)),)),
        "object_camera_distance": lambda: Query("object_camera_distance", pick(1, refs), views=(int(rng.integers(views)),)),
        "camera_motion": lambda: Query("camera_motion", views=tuple(int(v) for v in rng.choice(views, 2, replace=False))),
        "appearance_order": lambda: Query("appearance_order", choices=pick(3, labels)),
    }
    families = list(makers)
    return [makers[families[k % len(families)]]() for k in range(count)]


def timing_1000(views: int, size: tuple[int, int], seed: int) -> None:
    """Print the seconds to answer 1000 random queries on a room with many objects."""
    syn = generate_scene(SynthConfig(seed=seed, num_views=views, height=size[0], width=size[1], camera_path="random_large",
                                     min_instances=5, max_instances=24, room_size_min=(9.0, 8.0, 2.5),
                                     room_size_max=(10.0, 9.0, 3.0)))
    start = time.perf_counter()
    engine = QAEngine(build_scene_graph(syn.scene))
    built = time.perf_counter() - start
    queries = random_queries(engine.graph, 1000, seed)
    start = time.perf_counter()
    answers = [engine.answer(q) for q in queries]
    answering = time.perf_counter() - start
    errors = sum(a.kind in ("error", "unknown") for a in answers)
    print(f"\n1000 random queries ({len(set(queries))} distinct) on one room with {len(engine.graph.objects)} objects: "
          f"scene graph {built:.2f} s, answering {answering:.3f} s, total {built + answering:.2f} s; "
          f"{errors} error answers (e.g. standing and facing the same place)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--size", type=size_arg, default=(192, 256), help="HxW")
    parser.add_argument("--per-family", type=int, default=10)
    parser.add_argument("--min-pixels", type=int, default=400)
    args = parser.parse_args()

    config = QuestionConfig(per_family=args.per_family, min_pixels=args.min_pixels)
    questions, answers_a, answers_b = [], [], []
    seconds = {"a": 0.0, "b": 0.0, "segment": 0.0}
    for seed in range(20000, 20000 + args.scenes):
        syn = generate_scene(SynthConfig(seed=seed, num_views=args.views, height=args.size[0], width=args.size[1],
                                         camera_path="random_large"))
        qs = generate_questions(syn, config)
        start = time.perf_counter()
        segmented = segment3d(syn.scene, CLASS_NAMES, SEGMENT).scene
        seconds["segment"] += time.perf_counter() - start
        answers, dt = answer_all(syn.scene, qs)
        answers_a += answers
        seconds["a"] += dt
        answers, dt = answer_all(segmented, qs)
        answers_b += answers
        seconds["b"] += dt
        questions += qs
        print(f"scene {seed}: {len(qs)} questions")

    table_a, table_b = score_by_family(questions, answers_a), score_by_family(questions, answers_b)
    print("\n| family | kind | n | (a) oracle geometry + GT instances | (b) oracle geometry + segment3d |")
    print("|---|---|---|---|---|")
    for family in FAMILIES:
        if family in table_a:
            kind, n, score_a = table_a[family]
            print(f"| {family} | {kind} | {n} | {score_a:.3f} | {table_b[family][2]:.3f} |")
    for numeric, name in ((True, "all numeric (MRA)"), (False, "all choices (acc)")):
        print(f"| {name} | | | {overall(table_a, numeric):.3f} | {overall(table_b, numeric):.3f} |")
    print(f"\n{len(questions)} questions on {args.scenes} rooms; answering (scene graph included): "
          f"(a) {seconds['a']:.2f} s, (b) {seconds['b']:.2f} s; segment3d {seconds['segment']:.1f} s")
    timing_1000(args.views, args.size, seed=20000 + 1000)


if __name__ == "__main__":
    main()
