"""Procedural solid textures and view-independent lighting.

A surface point's colour is a function of the point alone, so it is identical in every view and in
the ground-truth point cloud:

1. **Albedo** from a *solid texture* evaluated at the point in its object's local frame (structure
   uses the world frame): value noise on a hashed integer lattice (fBm), stripes, a checker, wood
   rings, per-cell mosaics or tiles, mixed between two per-material colours, times a
   high-frequency detail noise so every surface (walls and floor included) carries the corners
   and blobs SIFT needs.
2. **Lambertian shading** with fixed lights of the room (two directional lights, one point light
   under the ceiling, ambient): it depends on the point and its normal only, never on the camera.

Discontinuous patterns (checker, cells, tiles) are evaluated with the coordinate along the face
normal's dominant axis set to zero, so a face lying exactly on a lattice plane cannot flicker
between two cells through rounding.

The hash is a 32-bit integer mix (multiply/xor-shift avalanche) computed with wrapping ``uint32``
arithmetic, so textures are deterministic and platform independent.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

NOISE, STRIPES, CHECKER, WOOD, CELLS, TILES = range(6)
"""Pattern ids."""

_PRIMES = (np.uint32(0x8DA6B343), np.uint32(0xD8163841), np.uint32(0xCB1AB31F))
_DETAIL_FREQ = 12.0
"""Base frequency (cycles per metre) of the detail noise every material carries."""


@dataclass
class Material:
    """Parameters of one solid texture.

    Attributes:
        pattern: one of ``NOISE, STRIPES, CHECKER, WOOD, CELLS, TILES``.
        color_a: ``(3,)`` RGB in ``[0, 1]`` at pattern value 0.
        color_b: ``(3,)`` RGB at pattern value 1.
        freq: pattern frequency in cycles per metre.
        detail: amplitude of the multiplicative high-frequency detail noise.
        direction: ``(3,)`` unit vector (stripe normal, wood axis).
        offset: ``(3,)`` shift of the texture coordinates (decorrelates equal materials).
        seed: lattice hash seed.
    """

    pattern: int
    color_a: np.ndarray
    color_b: np.ndarray
    freq: float
    detail: float
    direction: np.ndarray
    offset: np.ndarray
    seed: int


@dataclass
class MaterialTable:
    """All materials of a scene stacked into arrays (row ``m`` = material ``m``)."""

    pattern: np.ndarray  # (M,) int64
    color_a: np.ndarray  # (M, 3) float32
    color_b: np.ndarray  # (M, 3) float32
    freq: np.ndarray  # (M,) float32
    detail: np.ndarray  # (M,) float32
    direction: np.ndarray  # (M, 3) float32
    offset: np.ndarray  # (M, 3) float64
    seed: np.ndarray  # (M,) uint32

    @classmethod
    def stack(cls, materials: list[Material]) -> "MaterialTable":
        """Stack a list of :class:`Material` into one table."""
        return cls(
            pattern=np.array([m.pattern for m in materials], np.int64),
            color_a=np.array([m.color_a for m in materials], np.float32).reshape(-1, 3),
            color_b=np.array([m.color_b for m in materials], np.float32).reshape(-1, 3),
            freq=np.array([m.freq for m in materials], np.float32),
            detail=np.array([m.detail for m in materials], np.float32),
            direction=np.array([m.direction for m in materials], np.float32).reshape(-1, 3),
            offset=np.array([m.offset for m in materials], np.float64).reshape(-1, 3),
            seed=np.array([m.seed for m in materials], np.uint32),
        )


# ---------------------------------------------------------------------------------------- noise
def _mix(h: np.ndarray) -> np.ndarray:
    """Avalanche a ``uint32`` array (every input bit affects every output bit)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x7FEB352D)
    h = h ^ (h >> np.uint32(15))
    h = h * np.uint32(0x846CA68B)
    return h ^ (h >> np.uint32(16))


def _to_unit(h: np.ndarray) -> np.ndarray:
    """``uint32`` hash -> float32 in ``[0, 1]``."""
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _lattice(i: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-axis hash terms ``(P,)`` uint32 of integer lattice coordinates ``i (P, 3)``."""
    iu = i.astype(np.int64).astype(np.uint32)
    return tuple(iu[:, k] * _PRIMES[k] for k in range(3))


def cell_hash(p: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Hash ``(P,)`` uint32 of the lattice cell ``floor(p)`` containing each point ``p (P, 3)``."""
    hx, hy, hz = _lattice(np.floor(p))
    return _mix(hx ^ hy ^ hz ^ seed)


def value_noise(p: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Smooth 3D value noise in ``[0, 1]``: trilinear blend (smoothstep weights) of hashed corners.

    Args:
        p: ``(P, 3)`` float coordinates in lattice units.
        seed: ``(P,)`` uint32 per-point seed.

    Returns:
        ``(P,)`` float32.
    """
    i = np.floor(p)
    f = (p - i).astype(np.float32)
    w = f * f * (np.float32(3.0) - np.float32(2.0) * f)
    hx, hy, hz = _lattice(i)
    hx1, hy1, hz1 = hx + _PRIMES[0], hy + _PRIMES[1], hz + _PRIMES[2]
    wx, wy, wz = w[:, 0], w[:, 1], w[:, 2]

    def corner(a, b, c):
        return _to_unit(_mix(a ^ b ^ c ^ seed))

    def lerp(a, b, t):
        return a + (b - a) * t

    x00 = lerp(corner(hx, hy, hz), corner(hx1, hy, hz), wx)
    x10 = lerp(corner(hx, hy1, hz), corner(hx1, hy1, hz), wx)
    x01 = lerp(corner(hx, hy, hz1), corner(hx1, hy, hz1), wx)
    x11 = lerp(corner(hx, hy1, hz1), corner(hx1, hy1, hz1), wx)
    return lerp(lerp(x00, x10, wy), lerp(x01, x11, wy), wz)


def fbm(p: np.ndarray, seed: np.ndarray, octaves: int) -> np.ndarray:
    """Fractal sum of ``octaves`` value-noise layers (frequency x2, amplitude x0.5 per octave).

    Args:
        p: ``(P, 3)`` coordinates in units of the base period.
        seed: ``(P,)`` uint32.
        octaves: number of layers.

    Returns:
        ``(P,)`` float32 in ``[0, 1]`` (concentrated around 0.5).
    """
    total = np.zeros(len(p), np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        scale = float(1 << o)
        shift = np.array([0.37, 0.71, 0.13]) * o
        total += np.float32(amp) * value_noise(p * scale + shift, seed + np.uint32(0x9E3779B9 * (o + 1) & 0xFFFFFFFF))
        norm += amp
        amp *= 0.5
    return total / np.float32(norm)


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# ------------------------------------------------------------------------------------- patterns
def _planar(q: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Zero the coordinate along each normal's dominant axis (for discontinuous patterns)."""
    q = q.copy()
    q[np.arange(len(q)), np.argmax(np.abs(normals), axis=1)] = 0.0
    return q


def _pattern(kind: int, q, normals, freq, direction, seed):
    """Pattern value ``t (P,)`` in ``[0, 1]`` and an additive colour jitter ``(P, 3)`` or None."""
    f = freq[:, None]
    if kind == NOISE:
        t = np.clip((fbm(q * f, seed, 4) - 0.5) * 2.2 + 0.5, 0.0, 1.0)
        return t, None
    if kind == STRIPES:
        phase = freq * np.einsum("ij,ij->i", q, direction) + 0.8 * fbm(q * (0.5 * f), seed, 2)
        return _smoothstep(0.2, 0.8, 0.5 + 0.5 * np.sin(2 * np.pi * phase)).astype(np.float32), None
    if kind == WOOD:
        along = np.einsum("ij,ij->i", q, direction)
        radial = np.linalg.norm(q - along[:, None] * direction, axis=1)
        phase = freq * radial + 1.5 * fbm(q * 2.0, seed, 2)
        rings = 0.5 + 0.5 * np.sin(2 * np.pi * phase)
        grain = value_noise(q * 40.0 - (40.0 - 3.0) * along[:, None] * direction, seed ^ np.uint32(0xA511E9B3))
        return np.clip(0.7 * rings + 0.3 * grain, 0.0, 1.0).astype(np.float32), None
    qp = _planar(q, normals) * f
    if kind == CHECKER:
        parity = (np.floor(qp).astype(np.int64).sum(axis=1) & 1).astype(np.float32)
        return np.clip(0.1 + 0.8 * parity + 0.4 * (value_noise(qp * 4.0, seed) - 0.5), 0.0, 1.0), None
    if kind == CELLS:
        h = cell_hash(qp, seed)
        t = _to_unit(h)
        jitter = np.stack([_to_unit(_mix(h ^ np.uint32(k * 0x68E31DA4 + 1))) for k in range(3)], axis=1)
        return t, 0.35 * (jitter - 0.5)
    if kind == TILES:
        frac = qp - np.floor(qp)
        edge = np.minimum(frac, 1.0 - frac)
        edge[np.arange(len(q)), np.argmax(np.abs(normals), axis=1)] = 1.0
        grout = edge.min(axis=1) < 0.03
        t = np.where(grout, 1.0, 0.3 * _to_unit(cell_hash(qp, seed))).astype(np.float32)
        return t, None
    raise ValueError(f"unknown pattern id {kind}")


def albedo(points: np.ndarray, normals: np.ndarray, material_ids: np.ndarray, table: MaterialTable) -> np.ndarray:
    """Surface reflectance of points in their texture frames.

    Args:
        points: ``(P, 3)`` float64 texture-frame (object-local) coordinates.
        normals: ``(P, 3)`` unit normals in the same frame.
        material_ids: ``(P,)`` rows of ``table``.
        table: the scene's materials.

    Returns:
        ``(P, 3)`` float32 RGB in ``[0, 1]``.
    """
    q = points + table.offset[material_ids]
    seed = table.seed[material_ids]
    freq = table.freq[material_ids]
    direction = table.direction[material_ids]
    pattern = table.pattern[material_ids]
    t = np.zeros(len(q), np.float32)
    jitter = np.zeros((len(q), 3), np.float32)
    for kind in np.unique(pattern):
        sel = np.flatnonzero(pattern == kind)
        tk, jk = _pattern(int(kind), q[sel], normals[sel], freq[sel], direction[sel], seed[sel])
        t[sel] = tk
        if jk is not None:
            jitter[sel] = jk
    a, b = table.color_a[material_ids], table.color_b[material_ids]
    detail = fbm(q * _DETAIL_FREQ, seed ^ np.uint32(0x2C1B3C6D), 2)
    gain = 1.0 + table.detail[material_ids] * (2.0 * detail - 1.0)
    col = (a + (b - a) * t[:, None]) * gain[:, None] + jitter
    return np.clip(col, 0.0, 1.0).astype(np.float32)


# -------------------------------------------------------------------------------------- lighting
@dataclass
class Lighting:
    """Fixed lights of a room (view independent).

    Attributes:
        ambient: constant irradiance.
        directions: ``(L, 3)`` unit vectors pointing *towards* directional lights.
        intensities: ``(L,)`` their irradiance at normal incidence.
        point: ``(3,)`` position of the point light.
        point_intensity: its irradiance at normal incidence and zero distance.
        point_falloff: distance (m) at which the point light's irradiance halves.
    """

    ambient: float
    directions: np.ndarray
    intensities: np.ndarray
    point: np.ndarray
    point_intensity: float
    point_falloff: float

    @classmethod
    def for_room(cls, room_size) -> "Lighting":
        """The standard rig of a ``(Lx, Ly, Lz)`` room: every wall orientation is lit differently."""
        dirs = np.array([[0.5, 0.3, 0.8], [-0.45, -0.65, 0.35]])
        size = np.asarray(room_size, np.float64)
        return cls(
            ambient=0.42,
            directions=dirs / np.linalg.norm(dirs, axis=1, keepdims=True),
            intensities=np.array([0.35, 0.2]),
            point=np.array([0.5 * size[0], 0.5 * size[1], size[2] - 0.3]),
            point_intensity=0.55,
            point_falloff=3.0,
        )

    def irradiance(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Lambertian irradiance ``(P,)`` float32 at world ``points (P, 3)`` with unit ``normals (P, 3)``."""
        e = np.full(len(points), self.ambient)
        e += np.clip(normals @ self.directions.T, 0.0, None) @ self.intensities
        to_light = self.point - points
        dist = np.linalg.norm(to_light, axis=1)
        cos = np.einsum("ij,ij->i", normals, to_light) / np.maximum(dist, 1e-9)
        e += self.point_intensity * np.clip(cos, 0.0, None) / (1.0 + (dist / self.point_falloff) ** 2)
        return e.astype(np.float32)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Linear ``[0, 1]`` colours -> uint8 (rounded, clipped)."""
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ material palette
def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))))


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


MATERIAL_KINDS = (
    "wall", "floor", "ceiling", "wood", "fabric", "metal", "plastic", "paper", "art", "white",
    "screen", "glass", "plant", "ceramic", "cardboard", "dark",
)
"""Names accepted by :func:`random_material`."""


def random_material(kind: str, rng: np.random.Generator) -> Material:
    """Sample a material of a family (``MATERIAL_KINDS``): colours, pattern and frequency.

    Every family keeps enough high-frequency contrast for feature matching.
    """
    u = rng.uniform
    direction, offset = _unit(rng), rng.uniform(-100.0, 100.0, 3)
    seed = int(rng.integers(0, 2**32, dtype=np.uint64))
    if kind == "wall":
        a = _hsv(u(0, 1), u(0.08, 0.35), u(0.72, 0.92))
        pattern = int(rng.choice([NOISE, NOISE, STRIPES, TILES]))
        freq = {NOISE: u(2.5, 4.0), STRIPES: u(4.0, 7.0), TILES: u(2.0, 3.5)}[pattern]
        b, detail = a * u(0.5, 0.7), 0.6
    elif kind == "floor":
        pattern = int(rng.choice([WOOD, TILES, CHECKER]))
        if pattern == WOOD:
            a, freq = _hsv(u(0.05, 0.1), u(0.45, 0.7), u(0.4, 0.7)), u(6.0, 10.0)
            direction = np.array([1.0, 0.0, 0.0]) if u() < 0.5 else np.array([0.0, 1.0, 0.0])
        else:
            a, freq = _hsv(u(0, 1), u(0.05, 0.3), u(0.55, 0.85)), u(2.0, 3.5)
        b, detail = a * u(0.45, 0.65), 0.6
    elif kind == "ceiling":
        a = _hsv(u(0, 1), u(0.0, 0.08), u(0.85, 0.95))
        pattern, freq, b, detail = NOISE, u(2.5, 4.0), a * 0.72, 0.5
    elif kind == "wood":
        a = _hsv(u(0.04, 0.11), u(0.4, 0.75), u(0.3, 0.75))
        pattern, freq, b, detail = WOOD, u(10.0, 20.0), a * u(0.5, 0.7), 0.4
    elif kind == "fabric":
        a = _hsv(u(0, 1), u(0.3, 0.8), u(0.35, 0.85))
        pattern = int(rng.choice([NOISE, STRIPES, CHECKER]))
        b = a * u(0.4, 0.6) if u() < 0.6 else _hsv(u(0, 1), u(0.3, 0.8), u(0.35, 0.85))
        freq, detail = u(6.0, 16.0), 0.5
    elif kind == "metal":
        a = _hsv(u(0.5, 0.7), u(0.0, 0.15), u(0.3, 0.75))
        pattern, freq, b, detail = NOISE, u(8.0, 14.0), a * 0.7, 0.4
    elif kind == "plastic":
        a = _hsv(u(0, 1), u(0.5, 0.9), u(0.45, 0.9))
        pattern, freq, b, detail = NOISE, u(6.0, 12.0), a * 0.65, 0.4
    elif kind in ("paper", "art", "screen"):
        a = _hsv(u(0, 1), u(0.5, 0.95), u(0.5, 0.95))
        b = _hsv(u(0, 1), u(0.5, 0.95), u(0.2, 0.9))
        pattern = CELLS if kind != "art" else int(rng.choice([CELLS, STRIPES, CHECKER, NOISE]))
        freq = {"paper": u(15.0, 30.0), "art": u(5.0, 14.0), "screen": u(12.0, 24.0)}[kind]
        if kind == "screen":
            a, b = a * 0.7, b * 0.5
        detail = 0.4
    elif kind == "white":
        a = _hsv(u(0, 1), u(0.0, 0.05), u(0.9, 0.97))
        pattern, freq, b, detail = STRIPES, u(6.0, 10.0), a * 0.8, 0.24
    elif kind == "glass":
        a = _hsv(u(0.53, 0.62), u(0.2, 0.45), u(0.55, 0.85))
        pattern, freq, b, detail = NOISE, u(2.0, 4.0), a * 0.6, 0.3
    elif kind == "plant":
        a = _hsv(u(0.22, 0.38), u(0.5, 0.85), u(0.3, 0.65))
        pattern, freq, b, detail = NOISE, u(12.0, 20.0), a * 0.45, 0.6
    elif kind == "ceramic":
        a = _hsv(u(0, 1), u(0.3, 0.9), u(0.5, 0.95))
        b = _hsv(u(0, 1), u(0.3, 0.9), u(0.3, 0.9))
        pattern, freq, detail = int(rng.choice([STRIPES, CHECKER])), u(20.0, 40.0), 0.3
    elif kind == "cardboard":
        a = _hsv(u(0.07, 0.1), u(0.4, 0.55), u(0.55, 0.75))
        pattern, freq, b, detail = NOISE, u(6.0, 12.0), a * 0.7, 0.6
    elif kind == "dark":
        a = _hsv(u(0, 1), u(0.0, 0.2), u(0.08, 0.22))
        pattern, freq, b, detail = NOISE, u(15.0, 25.0), a * 2.2, 0.4
    else:
        raise ValueError(f"unknown material kind '{kind}' (expected one of {', '.join(MATERIAL_KINDS)})")
    return Material(pattern, np.clip(a, 0, 1), np.clip(b, 0, 1), float(freq), float(detail), direction, offset, seed)
