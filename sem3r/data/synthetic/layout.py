"""Room layout: which objects a room holds and where they stand.

World frame of a synthetic room (metres): ``x`` and ``y`` span the floor, ``z`` points up, the floor
is ``z = 0`` and the room is the box ``[0, Lx] x [0, Ly] x [0, Lz]``. Walls are numbered
``0: y = 0``, ``1: x = Lx``, ``2: y = Ly``, ``3: x = 0``.

Placement (all rejection sampling with a fixed number of tries, objects that do not fit are
dropped):

1. openings: doors (with a clear zone in front) and windows on walls;
2. furniture with its back to a wall (beds, sofas, shelves, desks, cabinets, nightstands);
3. a rug (other objects may stand on it);
4. free-standing objects with random yaw; chairs are pushed up to a table or desk when one exists;
5. flat wall objects (paintings, posters, whiteboards, clocks) where no opening, no other flat
   object and no taller furniture is;
6. small objects on tables, desks, cabinets, nightstands and shelves; pillows on sofas and beds.

Footprints are oriented rectangles tested with the separating-axis theorem; the floor area covered
by furniture is capped at :data:`MAX_FLOOR_COVER` so cameras keep room to move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sem3r.data.synthetic.categories import SPEC_BY_NAME, SPECS, semantic_id
from sem3r.data.synthetic.objects import BUILDERS, ObjectModel, Support, book
from sem3r.data.synthetic.shapes import rotation_z
from sem3r.data.synthetic.textures import Lighting, Material, random_material

PLACEMENT_ORDER: tuple[str, ...] = (
    "door", "window", "bed", "sofa", "bookshelf", "desk", "cabinet", "nightstand", "rug", "table",
    "chair", "ottoman", "stool", "lamp", "plant", "trash_bin", "box", "whiteboard", "painting",
    "poster", "clock", "tv", "monitor", "laptop", "book", "vase", "bottle", "cup", "pillow",
)
"""Categories in the order they are placed (large and constrained first)."""

MAX_FLOOR_COVER = 0.4
"""Largest fraction of the floor that furniture footprints may cover."""

WALL_GAP = 0.03
"""Gap between a wall and the back of furniture standing against it (m)."""

FREE_MARGIN = 0.1
"""Smallest distance between a free-standing object and a wall (m)."""

SHARED_MODEL_PROB = 0.5
"""Probability that all instances of a furniture category are copies of one model (a matching set)."""

_TRIES = 40


@dataclass
class Rect:
    """Oriented rectangle on the floor: ``center (2,)``, ``yaw`` (rad), ``half (2,)`` sizes."""

    center: np.ndarray
    yaw: float
    half: np.ndarray

    def axes(self) -> np.ndarray:
        """Unit axes ``(2, 2)``: rows are the rectangle's local x and y directions."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, s], [-s, c]])

    def corners(self) -> np.ndarray:
        """Corners ``(4, 2)``."""
        signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
        return self.center + (signs * self.half) @ self.axes()

    def area(self) -> float:
        return float(4 * self.half[0] * self.half[1])


def rects_overlap(a: Rect, others: list[Rect], margin: float = 0.0) -> bool:
    """Whether ``a`` (grown by ``margin``) intersects any of ``others`` (separating-axis test)."""
    if not others:
        return False
    centers = np.array([o.center for o in others])
    axes_b = np.array([o.axes() for o in others])  # (K, 2, 2)
    half_b = np.array([o.half for o in others]) + margin
    axes_a, half_a = a.axes(), a.half + margin
    d = centers - a.center
    separated = np.zeros(len(others), bool)
    candidates = [np.broadcast_to(axes_a[0], d.shape), np.broadcast_to(axes_a[1], d.shape), axes_b[:, 0], axes_b[:, 1]]
    for ax in candidates:
        ra = np.abs(ax @ axes_a.T) @ half_a
        rb = np.abs(np.einsum("kj,kij->ki", ax, axes_b) * half_b).sum(axis=1)
        separated |= np.abs(np.einsum("kj,kj->k", ax, d)) > ra + rb
    return bool((~separated).any())


@dataclass
class PlacedObject:
    """An object instance in the room.

    Attributes:
        instance_id: 0..K-1, the id in every instance mask.
        category: class name.
        model: geometry in the local frame.
        yaw: rotation about +z (rad) from local to world.
        position: ``(3,)`` world position of the local origin.
        materials: one per model slot.
        against_wall: back plane ``y = +hy`` faces a wall within a few centimetres (its back faces
            are dropped: no camera can see them).
        wall: wall index for wall objects and furniture, else -1.
        parent: instance id of the object it stands on, -1 for the floor or a wall.
    """

    instance_id: int
    category: str
    model: ObjectModel
    yaw: float
    position: np.ndarray
    materials: list[Material]
    against_wall: bool = False
    wall: int = -1
    parent: int = -1

    @property
    def rotation(self) -> np.ndarray:
        """World-from-local rotation ``(3, 3)``."""
        return rotation_z(self.yaw)

    @property
    def footprint(self) -> Rect:
        """Floor rectangle of the model's footprint in the world."""
        return Rect(self.position[:2].copy(), self.yaw, self.model.half_extent.copy())

    @property
    def blocks_floor(self) -> bool:
        """Stands on the floor and takes room (furniture, not rugs, wall or small objects)."""
        return SPEC_BY_NAME[self.category].placement in ("wall", "free")

    def describe(self) -> dict:
        """JSON-ready summary: id, category, semantic id, position, yaw, size, wall, parent."""
        hx, hy = self.model.half_extent
        return {
            "id": self.instance_id,
            "category": self.category,
            "semantic_id": semantic_id(self.category),
            "position": [round(float(v), 6) for v in self.position],
            "yaw": round(float(self.yaw), 6),
            "size": [round(float(2 * hx), 6), round(float(2 * hy), 6), round(float(self.model.height), 6)],
            "wall": self.wall,
            "parent": self.parent,
        }


@dataclass
class RoomLayout:
    """A sampled room.

    Attributes:
        size: ``(3,)`` room extent ``(Lx, Ly, Lz)``.
        objects: placed instances, ``objects[k].instance_id == k``.
        structure: materials of ``floor``, ``wall`` and ``ceiling``.
        lighting: the room's fixed lights.
    """

    size: np.ndarray
    objects: list[PlacedObject]
    structure: dict[str, Material]
    lighting: Lighting


def wall_frame(wall: int, size) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``origin (2,)``, ``along (2,)``, inward ``normal (2,)`` and length of a wall."""
    lx, ly = float(size[0]), float(size[1])
    frames = {
        0: ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), lx),
        1: ((lx, 0.0), (0.0, 1.0), (-1.0, 0.0), ly),
        2: ((lx, ly), (-1.0, 0.0), (0.0, -1.0), lx),
        3: ((0.0, ly), (0.0, -1.0), (1.0, 0.0), ly),
    }
    o, a, n, length = frames[wall]
    return np.array(o), np.array(a), np.array(n), length


def _materials(model: ObjectModel, rng: np.random.Generator) -> list[Material]:
    """Fresh random materials for each slot of ``model``."""
    return [random_material(kind, rng) for kind in model.slot_kinds]


def _yaw_facing_away(direction: np.ndarray) -> float:
    """Yaw whose local +y axis points along the 2D ``direction``."""
    return float(np.arctan2(-direction[0], direction[1]))


class _Placer:
    """Bookkeeping of one room's placement (obstacles, wall occupancy, supports)."""

    def __init__(self, size: np.ndarray, rng: np.random.Generator):
        self.size, self.rng = size, rng
        self.objects: list[PlacedObject] = []
        self.obstacles: list[Rect] = []
        self.wall_rects: list[list[tuple[float, float, float, float, str]]] = [[] for _ in range(4)]
        self.cover = 0.0
        self.supports: list[tuple[PlacedObject, Support, list[Rect]]] = []

    # -------------------------------------------------------------------------------- helpers
    def _inside(self, rect: Rect, margin: float) -> bool:
        c = rect.corners()
        return bool((c >= margin).all() and (c[:, 0] <= self.size[0] - margin).all() and (c[:, 1] <= self.size[1] - margin).all())

    def _add(self, category, model, yaw, position, materials, **kw) -> PlacedObject:
        obj = PlacedObject(len(self.objects), category, model, float(yaw), np.asarray(position, np.float64), materials, **kw)
        self.objects.append(obj)
        for sup in model.supports:
            self.supports.append((obj, sup, []))
        return obj

    def _wall_free(self, wall: int, s0: float, s1: float, z0: float, z1: float, flat: bool) -> bool:
        for a0, a1, b0, b1, kind in self.wall_rects[wall]:
            if s1 + 0.05 <= a0 or s0 - 0.05 >= a1:
                continue
            if kind == "furniture" and flat and z0 >= b1 + 0.05:
                continue
            if z1 + 0.05 <= b0 or z0 - 0.05 >= b1:
                continue
            return False
        return True

    # ----------------------------------------------------------------------------- placements
    def on_wall(self, category: str, model: ObjectModel, materials) -> PlacedObject | None:
        """Doors, windows and flat wall objects."""
        hx, hy = model.half_extent
        lz = self.size[2]
        for _ in range(_TRIES):
            wall = int(self.rng.integers(4))
            o, a, n, length = wall_frame(wall, self.size)
            if length < 2 * hx + 0.3:
                continue
            s = self.rng.uniform(hx + 0.15, length - hx - 0.15)
            if category == "door":
                z0 = 0.0
            elif category == "window":
                z0 = self.rng.uniform(0.8, 1.0)
            else:
                centre = self.rng.uniform(1.2, 1.8)
                z0 = centre - model.height / 2
            z1 = z0 + model.height
            if z1 > lz - 0.15:
                continue
            flat = category not in ("door", "window")
            if not self._wall_free(wall, s - hx, s + hx, z0, z1, flat):
                continue
            xy = o + s * a + n * hy
            rect = Rect(xy, _yaw_facing_away(-n), np.array([hx, hy]))
            zone = Rect(o + s * a + n * 0.5, rect.yaw, np.array([hx + 0.05, 0.5])) if category == "door" else None
            if not flat and rects_overlap(zone or rect, self.obstacles):
                continue
            self.wall_rects[wall].append((s - hx, s + hx, z0, z1, "flat" if flat else "opening"))
            if not flat:
                self.obstacles.append(zone or rect)
            return self._add(category, model, rect.yaw, (xy[0], xy[1], z0), materials, against_wall=True, wall=wall)
        return None

    def _floor_ok(self, rect: Rect, margin: float) -> bool:
        floor_area = float(self.size[0] * self.size[1])
        return (
            self._inside(rect, margin)
            and not rects_overlap(rect, self.obstacles, 0.02)
            and self.cover + rect.area() <= MAX_FLOOR_COVER * floor_area
        )

    def _commit_floor(self, rect: Rect) -> None:
        self.obstacles.append(rect)
        self.cover += rect.area()

    def against_wall(self, category: str, model: ObjectModel, materials) -> PlacedObject | None:
        """Furniture with its back to a wall."""
        hx, hy = model.half_extent
        lengths = np.array([self.size[0], self.size[1], self.size[0], self.size[1]])
        for _ in range(_TRIES):
            wall = int(self.rng.choice(4, p=lengths / lengths.sum()))
            o, a, n, length = wall_frame(wall, self.size)
            if length < 2 * hx + 0.1:
                continue
            s = self.rng.uniform(hx + 0.05, length - hx - 0.05)
            xy = o + s * a + n * (hy + WALL_GAP)
            rect = Rect(xy, _yaw_facing_away(-n), np.array([hx, hy]))
            if not self._floor_ok(rect, WALL_GAP - 0.005):
                continue
            self._commit_floor(rect)
            self.wall_rects[wall].append((s - hx, s + hx, 0.0, model.height, "furniture"))
            return self._add(category, model, rect.yaw, (xy[0], xy[1], 0.0), materials, against_wall=True, wall=wall)
        return None

    def free(self, category: str, model: ObjectModel, materials, collide: bool = True) -> PlacedObject | None:
        """Anywhere on the floor with random yaw; chairs first try to join a table or desk."""
        hx, hy = model.half_extent
        tables = [o for o in self.objects if o.category in ("table", "desk")]
        for attempt in range(_TRIES):
            if category == "chair" and tables and attempt < _TRIES // 2:
                rect = self._chair_at(self.rng.choice(len(tables)), tables, model)
            else:
                xy = self.rng.uniform([0.0, 0.0], self.size[:2])
                rect = Rect(xy, self.rng.uniform(0, 2 * np.pi), np.array([hx, hy]))
            if not collide:
                if self._inside(rect, FREE_MARGIN):
                    return self._add(category, model, rect.yaw, (*rect.center, 0.0), materials)
                continue
            if self._floor_ok(rect, FREE_MARGIN):
                self._commit_floor(rect)
                return self._add(category, model, rect.yaw, (*rect.center, 0.0), materials)
        return None

    def _chair_at(self, index: int, tables: list[PlacedObject], model: ObjectModel) -> Rect:
        """A chair rectangle at one side of a table (any side) or in front of a desk, facing it."""
        t = tables[index]
        thx, thy = t.model.half_extent
        side = int(self.rng.integers(4)) if t.category == "table" else 3
        local_dir = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])[side]
        extent_along, extent_out = (thy, thx) if side < 2 else (thx, thy)
        slide = self.rng.uniform(-0.6, 0.6) * extent_along
        gap = self.rng.uniform(0.08, 0.25) + model.half_extent[1]
        local = local_dir * (extent_out + gap) + np.array([-local_dir[1], local_dir[0]]) * slide
        axes = t.footprint.axes()
        world_dir = local_dir @ axes
        centre = t.position[:2] + local @ axes
        yaw = _yaw_facing_away(world_dir) + self.rng.uniform(-0.25, 0.25)
        return Rect(centre, yaw, model.half_extent.copy())

    def on_support(self, category: str) -> PlacedObject | None:
        """Small objects on support surfaces of the allowed parent categories."""
        spec = SPEC_BY_NAME[category]
        kind = "cushion" if spec.placement == "cushion" else "top"
        slots = [s for s in self.supports if s[0].category in spec.supports and s[1].kind == kind]
        for k in self.rng.permutation(len(slots)):
            parent, sup, taken = slots[k]
            model = book(self.rng, upright=parent.category == "bookshelf") if category == "book" else BUILDERS[category](self.rng)
            hx, hy = model.half_extent
            if model.height > sup.max_height:
                continue
            for _ in range(_TRIES // 4):
                if kind == "cushion" or parent.category == "bookshelf":
                    rel = 0.0 if kind == "cushion" else float(self.rng.choice([0.0, np.pi]))
                elif category in ("tv", "monitor"):
                    rel = self.rng.uniform(-0.2, 0.2)
                else:
                    rel = self.rng.uniform(0, 2 * np.pi)
                c, s = abs(np.cos(rel)), abs(np.sin(rel))
                ext = np.array([c * hx + s * hy, s * hx + c * hy])
                room = sup.half - ext
                if (room < 0).any():
                    break
                x = sup.center[0] + self.rng.uniform(-room[0], room[0])
                if kind == "cushion" or parent.category == "bookshelf":
                    y = sup.center[1] + room[1]
                elif category in ("tv", "monitor"):
                    y = sup.center[1] + room[1] * self.rng.uniform(0.3, 1.0)
                else:
                    y = sup.center[1] + self.rng.uniform(-room[1], room[1])
                rect = Rect(np.array([x, y]), rel, model.half_extent.copy())
                if rects_overlap(rect, taken, 0.01):
                    continue
                taken.append(rect)
                pos = parent.position + parent.rotation @ np.array([x, y, sup.z])
                return self._add(category, model, parent.yaw + rel, pos, _materials(model, self.rng), parent=parent.instance_id)
        return None


def requested_counts(rng: np.random.Generator, min_instances: int, max_instances: int, allowed=None) -> dict[str, int]:
    """Instances requested per category: presence draw, count draw, then clipped to the bounds.

    Args:
        rng: layout generator.
        min_instances, max_instances: bounds applied to a present category's count.
        allowed: categories that may appear (``None``: all).

    Returns:
        category -> requested count (0 when absent).
    """
    out = {}
    for spec in SPECS:
        present = rng.uniform() < spec.presence
        n = int(rng.integers(spec.count[0], spec.count[1] + 1))
        ok = present and (allowed is None or spec.name in allowed)
        out[spec.name] = int(np.clip(n, min_instances, max_instances)) if ok else 0
    return out


def sample_layout(
    rng: np.random.Generator,
    size_min=(4.0, 4.0, 2.5),
    size_max=(8.0, 7.0, 3.0),
    min_instances: int = 1,
    max_instances: int = 6,
    categories=None,
) -> RoomLayout:
    """Sample a furnished room.

    Args:
        rng: the layout's random generator (the only source of randomness).
        size_min, size_max: ``(3,)`` bounds of the room extent ``(Lx, Ly, Lz)``.
        min_instances, max_instances: bounds on the requested instances per present category.
        categories: categories that may appear (``None``: all of :data:`CATEGORIES`).

    Returns:
        The :class:`RoomLayout`; instance ids follow placement order.
    """
    size = rng.uniform(size_min, size_max)
    structure = {name: random_material(name, rng) for name in ("floor", "wall", "ceiling")}
    counts = requested_counts(rng, min_instances, max_instances, None if categories is None else set(categories))
    placer = _Placer(size, rng)
    for category in PLACEMENT_ORDER:
        n = counts[category]
        if not n:
            continue
        spec = SPEC_BY_NAME[category]
        shared = spec.placement in ("wall", "free") and rng.uniform() < SHARED_MODEL_PROB
        build = BUILDERS[category]
        if spec.placement in ("support", "cushion"):
            for _ in range(n):
                placer.on_support(category)
            continue
        if shared:
            common = build(rng)
            common_mats = _materials(common, rng)
        for _ in range(n):
            model = common if shared else build(rng)
            mats = common_mats if shared else _materials(model, rng)
            if spec.placement == "wall_mounted":
                placer.on_wall(category, model, mats)
            elif spec.placement == "wall":
                placer.against_wall(category, model, mats)
            else:
                placer.free(category, model, mats, collide=spec.placement != "floor_flat")
    return RoomLayout(size, placer.objects, structure, Lighting.for_room(size))

