"""Class lists of the synthetic rooms: object categories, structure classes and frequency splits.

Semantic ids index :data:`CLASS_NAMES`, which lists the three **structure classes first**
(``floor = 0``, ``wall = 1``, ``ceiling = 2``) and then the object categories of
:data:`CATEGORIES` in order, so ``semantic_id = NUM_STRUCTURE_CLASSES + CATEGORIES.index(name)``.
Structure pixels and points carry a semantic id but instance id -1; every object instance has an
instance id ``0..K-1``.

Each category has a *tier* that is its frequency of appearance: how likely a room contains it and
how many instances it gets. :data:`CATEGORY_SPLITS` groups the categories by tier (``head``,
``common``, ``tail``) for AP breakdowns in the style of ScanNet200.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Placement = Literal["wall", "free", "support", "cushion", "wall_mounted", "floor_flat"]


@dataclass(frozen=True)
class CategorySpec:
    """How often and where a category appears.

    Attributes:
        name: class name (also the label in the instance table).
        tier: ``head``, ``common`` or ``tail`` (frequency of appearance).
        presence: probability that a room contains the category at all.
        count: inclusive ``(lo, hi)`` range of instances requested when present.
        placement: ``wall`` (furniture with its back to a wall), ``free`` (anywhere on the floor,
            random yaw), ``support`` (on a table, desk, cabinet, nightstand or shelf), ``cushion``
            (on a sofa or bed), ``wall_mounted`` (hung on a wall) or ``floor_flat`` (a rug).
        supports: categories that can carry it (``support`` and ``cushion`` placements).
    """

    name: str
    tier: Literal["head", "common", "tail"]
    presence: float
    count: tuple[int, int]
    placement: Placement
    supports: tuple[str, ...] = ()


_TOPS = ("table", "desk", "nightstand", "cabinet")

SPECS: tuple[CategorySpec, ...] = (
    # head: in most rooms, often several times
    CategorySpec("chair", "head", 0.95, (3, 6), "free"),
    CategorySpec("table", "head", 0.9, (1, 2), "free"),
    CategorySpec("cabinet", "head", 0.85, (1, 3), "wall"),
    CategorySpec("door", "head", 1.0, (1, 2), "wall_mounted"),
    CategorySpec("window", "head", 0.9, (1, 3), "wall_mounted"),
    CategorySpec("book", "head", 0.85, (2, 8), "support", _TOPS + ("bookshelf",)),
    CategorySpec("painting", "head", 0.9, (1, 3), "wall_mounted"),
    CategorySpec("cup", "head", 0.8, (1, 4), "support", _TOPS),
    # common: in about half of the rooms, one to three times
    CategorySpec("sofa", "common", 0.5, (1, 2), "wall"),
    CategorySpec("desk", "common", 0.5, (1, 2), "wall"),
    CategorySpec("bookshelf", "common", 0.5, (1, 2), "wall"),
    CategorySpec("nightstand", "common", 0.4, (1, 2), "wall"),
    CategorySpec("lamp", "common", 0.55, (1, 2), "free"),
    CategorySpec("monitor", "common", 0.4, (1, 2), "support", ("desk",)),
    CategorySpec("plant", "common", 0.55, (1, 3), "free"),
    CategorySpec("trash_bin", "common", 0.55, (1, 2), "free"),
    CategorySpec("bottle", "common", 0.5, (1, 3), "support", _TOPS),
    CategorySpec("pillow", "common", 0.6, (2, 4), "cushion", ("sofa", "bed")),
    CategorySpec("box", "common", 0.45, (1, 3), "free"),
    CategorySpec("poster", "common", 0.5, (1, 2), "wall_mounted"),
    CategorySpec("rug", "common", 0.4, (1, 1), "floor_flat"),
    # tail: rare
    CategorySpec("bed", "tail", 0.25, (1, 1), "wall"),
    CategorySpec("tv", "tail", 0.25, (1, 1), "support", ("cabinet",)),
    CategorySpec("ottoman", "tail", 0.25, (1, 2), "free"),
    CategorySpec("stool", "tail", 0.2, (1, 2), "free"),
    CategorySpec("whiteboard", "tail", 0.2, (1, 1), "wall_mounted"),
    CategorySpec("clock", "tail", 0.25, (1, 1), "wall_mounted"),
    CategorySpec("vase", "tail", 0.25, (1, 2), "support", _TOPS),
    CategorySpec("laptop", "tail", 0.25, (1, 1), "support", ("desk", "table")),
)
"""Every object category with its frequency and placement rule."""

SPEC_BY_NAME: dict[str, CategorySpec] = {s.name: s for s in SPECS}

STRUCTURE_CLASSES: tuple[str, ...] = ("floor", "wall", "ceiling")
"""Room structure classes: semantic ids 0, 1, 2; instance id -1."""

NUM_STRUCTURE_CLASSES = len(STRUCTURE_CLASSES)

CATEGORIES: tuple[str, ...] = tuple(s.name for s in SPECS)
"""Object categories (each instance gets its own instance id)."""

CLASS_NAMES: tuple[str, ...] = STRUCTURE_CLASSES + CATEGORIES
"""All semantic classes, structure first: ``CLASS_NAMES[semantic_id]``."""

CATEGORY_SPLITS: dict[str, list[str]] = {
    tier: [s.name for s in SPECS if s.tier == tier] for tier in ("head", "common", "tail")
}
"""Object categories grouped by frequency of appearance: ``{'head': [...], 'common': [...], 'tail': [...]}``."""

WALL_FLAT_CATEGORIES: tuple[str, ...] = ("painting", "poster", "whiteboard", "clock")
"""Wall objects at most 2 cm thick: geometrically non-salient, only their texture sets them apart."""


def semantic_id(name: str) -> int:
    """Semantic id of a class name (structure or object category)."""
    return CLASS_NAMES.index(name)
