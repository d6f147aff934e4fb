"""Pinhole intrinsics and camera paths through a synthetic room.

Cameras are OpenCV (x right, y down, z forward), built with :func:`look_at` and the world's +z as
up (no roll). Every camera stands in free space: at least ``min_clearance`` metres from the walls
and from the footprint of any furniture (a 5 cm clearance grid of the floor), at a height in
``height_range``, so it is inside the room and never inside an object.

Paths:

* ``orbit``: views spread evenly on an ellipse around the room centre, looking at the centre.
* ``walk``: a straight walk along the room's long axis beside one wall, looking across the room
  (usually towards the half with more furniture) and panning slowly; consecutive views overlap
  strongly.
* ``random_large``: views far apart (farthest-point sampling of free space) visited in random
  order, all looking at the furnished area with jitter: large baselines and rotations, yet
  every pair shares the focus region.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from sem3r.data.synthetic.layout import RoomLayout

CAMERA_PATHS = ("orbit", "walk", "random_large")
"""Names accepted by :func:`camera_path`."""

_CELL = 0.05


def intrinsics_from_fov(fov_deg: float, height: int, width: int) -> np.ndarray:
    """Pinhole ``K (3, 3)`` with horizontal field of view ``fov_deg``, square pixels and the
    principal point at the image centre (pixel centres at integers: ``c = (size - 1) / 2``).

    Example:
        >>> K = intrinsics_from_fov(90.0, 100, 200)
        >>> round(float(K[0, 0]), 6), float(K[0, 2]), float(K[1, 2])
        (100.0, 99.5, 49.5)
    """
    f = 0.5 * width / np.tan(0.5 * np.deg2rad(fov_deg))
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV ``cam_from_world (3, 4)`` of a camera at ``eye (3,)`` looking at ``target (3,)``.

    The image's x axis is horizontal (``forward x up``) and its y axis points down.
    """
    eye, target, up = (np.asarray(a, np.float64) for a in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return np.concatenate([R, (-R @ eye)[:, None]], axis=1)


class FreeSpace:
    """Clearance map of a room's floor: distance (m) to the nearest wall or furniture footprint.

    Args:
        layout: the room.
    """

    def __init__(self, layout: RoomLayout):
        self.size = layout.size
        nx, ny = (np.ceil(self.size[:2] / _CELL)).astype(int)
        gx = (np.arange(nx) + 0.5) * self.size[0] / nx
        gy = (np.arange(ny) + 0.5) * self.size[1] / ny
        self.points = np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1).reshape(-1, 2)
        occupied = np.zeros(len(self.points), bool)
        for obj in layout.objects:
            if obj.blocks_floor:
                rect = obj.footprint
                local = (self.points - rect.center) @ rect.axes().T
                occupied |= (np.abs(local) <= rect.half).all(axis=1)
        walls = np.minimum(np.minimum(self.points[:, 0], self.size[0] - self.points[:, 0]),
                           np.minimum(self.points[:, 1], self.size[1] - self.points[:, 1]))
        if occupied.any():
            edt = distance_transform_edt(~occupied.reshape(nx, ny), sampling=(self.size[0] / nx, self.size[1] / ny))
            objects = np.maximum(edt.reshape(-1) - 0.75 * _CELL, 0.0)
        else:
            objects = np.full(len(self.points), np.inf)
        self.clearance = np.minimum(walls, objects)

    def free(self, min_clearance: float) -> np.ndarray:
        """Grid points ``(n, 2)`` with at least ``min_clearance``, or else the best half of the
        room's clearance (a crowded room still yields positions)."""
        ok = self.clearance >= min_clearance
        if not ok.any():
            ok = self.clearance >= 0.5 * self.clearance.max()
        return self.points[ok]

    def snap(self, xy: np.ndarray, min_clearance: float) -> np.ndarray:
        """The free grid point nearest to each of ``xy (n, 2)``."""
        free = self.free(min_clearance)
        d = np.linalg.norm(np.asarray(xy)[:, None, :] - free[None], axis=-1)
        return free[np.argmin(d, axis=1)]


def _safe_targets(eyes: np.ndarray, targets: np.ndarray, min_horizontal: float = 0.5) -> np.ndarray:
    """Push targets at least ``min_horizontal`` metres away horizontally (no vertical views)."""
    out = targets.copy()
    delta = targets[:, :2] - eyes[:, :2]
    dist = np.linalg.norm(delta, axis=1)
    short = dist < min_horizontal
    direction = np.where(dist[:, None] > 1e-6, delta / np.maximum(dist, 1e-6)[:, None], np.array([1.0, 0.0]))
    out[short, :2] = eyes[short, :2] + min_horizontal * direction[short]
    return out


def _orbit(layout, space, n, rng, clearance):
    centre = 0.5 * layout.size[:2]
    semi = np.maximum(0.5 * layout.size[:2] - clearance, 0.2)
    theta = rng.uniform(0, 2 * np.pi) + rng.choice([-1.0, 1.0]) * 2 * np.pi * np.arange(n) / n
    ray = np.stack([np.cos(theta), np.sin(theta)], axis=1) * semi
    scales = np.linspace(1.0, 0.3, 15)
    free = space.free(clearance)
    eyes = []
    for k in range(n):
        cand = centre + scales[:, None] * ray[k]
        d = np.linalg.norm(cand[:, None, :] - free[None], axis=-1)
        nearest, gap = np.argmin(d, axis=1), d.min(axis=1)
        ok = np.flatnonzero(gap <= _CELL)
        best = ok[np.argmin(np.abs(scales[ok] - 0.85))] if len(ok) else int(np.argmin(gap))
        eyes.append(free[nearest[best]])
    targets = np.column_stack([centre + rng.uniform(-0.3, 0.3, (n, 2)), rng.uniform(0.5, 0.9, n)])
    return np.array(eyes), targets


def _walk(layout, space, n, rng, clearance):
    size = layout.size[:2]
    long_axis = int(np.argmax(size))
    short_axis = 1 - long_axis
    furniture = np.array([o.position[short_axis] for o in layout.objects if o.blocks_floor])
    far_half_fuller = (furniture > 0.5 * size[short_axis]).sum() >= (furniture < 0.5 * size[short_axis]).sum()
    side = int(far_half_fuller) ^ int(rng.uniform() < 0.75)
    offset = rng.uniform(0.25, 0.4) * size[short_axis]
    inward = np.zeros(2)
    inward[short_axis] = 1.0 if side == 0 else -1.0
    t = np.linspace(0.15, 0.85, n) if rng.uniform() < 0.5 else np.linspace(0.85, 0.15, n)
    path = np.zeros((n, 2))
    path[:, long_axis] = t * size[long_axis]
    path[:, short_axis] = offset if side == 0 else size[short_axis] - offset
    eyes = space.snap(path, clearance)
    pan = np.linspace(-0.35, 0.35, n) * rng.choice([-1.0, 1.0])
    c, s = np.cos(pan), np.sin(pan)
    look = np.stack([c * inward[0] - s * inward[1], s * inward[0] + c * inward[1]], axis=1)
    reach = 0.6 * size[short_axis]
    targets = np.column_stack([eyes + reach * look, np.full(n, rng.uniform(0.5, 0.9))])
    return eyes, targets


def _random_large(layout, space, n, rng, clearance):
    furniture = [o.position[:2] for o in layout.objects if o.blocks_floor]
    focus = np.mean(furniture, axis=0) if furniture else 0.5 * layout.size[:2]
    focus = np.clip(focus, 0.3 * layout.size[:2], 0.7 * layout.size[:2])
    free = space.free(clearance)
    far = free[np.linalg.norm(free - focus, axis=1) >= 1.0]
    pool = far if len(far) >= n else free
    chosen = [int(rng.integers(len(pool)))]
    dist = np.linalg.norm(pool - pool[chosen[0]], axis=1)
    for _ in range(n - 1):
        chosen.append(int(np.argmax(dist + rng.uniform(0, 0.3, len(pool)))))
        dist = np.minimum(dist, np.linalg.norm(pool - pool[chosen[-1]], axis=1))
    eyes = pool[rng.permutation(chosen)]
    targets = np.column_stack([focus + rng.uniform(-0.5, 0.5, (n, 2)), rng.uniform(0.3, 1.0, n)])
    return eyes, targets


def camera_path(
    kind: str,
    layout: RoomLayout,
    num_views: int,
    rng: np.random.Generator,
    height_range: tuple[float, float] = (1.2, 1.8),
    min_clearance: float = 0.4,
) -> np.ndarray:
    """Camera poses along a path through the room.

    Args:
        kind: one of :data:`CAMERA_PATHS`.
        layout: the room.
        num_views: ``N``.
        rng: random generator of the cameras.
        height_range: camera heights (m above the floor).
        min_clearance: smallest distance (m) from a camera to walls and furniture footprints.

    Returns:
        ``cam_from_world (N, 3, 4)`` float64.
    """
    space = FreeSpace(layout)
    builders = {"orbit": _orbit, "walk": _walk, "random_large": _random_large}
    if kind not in builders:
        raise ValueError(f"unknown camera path '{kind}' (expected one of {', '.join(CAMERA_PATHS)})")
    eyes_xy, targets = builders[kind](layout, space, num_views, rng, min_clearance)
    lo, hi = height_range
    if kind == "walk":
        base = rng.uniform(lo + 0.05, hi - 0.05)
        heights = base + 0.04 * np.sin(np.linspace(0, 3 * np.pi, num_views))
    else:
        heights = rng.uniform(lo, hi, num_views)
    eyes = np.column_stack([eyes_xy, heights])
    targets = _safe_targets(eyes, targets)
    return np.stack([look_at(e, t) for e, t in zip(eyes, targets)])
