"""VSI-Bench / SPAR-style spatial questions with ground-truth answers from a synthetic room.

:func:`generate_questions` reads the **synthetic ground truth** (never the QA engine): which objects
the views show (``scene.instance_masks``), their labels (``scene.instances``), their full surfaces
(the area-sampled labelled cloud ``SyntheticScene.cloud``, hidden sides included), the room extent
(``metadata['room_size']``) and the cameras (``scene.cam_from_world``). Each question is a
:class:`~sem3r.reasoning.qa.Query` for :class:`~sem3r.reasoning.qa.QAEngine` plus an English phrasing.

Choices (the benchmarks leave them open):

* **Visibility.** An instance is *shown* when at least ``min_views`` views see it with at least
  ``min_pixels`` pixels each. A label is *clear* when each of its instances is either shown or not
  seen at all (zero pixels in every view): partly seen instances make counts and references
  ambiguous, so such labels are never asked about.
* **References.** Objects are named by **label only**, as VSI-Bench does: the families about one or
  a few objects use clear labels with exactly one shown instance, so a question stays valid on a
  re-segmented scene whose instance ids differ from the ground truth.
* **Geometry.** Closest-point distances are between the instances' full cloud surfaces (scipy
  ``cKDTree``); centroids are the means of those points; object size is the longest extent of the
  gravity-aligned oriented box (:func:`~sem3r.reasoning.scene_graph.oriented_box`, exact bounds) in
  centimetres; room size is ``Lx * Ly`` of the room (the floor's bounding area otherwise).
* **Unambiguous answers.** Distances, depths and camera motions below ``min_distance`` are not asked
  (relative accuracy is ill-conditioned near 0). ``rel_distance`` needs the second-closest choice to
  be at least ``choice_gap`` (relative) and ``min_gap`` (metres) farther than the closest.
  ``rel_direction`` stands at the centroid of ``objects[0]`` facing the centroid of ``objects[1]`` on
  the ground plane; the signed angle ``a`` of ``objects[2]`` (counter-clockwise seen from above,
  positive to the left) gives ``back`` when ``|a| > back_deg``, else ``left`` (``a > 0``) or
  ``right``; only cases with ``|a|`` at least ``margin_deg`` away from 0, ``back_deg`` and 180 are
  kept, so rules with slightly different borders agree. ``appearance_order`` orders clear
  labels (a label appears when any of its instances does) whose first views are all distinct under
  both "first view with any pixel" and "first view that shows an instance", and whose order is the
  same under both; the answer joins the labels with ``", "``.

Example:
    >>> from sem3r.data.synthetic import SynthConfig, generate_scene
    >>> syn = generate_scene(SynthConfig(seed=1, num_views=4, height=48, width=64, num_points=20000))
    >>> qs = generate_questions(syn, QuestionConfig(per_family=2, min_pixels=40))
    >>> [q.answer for q in qs if q.family == "room_size"] == [float(np.prod(syn.scene.metadata["room_size"][:2]))]
    True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from sem3r.data.synthetic import STRUCTURE_CLASSES, SyntheticScene
from sem3r.errors import Sem3RError
from sem3r.eval.qa import exact_match, mean_relative_accuracy
from sem3r.reasoning.qa import FAMILIES, Answer, Query
from sem3r.reasoning.scene_graph import ground_basis, oriented_box

NUMERIC_FAMILIES = ("count", "abs_distance", "object_size", "room_size", "object_depth",
                    "object_camera_distance", "camera_motion")
"""Families answered with a number (scored with MRA); the others are multiple choice (exact match)."""

DIRECTIONS = ("left", "right", "back")
"""The ``rel_direction`` choices."""


@dataclass
class QuestionConfig:
    """Settings of :func:`generate_questions`.

    Attributes:
        per_family: questions per family at most (fewer when the room offers fewer valid ones).
        seed: seeds the sampling of questions.
        min_pixels: pixels an instance needs in a view for that view to show it.
        min_views: views that must show an instance for it to count as shown.
        margin_deg: ``rel_direction`` keeps angles at least this far from the rule's borders.
        back_deg: ``rel_direction`` answers ``back`` beyond this absolute angle.
        min_distance: smallest distance, depth or camera motion asked about (m).
        choice_gap: ``rel_distance``: relative gap of the runner-up over the closest choice.
        min_gap: ``rel_distance``: absolute gap of the runner-up over the closest choice (m).
        num_choices: choices of ``rel_distance`` (at most).
        order_length: labels to order in ``appearance_order`` (at most).
        families: the families to generate, a subset of ``FAMILIES``.
    """

    per_family: int = 10
    seed: int = 0
    min_pixels: int = 400
    min_views: int = 1
    margin_deg: float = 20.0
    back_deg: float = 135.0
    min_distance: float = 0.2
    choice_gap: float = 0.25
    min_gap: float = 0.15
    num_choices: int = 4
    order_length: int = 3
    families: tuple[str, ...] = field(default_factory=lambda: tuple(FAMILIES))

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.per_family < 1:
            raise Sem3RError(f"per_family must be at least 1, got {self.per_family}")
        if self.min_pixels < 1 or self.min_views < 1:
            raise Sem3RError(f"min_pixels and min_views must be at least 1, got {self.min_pixels}, {self.min_views}")
        if not 0 <= self.margin_deg < 45 or not 90 < self.back_deg < 180:
            raise Sem3RError(f"need 0 <= margin_deg < 45 and 90 < back_deg < 180, got {self.margin_deg}, {self.back_deg}")
        if self.min_distance < 0 or self.choice_gap < 0 or self.min_gap < 0:
            raise Sem3RError("min_distance, choice_gap and min_gap must be non-negative")
        if self.num_choices < 2 or self.order_length < 2:
            raise Sem3RError(f"num_choices and order_length must be at least 2, got {self.num_choices}, {self.order_length}")
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise Sem3RError(f"unknown question families {unknown}; known: {', '.join(FAMILIES)}")


@dataclass
class GeneratedQuestion:
    """One question with its ground-truth answer.

    Attributes:
        query: the structured question for :class:`~sem3r.reasoning.qa.QAEngine`.
        answer: a number (metres; centimetres for ``object_size``; m^2 for ``room_size``) or a
            choice string (``appearance_order``: labels joined by ``", "``).
        family: one of ``FAMILIES``.
        text: an English phrasing in the style of VSI-Bench.
    """

    query: Query
    answer: float | str
    family: str
    text: str


@dataclass
class _Truth:
    """Ground truth the families read: shown unique labels with their surfaces."""

    labels: list[str]  # clear labels with exactly one shown instance, sorted
    points: list[np.ndarray]  # (M_i, 3) float64 full-surface cloud points, one per label
    pixels: np.ndarray  # (U, N) int64 pixels of each label's instance per view
    counts: dict[str, int]  # clear label -> shown instances (>= 1)
    clear: list[str]  # all clear labels, sorted (the keys of counts)
    first_any: np.ndarray  # (C,) int64 first view with a pixel of the clear label
    first_shown: np.ndarray  # (C,) int64 first view showing an instance of the clear label


def _nice(label: str) -> str:
    return label.replace("_", " ")


def _pixels_per_view(instance_masks: np.ndarray, k: int) -> np.ndarray:
    """``(K, N) int64`` pixel counts of instances ``0..K-1`` in every view of ``(N, H, W)`` masks."""
    n = len(instance_masks)
    flat = instance_masks.reshape(n, -1)
    seen = (flat >= 0) & (flat < k)
    views = np.broadcast_to(np.arange(n)[:, None], flat.shape)[seen]
    return np.bincount(flat[seen].astype(np.int64) * n + views, minlength=k * n).reshape(k, n)


def _ground_truth(syn: SyntheticScene, config: QuestionConfig) -> _Truth:
    scene = syn.scene
    if scene.instance_masks is None:
        raise Sem3RError("the synthetic scene has no instance masks")
    table = scene.instances
    k = int(table.ids.max()) + 1 if len(table) else 0
    labels = np.array([""] * k, object)
    labels[table.ids] = table.labels
    pixels = _pixels_per_view(scene.instance_masks, k)
    shown = (pixels >= config.min_pixels).sum(axis=1) >= config.min_views
    unseen = pixels.sum(axis=1) == 0
    counts, unique, first_any, first_shown = {}, [], [], []
    for label in sorted(set(labels.tolist()) - {""} - set(STRUCTURE_CLASSES)):
        of_label = labels == label
        if (shown | unseen)[of_label].all() and shown[of_label].any():
            counts[label] = int(shown[of_label].sum())
            first_any.append(int(np.argmax(pixels[of_label].sum(axis=0) > 0)))
            first_shown.append(int(np.argmax(pixels[of_label].max(axis=0) >= config.min_pixels)))
            if counts[label] == 1:
                unique.append(int(np.flatnonzero(of_label & shown)[0]))
    ids = syn.cloud.instance_ids
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.stack([np.array(unique), np.array(unique) + 1]) if unique else np.zeros((2, 0)))
    points = [np.asarray(syn.cloud.xyz[order[a:b]], np.float64) for a, b in bounds.T]
    if any(len(p) == 0 for p in points):
        raise Sem3RError("the ground-truth cloud has no points on a visible object; generate it with num_points > 0")
    return _Truth([str(labels[i]) for i in unique], points, pixels[unique], counts, sorted(counts),
                  np.array(first_any, np.int64), np.array(first_shown, np.int64))


def _closest(a: np.ndarray, b: np.ndarray) -> float:
    """Closest-point distance (m) between point sets ``a (A, 3)`` and ``b (B, 3)``."""
    from scipy.spatial import cKDTree

    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return float(cKDTree(large).query(small, k=1)[0].min())


def _camera_centres(cam_from_world: np.ndarray) -> np.ndarray:
    """``(N, 3)`` camera centres ``-R^T t`` of ``(N, 3, 4)`` extrinsics."""
    rot, t = cam_from_world[:, :, :3], cam_from_world[:, :, 3]
    return -np.einsum("nji,nj->ni", rot, t)


def _room_area(syn: SyntheticScene) -> float:
    size = syn.scene.metadata.get("room_size")
    if size is not None and len(size) >= 2:
        return float(size[0]) * float(size[1])
    floor = syn.cloud.semantic_ids == STRUCTURE_CLASSES.index("floor")
    if not floor.any():
        raise Sem3RError("the synthetic scene has neither metadata['room_size'] nor floor points")
    return float(np.prod(np.ptp(syn.cloud.xyz[floor][:, :2].astype(np.float64), axis=0)))


def _pick(rng: np.random.Generator, candidates: list, count: int) -> list:
    """Up to ``count`` distinct candidates in random order."""
    if not candidates:
        return []
    return [candidates[i] for i in rng.permutation(len(candidates))[:count]]


def _count(truth, syn, config, rng):
    out = []
    for label in _pick(rng, sorted(truth.counts), config.per_family):
        query = Query("count", objects=(label,))
        out.append(GeneratedQuestion(query, float(truth.counts[label]), "count", f"How many {_nice(label)}(s) are in this room?"))
    return out


def _pair_distances(truth: _Truth) -> np.ndarray:
    """``(U, U)`` closest-point distances between the unique labels' surfaces (0 on the diagonal)."""
    u = len(truth.labels)
    dist = np.zeros((u, u))
    for i, j in itertools.combinations(range(u), 2):
        dist[i, j] = dist[j, i] = _closest(truth.points[i], truth.points[j])
    return dist


def _abs_distance(truth, syn, config, rng, dist):
    pairs = [(i, j) for i, j in itertools.combinations(range(len(truth.labels)), 2) if dist[i, j] >= config.min_distance]
    out = []
    for i, j in _pick(rng, pairs, config.per_family):
        a, b = truth.labels[i], truth.labels[j]
        text = f"Measuring from the closest point of each object, what is the distance between the {_nice(a)} and the {_nice(b)} (in meters)?"
        out.append(GeneratedQuestion(Query("abs_distance", objects=(a, b)), float(dist[i, j]), "abs_distance", text))
    return out


def _object_size(truth, syn, config, rng):
    basis = ground_basis(np.array([0.0, 0.0, 1.0]))
    out = []
    for i in _pick(rng, list(range(len(truth.labels))), config.per_family):
        size = oriented_box(truth.points[i], basis)[1]
        label = truth.labels[i]
        text = f"What is the length of the longest dimension (length, width, or height) of the {_nice(label)}, measured in centimeters?"
        out.append(GeneratedQuestion(Query("object_size", objects=(label,)), float(size.max() * 100.0), "object_size", text))
    return out


def _room_size(truth, syn, config, rng):
    text = "What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size of the combined space."
    return [GeneratedQuestion(Query("room_size"), _room_area(syn), "room_size", text)]


def _rel_distance(truth, syn, config, rng, dist):
    u = len(truth.labels)
    n_choices = min(config.num_choices, u - 1)
    out = []
    if n_choices < 2:
        return out
    for target in rng.permutation(u):
        others = np.setdiff1d(np.arange(u), [target])
        choice = rng.choice(others, n_choices, replace=False)
        d = np.sort(dist[target, choice])
        if d[1] - d[0] < max(config.min_gap, config.choice_gap * d[0]):
            continue
        labels = tuple(truth.labels[c] for c in choice)
        best = truth.labels[choice[int(np.argmin(dist[target, choice]))]]
        target_label = truth.labels[target]
        text = (f"Measuring from the closest point of each object, which of these objects "
                f"({', '.join(_nice(c) for c in labels)}) is the closest to the {_nice(target_label)}?")
        out.append(GeneratedQuestion(Query("rel_distance", objects=(target_label,), choices=labels), best, "rel_distance", text))
        if len(out) == config.per_family:
            break
    return out


def _rel_direction(truth, syn, config, rng):
    u = len(truth.labels)
    if u < 3:
        return []
    centre = np.stack([p.mean(axis=0)[:2] for p in truth.points])
    triples = np.array(list(itertools.permutations(range(u), 3)))
    facing = centre[triples[:, 1]] - centre[triples[:, 0]]
    towards = centre[triples[:, 2]] - centre[triples[:, 0]]
    angle = np.degrees(np.arctan2(facing[:, 0] * towards[:, 1] - facing[:, 1] * towards[:, 0], (facing * towards).sum(axis=1)))
    mag = np.abs(angle)
    m = config.margin_deg
    far = (np.linalg.norm(facing, axis=1) >= config.min_distance) & (np.linalg.norm(towards, axis=1) >= config.min_distance)
    clear = far & (((mag > m) & (mag < config.back_deg - m)) | ((mag > config.back_deg + m) & (mag < 180.0 - m)))
    out = []
    for t in _pick(rng, np.flatnonzero(clear).tolist(), config.per_family):
        a, b, c = (truth.labels[i] for i in triples[t])
        answer = "back" if mag[t] > config.back_deg else ("left" if angle[t] > 0 else "right")
        text = (f"If I am standing by the {_nice(a)} and facing the {_nice(b)}, is the {_nice(c)} to my left, "
                f"right, or back? An object is to my back if I would have to turn at least {config.back_deg:g} "
                f"degrees in order to face it.")
        out.append(GeneratedQuestion(Query("rel_direction", objects=(a, b, c), choices=DIRECTIONS), answer, "rel_direction", text))
    return out


def _view_questions(truth, config):
    """``(label index, view)`` pairs where the view shows the label's instance."""
    shown = truth.pixels >= config.min_pixels
    return [tuple(p) for p in np.argwhere(shown).tolist()]


def _object_depth(truth, syn, config, rng):
    poses = syn.scene.cam_from_world.astype(np.float64)
    out = []
    candidates = []
    for i, v in _view_questions(truth, config):
        depth = float(poses[v, 2, :3] @ truth.points[i].mean(axis=0) + poses[v, 2, 3])
        if depth >= config.min_distance:
            candidates.append((i, v, depth))
    for i, v, depth in _pick(rng, candidates, config.per_family):
        label = truth.labels[i]
        text = f"In view {v}, how far is the centre of the {_nice(label)} from the camera along its viewing direction (in meters)?"
        out.append(GeneratedQuestion(Query("object_depth", objects=(label,), views=(v,)), depth, "object_depth", text))
    return out


def _object_camera_distance(truth, syn, config, rng):
    centres = _camera_centres(syn.scene.cam_from_world.astype(np.float64))
    candidates = []
    for i, v in _view_questions(truth, config):
        dist = float(np.linalg.norm(truth.points[i] - centres[v], axis=1).min())
        if dist >= config.min_distance:
            candidates.append((i, v, dist))
    out = []
    for i, v, dist in _pick(rng, candidates, config.per_family):
        label = truth.labels[i]
        text = f"What is the distance from the camera of view {v} to the closest point of the {_nice(label)} (in meters)?"
        out.append(GeneratedQuestion(Query("object_camera_distance", objects=(label,), views=(v,)), dist,
                                     "object_camera_distance", text))
    return out


def _camera_motion(truth, syn, config, rng):
    centres = _camera_centres(syn.scene.cam_from_world.astype(np.float64))
    pairs = [(i, j, float(np.linalg.norm(centres[i] - centres[j])))
             for i, j in itertools.combinations(range(len(centres)), 2)]
    pairs = [p for p in pairs if p[2] >= config.min_distance]
    out = []
    for i, j, dist in _pick(rng, pairs, config.per_family):
        text = f"How far did the camera move between view {i} and view {j} (in meters)?"
        out.append(GeneratedQuestion(Query("camera_motion", views=(i, j)), dist, "camera_motion", text))
    return out


def _appearance_order(truth, syn, config, rng):
    u = len(truth.clear)
    size = min(config.order_length, u)
    out, tried = [], set()
    if size < 2:
        return out
    for _ in range(20 * config.per_family):
        sel = np.sort(rng.choice(u, size, replace=False))
        if tuple(sel) in tried:
            continue
        tried.add(tuple(sel))
        a, s = truth.first_any[sel], truth.first_shown[sel]
        if len(np.unique(a)) < size or len(np.unique(s)) < size or (np.argsort(a) != np.argsort(s)).any():
            continue
        choices = tuple(truth.clear[i] for i in rng.permutation(sel))
        answer = ", ".join(truth.clear[i] for i in sel[np.argsort(a)])
        text = (f"What will be the first-time appearance order of the following categories in the video: "
                f"{', '.join(_nice(c) for c in choices)}?")
        out.append(GeneratedQuestion(Query("appearance_order", choices=choices), answer, "appearance_order", text))
        if len(out) == config.per_family:
            break
    return out


def generate_questions(syn: SyntheticScene, config: QuestionConfig | None = None) -> list[GeneratedQuestion]:
    """Questions of every family of ``config.families`` with answers from the synthetic ground truth.

    Args:
        syn: a generated room with its ground-truth cloud (``SynthConfig.num_points > 0``).
        config: the settings (defaults when ``None``).

    Returns:
        Up to ``per_family`` questions per family (one for ``room_size``), families in
        ``config.families`` order; the same ``syn`` and ``config`` give the same list.

    Raises:
        Sem3RError: an invalid config, a scene without instance masks, a cloud without the points
            of a visible object, or a room without size and floor.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> syn = generate_scene(SynthConfig(seed=2, num_views=4, height=48, width=64, num_points=20000))
        >>> qs = generate_questions(syn, QuestionConfig(per_family=1, families=("camera_motion",)))
        >>> qs[0].query.family, qs[0].answer > 0
        ('camera_motion', True)
    """
    config = config or QuestionConfig()
    config.validate()
    truth = _ground_truth(syn, config)
    needs_dist = {"abs_distance", "rel_distance"} & set(config.families)
    dist = _pair_distances(truth) if needs_dist else None
    makers = {
        "count": _count, "object_size": _object_size, "room_size": _room_size, "rel_direction": _rel_direction,
        "object_depth": _object_depth, "object_camera_distance": _object_camera_distance,
        "camera_motion": _camera_motion, "appearance_order": _appearance_order,
    }
    out = []
    for family in config.families:
        rng = np.random.default_rng([config.seed, FAMILIES.index(family)])
        if family in ("abs_distance", "rel_distance"):
            maker = _abs_distance if family == "abs_distance" else _rel_distance
            out.extend(maker(truth, syn, config, rng, dist))
        else:
            out.extend(makers[family](truth, syn, config, rng))
    return out


def score_answer(question: GeneratedQuestion, answer: Answer) -> float:
    """Score of one engine answer in ``[0, 1]``: MRA for numeric families, exact match for choices.

    An answer of the wrong kind (an error, an unknown, a choice for a number) scores 0.

    Example:
        >>> from sem3r.reasoning.qa import Answer, Query
        >>> q = GeneratedQuestion(Query("camera_motion", views=(0, 1)), 2.0, "camera_motion", "")
        >>> score_answer(q, Answer("number", 2.1, "m"))
        0.9
    """
    if question.family in NUMERIC_FAMILIES:
        if answer.kind != "number" or answer.value is None or not np.isfinite(answer.value):
            return 0.0
        return mean_relative_accuracy(float(answer.value), float(question.answer))
    if answer.kind != "choice" or not isinstance(answer.value, str):
        return 0.0
    return exact_match(answer.value, str(question.answer))


def score_by_family(questions: list[GeneratedQuestion], answers: list[Answer]) -> dict[str, tuple[str, int, float]]:
    """Per-family ``(kind, n, mean score)``: kind ``"MRA"`` or ``"acc"``; families in ``FAMILIES`` order.

    Raises:
        Sem3RError: ``questions`` and ``answers`` differ in length.
    """
    if len(questions) != len(answers):
        raise Sem3RError(f"got {len(questions)} questions but {len(answers)} answers")
    scores: dict[str, list[float]] = {}
    for q, a in zip(questions, answers):
        scores.setdefault(q.family, []).append(score_answer(q, a))
    return {f: ("MRA" if f in NUMERIC_FAMILIES else "acc", len(scores[f]), float(np.mean(scores[f])))
            for f in FAMILIES if f in scores}
