"""Procedural object models: one builder per category, each a few convex primitives.

Local frame of every model (metres): x to the right, y backwards (the *front* faces -y), z up. The
footprint is the rectangle ``[-hx, hx] x [-hy, hy]`` centred on the origin and the model stands on
``z = 0``. Wall objects (doors, windows, paintings, ...) use the same frame with their back in the
plane ``y = +hy``, which the layout puts against the wall.

Builders return an :class:`ObjectModel`: parts, the material family of each part's slot, the
footprint half extents, the height and the surfaces other objects can be put on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sem3r.data.synthetic.shapes import Part, box, face_normals, frustum, rotation_x, sphere


@dataclass
class Support:
    """A horizontal rectangle in the model's local frame where small objects can stand.

    Attributes:
        z: height of the surface.
        center: ``(2,)`` rectangle centre (x, y).
        half: ``(2,)`` rectangle half sizes.
        max_height: tallest object that fits (shelves have a board above).
        kind: ``"top"`` (table tops, shelves) or ``"cushion"`` (sofa seats, beds: pillows go to
            the back edge).
    """

    z: float
    center: np.ndarray
    half: np.ndarray
    max_height: float = 10.0
    kind: str = "top"


@dataclass
class ObjectModel:
    """A built object in its local frame.

    Attributes:
        category: class name.
        parts: primitives (see :class:`~sem3r.data.synthetic.shapes.Part`).
        slot_kinds: material family (see ``textures.MATERIAL_KINDS``) of each slot.
        half_extent: ``(2,)`` footprint half sizes ``(hx, hy)``.
        height: top of the model.
        supports: surfaces for other objects.
    """

    category: str
    parts: list[Part]
    slot_kinds: list[str]
    half_extent: np.ndarray
    height: float
    supports: list[Support] = field(default_factory=list)

    def visible_parts(self, against_wall: bool) -> list[Part]:
        """Parts without the faces nobody can see: faces lying on ``z = 0`` facing down (the model
        rests there) and, for a model against a wall, faces in the back plane ``y = +hy`` facing it.
        """
        hy = float(self.half_extent[1])
        out = []
        for part in self.parts:
            tri = part.vertices[part.faces]
            n = face_normals(part.vertices, part.faces)
            n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
            hidden = (n[:, 2] < -0.999) & (np.abs(tri[:, :, 2]).max(axis=1) < 1e-9)
            if against_wall:
                hidden |= (n[:, 1] > 0.999) & (tri[:, :, 1].min(axis=1) > hy - 1e-6)
            out.append(Part(part.vertices, part.faces[~hidden], part.slot))
        return out


def _legs(hx: float, hy: float, z1: float, size: float, slot: int, inset: float = 0.0) -> list[Part]:
    """Four square legs from ``z = 0`` to ``z1`` at the corners of ``[-hx, hx] x [-hy, hy]``."""
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            x0 = sx * (hx - inset) - (size if sx > 0 else 0)
            y0 = sy * (hy - inset) - (size if sy > 0 else 0)
            parts.append(box((x0, y0, 0.0), (x0 + size, y0 + size, z1), slot))
    return parts


def _model(category, parts, kinds, hx, hy, height, supports=()) -> ObjectModel:
    return ObjectModel(category, parts, list(kinds), np.array([hx, hy]), float(height), list(supports))


# ------------------------------------------------------------------------------------ furniture
def chair(rng: np.random.Generator) -> ObjectModel:
    """Seat, backrest and four legs."""
    u = rng.uniform
    w, d, sh, bh = u(0.42, 0.52), u(0.42, 0.52), u(0.42, 0.48), u(0.35, 0.5)
    hx, hy = w / 2, d / 2
    parts = [box((-hx, -hy, sh - 0.05), (hx, hy, sh), 0), box((-hx, hy - 0.04, sh), (hx, hy, sh + bh), 0)]
    parts += _legs(hx, hy, sh - 0.05, 0.04, 1)
    kinds = [rng.choice(["wood", "fabric", "plastic"]), rng.choice(["wood", "metal"])]
    return _model("chair", parts, kinds, hx, hy, sh + bh)


def stool(rng: np.random.Generator) -> ObjectModel:
    """Round seat on four thin legs."""
    u = rng.uniform
    r, h = u(0.15, 0.2), u(0.55, 0.75)
    parts = [frustum((0, 0), h - 0.04, h, r, r, 0)] + _legs(0.6 * r, 0.6 * r, h - 0.04, 0.03, 1)
    return _model("stool", parts, [rng.choice(["wood", "plastic"]), "metal"], r, r, h)


def table(rng: np.random.Generator) -> ObjectModel:
    """Rectangular table on four legs, or a round table on a pedestal."""
    u = rng.uniform
    h = u(0.72, 0.78)
    kinds = ["wood", rng.choice(["wood", "metal"])]
    if u() < 0.25:
        r = u(0.45, 0.6)
        parts = [
            frustum((0, 0), h - 0.04, h, r, r, 0, segments=20),
            frustum((0, 0), 0.03, h - 0.04, 0.05, 0.05, 1),
            frustum((0, 0), 0.0, 0.03, 0.3, 0.3, 1, segments=16),
        ]
        return _model("table", parts, kinds, r, r, h, [Support(h, np.zeros(2), np.full(2, 0.68 * r))])
    w, d = u(1.0, 1.8), u(0.7, 1.0)
    hx, hy = w / 2, d / 2
    parts = [box((-hx, -hy, h - 0.04), (hx, hy, h), 0)] + _legs(hx, hy, h - 0.04, 0.06, 1, inset=0.05)
    return _model("table", parts, kinds, hx, hy, h, [Support(h, np.zeros(2), np.array([hx - 0.05, hy - 0.05]))])


def desk(rng: np.random.Generator) -> ObjectModel:
    """Desk top on a side panel and a drawer pedestal, with a modesty panel at the back."""
    u = rng.uniform
    w, d, h = u(1.0, 1.6), u(0.55, 0.75), u(0.72, 0.76)
    hx, hy = w / 2, d / 2
    parts = [
        box((-hx, -hy, h - 0.03), (hx, hy, h), 0),
        box((-hx, -hy + 0.02, 0.0), (-hx + 0.03, hy, h - 0.03), 0),
        box((hx - 0.42, -hy + 0.02, 0.0), (hx, hy, h - 0.03), 0),
        box((-hx + 0.03, hy - 0.03, 0.25), (hx - 0.42, hy, h - 0.03), 0),
    ]
    for k in range(3):
        z0 = 0.04 + k * (h - 0.1) / 3
        parts.append(box((hx - 0.41, -hy + 0.01, z0), (hx - 0.01, -hy + 0.02, z0 + (h - 0.1) / 3 - 0.02), 1))
        parts.append(box((hx - 0.26, -hy - 0.01, z0 + 0.1), (hx - 0.16, -hy + 0.01, z0 + 0.12), 2))
    kinds = ["wood", rng.choice(["wood", "plastic"]), "metal"]
    return _model("desk", parts, kinds, hx, hy, h, [Support(h, np.zeros(2), np.array([hx - 0.04, hy - 0.04]))])


def sofa(rng: np.random.Generator) -> ObjectModel:
    """Seat block on short legs, backrest and two armrests."""
    u = rng.uniform
    w, d = u(1.6, 2.3), u(0.8, 0.95)
    hx, hy = w / 2, d / 2
    seat, back, arm = 0.42, u(0.75, 0.85), u(0.58, 0.65)
    parts = [
        box((-hx + 0.15, -hy, 0.1), (hx - 0.15, hy - 0.2, seat), 0),
        box((-hx, hy - 0.2, 0.1), (hx, hy, back), 0),
        box((-hx, -hy, 0.1), (-hx + 0.15, hy - 0.2, arm), 0),
        box((hx - 0.15, -hy, 0.1), (hx, hy - 0.2, arm), 0),
    ] + _legs(hx, hy, 0.1, 0.05, 1, inset=0.03)
    cushion = Support(seat, np.array([0.0, hy - 0.2 - 0.15]), np.array([hx - 0.17, 0.15]), kind="cushion")
    return _model("sofa", parts, ["fabric", rng.choice(["wood", "dark"])], hx, hy, back, [cushion])


def bed(rng: np.random.Generator) -> ObjectModel:
    """Frame, mattress, blanket and a headboard at the back (+y)."""
    u = rng.uniform
    w, length = u(1.4, 1.8), u(1.95, 2.1)
    hx, hy = w / 2, length / 2
    top = 0.52
    parts = [
        box((-hx, -hy, 0.0), (hx, hy - 0.06, 0.3), 0),
        box((-hx + 0.03, -hy + 0.03, 0.3), (hx - 0.03, hy - 0.06, top), 1),
        box((-hx + 0.02, -hy + 0.02, top), (hx - 0.02, hy - 0.6, top + 0.04), 2),
        box((-hx, hy - 0.06, 0.0), (hx, hy, u(0.9, 1.1)), 0),
    ]
    cushion = Support(top, np.array([0.0, hy - 0.06 - 0.25]), np.array([hx - 0.1, 0.25]), kind="cushion")
    return _model("bed", parts, ["wood", "fabric", "fabric"], hx, hy, parts[-1].vertices[:, 2].max(), [cushion])


def _front_panels(hx, hy, z0, z1, columns: int, rows: int, slot_panel: int, slot_handle: int) -> list[Part]:
    """Door or drawer fronts (1 cm proud of the -y face) with a small handle each."""
    parts = []
    pw, ph = 2 * hx / columns, (z1 - z0) / rows
    for c in range(columns):
        for r in range(rows):
            x0, zb = -hx + c * pw + 0.005, z0 + r * ph + 0.005
            x1, zt = x0 + pw - 0.01, zb + ph - 0.01
            parts.append(box((x0, -hy - 0.01, zb), (x1, -hy, zt), slot_panel))
            xm, zm = 0.5 * (x0 + x1), zt - min(0.08, 0.3 * (zt - zb))
            parts.append(box((xm - 0.05, -hy - 0.03, zm - 0.012), (xm + 0.05, -hy - 0.01, zm + 0.012), slot_handle))
    return parts


def cabinet(rng: np.random.Generator) -> ObjectModel:
    """Low cabinet or sideboard with door fronts and handles."""
    u = rng.uniform
    w, d, h = u(0.6, 1.4), u(0.4, 0.55), u(0.5, 1.1)
    hx, hy = w / 2, d / 2
    parts = [box((-hx, -hy, 0.0), (hx, hy, h), 0)]
    parts += _front_panels(hx, hy, 0.05, h - 0.03, max(1, int(w / 0.45)), 1, 1, 2)
    kinds = [rng.choice(["wood", "plastic"]), rng.choice(["wood", "plastic"]), "metal"]
    return _model("cabinet", parts, kinds, hx, hy, h, [Support(h, np.zeros(2), np.array([hx - 0.03, hy - 0.03]))])


def nightstand(rng: np.random.Generator) -> ObjectModel:
    """Small two-drawer cabinet."""
    u = rng.uniform
    w, d, h = u(0.4, 0.55), u(0.35, 0.45), u(0.5, 0.65)
    hx, hy = w / 2, d / 2
    parts = [box((-hx, -hy, 0.0), (hx, hy, h), 0)] + _front_panels(hx, hy, 0.05, h - 0.03, 1, 2, 1, 2)
    kinds = ["wood", rng.choice(["wood", "plastic"]), "metal"]
    return _model("nightstand", parts, kinds, hx, hy, h, [Support(h, np.zeros(2), np.array([hx - 0.03, hy - 0.03]))])


def bookshelf(rng: np.random.Generator) -> ObjectModel:
    """Open shelf unit: sides, top, plinth, back panel and 3-5 shelves (each a support)."""
    u = rng.uniform
    w, d, h = u(0.8, 1.2), u(0.3, 0.4), u(1.6, 2.1)
    hx, hy, t = w / 2, d / 2, 0.025
    levels = int(rng.integers(3, 6))
    parts = [
        box((-hx, -hy, 0.0), (-hx + t, hy, h), 0),
        box((hx - t, -hy, 0.0), (hx, hy, h), 0),
        box((-hx + t, -hy, h - t), (hx - t, hy, h), 0),
        box((-hx + t, -hy, 0.0), (hx - t, hy, 0.08), 0),
        box((-hx + t, hy - 0.012, 0.08), (hx - t, hy, h - t), 0),
    ]
    spacing = (h - t - 0.08) / levels
    supports = [Support(0.08, np.array([0.0, -0.006]), np.array([hx - t - 0.01, hy - 0.02]), spacing - t - 0.02)]
    for k in range(1, levels):
        z = 0.08 + k * spacing
        parts.append(box((-hx + t, -hy, z - t), (hx - t, hy - 0.012, z), 0))
        supports.append(Support(z, np.array([0.0, -0.006]), np.array([hx - t - 0.01, hy - 0.02]), spacing - t - 0.02))
    return _model("bookshelf", parts, ["wood"], hx, hy, h, supports)


def ottoman(rng: np.random.Generator) -> ObjectModel:
    """Upholstered footstool, round or square."""
    u = rng.uniform
    h = u(0.38, 0.45)
    if u() < 0.5:
        r = u(0.25, 0.35)
        return _model("ottoman", [frustum((0, 0), 0.0, h, r, r, 0, segments=16)], ["fabric"], r, r, h)
    hx, hy = u(0.22, 0.35), u(0.22, 0.35)
    return _model("ottoman", [box((-hx, -hy, 0.0), (hx, hy, h), 0)], ["fabric"], hx, hy, h)


def lamp(rng: np.random.Generator) -> ObjectModel:
    """Floor lamp: round base, pole and a conical shade."""
    u = rng.uniform
    h, rb, rs = u(1.4, 1.7), u(0.14, 0.18), u(0.18, 0.24)
    parts = [
        frustum((0, 0), 0.0, 0.03, rb, rb, 0),
        frustum((0, 0), 0.03, h - 0.28, 0.015, 0.015, 0, segments=8),
        frustum((0, 0), h - 0.3, h, rs, 0.6 * rs, 1, segments=16),
    ]
    r = max(rb, rs)
    return _model("lamp", parts, ["metal", "fabric"], r, r, h)


def plant(rng: np.random.Generator) -> ObjectModel:
    """Pot with a few overlapping foliage spheres."""
    u = rng.uniform
    r0, hp = u(0.1, 0.15), u(0.25, 0.4)
    parts = [frustum((0, 0), 0.0, hp, r0, 1.25 * r0, 0, segments=14)]
    reach = 1.25 * r0
    for _ in range(int(rng.integers(3, 6))):
        rs = u(0.12, 0.25)
        c = np.array([u(-0.1, 0.1), u(-0.1, 0.1), hp + rs * u(0.6, 1.6)])
        parts.append(sphere(c, rs, 1))
        reach = max(reach, np.abs(c[:2]).max() + rs)
    top = max(p.vertices[:, 2].max() for p in parts)
    return _model("plant", parts, ["ceramic", "plant"], reach, reach, top)


def trash_bin(rng: np.random.Generator) -> ObjectModel:
    """Tapered bin with a lid."""
    u = rng.uniform
    r0, h = u(0.12, 0.16), u(0.3, 0.45)
    r1 = 1.15 * r0
    parts = [frustum((0, 0), 0.0, h, r0, r1, 0, segments=14), frustum((0, 0), h, h + 0.02, r1 + 0.01, r1 + 0.01, 1, segments=14)]
    return _model("trash_bin", parts, [rng.choice(["plastic", "metal"]), "dark"], r1 + 0.01, r1 + 0.01, h + 0.02)


def cardboard_box(rng: np.random.Generator) -> ObjectModel:
    """Cardboard box with a strip of tape across the top."""
    u = rng.uniform
    hx, hy, h = u(0.13, 0.3), u(0.13, 0.3), u(0.25, 0.6)
    parts = [box((-hx, -hy, 0.0), (hx, hy, h), 0), box((-0.03, -hy, h), (0.03, hy, h + 0.002), 1)]
    return _model("box", parts, ["cardboard", "plastic"], hx, hy, h + 0.002)


def rug(rng: np.random.Generator) -> ObjectModel:
    """Flat rug, 8 mm thick."""
    u = rng.uniform
    hx, hy = u(0.7, 1.3), u(0.5, 0.9)
    return _model("rug", [box((-hx, -hy, 0.0), (hx, hy, 0.008), 0)], [rng.choice(["art", "fabric"])], hx, hy, 0.008)


# ---------------------------------------------------------------------------------- small items
def pillow(rng: np.random.Generator) -> ObjectModel:
    """Upright cushion."""
    u = rng.uniform
    hx, hy, h = u(0.2, 0.28), u(0.06, 0.09), u(0.32, 0.45)
    return _model("pillow", [box((-hx, -hy, 0.0), (hx, hy, h), 0)], ["fabric"], hx, hy, h)


def book(rng: np.random.Generator, upright: bool = False) -> ObjectModel:
    """A book lying flat, or standing (``upright``) as on a shelf."""
    u = rng.uniform
    a, b, t = u(0.14, 0.22), u(0.2, 0.28), u(0.02, 0.05)
    hx, hy, h = (t / 2, a / 2, b) if upright else (a / 2, b / 2, t)
    return _model("book", [box((-hx, -hy, 0.0), (hx, hy, h), 0)], ["paper"], hx, hy, h)


def cup(rng: np.random.Generator) -> ObjectModel:
    """Mug with a handle."""
    u = rng.uniform
    r0, h = u(0.03, 0.04), u(0.08, 0.11)
    r1 = 1.15 * r0
    handle = box((r1 - 0.005, -0.006, 0.25 * h), (r1 + 0.022, 0.006, 0.75 * h), 0)
    parts = [frustum((0, 0), 0.0, h, r0, r1, 0, segments=10), handle]
    return _model("cup", parts, ["ceramic"], r1 + 0.022, r1, h)


def bottle(rng: np.random.Generator) -> ObjectModel:
    """Body, shoulder, neck and cap."""
    u = rng.uniform
    r, hb = u(0.03, 0.045), u(0.16, 0.24)
    parts = [
        frustum((0, 0), 0.0, hb, r, r, 0, segments=10),
        frustum((0, 0), hb, hb + 0.04, r, 0.4 * r, 0, segments=10),
        frustum((0, 0), hb + 0.04, hb + 0.09, 0.4 * r, 0.4 * r, 0, segments=8),
        frustum((0, 0), hb + 0.09, hb + 0.11, 0.45 * r, 0.45 * r, 1, segments=8),
    ]
    return _model("bottle", parts, [rng.choice(["glass", "plastic"]), "plastic"], r, r, hb + 0.11)


def vase(rng: np.random.Generator) -> ObjectModel:
    """Widening body with a narrower neck."""
    u = rng.uniform
    r0, r1, h = u(0.05, 0.08), u(0.08, 0.12), u(0.2, 0.35)
    parts = [frustum((0, 0), 0.0, h, r0, r1, 0, segments=12), frustum((0, 0), h, h + 0.06, 0.6 * r1, 0.7 * r1, 0, segments=12)]
    return _model("vase", parts, ["ceramic"], r1, r1, h + 0.06)


def laptop(rng: np.random.Generator) -> ObjectModel:
    """Open laptop: base and a lid tilted back, with a screen on its front."""
    u = rng.uniform
    w, d = u(0.3, 0.36), u(0.21, 0.25)
    hx, hy = w / 2, d / 2
    tilt = rotation_x(-np.deg2rad(u(12.0, 25.0)))
    hinge = np.array([0.0, hy - 0.008, 0.018])
    parts = [
        box((-hx, -hy, 0.0), (hx, hy, 0.018), 0),
        box((-hx, 0.0, 0.0), (hx, 0.008, d), 0).transformed(tilt, hinge),
        box((-hx + 0.012, -0.002, 0.012), (hx - 0.012, 0.0, d - 0.012), 1).transformed(tilt, hinge),
    ]
    reach = np.abs(np.concatenate([p.vertices[:, :2] for p in parts])).max(axis=0)
    return _model("laptop", parts, ["metal", "screen"], reach[0], reach[1], 0.018 + d)


def _display(rng: np.random.Generator, category: str, w: float, h: float, base: tuple[float, float]) -> ObjectModel:
    """Stand, neck, panel and a screen 2 mm proud of the panel's front (-y)."""
    u = rng.uniform
    zb = u(0.06, 0.12)
    bx, by = base
    parts = [
        box((-bx, -by, 0.0), (bx, by, 0.015), 0),
        box((-0.025, -0.015, 0.015), (0.025, 0.015, zb + 0.1), 0),
        box((-w / 2, -0.015, zb), (w / 2, 0.015, zb + h), 0),
        box((-w / 2 + 0.015, -0.017, zb + 0.015), (w / 2 - 0.015, -0.015, zb + h - 0.015), 1),
    ]
    return _model(category, parts, ["dark", "screen"], w / 2, by, zb + h)


def monitor(rng: np.random.Generator) -> ObjectModel:
    """Computer monitor on a stand."""
    w = rng.uniform(0.5, 0.7)
    return _display(rng, "monitor", w, w * rng.uniform(0.55, 0.62), (0.11, 0.08))


def tv(rng: np.random.Generator) -> ObjectModel:
    """Television on a stand."""
    w = rng.uniform(0.9, 1.4)
    return _display(rng, "tv", w, 0.58 * w, (0.2, 0.11))


# --------------------------------------------------------------------------------- wall objects
def door(rng: np.random.Generator) -> ObjectModel:
    """Door: frame (two jambs and a header), a panel recessed 1 cm and a handle."""
    u = rng.uniform
    w, h, hy, f = u(0.8, 0.95), u(2.0, 2.1), 0.025, 0.06
    hx = w / 2 + f
    parts = [
        box((-hx, -hy, 0.0), (-w / 2, hy, h + f), 0),
        box((w / 2, -hy, 0.0), (hx, hy, h + f), 0),
        box((-w / 2, -hy, h), (w / 2, hy, h + f), 0),
        box((-w / 2, -hy + 0.01, 0.0), (w / 2, hy, h), 1),
        box((w / 2 - 0.16, -hy - 0.04, 1.0), (w / 2 - 0.05, -hy + 0.01, 1.03), 2),
    ]
    return _model("door", parts, [rng.choice(["white", "wood"]), rng.choice(["wood", "plastic"]), "metal"], hx, hy, h + f)


def window(rng: np.random.Generator) -> ObjectModel:
    """Window: four frame boards, a recessed pane, an optional mullion and a shallow sill."""
    u = rng.uniform
    w, h, hy, f = u(0.8, 1.6), u(1.0, 1.4), 0.03, 0.06
    hx = w / 2
    parts = [
        box((-hx - 0.06, -hy - 0.03, 0.0), (hx + 0.06, hy, 0.03), 0),
        box((-hx, -hy, 0.03), (hx, hy, 0.03 + f), 0),
        box((-hx, -hy, 0.03 + h - f), (hx, hy, 0.03 + h), 0),
        box((-hx, -hy, 0.03 + f), (-hx + f, hy, 0.03 + h - f), 0),
        box((hx - f, -hy, 0.03 + f), (hx, hy, 0.03 + h - f), 0),
        box((-hx + f, 0.0, 0.03 + f), (hx - f, hy, 0.03 + h - f), 1),
    ]
    if w > 1.1:
        parts.append(box((-0.02, -hy, 0.03 + f), (0.02, 0.0, 0.03 + h - f), 0))
    return _model("window", parts, [rng.choice(["white", "wood"]), "glass"], hx + 0.06, hy, 0.03 + h)


def painting(rng: np.random.Generator) -> ObjectModel:
    """Canvas in a frame, 1.5 cm thick in all."""
    u = rng.uniform
    w, h, hy, f = u(0.4, 1.2), u(0.3, 0.9), 0.0075, u(0.02, 0.05)
    hx = w / 2
    parts = [
        box((-hx, -hy, 0.0), (hx, hy, f), 0),
        box((-hx, -hy, h - f), (hx, hy, h), 0),
        box((-hx, -hy, f), (-hx + f, hy, h - f), 0),
        box((hx - f, -hy, f), (hx, hy, h - f), 0),
        box((-hx + f, -hy + 0.005, f), (hx - f, hy, h - f), 1),
    ]
    return _model("painting", parts, [rng.choice(["wood", "dark"]), "art"], hx, hy, h)


def poster(rng: np.random.Generator) -> ObjectModel:
    """A 5 mm board."""
    u = rng.uniform
    hx, h, hy = u(0.2, 0.4), u(0.6, 1.0), 0.0025
    return _model("poster", [box((-hx, -hy, 0.0), (hx, hy, h), 0)], ["art"], hx, hy, h)


def whiteboard(rng: np.random.Generator) -> ObjectModel:
    """White board in an aluminium frame, 2 cm thick."""
    u = rng.uniform
    w, h, hy, f = u(1.2, 1.8), u(0.8, 1.2), 0.01, 0.025
    hx = w / 2
    parts = [
        box((-hx, -hy, 0.0), (hx, hy, f), 0),
        box((-hx, -hy, h - f), (hx, hy, h), 0),
        box((-hx, -hy, f), (-hx + f, hy, h - f), 0),
        box((hx - f, -hy, f), (hx, hy, h - f), 0),
        box((-hx + f, -hy + 0.003, f), (hx - f, hy, h - f), 1),
    ]
    return _model("whiteboard", parts, ["metal", "white"], hx, hy, h)


def clock(rng: np.random.Generator) -> ObjectModel:
    """Round wall clock (1.4 cm disc) with two hands 4 mm proud of its face."""
    r = rng.uniform(0.12, 0.18)
    hy = 0.009
    disc = frustum((0, 0), -0.007, 0.007, r, r, 0, segments=24).transformed(rotation_x(-np.pi / 2), (0.0, 0.002, r))
    parts = [
        disc,
        box((-0.006, -hy, r), (0.006, -0.005, r + 0.7 * r), 1),
        box((0.0, -hy, r - 0.006), (0.5 * r, -0.005, r + 0.006), 1),
    ]
    return _model("clock", parts, ["white", "dark"], r, hy, 2 * r)


BUILDERS = {
    "chair": chair, "table": table, "cabinet": cabinet, "door": door, "window": window, "book": book,
    "painting": painting, "cup": cup, "sofa": sofa, "desk": desk, "bookshelf": bookshelf,
    "nightstand": nightstand, "lamp": lamp, "monitor": monitor, "plant": plant, "trash_bin": trash_bin,
    "bottle": bottle, "pillow": pillow, "box": cardboard_box, "poster": poster, "rug": rug, "bed": bed,
    "tv": tv, "ottoman": ottoman, "stool": stool, "whiteboard": whiteboard, "clock": clock, "vase": vase,
    "laptop": laptop,
}
"""Category name -> builder ``(rng) -> ObjectModel``."""
