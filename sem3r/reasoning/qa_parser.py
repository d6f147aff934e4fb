"""Plain-English spatial questions -> structured :class:`~sem3r.reasoning.qa.Query`.

:func:`parse_question` matches a question against regular-expression templates of the typical
VSI-Bench / SPAR-Bench phrasings of each family in :data:`~sem3r.reasoning.qa.FAMILIES`.

Choices:

* The text is lower-cased, ``"(s)"`` becomes ``"s"``, underscores become spaces, the VSI-Bench
  preamble "measuring from the closest point of each object," and unit notes ("(in meters)",
  "measured in centimeters", "(length, width, or height)") are dropped, and only the first
  sentence (up to the first ``?``) is read.
* Object phrases are matched against the known labels, longest label first, also in plural form
  (``"trash bins"`` -> ``"trash_bin"``); a phrase that names no known label is passed on as written
  (without articles), so the engine can answer which names it knows. ``"chair #5"`` or
  ``"chair#5"`` becomes the reference ``"chair#5"``.
* Views are read as written and are 0-based indices, as everywhere in Sem3R: "view 2", "frame 2"
  and "camera 2" all mean index 2.
* Object size questions name the side they ask for (``Query.dimension``): "how tall / high",
  "the height of" -> ``"height"``; "how wide", "the width of" -> ``"width"``; "how long", "the
  length of" -> ``"length"``; "how big / large", "the size / longest dimension of" -> ``"longest"``.
* Templates are tried in a fixed order (camera motion, object-camera distance, object depth, room
  size, object size, distances, relative distance, relative direction, appearance order, counting),
  so "how far is the chair from camera 2" is a camera question and "how big is this room" a room one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sem3r.reasoning.qa import Query, normalize_label

_ARTICLES = re.compile(r"^(?:the|a|an|this|that|these|those|my|each|every)\s+")
_ROOM = r"(?:the|this|that) (?:room|space|scene|house|apartment)"


def _view(name: str) -> str:
    return (rf"(?:the )?(?:camera (?:of |in |at |for )(?:the )?)?(?:view|frame|image|camera) (?:number )?#?(?P<{name}>\d+)")


def _clean(text: str) -> str:
    t = str(text).strip().lower().replace("(s)", "s").replace("_", " ")
    t = re.sub(r"^measuring from the closest point of each object,?\s*", "", t)
    t = re.sub(r"\s*\((?:length, width,? (?:or|and) height|in [a-z ]+)\)", "", t)
    t, _, tail = t.partition("?")
    tail = tail.strip(" .!")
    if tail and t.startswith("which"):  # options after the question mark: "which is closest to the tv? chair, lamp"
        t = f"{t.rstrip()}: {tail}"
    t = re.sub(r",?\s*measured in [a-z ]+$", "", t)
    t = re.sub(r"\s+in (?:square )?(?:meters|metres|centimeters|centimetres)$", "", t.strip(" .!"))
    return " ".join(t.split())


def _label_forms(labels: Sequence[str]) -> list[tuple[str, str]]:
    """``(form, label)`` pairs, singular and plural forms of every label, longest form first."""
    forms = {}
    for label in labels:
        name = normalize_label(label)
        if not name:
            continue
        plurals = [name + "s", name + "es"] + ([name[:-1] + "ies"] if name.endswith("y") else [])
        plurals += [re.sub(r"fe?$", "ves", name)] if re.search(r"fe?$", name) else []
        for form in [name, *plurals]:
            forms.setdefault(form, label)
    return sorted(forms.items(), key=lambda kv: (-len(normalize_label(kv[1])), -len(kv[0])))


def _ref(phrase: str, forms: list[tuple[str, str]]) -> str:
    """The object reference a phrase names: a known label (``#id`` kept), else the phrase itself."""
    text = normalize_label(phrase.replace("#", " # "))
    ident = re.search(r"#\s*(\d+)", text)
    text = " ".join(re.sub(r"#\s*\d+", " ", text).split())
    text = _ARTICLES.sub("", text)
    suffix = f"#{ident.group(1)}" if ident else ""
    for form, label in forms:
        if re.search(rf"(?<![a-z0-9]){re.escape(form)}(?![a-z0-9])", text):
            return label + suffix
    return text + suffix


def _split(items: str) -> list[str]:
    parts = re.split(r"\s*,\s*(?:or\s+|and\s+)?|\s+(?:or|and)\s+", items.strip(" :()"))
    return [p.strip(" ()") for p in parts if p.strip(" ()")]


def _direction(choice: str) -> str:
    return re.sub(r"^(?:to |on )?(?:my |the )?", "", choice.strip())


def _objects(*names: str) -> Callable[[str, re.Match, list], Query]:
    def build(family: str, m: re.Match, forms: list) -> Query:
        return Query(family, tuple(_ref(m.group(n), forms) for n in names))
    return build


def _size(dimension: str) -> Callable[[str, re.Match, list], Query]:
    def build(family: str, m: re.Match, forms: list) -> Query:
        return Query(family, (_ref(m.group("a"), forms),), dimension=dimension)
    return build


def _with_view(family: str, m: re.Match, forms: list) -> Query:
    return Query(family, (_ref(m.group("a"), forms),), (int(m.group("v")),))


def _motion(family: str, m: re.Match, forms: list) -> Query:
    return Query(family, views=(int(m.group("i")), int(m.group("j"))))


def _room(family: str, m: re.Match, forms: list) -> Query:
    return Query(family)


def _rel_distance(family: str, m: re.Match, forms: list) -> Query | None:
    items = m.groupdict().get("c1") or m.groupdict().get("c2")
    if not items:
        return None
    return Query(family, (_ref(m.group("a"), forms),), choices=tuple(_ref(c, forms) for c in _split(items)))


def _rel_direction(family: str, m: re.Match, forms: list) -> Query:
    choices = tuple(_direction(c) for c in _split(m.group("ch"))) if m.groupdict().get("ch") else ()
    return Query(family, tuple(_ref(m.group(n), forms) for n in ("a", "b", "c")), choices=choices)


def _order(family: str, m: re.Match, forms: list) -> Query:
    return Query(family, choices=tuple(_ref(c, forms) for c in _split(m.group("list"))))


_PLACE = r"(?:by|at|next to|beside|near|in front of)"
_TEMPLATES: list[tuple[str, str, Callable]] = [
    ("camera_motion", (rf"how (?:far|much) (?:did|does|has) the camera (?:move|moved|travel|traveled|travelled)(?: in total)? "
                      rf"between {_view('i')} and {_view('j')}"), _motion),
    ("camera_motion", (rf"how (?:far|much) (?:did|does|has) the camera (?:move|moved|travel|traveled|travelled)(?: in total)? "
                      rf"from {_view('i')} to {_view('j')}"), _motion),
    ("camera_motion", (rf"what is the (?:camera )?(?:motion|translation|displacement|movement|distance)(?: of the camera)? "
                      rf"(?:between|from) {_view('i')} (?:and|to) {_view('j')}"), _motion),
    ("object_camera_distance", rf"how far (?:away )?is (?P<a>.+?) from {_view('v')}", _with_view),
    ("object_camera_distance", rf"what is the distance (?:between|from) (?P<a>.+?) (?:and|to) {_view('v')}", _with_view),
    ("object_depth", rf"what is the depth of (?P<a>.+?) (?:in|from|at|for|seen from) {_view('v')}", _with_view),
    ("object_depth", rf"how deep is (?P<a>.+?) in {_view('v')}", _with_view),
    ("object_depth", rf"how far in front of {_view('v')} is (?P<a>.+?)", _with_view),
    ("room_size", rf"how (?:big|large) is {_ROOM}", _room),
    ("room_size", rf"what is the (?:size|area|floor area|square footage) of {_ROOM}", _room),
    ("object_size", r"how (?:big|large) is (?P<a>.+?)", _size("longest")),
    ("object_size", r"how (?:tall|high) is (?P<a>.+?)", _size("height")),
    ("object_size", r"how wide is (?P<a>.+?)", _size("width")),
    ("object_size", r"how long is (?P<a>.+?)", _size("length")),
    ("object_size", (r"what is the (?:length of the longest (?:dimension|side)|longest (?:dimension|side)|"
                    r"largest dimension|size|dimension) of (?P<a>.+?)"), _size("longest")),
    ("object_size", r"what is the (?:height|vertical extent) of (?P<a>.+?)", _size("height")),
    ("object_size", r"what is the width of (?P<a>.+?)", _size("width")),
    ("object_size", r"what is the length of (?P<a>.+?)", _size("length")),
    ("abs_distance", r"how far (?:away )?is (?P<a>.+?) from (?P<b>.+?)", _objects("a", "b")),
    ("abs_distance", (r"what is the (?:direct |closest[- ]point |shortest |straight[- ]line )?distance (?:between|from) "
                     r"(?P<a>.+?) (?:and|to) (?P<b>.+?)"), _objects("a", "b")),
    ("abs_distance", r"how far apart are (?P<a>.+?) and (?P<b>.+?)", _objects("a", "b")),
    ("rel_distance", (r"which (?:of these objects |of the following objects |object |one )?(?:\((?P<c1>[^)]*)\) )?"
                     r"(?:is )?(?:the )?(?:closest|nearest) to (?P<a>[^:(]+?)(?:\s*[:(]\s*(?P<c2>[^)]*)\)?)?"),
     _rel_distance),
    ("rel_distance", r"which is (?:the )?(?:closer|nearer|closest|nearest) to (?P<a>[^,:]+?)\s*[,:] (?P<c2>.+)", _rel_distance),
    ("rel_direction", (rf"(?:if )?i am standing {_PLACE} (?P<a>.+?),? (?:and )?facing (?P<b>.+?), is (?P<c>.+?) "
                      r"(?:to|on) (?:my|the) (?P<ch>.+)"), _rel_direction),
    ("rel_direction", (rf"(?:if )?i am standing {_PLACE} (?P<a>.+?),? (?:and )?facing (?P<b>.+?), (?:where|on which side|"
                      r"in which direction) is (?P<c>.+?)(?: relative to me| from me)?"), _rel_direction),
    ("appearance_order", r"in (?:what|which) order do (?P<list>.+?) (?:first )?appear(?: in the (?:video|views|images))?",
     _order),
    ("appearance_order", (r"(?:what (?:will be|is) )?the (?:first[- ]time )?appearance order of (?:the following "
                         r"(?:categories|objects)(?: in the video)?:?\s*)?(?P<list>.+)"), _order),
    ("count", r"how many (?P<a>.+?)(?: (?:are|is|can you see|do you see|appear|can be seen|exist)\b.*)?", _objects("a")),
    ("count", r"(?:count|what is the number of) (?P<a>.+?)(?: in (?:the|this) (?:room|scene|video))?", _objects("a")),
]
_COMPILED = [(family, re.compile(rf"^{pattern}$"), build) for family, pattern, build in _TEMPLATES]


def parse_question(text: str, labels: Sequence[str]) -> Query | None:
    """Parse a plain-English spatial question into a :class:`~sem3r.reasoning.qa.Query`.

    Args:
        text: the question, e.g. ``"How far is the sofa from the door?"``.
        labels: the scene's known object labels (``"trash_bin"`` matches "trash bins").

    Returns:
        The query, or ``None`` when no template matches.

    Example:
        >>> parse_question("How many trash bins are in the room?", ["chair", "trash_bin"])
        Query(family='count', objects=('trash_bin',), views=(), choices=())
        >>> parse_question("how far did the camera move from view 1 to view 4?", [])
        Query(family='camera_motion', objects=(), views=(1, 4), choices=())
        >>> parse_question("what colour is the sofa?", ["sofa"]) is None
        True
    """
    clean = _clean(text)
    forms = _label_forms(labels)
    for family, pattern, build in _COMPILED:
        m = pattern.match(clean)
        if m:
            query = build(family, m, forms)
            if query is not None:
                return query
    return None
