"""Bird's-eye-view (BEV) rendering of a reconstructed scene (ROSS3D section 4.3, GPT4Scene markers).

ROSS3D's global-view objective reconstructs a top-down image of the whole scene rendered from its
point cloud at 432 x 432 pixels; pixels that no point reaches stay black and are skipped by the
loss, so the render reports them as a mask. GPT4Scene draws object ids on that image so a
multimodal model can refer to objects by number.

Choices the papers leave open, made here:

* **Projection**: orthographic along the world ``up`` axis; each pixel keeps its highest point
  (a z-buffer looking down); heights within a thousandth of a pixel tie and the later point wins. Pixels are square; the points' ground-plane bounding box plus
  ``margin`` on every side is centred in the image.
* **Orientation**: the image "up" direction (decreasing row ``v``) is the first camera's viewing
  direction projected on the ground plane (its ``-y`` axis when it looks straight down), and image
  "right" is ``forward x up``, so the render is a map seen from above. This makes the render
  deterministic and covariant to rigid motions of the whole scene. A bare :class:`PointCloud`
  has no cameras; pass ``forward`` or the world axis least aligned with ``up`` is used.
* **Floor**: the 2nd percentile of the point heights (robust to a few stray points below it).
* **Ceiling**: a ceiling seen from above hides the room. With ``ceiling_clip="auto"`` the slab of
  points within ``ceiling_band`` (a fraction of the floor-to-top height) of the top (99.5th
  percentile height) is treated as a ceiling when it covers at least ``ceiling_coverage`` of the
  occupied footprint (on a coarse 32 x 32 grid), and everything in that slab is dropped; a scene
  without a ceiling (a table top, a partial scan) is left whole. A number clips at that many units
  above the floor; ``None`` keeps every point.
* **Markers**: a filled disc in :func:`~sem3r.viz.colors.instance_colors` at each instance
  centroid, with the id written beside it (right of the disc, white with a black outline, Pillow's
  bitmap font) so the disc centre keeps the instance colour.

Example:
    >>> import numpy as np
    >>> from sem3r.scene import PointCloud
    >>> xyz = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 0]], np.float32)
    >>> rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    >>> ids = np.array([-1, 3, 4], np.int32)
    >>> cloud = PointCloud(xyz, rgb, ids, ids, np.zeros(3, np.int32))
    >>> bev = render_bev(cloud, BEVConfig(resolution=8, ceiling_clip=None), up=np.array([0, 0, 1.0]))
    >>> bev.image.shape, int(bev.valid.sum())
    ((8, 8, 3), 2)
    >>> u, v = bev.pixel_of(xyz[:1])[0].round().astype(int)
    >>> bev.image[v, u].tolist(), int(bev.instance_ids[v, u])
    ([0, 255, 0], 3)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.instances.structure import camera_mean_up, parse_up
from sem3r.io import atomic_path
from sem3r.scene import PointCloud, Scene
from sem3r.viz.colors import instance_colors

_COVERAGE_GRID = 32
_FLOOR_PERCENTILE = 2.0
_TOP_PERCENTILE = 99.5


@dataclass
class BEVConfig:
    """Settings of :func:`render_bev`.

    Attributes:
        resolution: the render is ``resolution x resolution`` pixels (ROSS3D: 432); at least 8.
        up: world up axis: ``"auto"``, an axis name (``"x"``, ``"+y"``, ``"-z"``, ...) or a ``(3,)``
            vector. ``"auto"`` uses, in order: ``metadata['up']`` (or ``metadata['up_axis']``) when
            present (``sem3r segment --method geometric`` writes it); ``+z`` for a synthetic room in
            its own frame; the floor plane's normal (:func:`sem3r.instances.proposals.estimate_structure`)
            when the scene has geometry; else the mean of the cameras' up directions (the ``-y`` axis
            of each ``cam_from_world`` rotation, in world coordinates), which is off by the cameras'
            mean pitch on handheld sequences. A bare :class:`PointCloud` has none of these and needs
            an explicit ``up``.
        margin: fraction of the ground-plane extent added on every side of the points.
        ceiling_clip: ``"auto"`` (drop a detected ceiling, see the module docstring), a height
            above the floor (scene units) above which points are dropped, or ``None`` (keep all).
        ceiling_band: thickness of the top slab tested as a ceiling, as a fraction of the
            floor-to-top height.
        ceiling_coverage: smallest fraction of the occupied footprint that slab must cover to be
            a ceiling.
        voxel_size: voxel size of :meth:`Scene.fused_point_cloud` (``None``: every pixel's point).
        conf_percentile: drop this lowest percentage of points by confidence (``None``: keep all).
        markers: draw object markers (disc + id) at the instance centroids of a Scene.
        marker_radius: disc radius in pixels.
    """

    resolution: int = 432
    up: str | tuple[float, float, float] | np.ndarray = "auto"
    margin: float = 0.02
    ceiling_clip: float | Literal["auto"] | None = "auto"
    ceiling_band: float = 0.05
    ceiling_coverage: float = 0.3
    voxel_size: float | None = None
    conf_percentile: float | None = None
    markers: bool = False
    marker_radius: int = 6

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if int(self.resolution) < 8:
            raise Sem3RError(f"BEV resolution must be at least 8 pixels, got {self.resolution}")
        if not 0.0 <= self.margin < 10.0:
            raise Sem3RError(f"BEV margin must be in [0, 10), got {self.margin}")
        clip = self.ceiling_clip
        if clip is not None and clip != "auto" and (isinstance(clip, str) or not np.isfinite(clip) or clip <= 0):
            raise Sem3RError(f"ceiling_clip must be 'auto', None or a positive height, got {self.ceiling_clip!r}")
        if not 0.0 < self.ceiling_band < 1.0:
            raise Sem3RError(f"ceiling_band must be in (0, 1), got {self.ceiling_band}")
        if not 0.0 < self.ceiling_coverage <= 1.0:
            raise Sem3RError(f"ceiling_coverage must be in (0, 1], got {self.ceiling_coverage}")
        if self.marker_radius < 1:
            raise Sem3RError(f"marker_radius must be at least 1 pixel, got {self.marker_radius}")


@dataclass
class BEVImage:
    """A top-down render and the map between its pixels and the world.

    Pixel centres are at integer ``(u, v)`` (column, row); pixel ``(u, v)`` covers
    ``[u - 0.5, u + 0.5) x [v - 0.5, v + 0.5)``.

    Attributes:
        image: ``(R, R, 3) uint8`` colour of the highest point per pixel; empty pixels black.
        valid: ``(R, R) bool`` pixel received a point.
        height: ``(R, R) float32`` height of the kept point above the floor (0 where empty;
            negative for points below the floor estimate).
        instance_ids: ``(R, R) int32`` instance id of the kept point, -1 where empty.
        world_from_pixel: ``(3, 3) float64`` world point on the floor plane of pixel ``(u, v)``:
            ``world_from_pixel @ [u, v, 1]``; its first two columns are orthogonal, of length
            ``pixel_size`` and perpendicular to ``up``.
        up: ``(3,) float64`` unit world up axis.
        floor: floor height along ``up`` (``up . x`` of floor points).
        pixel_size: side of a pixel in scene units.
        markers: ``(id, u, v)`` of every marker drawn.
    """

    image: np.ndarray
    valid: np.ndarray
    height: np.ndarray
    instance_ids: np.ndarray
    world_from_pixel: np.ndarray
    up: np.ndarray
    floor: float
    pixel_size: float
    markers: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def resolution(self) -> int:
        return int(self.image.shape[0])

    def pixel_of(self, points: np.ndarray) -> np.ndarray:
        """Continuous pixel coordinates of world points (their height is ignored).

        Args:
            points: ``(M, 3)`` world points.

        Returns:
            ``(M, 2) float64`` ``(u, v)``; round to get the pixel (may lie outside the image).
        """
        points = np.asarray(points, np.float64).reshape(-1, 3)
        axes = self.world_from_pixel[:, :2]
        return (points - self.world_from_pixel[:, 2]) @ axes / self.pixel_size**2


def resolve_up(source: Scene | PointCloud, up="auto") -> np.ndarray:
    """The world up axis of a scene (the ``"auto"`` rule of :class:`BEVConfig`).

    Args:
        source: a Scene (metadata and cameras are used by ``"auto"``) or a point cloud.
        up: ``"auto"``, an axis name or a ``(3,)`` vector.

    Returns:
        ``(3,) float64`` unit vector.

    Example:
        >>> resolve_up(None, "-y").tolist()
        [0.0, -1.0, 0.0]
    """
    if not (isinstance(up, str) and up == "auto"):
        return parse_up(up)
    if not isinstance(source, Scene):
        raise Sem3RError("up='auto' needs a Scene (metadata or cameras); pass up explicitly for a point cloud")
    declared = source.metadata.get("up", source.metadata.get("up_axis"))
    if declared is not None:
        return parse_up(declared)
    if source.metadata.get("source") == "synthetic" and source.metadata.get("world_frame", "synthetic") == "synthetic":
        return np.array([0.0, 0.0, 1.0])
    if source.depth is not None or source.world_points is not None:
        from sem3r.instances.proposals import estimate_structure

        return estimate_structure(source).up
    return camera_mean_up(source.cam_from_world)


def _ground_axes(up: np.ndarray, cam_from_world: np.ndarray | None, forward: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Unit ``right`` and ``forward`` vectors of the ground plane (``right = forward x up``)."""
    if forward is None and cam_from_world is not None:
        rot = cam_from_world[0, :, :3]
        candidates = [rot[2], -rot[1]]
    elif forward is not None:
        candidates = [parse_up(forward)]
    else:
        candidates = [np.eye(3)[int(np.argmin(np.abs(up)))]]
    for cand in candidates:
        flat = cand - (cand @ up) * up
        if np.linalg.norm(flat) > 1e-6:
            fwd = flat / np.linalg.norm(flat)
            return np.cross(fwd, up), fwd
    raise Sem3RError("the forward direction is parallel to up; pass another forward")


def _ceiling_height(h: np.ndarray, ground: np.ndarray, floor: float, config: BEVConfig) -> float:
    """Height (along up) above which points are dropped; ``inf`` keeps all."""
    if config.ceiling_clip is None:
        return np.inf
    if config.ceiling_clip != "auto":
        return floor + float(config.ceiling_clip)
    top = float(np.percentile(h, _TOP_PERCENTILE))
    cut = top - config.ceiling_band * (top - floor)
    lo, hi = ground.min(axis=0), ground.max(axis=0)
    cell = np.floor((ground - lo) / np.maximum(hi - lo, 1e-12) * (_COVERAGE_GRID - 1e-6)).astype(np.int64)
    flat = cell[:, 0] * _COVERAGE_GRID + cell[:, 1]
    occupied = np.zeros(_COVERAGE_GRID**2, bool)
    occupied[flat] = True
    slab = np.zeros(_COVERAGE_GRID**2, bool)
    slab[flat[h >= cut]] = True
    return cut if slab.sum() >= config.ceiling_coverage * occupied.sum() else np.inf


def _scene_cloud(scene: Scene, config: BEVConfig) -> PointCloud:
    scene.require_dense_geometry("the scene has no geometry (depth or world points); reconstruct it before rendering a BEV")
    return scene.fused_point_cloud(voxel_size=config.voxel_size, conf_percentile=config.conf_percentile)


def _draw_markers(image: np.ndarray, ids: np.ndarray, pixels: np.ndarray, radius: int) -> np.ndarray:
    """``image`` with a disc in the instance colour and the id at each ``(u, v)`` of ``pixels``."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default_imagefont()
    colors = instance_colors(ids)
    for (u, v), color in zip(pixels.tolist(), colors.tolist()):
        draw.ellipse([u - radius, v - radius, u + radius, v + radius], fill=tuple(color))
    for instance_id, (u, v) in zip(ids.tolist(), pixels.tolist()):
        draw.text((u + radius + 2, v), str(instance_id), fill=(255, 255, 255), font=font, anchor="lm",
                  stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(canvas, np.uint8).copy()


def render_bev(
    source: Scene | PointCloud,
    config: BEVConfig | None = None,
    up: np.ndarray | str | None = None,
    forward: np.ndarray | None = None,
) -> BEVImage:
    """Render a top-down orthographic view of a coloured point cloud with a highest-point z-buffer.

    Args:
        source: a Scene with depth or world points (fused with ``config.voxel_size`` and
            ``config.conf_percentile``), or a :class:`PointCloud` of ``M`` points.
        config: settings; defaults to :class:`BEVConfig`.
        up: world up axis, overrides ``config.up`` (axis name or ``(3,)`` vector).
        forward: ``(3,)`` world direction shown as image "up" (projected on the ground plane);
            default: the first camera's viewing direction (see the module docstring).

    Returns:
        A :class:`BEVImage` of ``config.resolution`` pixels square.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> syn = generate_scene(SynthConfig(seed=0, num_views=2, height=24, width=32, num_points=0))
        >>> bev = render_bev(syn.scene, BEVConfig(resolution=32))
        >>> bev.image.shape, bev.image.dtype, bev.instance_ids.dtype
        ((32, 32, 3), dtype('uint8'), dtype('int32'))
    """
    config = config or BEVConfig()
    config.validate()
    if not isinstance(source, (Scene, PointCloud)):
        raise Sem3RError(f"render_bev needs a Scene or a PointCloud, got {type(source).__name__}")
    cloud = _scene_cloud(source, config) if isinstance(source, Scene) else source
    xyz = np.asarray(cloud.xyz, np.float64).reshape(-1, 3)
    if not len(xyz):
        raise Sem3RError("the point cloud is empty; nothing to render in the BEV")
    if not np.isfinite(xyz).all():
        raise Sem3RError("the point cloud contains NaN or inf coordinates")
    up_vec = resolve_up(source, config.up if up is None else up)
    cams = source.cam_from_world if isinstance(source, Scene) else None
    right, fwd = _ground_axes(up_vec, cams, forward)

    h = xyz @ up_vec
    ground = np.stack([xyz @ right, xyz @ fwd], axis=1)
    floor = float(np.percentile(h, _FLOOR_PERCENTILE))
    keep = h <= _ceiling_height(h, ground, floor, config)
    xyz, h, ground = xyz[keep], h[keep], ground[keep]
    rgb = np.asarray(cloud.rgb, np.uint8).reshape(-1, 3)[keep]
    inst = np.asarray(cloud.instance_ids, np.int32).reshape(-1)[keep]

    res = int(config.resolution)
    lo, hi = ground.min(axis=0), ground.max(axis=0)
    half = max(float((hi - lo).max()), 1e-6) * (0.5 + config.margin)
    centre = (lo + hi) / 2.0
    pixel_size = 2.0 * half / res
    # Pixel (0, 0) centre sits half a pixel inside the top-left corner (min right, max forward).
    corner = centre + np.array([-half, half]) + np.array([0.5, -0.5]) * pixel_size
    origin = corner[0] * right + corner[1] * fwd + floor * up_vec
    world_from_pixel = np.stack([right * pixel_size, -fwd * pixel_size, origin], axis=1)

    u = np.clip(np.rint((ground[:, 0] - corner[0]) / pixel_size), 0, res - 1).astype(np.int64)
    v = np.clip(np.rint((corner[1] - ground[:, 1]) / pixel_size), 0, res - 1).astype(np.int64)
    flat = v * res + u
    # One packed int64 key (pixel, quantised height) sorted stably: heights within a thousandth of
    # a pixel tie (a flat floor stays flat under a rigid motion's rounding) and the later point wins.
    height_bits = 63 - int(res * res - 1).bit_length()
    level = np.minimum(np.rint((h - h.min()) / (1e-3 * pixel_size)), 2.0**height_bits - 1).astype(np.int64)
    order = np.argsort((flat << height_bits) | level, kind="stable")
    last = np.ones(len(order), bool)
    last[:-1] = flat[order[1:]] != flat[order[:-1]]
    winner = order[last]
    pix = flat[winner]

    image = np.zeros((res * res, 3), np.uint8)
    valid = np.zeros(res * res, bool)
    height = np.zeros(res * res, np.float32)
    ids = np.full(res * res, -1, np.int32)
    image[pix], valid[pix], height[pix], ids[pix] = rgb[winner], True, h[winner] - floor, inst[winner]
    bev = BEVImage(image.reshape(res, res, 3), valid.reshape(res, res), height.reshape(res, res),
                   ids.reshape(res, res), world_from_pixel, up_vec, floor, pixel_size)
    if config.markers and isinstance(source, Scene) and len(source.instances):
        table = source.instances
        pixels = np.rint(bev.pixel_of(table.centroids))
        inside = np.isfinite(table.centroids).all(axis=1) & ((pixels >= 0) & (pixels < res)).all(axis=1)
        pixels = pixels[inside].astype(np.int64)
        marker_ids = table.ids[inside]
        bev.image = _draw_markers(bev.image, marker_ids, pixels, int(config.marker_radius))
        bev.markers = [(int(i), int(pu), int(pv)) for i, (pu, pv) in zip(marker_ids.tolist(), pixels.tolist())]
    return bev


def save_bev(bev: BEVImage, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the render as a PNG and its valid mask as ``<stem>_mask.png`` (255 = valid), atomically.

    Args:
        bev: a render from :func:`render_bev`.
        path: destination of the colour PNG.

    Returns:
        ``(image_path, mask_path)``.

    Example:
        >>> import numpy as np
        >>> from sem3r.scene import PointCloud
        >>> cloud = PointCloud(np.zeros((1, 3), np.float32), np.full((1, 3), 200, np.uint8),
        ...                    np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int32))
        >>> paths = save_bev(render_bev(cloud, BEVConfig(resolution=8), up="z"), "bev.png")
        >>> [p.name for p in paths]
        ['bev.png', 'bev_mask.png']
    """
    from PIL import Image

    path = Path(path)
    mask_path = path.with_name(f"{path.stem}_mask.png")
    for target, array in ((path, bev.image), (mask_path, bev.valid.astype(np.uint8) * 255)):
        with atomic_path(target) as tmp:
            Image.fromarray(array).save(tmp, format="PNG")
    return path, mask_path
