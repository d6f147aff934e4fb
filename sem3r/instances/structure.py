"""Room structure and gravity: floor, walls and ceiling of a reconstructed scene, and "up" from the floor.

Real reconstructions put the world frame wherever the first camera or the SLAM system did; handheld
cameras are tilted, so the mean camera "up" is often 20-30 degrees off gravity. The floor is the
reliable reference. :func:`detect_structure` works on points with oriented-or-not normals:

1. **Planes**: :func:`sem3r.geometry.planes.detect_planes` (one-point RANSAC with normals, noise
   adaptive band). Each plane's normal is turned toward the cameras (the side most camera centres
   lie on).
2. **A room boundary has nothing behind it.** A plane is a candidate floor / wall / ceiling only when
   at most ``max_behind`` of all points lie more than ``behind_margin`` beyond it (seen from the
   cameras). The front of a bookshelf or a cabinet fails this: the wall behind it is visible.
3. **Up = the floor's normal.** The floor is the largest boundary plane whose normal lies within
   ``up_prior_angle`` of the cameras' mean up and that has the cameras above it (median camera
   height ``min_camera_height .. max_camera_height`` over it). Without one, the largest boundary plane
   facing down onto the cameras is taken as the ceiling (up = minus its normal); without either,
   up falls back to the cameras' mean up and :attr:`Structure.note` says so. ``config.up`` skips
   the estimate (a user override).
4. **Labels**: boundary planes within ``horizontal_angle`` of up at the floor height are floor,
   facing down above every camera are ceiling, within ``vertical_angle`` of vertical are walls.
   Their inliers get the structure class (:data:`STRUCTURE_CLASSES`), as the synthetic ground truth
   labels structure: a semantic id, no instance. A wall plane flush with a bigger wall (within
   ``flush_distance``, at most ``max_flush_fraction`` of its size) is a door, window or board on it
   (kind ``flush``, an object). Other planes (table tops, cabinet fronts) are kept in
   :attr:`Structure.planes` with kind ``horizontal`` / ``vertical`` / ``other`` and stay objects.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry._validate import point_array
from sem3r.geometry.camera import camera_centers
from sem3r.geometry.planes import Plane, PlaneDetectionConfig, detect_planes, plane_inliers

STRUCTURE_CLASSES = ("floor", "wall", "ceiling")
"""Structure class names; :attr:`Structure.labels` index this tuple (-1: not structure)."""

FLOOR, WALL, CEILING = range(3)


@dataclass
class StructureConfig:
    """Settings of :func:`detect_structure`.

    Attributes:
        planes: plane detection settings.
        up: a user's world up vector ``(3,)``; ``None`` estimates it (see the module docstring).
        up_prior_angle: largest angle (degrees) between a floor's normal and the cameras' mean up.
        horizontal_angle: floors and ceilings lie within this angle (degrees) of horizontal.
        vertical_angle: walls lie within this angle (degrees) of vertical.
        behind_margin: points farther than this (m) beyond a plane count as behind it.
        max_behind: a boundary plane has at most this fraction of all points behind it.
        min_camera_height: the cameras' median height over a floor is at least this (m)...
        max_camera_height: ... and at most this (m).
        min_points: smallest structure plane, as a fraction of all points (``< 1``) or a count.
        flush_angle: a wall plane within this angle (degrees) ...
        flush_distance: ... and this distance (m) of a wall with more than ``1 / max_flush_fraction``
            times its points is ``flush``: a door, window or board on that wall (an object).
        max_flush_fraction: see ``flush_distance``.
        gravity_align: once up is known, near-vertical planes are made exactly vertical and
            near-horizontal ones exactly horizontal before they are classified (walls stand plumb),
            where that leaves no more points behind the plane than the fitted one does (a wall that
            really leans keeps its fit).
        label_normal_angle: :meth:`Structure.on_points` takes points within this angle (degrees) of a
            plane's normal (fine points on sensor depth have noisy normals; an object's side
            touching a wall is at 90 degrees).
    """

    planes: PlaneDetectionConfig = field(default_factory=PlaneDetectionConfig)
    up: Sequence[float] | None = None
    up_prior_angle: float = 50.0
    horizontal_angle: float = 12.0
    vertical_angle: float = 12.0
    behind_margin: float = 0.1
    max_behind: float = 0.03
    min_camera_height: float = 0.2
    max_camera_height: float = 3.0
    min_points: float = 0.01
    label_normal_angle: float = 60.0
    flush_angle: float = 5.0
    flush_distance: float = 0.08
    max_flush_fraction: float = 0.5
    gravity_align: bool = True

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        self.planes.validate()
        for name in ("up_prior_angle", "horizontal_angle", "vertical_angle"):
            if not 0 < getattr(self, name) < 90:
                raise Sem3RError(f"structure {name} must be in (0, 90) degrees, got {getattr(self, name)}")
        if not 0 <= self.max_behind < 1 or self.behind_margin < 0:
            raise Sem3RError("structure max_behind must be in [0, 1) and behind_margin non-negative")
        if not 0 <= self.min_camera_height < self.max_camera_height:
            raise Sem3RError("structure camera heights must satisfy 0 <= min_camera_height < max_camera_height")
        if self.up is not None:
            parse_up(self.up)


@dataclass
class Structure:
    """The structure of a scene's ``M`` points.

    Attributes:
        up: ``(3,) float64`` unit world up.
        up_source: ``"floor"``, ``"ceiling"``, ``"cameras"`` or ``"given"``.
        labels: ``(M,) int8`` index into :data:`STRUCTURE_CLASSES`, -1 for points that are not structure.
        planes: every detected plane, normals turned toward the cameras.
        kinds: per plane: ``floor``, ``wall``, ``ceiling``, ``flush`` (a small plane flush with a
            bigger wall: a door or board on it, an object), ``horizontal``, ``vertical`` or ``other``.
        floor_height: the floor's position along ``up`` (``points @ up`` units), ``None`` without a floor.
        camera_up_error: angle (degrees) between ``up`` and the cameras' mean up.
        note: a sentence for the user when up could not come from the floor, else ``""``.
    """

    up: np.ndarray
    up_source: str
    labels: np.ndarray
    planes: list[Plane]
    kinds: list[str]
    floor_height: float | None
    camera_up_error: float
    note: str = ""

    def on_points(self, points: np.ndarray, normals: np.ndarray, config: StructureConfig | None = None,
                  ranges: np.ndarray | None = None) -> Structure:
        """The same structure labelled on another point set of the scene (e.g. the fine points when the
        planes were found on coarse voxels): each plane's inliers are recomputed there
        (:func:`~sem3r.geometry.planes.plane_inliers`), the first plane claiming a point keeps it.

        Args:
            points: ``(M, 3)`` points.
            normals: ``(M, 3)`` unit normals.
            config: band and normal-angle limits (default :class:`StructureConfig`).
            ranges: ``(M,)`` distance (m) of each point from its camera (the band grows with it).
        """
        config = config or StructureConfig()
        pts = point_array(points, "structure points", min_points=0)
        labels = np.full(len(pts), -1, np.int8)
        planes = []
        taken = np.zeros(len(pts), bool)
        for plane, kind in zip(self.planes, self.kinds):
            fine = plane_inliers(pts, normals, plane, config.label_normal_angle, ranges)
            fine.inliers = fine.inliers[~taken[fine.inliers]]
            taken[fine.inliers] = True
            if kind in STRUCTURE_CLASSES:
                labels[fine.inliers] = STRUCTURE_CLASSES.index(kind)
            planes.append(fine)
        return dataclasses.replace(self, labels=labels, planes=planes)

    @property
    def is_structure(self) -> np.ndarray:
        """``(M,) bool``: the point lies on the floor, a wall or the ceiling."""
        return self.labels >= 0

    def metadata(self) -> dict:
        """JSON-ready summary for ``Scene.metadata``: up, its source, floor height, plane kinds and sizes."""
        return {
            "up": [float(v) for v in self.up],
            "up_source": self.up_source,
            "floor_height": self.floor_height,
            "camera_up_error_deg": round(self.camera_up_error, 3),
            "planes": [{"kind": kind, "normal": [round(float(v), 6) for v in plane.normal],
                        "offset": round(plane.offset, 6), "points": int(len(plane.inliers)),
                        "noise": round(plane.noise, 6)}
                       for plane, kind in zip(self.planes, self.kinds)],
            **({"note": self.note} if self.note else {}),
        }


def parse_up(up) -> np.ndarray:
    """A user's up vector (``"x,y,z"``, an axis name such as ``"+z"`` or ``"-y"``, or 3 numbers) as a unit ``(3,)``.

    Example:
        >>> parse_up("0,0,2").tolist(), parse_up("-y").tolist()
        ([0.0, 0.0, 1.0], [0.0, -1.0, 0.0])
    """
    if isinstance(up, str):
        text = up.strip().lower()
        axes = {"x": 0, "y": 1, "z": 2}
        if text.lstrip("+-") in axes:
            vec = np.zeros(3)
            vec[axes[text.lstrip("+-")]] = -1.0 if text.startswith("-") else 1.0
            return vec
        try:
            up = [float(v) for v in text.split(",")]
        except ValueError:
            raise Sem3RError(f"unknown up axis '{up}' (expected three numbers 'x,y,z' or an axis: x, +y, -z, ...)") from None
    vec = np.asarray(up, np.float64).reshape(-1)
    if vec.shape != (3,) or not np.isfinite(vec).all() or np.linalg.norm(vec) < 1e-9:
        raise Sem3RError(f"up must be a finite non-zero 3-vector, got {up}")
    return vec / np.linalg.norm(vec) + 0.0  # + 0.0 turns -0.0 into 0.0


def ground_basis(up) -> np.ndarray:
    """Right-handed ``world_from_ground`` ``(3, 3)``: columns ``e1, e2, up`` with ``e1, e2 ⟂ up``.

    ``e1`` is the world axis least aligned with ``up``, made orthogonal to it; ``e2 = up x e1``.
    ``up`` is anything :func:`parse_up` takes.

    Example:
        >>> ground_basis([0, 0, 2]).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    up = parse_up(up)
    seed = np.eye(3)[int(np.argmin(np.abs(up)))]
    e1 = seed - (seed @ up) * up
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(up, e1), up], axis=1)


def camera_mean_up(cam_from_world: np.ndarray) -> np.ndarray:
    """The mean of the cameras' up directions (``-y`` of each OpenCV camera), unit ``(3,)``."""
    mean_up = -np.asarray(cam_from_world, np.float64)[:, 1, :3].mean(axis=0)
    norm = np.linalg.norm(mean_up)
    if norm < 1e-6:
        raise Sem3RError("the cameras' up directions cancel out; pass up explicitly (--up x,y,z)")
    return mean_up / norm


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


def detect_structure(points: np.ndarray, normals: np.ndarray, cam_from_world: np.ndarray,
                     config: StructureConfig | None = None, ranges: np.ndarray | None = None) -> Structure:
    """Floor, walls, ceiling and up of a cloud seen by cameras (see the module docstring).

    Args:
        points: ``(M, 3)`` world points (metres), e.g. a voxelised fused cloud.
        normals: ``(M, 3)`` unit normals (orientation does not matter).
        cam_from_world: ``(N, 3, 4)`` OpenCV extrinsics of the cameras that saw the points.
        config: see :class:`StructureConfig`.
        ranges: ``(M,)`` distance (m) of each point from the camera that saw it: plane bands then
            grow with the square of the range, as depth-sensor noise does (``None``: one band).

    Returns:
        :class:`Structure`.

    Raises:
        Sem3RError: NaN or empty geometry, mismatched shapes, an invalid config.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> floor = np.c_[rng.uniform(0, 4, (3000, 2)), np.zeros(3000)]
        >>> box = np.c_[rng.uniform(1, 1.5, (300, 2)), np.full(300, 0.5)]
        >>> pts, nrm = np.r_[floor, box], np.tile([0.0, 0, 1], (3300, 1))
        >>> cams = np.array([[[1.0, 0, 0, -2], [0, 0, -1, 1.5], [0, 1, 0, -2]]])  # at (2, 2, 1.5), level
        >>> s = detect_structure(pts, nrm, cams)
        >>> s.up_source, s.up.round(3).tolist(), int((s.labels == FLOOR).sum()), int(s.is_structure[3000:].sum())
        ('floor', [0.0, 0.0, 1.0], 3000, 0)
    """
    config = config or StructureConfig()
    config.validate()
    pts = point_array(points, "structure points", min_points=3)
    cams = np.asarray(cam_from_world, np.float64)
    if cams.ndim != 3 or cams.shape[1:] != (3, 4) or not len(cams) or not np.isfinite(cams).all():
        raise Sem3RError(f"cam_from_world must be finite (N, 3, 4) with N >= 1, got {cams.shape}")
    centres = camera_centers(cams)
    cam_up = camera_mean_up(cams)
    planes = [_toward_cameras(p, centres) for p in detect_planes(pts, normals, config.planes, ranges)]
    min_points = config.min_points if config.min_points >= 1 else config.min_points * len(pts)
    big = np.array([len(p.inliers) >= min_points for p in planes], bool)
    boundary = big & np.array([_behind_fraction(p, pts, config.behind_margin, ranges) <= config.max_behind
                               for p in planes], bool)

    note = ""
    if config.up is not None:
        up, source = parse_up(config.up), "given"
    else:
        up, source = _estimate_up(planes, boundary, centres, cam_up, config)
        if source == "cameras":
            note = ("no floor or ceiling plane found below / above the cameras: up is the cameras' mean up, "
                    "which can be tens of degrees off on handheld sequences; pass --up x,y,z to fix it")
        elif source == "ceiling":
            note = "no floor visible: up comes from the ceiling plane"
    if config.gravity_align:  # keep the plumb / level plane where no more points lie behind it than the fit
        behind = np.array([_behind_fraction(p, pts, config.behind_margin, ranges) for p in planes])
        aligned = [_gravity_aligned(p, pts, up, config) for p in planes]
        behind_aligned = np.array([_behind_fraction(p, pts, config.behind_margin, ranges) for p in aligned])
        planes = [a if ba <= b else p for p, a, b, ba in zip(planes, aligned, behind, behind_aligned)]
        boundary = big & (np.minimum(behind, behind_aligned) <= config.max_behind)
    kinds, floor_height = _classify(planes, boundary, up, centres, config)
    labels = np.full(len(pts), -1, np.int8)
    for plane, kind in zip(planes, kinds):
        if kind in STRUCTURE_CLASSES:
            labels[plane.inliers] = STRUCTURE_CLASSES.index(kind)
    return Structure(up=up, up_source=source, labels=labels, planes=planes, kinds=kinds, floor_height=floor_height,
                     camera_up_error=_angle(up, cam_up), note=note)


def _gravity_aligned(plane: Plane, pts: np.ndarray, up: np.ndarray, config: StructureConfig) -> Plane:
    """``plane`` made exactly vertical (normal orthogonal to ``up``) when it lies within
    ``vertical_angle`` of vertical, or exactly horizontal within ``horizontal_angle``, its offset
    the median over its inliers: walls stand plumb and floors lie level, so on noisy far depth
    (a Kinect's quantisation steps reach 10 cm at 5 m) the gravity prior fixes the tilt the fit
    picks up, which would otherwise leave the far end of a wall in front of or behind the plane
    (and the wall then fails the nothing-behind-a-boundary test)."""
    facing = float(plane.normal @ up)
    if abs(facing) <= np.sin(np.deg2rad(config.vertical_angle)):
        normal = plane.normal - facing * up
    elif abs(facing) >= np.cos(np.deg2rad(config.horizontal_angle)):
        normal = np.sign(facing) * up
    else:
        return plane
    normal = normal / np.linalg.norm(normal)
    offset = -float(np.median(pts[plane.inliers] @ normal)) if len(plane.inliers) else plane.offset
    return dataclasses.replace(plane, normal=normal, offset=offset)


def _toward_cameras(plane: Plane, centres: np.ndarray) -> Plane:
    """``plane`` with its normal on the side where most camera centres are."""
    side = plane.signed_distance(centres)
    return plane if np.median(side) >= 0 else plane.flipped()


def _behind_fraction(plane: Plane, pts: np.ndarray, margin: float, ranges: np.ndarray | None) -> float:
    """Fraction of ``pts`` more than ``margin`` plus the plane's band beyond ``plane`` (away from its normal)."""
    return float((plane.signed_distance(pts) < -(margin + plane.band(ranges))).mean())


def _estimate_up(planes: list[Plane], boundary: np.ndarray, centres: np.ndarray, cam_up: np.ndarray,
                 config: StructureConfig) -> tuple[np.ndarray, str]:
    """Up from the floor, else the ceiling, else the cameras; returns ``(up, source)``."""
    best = {"floor": (0, None), "ceiling": (0, None)}
    for plane, is_boundary in zip(planes, boundary):
        if not is_boundary:
            continue
        height = np.median(plane.signed_distance(centres))
        if _angle(plane.normal, cam_up) <= config.up_prior_angle and \
                config.min_camera_height <= height <= config.max_camera_height:
            kind = "floor"
        elif _angle(-plane.normal, cam_up) <= config.up_prior_angle and height > 0:
            kind = "ceiling"
        else:
            continue
        if len(plane.inliers) > best[kind][0]:
            best[kind] = (len(plane.inliers), plane)
    if best["floor"][1] is not None:
        return best["floor"][1].normal.copy(), "floor"
    if best["ceiling"][1] is not None:
        return -best["ceiling"][1].normal, "ceiling"
    return cam_up, "cameras"


def _classify(planes: list[Plane], boundary: np.ndarray, up: np.ndarray, centres: np.ndarray,
              config: StructureConfig) -> tuple[list[str], float | None]:
    """Kind of every plane given ``up``, and the floor height along ``up``."""
    cos_h = np.cos(np.deg2rad(config.horizontal_angle))
    sin_v = np.sin(np.deg2rad(config.vertical_angle))
    cam_heights = centres @ up
    facing = np.array([p.normal @ up for p in planes])
    heights = np.array([-p.offset / f if abs(f) > 1e-9 else np.nan for p, f in zip(planes, facing)])
    floors = [i for i, p in enumerate(planes) if boundary[i] and facing[i] >= cos_h and heights[i] < np.median(cam_heights)]
    floor_height = float(heights[max(floors, key=lambda i: len(planes[i].inliers))]) if floors else None
    kinds = []
    for i, plane in enumerate(planes):
        if abs(facing[i]) >= cos_h:
            tol = max(0.05, 2 * float(plane.band(None)))
            if facing[i] > 0 and floor_height is not None and abs(heights[i] - floor_height) <= tol and boundary[i]:
                kinds.append("floor")
            elif facing[i] < 0 and boundary[i] and heights[i] > cam_heights.max():
                kinds.append("ceiling")
            else:
                kinds.append("horizontal")
        elif abs(facing[i]) <= sin_v:
            kinds.append("wall" if boundary[i] else "vertical")
        else:
            kinds.append("other")
    cos_flush = np.cos(np.deg2rad(config.flush_angle))
    walls = [i for i, kind in enumerate(kinds) if kind == "wall"]
    for i in walls:  # a small wall flush with a bigger one is a door, window or board on it
        for j in walls:
            if len(planes[j].inliers) > len(planes[i].inliers) / config.max_flush_fraction and \
                    planes[i].normal @ planes[j].normal >= cos_flush and \
                    abs(planes[i].offset - planes[j].offset) <= config.flush_distance:
                kinds[i] = "flush"
                break
    return kinds, floor_height
