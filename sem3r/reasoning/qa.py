"""Spatial question answering over a :class:`~sem3r.reasoning.scene_graph.SceneGraph`.

:class:`QAEngine` answers the question families of VSI-Bench and SPAR-Bench with a number or a
chosen option and a short explanation holding the numbers it used. Questions come as a structured
:class:`Query` or as plain English (parsed by :func:`sem3r.reasoning.qa_parser.parse_question`).

Families (``Query.family``):

* ``count``: ``objects=(label,)``: number of instances with that label (unit ``"count"``).
* ``abs_distance``: ``objects=(a, b)``: closest-point distance between the two objects (``"m"``).
* ``object_size``: ``objects=(a,)``: a side of the object's gravity-aligned box in centimetres
  (unit ``"cm"``), chosen by ``Query.dimension``: ``"longest"`` (the default, VSI-Bench's "the
  length of the longest dimension"), ``"height"`` (the vertical extent along the scene's up axis),
  ``"length"`` (the longer horizontal side) or ``"width"``. The horizontal sides are those of the
  minimum-area rectangle of the object's points on the ground plane (see
  :func:`~sem3r.reasoning.scene_graph.oriented_box`), whatever the object's heading in the room.
  "Width" is the horizontal extent across the object as one faces it: the *shorter* horizontal side
  of an object that is longer than tall (a table 150 x 60 x 75 cm is 60 cm wide, 150 cm long), the
  *longer* one of an upright object (height at least its longer side: a bookshelf 80 x 30 x 180 cm
  is 80 cm wide and 30 cm deep) or of a vertical slab (shorter horizontal side under
  ``QAConfig.thin_ratio`` times both the longer side and the height: a window 150 x 6 x 110 cm is
  150 cm wide, not 6, while a rug 200 x 40 x 1 cm stays 40 cm wide).
* ``room_size``: the floor area of the room, ``graph.floor_area`` (``"m2"``).
* ``rel_distance``: ``objects=(target,)``, ``choices=(c1, ..., ck)`` labels: the choice whose
  object is closest (closest-point distance) to the target (kind ``"choice"``).
* ``rel_direction``: ``objects=(standing_at, facing, query)``: standing at the centroid of
  ``standing_at`` and facing the centroid of ``facing``, both projected on the ground plane, where
  is ``query``? Forward is the ground direction to ``facing``, left is ``up x forward`` (standing
  at the origin facing ``+x`` with ``+z`` up, ``+y`` is on the left). Each choice names a direction
  made of the words front / back (or behind) / left / right (``"front-left"`` is the diagonal);
  the answer is the choice whose direction makes the smallest angle with the ground direction to
  the query object. This one rule gives the three VSI-Bench variants: ``("left", "right")`` splits
  at the forward axis, ``("left", "right", "back")`` (the default when ``choices`` is empty) calls
  "back" everything more than 135 degrees from forward, and the four quadrants
  ``("front-left", "front-right", "back-left", "back-right")`` split at both axes.
* ``object_depth``: ``objects=(a,)``, ``views=(v,)``: camera ``z`` of the object's centroid in
  view ``v`` (``"m"``; negative behind the camera).
* ``object_camera_distance``: ``objects=(a,)``, ``views=(v,)``: Euclidean distance from the centre
  of camera ``v`` to the object's closest point (``"m"``).
* ``camera_motion``: ``views=(i, j)``: distance between the two camera centres (``"m"``); the
  explanation also gives the relative rotation angle in degrees.
* ``appearance_order``: ``choices=(labels ...)``: the choices sorted by the first view in which an
  instance of each is visible (value: ``"chair, table, sofa"``, kind ``"choice"``); ties keep the
  given order.

References. An object reference is a label or ``"label#ID"`` (one instance id). Labels match
after normalisation: case, spaces / underscores / hyphens, and a trailing plural ``"s"``, ``"es"``,
``"ies"`` (-> ``"y"``) or ``"ves"`` (-> ``"f"``, ``"fe"``) when the plural is not itself a label.
A reference that matches nothing gives ``Answer(kind="error")`` whose explanation lists the known
labels.

Ambiguity (documented rules). Where a family needs *one* object (``object_size``,
``rel_direction``, ``object_depth``, ``object_camera_distance``) and a label has several
instances, the engine uses the instance with the most visible pixels over all views (ties: the
smaller id) and says so ("3 chairs; using chair#5, the most visible"). Distances between two
references (``abs_distance``, ``rel_distance``) are the minimum over all pairs of their instances
(two different objects), also said in the explanation. ``count`` and ``appearance_order`` use all
instances.

Speed. Closest-point distances query each object's KD-tree (all its points) with a seeded
subsample of at most ``QAConfig.max_points`` points of the other object, in both directions, so
they are exact for small objects and within the subsample spacing otherwise; bounding spheres
prune pairs that cannot be the minimum and pair distances are cached.

Anything else (an unknown family, an unparseable sentence) goes to the LMM callable when one is
given (a compact text description of the scene plus the question), else the answer is
``kind="unknown"`` with "cannot answer" and the supported families.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.reasoning.scene_graph import (
    SceneGraph,
    SceneGraphConfig,
    SceneObject,
    build_scene_graph,
)
from sem3r.scene import Scene

GENERIC_NAMES = frozenset({"object", "objects", "thing", "things", "item", "items", "instance", "instances"})
"""Names that refer to every object of the scene (unless an object carries one of them as its label)."""

FAMILIES = ("count", "abs_distance", "object_size", "room_size", "rel_distance", "rel_direction",
            "object_depth", "object_camera_distance", "camera_motion", "appearance_order")

_ARITY = {  # family -> (number of objects, number of views)
    "count": (1, 0), "abs_distance": (2, 0), "object_size": (1, 0), "room_size": (0, 0),
    "rel_distance": (1, 0), "rel_direction": (3, 0), "object_depth": (1, 1),
    "object_camera_distance": (1, 1), "camera_motion": (0, 2), "appearance_order": (0, 0),
}
_DIRECTION_WORDS = {"front": (1.0, 0.0), "forward": (1.0, 0.0), "ahead": (1.0, 0.0), "back": (-1.0, 0.0),
                    "behind": (-1.0, 0.0), "left": (0.0, 1.0), "right": (0.0, -1.0)}
DEFAULT_DIRECTIONS = ("left", "right", "back")
DIMENSIONS = ("longest", "height", "length", "width")
"""The sides ``object_size`` can measure (``Query.dimension``)."""


@dataclass(frozen=True)
class Query:
    """A structured spatial question.

    Attributes:
        family: one of :data:`FAMILIES`.
        objects: object references, a label (``"chair"``) or ``"label#ID"``.
        views: view indices (0-based): one for ``object_depth`` / ``object_camera_distance``,
            two for ``camera_motion``.
        choices: options of multiple-choice families (labels or directions, see the module docstring).
        dimension: ``object_size`` only: one of :data:`DIMENSIONS` (``"longest"``, ``"height"``,
            ``"length"``, ``"width"``).
    """

    family: str
    objects: tuple[str, ...] = ()
    views: tuple[int, ...] = ()
    choices: tuple[str, ...] = ()
    dimension: str = "longest"

    def __repr__(self) -> str:
        dim = "" if self.dimension == "longest" else f", dimension={self.dimension!r}"
        return (f"Query(family={self.family!r}, objects={self.objects!r}, views={self.views!r}, "
                f"choices={self.choices!r}{dim})")


@dataclass
class Answer:
    """The answer to a :class:`Query`.

    Attributes:
        kind: ``"number"``, ``"choice"``, ``"error"`` (bad reference or query) or ``"unknown"``.
        value: the number in ``unit``, the chosen option, or ``None``.
        unit: ``"count"``, ``"m"``, ``"cm"``, ``"m2"`` ... (``""`` for choices).
        explanation: one or two short sentences with the numbers used.
        objects: instance ids the answer used.
    """

    kind: Literal["number", "choice", "error", "unknown"]
    value: float | str | None
    unit: str = ""
    explanation: str = ""
    objects: tuple[int, ...] = ()

    def headline(self) -> str:
        """The answer in a few words: ``"3"`` for a count, ``"1.63 m"``, ``"lamp"``, or ``"cannot answer"``.

        Example:
            >>> Answer("number", 3.0, "count").headline(), Answer("number", 1.634, "m").headline()
            ('3', '1.63 m')
        """
        if self.kind not in ("number", "choice") or self.value is None:
            return "cannot answer"
        if isinstance(self.value, (int, float)):
            if self.unit == "count":
                return f"{self.value:.0f}"
            return f"{self.value:.2f} {self.unit}".strip()
        return f"{self.value} {self.unit}".strip()

    def to_dict(self) -> dict:
        """JSON-ready fields: ``answer`` (the :meth:`headline`), ``kind``, ``value`` (an ``int`` for
        counts), ``unit``, ``explanation`` and ``objects`` (instance ids)."""
        value = self.value
        if isinstance(value, float) and not np.isfinite(value):
            value = None  # strict JSON has no NaN / Infinity
        elif self.unit == "count" and isinstance(value, float) and value.is_integer():
            value = int(value)
        return {"answer": self.headline(), "kind": self.kind, "value": value, "unit": self.unit,
                "explanation": self.explanation, "objects": [int(i) for i in self.objects]}


@dataclass
class QAConfig:
    """Settings of :class:`QAEngine`.

    Attributes:
        max_points: points per object in the seeded subsample used to query the other object's KD-tree.
        seed: seed of the subsampling.
        depth_reduce: ``"centroid"`` or ``"median"``, the reduction of ``object_depth``.
        thin_ratio: ``object_size`` width rule: an object whose shorter horizontal side is under
            this fraction of both its longer side and its height is a vertical slab (a window, a
            painting), and its width is the longer side (see the module docstring).
    """

    max_points: int = 256
    seed: int = 0
    depth_reduce: Literal["centroid", "median"] = "centroid"
    thin_ratio: float = 0.25

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.max_points < 1:
            raise Sem3RError(f"max_points must be at least 1, got {self.max_points}")
        if not 0 <= self.thin_ratio <= 1:
            raise Sem3RError(f"thin_ratio must be in [0, 1], got {self.thin_ratio}")
        if self.depth_reduce not in ("centroid", "median"):
            raise Sem3RError(f"depth_reduce must be 'centroid' or 'median', got '{self.depth_reduce}'")


class _QueryError(Exception):
    """A question that cannot be answered as asked; the message becomes the error answer."""


def normalize_label(text: str) -> str:
    """Lower case, ``_`` and ``-`` as spaces, single spaces: ``"Trash_Bin"`` -> ``"trash bin"``."""
    return " ".join(re.sub(r"[_\-]+", " ", str(text).lower()).split())


def singular_forms(name: str) -> list[str]:
    """Candidate singular forms of a normalised ``name``, most specific first (``"boxes"`` -> ``["box", "boxe"]``)."""
    out = []
    if name.endswith("ies") and len(name) > 3:
        out.append(name[:-3] + "y")
    if name.endswith("ves") and len(name) > 3:
        out += [name[:-3] + "f", name[:-3] + "fe"]
    if name.endswith("es") and len(name) > 2:
        out.append(name[:-2])
    if name.endswith("s") and len(name) > 1:
        out.append(name[:-1])
    return out


def _plural(label: str, n: int) -> str:
    if not label:
        return "unlabelled object" if n == 1 else "unlabelled objects"
    return label if n == 1 else label + "s"


def _name(obj: SceneObject) -> str:
    """How explanations name one object: ``"chair#5"``, ``"#5"`` when it has no label."""
    return f"{obj.label}#{obj.id}"


def _group_name(objs: list[SceneObject]) -> str:
    """How explanations name what a reference resolved to: one object by name, several by their label."""
    return _name(objs[0]) if len(objs) == 1 else (objs[0].label or "unlabelled objects")


class QAEngine:
    """Answers spatial questions about one scene graph.

    Args:
        graph: the scene graph (see :func:`~sem3r.reasoning.scene_graph.build_scene_graph`).
        lmm: optional ``prompt -> reply`` callable for questions outside :data:`FAMILIES`.
        config: the settings (defaults when ``None``).

    Example:
        >>> import numpy as np
        >>> from sem3r.reasoning.scene_graph import SceneGraph, SceneObject, ground_basis
        >>> def obj(i, label, pts):
        ...     pts = np.asarray(pts, np.float64)
        ...     return SceneObject(i, label, 1.0, pts.astype(np.float32), pts.mean(0), pts.mean(0),
        ...                        np.ptp(pts, 0), np.eye(3), np.array([10]), 0)
        >>> up = np.array([0.0, 0.0, 1.0])
        >>> graph = SceneGraph([obj(0, "chair", [[0, 0, 0], [0.5, 0, 0]]), obj(1, "table", [[2, 0, 0], [3, 0, 1]])],
        ...                    up, ground_basis(up), 0.0, 12.0, np.eye(3, 4)[None], np.eye(3)[None])
        >>> engine = QAEngine(graph)
        >>> engine.answer(Query("abs_distance", ("chair", "table"))).value
        1.5
        >>> engine.answer("how many chairs are there?").value
        1.0
    """

    def __init__(self, graph: SceneGraph, lmm: Callable[[str], str] | None = None, config: QAConfig | None = None):
        if not isinstance(graph, SceneGraph):
            raise Sem3RError(f"QAEngine needs a SceneGraph, got {type(graph).__name__}")
        self.config = config or QAConfig()
        self.config.validate()
        self.graph = graph
        self.lmm = lmm
        self._by_label: dict[str, list[SceneObject]] = {}
        for obj in graph.objects:
            if obj.label:
                self._by_label.setdefault(normalize_label(obj.label), []).append(obj)
        self._known = sorted({o.label for o in graph.objects if o.label})
        n = len(graph.objects)
        self._slot = {o.id: k for k, o in enumerate(graph.objects)}
        self._centroids = np.array([o.centroid for o in graph.objects], np.float64).reshape(n, 3)
        self._radius = np.array([np.linalg.norm(np.asarray(o.points, np.float64) - o.centroid, axis=1).max(initial=0.0)
                                 for o in graph.objects])
        self._visible = np.array([int(np.sum(o.visible_pixels)) for o in graph.objects], np.int64)
        rng = np.random.default_rng(self.config.seed)
        self._sample = []
        for o in graph.objects:
            pts = np.asarray(o.points, np.float64)
            if len(pts) > self.config.max_points:
                pts = pts[np.sort(rng.choice(len(pts), self.config.max_points, replace=False))]
            self._sample.append(pts)
        self._pair_cache: dict[tuple[int, int], float] = {}

    def answer(self, question: Query | str) -> Answer:
        """Answer a :class:`Query` or a plain-English question.

        Args:
            question: a structured query, or a sentence parsed with
                :func:`~sem3r.reasoning.qa_parser.parse_question` against the scene's labels.

        Returns:
            The :class:`Answer`; bad references give ``kind="error"``, unsupported questions are
            sent to the LMM when one is configured, else ``kind="unknown"``.

        Raises:
            Sem3RError: an empty or blank question, or one that is neither a string nor a Query.
        """
        if isinstance(question, str):
            from sem3r.reasoning.qa_parser import parse_question

            if not question.strip():
                raise Sem3RError("the question is empty")

            query = parse_question(question, self._known)
            if query is None:
                return self._fallback(question)
        elif isinstance(question, Query):
            query = question
        else:
            raise Sem3RError(f"a question must be a Query or a string, got {type(question).__name__}")
        if query.family not in FAMILIES:
            return self._fallback(self._describe_query(query))
        try:
            self._check_arity(query)
            return getattr(self, "_" + query.family)(query)
        except (_QueryError, Sem3RError) as exc:
            return Answer(kind="error", value=None, explanation=str(exc))

    def resolve(self, reference: str) -> list[SceneObject]:
        """All objects a reference names (``"chair"``, ``"Chairs"``, ``"chair#5"``), sorted by id.

        Raises:
            Sem3RError: the reference matches no object (the message lists the known labels), or
                ``label#ID`` names an id that is absent or has another label.
        """
        try:
            return self._resolve(reference)
        except _QueryError as exc:
            raise Sem3RError(str(exc)) from None

    def _resolve(self, reference: str) -> list[SceneObject]:
        text = str(reference).strip()
        name, _, ident = text.partition("#")
        key = normalize_label(name)
        objs = self._by_label.get(key)
        if objs is None:
            objs = next((self._by_label[s] for s in singular_forms(key) if s in self._by_label), None)
        if objs is None and not ident and key in GENERIC_NAMES and self.graph.objects:
            objs = list(self.graph.objects)  # "how many objects": every instance, labelled or not
        if ident:
            if not ident.strip().isdigit() or int(ident) not in self._slot:
                raise _QueryError(f"no object with id '{ident}' in '{text}'; known ids: "
                                  + ", ".join(f"{o.label}#{o.id}" for o in self.graph.objects))
            obj = self.graph.objects[self._slot[int(ident)]]
            if name.strip() and (objs is None or obj not in objs):
                raise _QueryError(f"object #{obj.id} is a '{obj.label}', not a '{name.strip()}'")
            return [obj]
        if objs is None:
            raise _QueryError(f"no object called '{text}'; known: {', '.join(self._known) or '(none)'}")
        return objs

    def _one(self, reference: str) -> tuple[SceneObject, str]:
        """One object for ``reference`` by the most-visible rule, and a note when it was ambiguous."""
        objs = self._resolve(reference)
        if len(objs) == 1:
            return objs[0], ""
        best = max(objs, key=lambda o: (self._visible[self._slot[o.id]], -o.id))
        return best, f"{len(objs)} {_plural(best.label, len(objs))}; using {_name(best)}, the most visible. "

    def _pair_distance(self, a: SceneObject, b: SceneObject) -> float:
        key = (a.id, b.id) if a.id < b.id else (b.id, a.id)
        if key not in self._pair_cache:
            sa, sb = self._sample[self._slot[a.id]], self._sample[self._slot[b.id]]
            d_ab = b.kdtree.query(sa, k=1)[0].min() if len(sa) and len(b.points) else np.inf
            d_ba = a.kdtree.query(sb, k=1)[0].min() if len(sb) and len(a.points) else np.inf
            self._pair_cache[key] = float(min(d_ab, d_ba))
        return self._pair_cache[key]

    def _min_distance(self, first: list[SceneObject], second: list[SceneObject]) -> tuple[float, SceneObject, SceneObject, int]:
        """Minimum closest-point distance over pairs of different objects; bounding spheres prune pairs."""
        pairs = [(a, b) for a in first for b in second if a.id != b.id]
        if not pairs:
            raise _QueryError(f"'{first[0].label}' and '{second[0].label}' name the same single object")
        ia = np.array([self._slot[a.id] for a, _ in pairs])
        ib = np.array([self._slot[b.id] for _, b in pairs])
        lower = np.linalg.norm(self._centroids[ia] - self._centroids[ib], axis=1) - self._radius[ia] - self._radius[ib]
        best, best_pair = np.inf, pairs[0]
        for k in np.argsort(lower, kind="stable"):
            if lower[k] >= best:
                break
            d = self._pair_distance(*pairs[k])
            if d < best:
                best, best_pair = d, pairs[k]
        return best, best_pair[0], best_pair[1], len(pairs)

    def _check_arity(self, q: Query) -> None:
        n_obj, n_view = _ARITY[q.family]
        if q.family != "appearance_order" and len(q.objects) != n_obj:
            raise _QueryError(f"{q.family} needs {n_obj} object reference(s), got {len(q.objects)}")
        if len(q.views) != n_view:
            raise _QueryError(f"{q.family} needs {n_view} view index(es), got {len(q.views)}")
        if q.family == "rel_distance" and not q.choices:
            raise _QueryError("rel_distance needs at least one choice")
        if q.family == "appearance_order" and not (q.choices or q.objects):
            raise _QueryError("appearance_order needs the labels to order as choices")
        if q.family == "object_size" and q.dimension not in DIMENSIONS:
            raise _QueryError(f"unknown object_size dimension '{q.dimension}'; expected {', '.join(DIMENSIONS)}")

    def _count(self, q: Query) -> Answer:
        objs = self._resolve(q.objects[0])
        n = len(objs)
        same = len({o.label for o in objs}) == 1
        return Answer("number", float(n), "count",
                      f"{n} {_plural(objs[0].label if same else 'object', n)} in the scene ({'id' if n == 1 else 'ids'} "
                      f"{', '.join(str(o.id) for o in objs)}).", tuple(o.id for o in objs))

    def _abs_distance(self, q: Query) -> Answer:
        first, second = self._resolve(q.objects[0]), self._resolve(q.objects[1])
        d, a, b, n = self._min_distance(first, second)
        rule = f" (minimum over {n} instance pairs)" if n > 1 else ""
        return Answer("number", d, "m", f"closest points of {_name(a)} and {_name(b)} are {d:.2f} m apart{rule}.",
                      (a.id, b.id))

    def _object_size(self, q: Query) -> Answer:
        obj, note = self._one(q.objects[0])
        size = np.asarray(obj.box_size, np.float64) * 100.0  # (3,) cm: two horizontal sides, then along up
        length, width, height = max(size[0], size[1]), min(size[0], size[1]), size[2]
        box = f"{_name(obj)} box is {length:.0f} x {width:.0f} x {height:.0f} cm (length x width x height)"
        if height >= length or width < self.config.thin_ratio * min(length, height):  # across its face
            kind = "upright" if height >= length else "a thin vertical slab"
            face = f"width {length:.0f} cm, the longer horizontal side as it is {kind} ({width:.0f} cm deep)"
            across = (float(length), face)
        else:
            across = (float(width), f"width {width:.0f} cm, the shorter horizontal side")
        value, what = {
            "longest": (float(size.max()), f"longest {size.max():.0f} cm"),
            "height": (float(height), f"height {height:.0f} cm, the vertical extent along the up axis"),
            "length": (float(length), f"length {length:.0f} cm, the longer horizontal side"),
            "width": across,
        }[q.dimension]
        return Answer("number", value, "cm", f"{note}{box}; {what}.", (obj.id,))

    def _room_size(self, q: Query) -> Answer:
        area = float(self.graph.floor_area)
        return Answer("number", area, "m2", f"the floor footprint of all reconstructed points covers {area:.1f} m2.")

    def _rel_distance(self, q: Query) -> Answer:
        target = self._resolve(q.objects[0])
        results = []
        for choice in q.choices:
            d, a, b, _ = self._min_distance(target, self._resolve(choice))
            results.append((d, choice, a, b))
        d, choice, a, b = min(results, key=lambda r: r[0])
        parts = ", ".join(f"{c} {dist:.2f} m" for dist, c, _, _ in results)
        which = "" if normalize_label(choice) == normalize_label(_name(b)) else f" ({_name(b)})"
        return Answer("choice", choice, "",
                      f"closest-point distances to {_group_name(target)}: {parts}; {choice}{which} is closest.",
                      (a.id, b.id))

    def _rel_direction(self, q: Query) -> Answer:
        (stand, n1), (face, n2), (query, n3) = (self._one(r) for r in q.objects)
        choices = q.choices or DEFAULT_DIRECTIONS
        dirs = np.array([self._choice_direction(c) for c in choices])
        basis = self.graph.ground_basis[:, :2]
        origin = stand.centroid @ basis
        forward = face.centroid @ basis - origin
        target = query.centroid @ basis - origin
        if np.linalg.norm(forward) < 1e-9:
            raise _QueryError(f"{_name(stand)} and {_name(face)} are at the same ground position")
        if np.linalg.norm(target) < 1e-9:
            raise _QueryError(f"{_name(query)} is at the standing position")
        f = forward / np.linalg.norm(forward)
        left = np.array([-f[1], f[0]])  # up x forward in the right-handed (e1, e2, up) ground frame
        local = np.array([target @ f, target @ left])
        angle = float(np.degrees(np.arctan2(local[1], local[0])))
        pick = int(np.argmax(dirs @ (local / np.linalg.norm(local))))
        ahead = f"{abs(local[0]):.2f} m {'ahead' if local[0] >= 0 else 'behind'}"
        side = f"{abs(local[1]):.2f} m to the {'left' if local[1] >= 0 else 'right'}"
        return Answer("choice", choices[pick], "",
                      f"{n1}{n2}{n3}standing at {_name(stand)} facing {_name(face)}, {_name(query)} is {ahead} and "
                      f"{side} ({angle:.0f} deg, positive = left): {choices[pick]}.", (stand.id, face.id, query.id))

    @staticmethod
    def _choice_direction(choice: str) -> np.ndarray:
        words = re.findall(r"[a-z]+", choice.lower())
        vec = np.sum([_DIRECTION_WORDS[w] for w in words if w in _DIRECTION_WORDS], axis=0)
        if np.ndim(vec) == 0 or np.linalg.norm(vec) < 1e-9:
            raise _QueryError(f"direction choice '{choice}' names none of front, back, left, right")
        return vec / np.linalg.norm(vec)

    def _object_depth(self, q: Query) -> Answer:
        obj, note = self._one(q.objects[0])
        view = q.views[0]
        depth = self.graph.object_depth(obj, view, self.config.depth_reduce)
        where = "behind" if depth < 0 else "in front of"
        return Answer("number", depth, "m", f"{note}{_name(obj)} ({self.config.depth_reduce}) is at camera depth "
                      f"{depth:.2f} m in view {view}, {where} the camera.", (obj.id,))

    def _object_camera_distance(self, q: Query) -> Answer:
        obj, note = self._one(q.objects[0])
        view = q.views[0]
        center = self.graph.camera_center(view)
        d = float(obj.kdtree.query(center, k=1)[0]) if len(obj.points) else float("inf")
        return Answer("number", d, "m", f"{note}the closest point of {_name(obj)} is {d:.2f} m from the centre "
                      f"of camera {view}.", (obj.id,))

    def _camera_motion(self, q: Query) -> Answer:
        i, j = q.views
        ci, cj = self.graph.camera_center(i), self.graph.camera_center(j)
        ri, rj = self.graph.cam_from_world[i, :, :3], self.graph.cam_from_world[j, :, :3]
        cos = np.clip((np.trace(ri @ rj.T) - 1.0) / 2.0, -1.0, 1.0)
        angle = float(np.degrees(np.arccos(cos)))
        d = float(np.linalg.norm(cj - ci))
        return Answer("number", d, "m", f"the camera moved {d:.2f} m and turned {angle:.1f} deg between view {i} "
                      f"and view {j}.")

    def _appearance_order(self, q: Query) -> Answer:
        names = q.choices or q.objects
        first, used = [], []
        for name in names:
            views = [o.first_view for o in self._resolve(name) if o.first_view >= 0]
            if not views:
                raise _QueryError(f"'{name}' is never visible in any view")
            first.append(min(views))
            used.extend(o.id for o in self._resolve(name))
        order = np.argsort(first, kind="stable")
        value = ", ".join(names[k] for k in order)
        seen = ", ".join(f"{names[k]} in view {first[k]}" for k in order)
        return Answer("choice", value, "", f"first seen: {seen}.", tuple(used))

    @staticmethod
    def _describe_query(q: Query) -> str:
        dim = f", dimension={q.dimension}" if q.family == "object_size" else ""
        return f"{q.family}: objects={list(q.objects)}, views={list(q.views)}, choices={list(q.choices)}{dim}"

    def scene_description(self) -> str:
        """A compact text description of the scene: one line per object with label, id, centroid
        and box size in metres, then the floor area and the number of views."""
        lines = ["Objects (label#id: centroid x, y, z m; box length x width x height m):"]
        for o in self.graph.objects:
            c, s = np.asarray(o.centroid, float), np.asarray(o.box_size, float)
            lines.append(f"{o.label or '?'}#{o.id}: ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f}); "
                         f"{s[0]:.2f} x {s[1]:.2f} x {s[2]:.2f}")
        up = self.graph.up
        lines.append(f"Up direction: ({up[0]:.2f}, {up[1]:.2f}, {up[2]:.2f}); floor area {self.graph.floor_area:.1f} m2; "
                     f"{self.graph.num_views} views.")
        return "\n".join(lines)

    def _fallback(self, text: str) -> Answer:
        if self.lmm is not None:
            prompt = f"{self.scene_description()}\nQuestion: {text}\nAnswer briefly."
            reply = str(self.lmm(prompt)).strip()
            return Answer("choice" if reply else "unknown", reply or None, "", "answered by the LMM")
        return Answer("unknown", None, "", f"cannot answer: '{text}' is not a supported question; supported families "
                      f"are {', '.join(FAMILIES)}.")


def answer_records(engine: QAEngine, questions: Sequence[str]) -> list[dict]:
    """Answer many questions with one engine; JSON-ready records, one per question.

    Returns:
        ``{"question": q} | Answer.to_dict()`` per question; a question the engine rejects (e.g. an
        empty one) gets ``kind="error"`` with the one-line reason instead of stopping the others.
    """
    records = []
    for text in questions:
        try:
            record = engine.answer(text).to_dict()
        except Sem3RError as exc:
            record = {"answer": "cannot answer", "kind": "error", "value": None, "unit": "",
                      "explanation": str(exc).splitlines()[0] if str(exc) else "error", "objects": []}
        records.append({"question": text} | record)
    return records


def read_questions(path: str | Path) -> list[str]:
    """Questions from a text file: one per line, or JSON lines with a ``"question"`` key.

    Blank lines are skipped; a line starting with ``{`` is read as JSON. ``"-"`` reads standard input.

    Args:
        path: the file.

    Returns:
        The questions, stripped, in file order.

    Raises:
        Sem3RError: an unreadable file, a JSON line that is malformed or has no non-empty
            ``"question"`` string (the message gives the line number), or a file without questions.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "q.txt")
        >>> _ = open(p, "w").write('how many chairs?\\n\\n{"question": "how big is the room?", "id": 7}\\n')
        >>> read_questions(p)
        ['how many chairs?', 'how big is the room?']
    """
    import json
    import sys

    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Sem3RError(f"cannot read the questions file '{path}': {exc}") from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise Sem3RError(f"'{path}' line {number} is not valid JSON: {exc.msg}") from None
            line = record.get("question") if isinstance(record, dict) else None
            if not isinstance(line, str):
                raise Sem3RError(f"'{path}' line {number} has no \"question\" string")
            line = line.strip()
            if not line:
                raise Sem3RError(f"'{path}' line {number}: the question is empty")
        out.append(line)
    if not out:
        raise Sem3RError(f"'{path}' holds no questions")
    return out


def ask(scene: Scene, question: str | Query, lmm: Callable[[str], str] | None = None,
        graph_config: SceneGraphConfig | None = None) -> Answer:
    """Build the scene graph of ``scene`` and answer one question.

    For several questions, build one :class:`QAEngine`; for a Scene folder asked again and again,
    take its graph from :func:`~sem3r.reasoning.graph_cache.load_or_build_scene_graph` (cached).

    Args:
        scene: a scene with geometry and 3D-consistent ``instance_masks`` (labels from ``instances``).
        question: a :class:`Query` or a plain-English question.
        lmm: optional ``prompt -> reply`` callable for unsupported questions.
        graph_config: settings of :func:`~sem3r.reasoning.scene_graph.build_scene_graph`.

    Returns:
        The :class:`Answer`.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> syn = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64, num_points=0))
        >>> ask(syn.scene, "what is the size of this room?").unit
        'm2'
    """
    return QAEngine(build_scene_graph(scene, graph_config), lmm).answer(question)
