"""Sensor-realistic synthetic views: degrade perfect renders like a real RGB-D camera.

The procedural rooms render exact depth with no holes in a world frame with ``+z`` up. Real RGB-D
data (a Kinect v1 as in 7-Scenes, NYUv2, TUM) has noisy, quantised depth with holes, noisy colour,
and a reconstruction frame anchored to the first camera. :func:`degrade_views` applies a sensor
model to rendered views and :func:`apply_sensor` applies it to a whole
:class:`~sem3r.data.synthetic.generator.SyntheticScene` and re-expresses the scene in a new world
frame; the ground truth (instance and semantic masks, point cloud, mesh) stays exact.

Depth model of the ``"kinect"`` preset (a Kinect-v1-like structured-light sensor), in order:

1. **Lateral noise**: every pixel reads the clean depth of a pixel offset by a rounded Gaussian
   jitter (``lateral_noise_px``); only visible at edges and on slanted surfaces.
2. **Axial noise** ``sigma(z) = axial_noise_offset + axial_noise * z^2`` (Khoshelham & Elberink 2012,
   Nguyen et al. 2012: about ``1.4e-3 z^2`` m), a share ``noise_correlation`` of its variance
   spatially correlated (Gaussian blob of ``noise_correlation_px``) like the sensor's block matching.
3. **Disparity quantisation**: the sensor measures disparity in fixed steps, so the inverse depth
   is rounded to multiples of ``inverse_depth_step`` (1/m) and the depth step grows as
   ``inverse_depth_step * z^2``. ``3.0e-3`` is measured on the 7-Scenes depth PNGs (steps of 3 mm
   at 1 m, 12-13 mm at 2 m, 27-28 mm at 3 m; OpenKinect's raw-disparity formula gives 3.07e-3).
   Then the depth is rounded to ``depth_resolution`` (1 mm, the unit of 16-bit depth PNGs).
4. **Holes** (depth 0), each cause with its own seeded field, recorded as bits of ``holes``:
   ``HOLE_RANGE`` (measured depth below ``near`` or beyond ``far``), ``HOLE_SHADOW`` (the
   projector, ``projector_baseline`` to the right of the depth camera, cannot light the surface:
   a band left of every occluding edge, ``f * b * (1/z_front - 1/z_back)`` pixels wide, computed
   exactly per row from the clean depth), ``HOLE_EDGE`` (a ragged band up to ``edge_band_px``
   wide on the far side of depth discontinuities where block matching fails), ``HOLE_DARK``
   (low albedo: probability rising linearly from 0 at ``albedo_threshold`` to 1 at
   ``albedo_threshold - albedo_softness``), ``HOLE_SPECULAR`` (per-material probability
   ``material_dropout``: glass, screens, metal), ``HOLE_GRAZING`` (incidence angle beyond
   ``max_incidence_deg - incidence_ramp_deg``, certain at ``max_incidence_deg``), ``HOLE_THIN``
   (structures and gaps narrower than ``thin_px``), ``HOLE_SPECKLE`` (isolated dropouts) and
   ``HOLE_BORDER`` (the right image border, ``border_right_px``, that the correlation window
   cannot reach). Probabilistic holes compare the probability with a spatially correlated uniform
   field (``hole_blob_px``), so they come as blobs with ragged borders, as in real depth maps.

Colour model: Gaussian blur (``blur_px``), vignetting (gain ``1 - vignetting`` in the corners),
per-view exposure and white-balance jitter (log-normal gains), shot noise (variance
``shot_noise * I``) and read noise (``read_noise``), in uint8 units.

Pixel sizes (``*_px``) are given at the sensor's native width ``native_width`` (640 for a
Kinect) and scaled with the rendered width, so a 128-pixel image looks like a downsampled
640-pixel one. The shadow width uses the actual focal length, so it scales by itself.

World frame (``world_frame``): ``"synthetic"`` keeps the generator's frame (``+z`` up, floor at
``z = 0``); ``"first_camera"`` (the Kinect preset) re-expresses everything in the first camera's
frame, as SLAM and feed-forward reconstructions do; ``"random"`` uses a seeded random rigid
transform. Metadata then holds ``gt_up`` (the true up vector of the new frame),
``world_from_synthetic`` (4x4), ``world_frame``, ``sensor`` and ``sensor_config``; ``up_axis`` is
removed so no stage reads the answer from the metadata.

Everything is seeded and vectorised (numpy and ``scipy.ndimage``; loops run over views and hole
causes only).

Example:
    >>> from sem3r.data.synthetic import SynthConfig, generate_scene
    >>> syn = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64, num_points=500, sensor="kinect"))
    >>> syn.scene.metadata["sensor"], syn.scene.metadata["world_frame"], "up_axis" in syn.scene.metadata
    ('kinect', 'first_camera', False)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

from sem3r.data.synthetic.textures import MATERIAL_KINDS
from sem3r.errors import Sem3RError
from sem3r.scene import PointCloud, Scene

if TYPE_CHECKING:  # pragma: no cover
    from sem3r.data.synthetic.generator import SyntheticScene
    from sem3r.data.synthetic.layout import RoomLayout
    from sem3r.data.synthetic.mesh import Paint

HOLE_RANGE = 1
HOLE_SHADOW = 2
HOLE_EDGE = 4
HOLE_DARK = 8
HOLE_SPECULAR = 16
HOLE_GRAZING = 32
HOLE_THIN = 64
HOLE_SPECKLE = 128
HOLE_BORDER = 256
HOLE_NO_HIT = 512
HOLE_CAUSES: dict[str, int] = {
    "range": HOLE_RANGE, "shadow": HOLE_SHADOW, "edge": HOLE_EDGE, "dark": HOLE_DARK,
    "specular": HOLE_SPECULAR, "grazing": HOLE_GRAZING, "thin": HOLE_THIN, "speckle": HOLE_SPECKLE,
    "border": HOLE_BORDER, "no_hit": HOLE_NO_HIT,
}
"""Bit of each hole cause in :attr:`SensorViews.holes`."""

WORLD_FRAMES = ("synthetic", "first_camera", "random")

_STREAM_SENSOR = 3
"""Stream index of the sensor's randomness (the generator uses 0, 1, 2)."""


@dataclass
class SensorConfig:
    """An RGB-D sensor model; the defaults (preset ``"none"``) change nothing.

    Build one from a preset with :meth:`from_preset` (``SensorConfig.from_preset("kinect",
    far=4.0)``). Lengths in metres, ``*_px`` in pixels at ``native_width``, probabilities in
    ``[0, 1]``; 0 disables a term.

    Attributes:
        name: the preset it came from (``"none"``, ``"kinect"``), written to ``metadata['sensor']``.
        native_width: the sensor's image width, the reference of every ``*_px`` setting.
        axial_noise: ``a`` in ``sigma(z) = axial_noise_offset + a * z^2`` (1/m).
        axial_noise_offset: constant part of the depth noise (m).
        noise_correlation: share of the noise variance that is spatially correlated.
        noise_correlation_px: Gaussian sigma of the correlated part.
        lateral_noise_px: standard deviation of the per-pixel lateral jitter.
        inverse_depth_step: quantisation step of ``1/z`` (1/m); depth step ``= step * z^2``.
        depth_resolution: final rounding of depth (m), e.g. 1 mm for 16-bit PNGs.
        near: depth below which nothing is measured (m).
        far: depth beyond which nothing is measured (m); 0: no limit.
        projector_baseline: projector offset along the camera's +x (m); shadows fall left of
            occluders (right of them when negative).
        edge_jump: relative depth jump between neighbouring pixels that makes a discontinuity.
        edge_band_px: largest width of the hole band on the far side of a discontinuity.
        albedo_threshold: albedo (mean RGB reflectance) below which dark holes start.
        albedo_softness: albedo range over which their probability rises to 1.
        max_incidence_deg: incidence angle at which nothing is measured.
        incidence_ramp_deg: angle range below it over which the hole probability rises.
        material_dropout: hole probability per material family (``textures.MATERIAL_KINDS``).
        thin_px: structures and gaps narrower than this are lost.
        thin_dropout: probability of losing them.
        speckle: probability of an isolated dropout per pixel.
        hole_blob_px: Gaussian sigma of the fields that shape probabilistic holes.
        border_right_px: invalid columns at the right border.
        world_frame: ``"synthetic"``, ``"first_camera"`` or ``"random"`` (see the module).
        blur_px: Gaussian blur sigma of the colour image.
        vignetting: relative darkening in the image corners.
        exposure_jitter: standard deviation of the per-view log exposure gain.
        white_balance_jitter: standard deviation of the per-view, per-channel log gain.
        shot_noise: shot-noise variance per unit of intensity (uint8 units).
        read_noise: standard deviation of the signal-independent colour noise (uint8 units).
    """

    name: str = "none"
    native_width: int = 640
    axial_noise: float = 0.0
    axial_noise_offset: float = 0.0
    noise_correlation: float = 0.0
    noise_correlation_px: float = 0.0
    lateral_noise_px: float = 0.0
    inverse_depth_step: float = 0.0
    depth_resolution: float = 0.0
    near: float = 0.0
    far: float = 0.0
    projector_baseline: float = 0.0
    edge_jump: float = 0.1
    edge_band_px: float = 0.0
    albedo_threshold: float = 0.0
    albedo_softness: float = 0.1
    max_incidence_deg: float = 90.0
    incidence_ramp_deg: float = 10.0
    material_dropout: dict[str, float] = field(default_factory=dict)
    thin_px: float = 0.0
    thin_dropout: float = 0.0
    speckle: float = 0.0
    hole_blob_px: float = 0.0
    border_right_px: float = 0.0
    world_frame: str = "synthetic"
    blur_px: float = 0.0
    vignetting: float = 0.0
    exposure_jitter: float = 0.0
    white_balance_jitter: float = 0.0
    shot_noise: float = 0.0
    read_noise: float = 0.0

    def __post_init__(self) -> None:
        self.material_dropout = {str(k): float(v) for k, v in dict(self.material_dropout).items()}

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "SensorConfig":
        """The preset ``name`` (see :data:`SENSOR_PRESETS`) with some fields overridden.

        Raises:
            Sem3RError: unknown preset or field.
        """
        if name not in SENSOR_PRESETS:
            raise Sem3RError(f"unknown sensor preset '{name}' (expected one of {', '.join(SENSOR_PRESETS)})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise Sem3RError(f"unknown sensor settings {unknown}")
        return cls(**{"name": name, **SENSOR_PRESETS[name], **overrides})

    @property
    def is_identity(self) -> bool:
        """True when the sensor changes nothing (all terms off, synthetic world frame)."""
        return replace(self, name="none") == SensorConfig()

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.native_width < 1:
            raise Sem3RError(f"native_width must be positive, got {self.native_width}")
        for name in ("axial_noise", "axial_noise_offset", "noise_correlation_px", "lateral_noise_px",
                     "inverse_depth_step", "depth_resolution", "near", "far", "edge_band_px", "albedo_threshold",
                     "thin_px", "hole_blob_px", "border_right_px", "blur_px", "exposure_jitter",
                     "white_balance_jitter", "shot_noise", "read_noise"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise Sem3RError(f"sensor setting {name} must be finite and non-negative, got {getattr(self, name)}")
        for name in ("noise_correlation", "thin_dropout", "speckle", "vignetting"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise Sem3RError(f"sensor setting {name} must be in [0, 1], got {getattr(self, name)}")
        if self.far and self.far <= self.near:
            raise Sem3RError(f"sensor far ({self.far}) must exceed near ({self.near})")
        if not 0.0 < self.edge_jump or not 0.0 < self.albedo_softness or not 0.0 < self.incidence_ramp_deg:
            raise Sem3RError("edge_jump, albedo_softness and incidence_ramp_deg must be positive")
        if not 0.0 < self.max_incidence_deg <= 90.0:
            raise Sem3RError(f"max_incidence_deg must be in (0, 90], got {self.max_incidence_deg}")
        bad = sorted(set(self.material_dropout) - set(MATERIAL_KINDS))
        if bad:
            raise Sem3RError(f"material_dropout names unknown material kinds {bad}; known: {', '.join(MATERIAL_KINDS)}")
        if any(not 0.0 <= p <= 1.0 for p in self.material_dropout.values()):
            raise Sem3RError("material_dropout probabilities must be in [0, 1]")
        if self.world_frame not in WORLD_FRAMES:
            raise Sem3RError(f"unknown world_frame '{self.world_frame}' (expected one of {', '.join(WORLD_FRAMES)})")

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


SENSOR_PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "kinect": {
        # depth noise and quantisation (Kinect v1 structured light)
        "axial_noise": 1.4e-3,
        "noise_correlation": 0.5,
        "noise_correlation_px": 3.0,
        "lateral_noise_px": 0.8,
        "inverse_depth_step": 3.0e-3,
        "depth_resolution": 1e-3,
        "near": 0.45,
        "far": 5.0,
        # holes
        "projector_baseline": 0.075,
        "edge_jump": 0.1,
        "edge_band_px": 12.0,
        "albedo_threshold": 0.22,
        "albedo_softness": 0.12,
        "max_incidence_deg": 85.0,
        "incidence_ramp_deg": 12.0,
        "material_dropout": {"glass": 0.9, "screen": 0.75, "metal": 0.3},
        "thin_px": 4.0,
        "thin_dropout": 0.9,
        "speckle": 0.0005,
        "hole_blob_px": 6.0,
        "border_right_px": 8.0,
        "world_frame": "first_camera",
        # colour (Kinect v1 RGB camera)
        "blur_px": 0.8,
        "vignetting": 0.25,
        "exposure_jitter": 0.1,
        "white_balance_jitter": 0.03,
        "shot_noise": 0.35,
        "read_noise": 1.5,
    },
}
"""Field values of each named sensor preset (the others keep their defaults)."""


def resolve_sensor(spec: "str | SensorConfig | dict | None") -> SensorConfig:
    """A :class:`SensorConfig` from a preset name, a config or a dict of its fields (validated).

    A dict is read as the fields of a config (as :meth:`SensorConfig.to_dict` writes them); its
    ``name`` selects the preset the other fields override when it is a known preset.
    """
    if spec is None:
        spec = "none"
    if isinstance(spec, str):
        cfg = SensorConfig.from_preset(spec)
    elif isinstance(spec, SensorConfig):
        cfg = spec
    elif isinstance(spec, dict):
        d = dict(spec)
        name = str(d.pop("name", "custom"))
        cfg = SensorConfig.from_preset(name, **d) if name in SENSOR_PRESETS else SensorConfig(name=name, **d)
    else:
        raise Sem3RError(f"sensor must be a preset name, a SensorConfig or a dict, got {type(spec).__name__}")
    cfg.validate()
    return cfg


@dataclass
class SensorViews:
    """Output of :func:`degrade_views`.

    Attributes:
        images: ``(N, H, W, 3) uint8`` degraded colour.
        depth: ``(N, H, W) float32`` degraded depth (m), 0 where invalid.
        holes: ``(N, H, W) uint16`` bitmask of the hole causes (:data:`HOLE_CAUSES`), 0 where
            valid; a hole can have several causes.
    """

    images: np.ndarray
    depth: np.ndarray
    holes: np.ndarray

    @property
    def invalid_fraction(self) -> float:
        """Fraction of pixels without depth."""
        return float((self.depth <= 0).mean())

    def cause_fractions(self) -> dict[str, float]:
        """Fraction of all pixels that each cause invalidates (causes overlap)."""
        return {k: float(((self.holes & bit) > 0).mean()) for k, bit in HOLE_CAUSES.items()}


# ----------------------------------------------------------------------------------- helpers
def _gaussian_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """``(N, H, W)`` standard normal field, spatially correlated with a Gaussian of ``sigma`` px."""
    g = rng.standard_normal(shape).astype(np.float32)
    if sigma <= 0.3:
        return g
    g = ndimage.gaussian_filter(g, sigma=(0, sigma, sigma), mode="reflect")
    std = g.reshape(len(g), -1).std(axis=1).reshape(-1, 1, 1)
    return g / np.maximum(std, 1e-12)


def _uniform_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """``(N, H, W)`` field with uniform ``[0, 1]`` marginals and blobs of about ``sigma`` px."""
    return ndtr(_gaussian_field(rng, shape, sigma)).astype(np.float32)


def _shift(a: np.ndarray, dy: int, dx: int, fill: float) -> np.ndarray:
    """``out[..., v, u] = a[..., v + dy, u + dx]`` (``fill`` outside)."""
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[..., yd, xd] = a[..., ys, xs]
    return out


def projector_shadow(depth: np.ndarray, fx: np.ndarray, baseline: float) -> np.ndarray:
    """Pixels the projector of a structured-light sensor cannot light.

    The projector sits ``baseline`` metres along the camera's +x axis (rectified, same rows). A
    pixel at column ``u`` with depth ``z`` is lit from projector column ``u - fx * b / z``; it is
    in shadow when a pixel to its right (in front of it) lands at or left of that column.

    Args:
        depth: ``(N, H, W)`` clean depth, 0 where nothing was hit (never occludes).
        fx: ``(N,)`` focal lengths in pixels.
        baseline: projector offset (m); negative mirrors the geometry.

    Returns:
        ``(N, H, W) bool``.
    """
    if baseline == 0:
        return np.zeros(depth.shape, bool)
    if baseline < 0:
        return projector_shadow(depth[..., ::-1], fx, -baseline)[..., ::-1]
    n, h, w = depth.shape
    u = np.arange(w, dtype=np.float64)
    hit = depth > 0
    up = np.where(hit, u - np.asarray(fx, np.float64).reshape(-1, 1, 1) * baseline / np.where(hit, depth, 1.0), np.inf)
    right_min = np.minimum.accumulate(up[..., ::-1], axis=-1)[..., ::-1]
    right_min = np.concatenate([right_min[..., 1:], np.full((n, h, 1), np.inf)], axis=-1)
    return hit & (up > right_min)


def depth_edges(depth: np.ndarray, jump: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth discontinuities between 4-neighbours (relative jump above ``jump``).

    Returns:
        ``near_side (N, H, W) bool``: pixels with a neighbour farther by the jump (or no depth);
        ``far_side``: pixels with a neighbour nearer by the jump.
    """
    near_side = np.zeros(depth.shape, bool)
    far_side = np.zeros(depth.shape, bool)
    z = np.where(depth > 0, depth, np.inf)
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        nb = _shift(z, dy, dx, np.nan)
        valid = ~np.isnan(nb)
        near_side |= valid & (nb > z * (1 + jump))
        far_side |= valid & (z > nb * (1 + jump))
    return near_side & np.isfinite(z), far_side & np.isfinite(z)


def thin_structures(depth: np.ndarray, radius: int, jump: float) -> np.ndarray:
    """Pixels on structures (or gaps) at most ``radius`` px wide along rows or columns.

    A pixel is thin when both its neighbours ``radius`` px away along a row (or a column) are
    farther by the relative ``jump`` (a leg, a cable: or have no depth), or both nearer (a gap
    between slats).
    """
    z = np.where(depth > 0, depth, np.inf)
    out = np.zeros(depth.shape, bool)
    for dy, dx in ((0, radius), (radius, 0)):
        a, b = _shift(z, dy, dx, np.nan), _shift(z, -dy, -dx, np.nan)
        with np.errstate(invalid="ignore"):
            out |= (a > z * (1 + jump)) & (b > z * (1 + jump))
            out |= (z > a * (1 + jump)) & (z > b * (1 + jump))
    return out & (depth > 0)


def _edge_band(near_side: np.ndarray, depth: np.ndarray, band: float, u: np.ndarray, jump: float) -> np.ndarray:
    """Ragged hole band on the far side of discontinuities: distance to the nearest near-side
    edge pixel below ``band * u`` (``u`` a uniform field), for pixels behind that edge pixel."""
    out = np.zeros(depth.shape, bool)
    if band <= 0:
        return out
    for i in range(len(depth)):  # per view: distance transforms do not batch
        if not near_side[i].any():
            continue
        dist, (iy, ix) = ndimage.distance_transform_edt(~near_side[i], return_indices=True)
        z_front = depth[i][iy, ix]
        behind = depth[i] > z_front * (1 + jump)
        out[i] = behind & (dist + 0.5 <= band * u[i]) & (dist <= band)
    return out


# ----------------------------------------------------------------------------------- the model
def degrade_views(images: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray, config: SensorConfig | str,
                  seed: int | np.random.SeedSequence = 0, *, albedo_map: np.ndarray | None = None,
                  cos_incidence: np.ndarray | None = None, material_kind: np.ndarray | None = None) -> SensorViews:
    """Apply a sensor model to rendered views.

    Args:
        images: ``(N, H, W, 3) uint8`` clean colour.
        depth: ``(N, H, W)`` clean depth (m), 0 where nothing was hit.
        intrinsics: ``(N, 3, 3)``.
        config: the sensor (a preset name or a config).
        seed: seeds every random term (an int or a ``SeedSequence``).
        albedo_map: ``(N, H, W)`` surface reflectance in ``[0, 1]``; ``None`` uses the image's
            mean intensity as a proxy.
        cos_incidence: ``(N, H, W)`` cosine of the angle between the viewing ray and the surface
            normal; ``None``: no grazing-angle holes.
        material_kind: ``(N, H, W)`` index into ``textures.MATERIAL_KINDS`` (-1 unknown);
            ``None``: no material holes.

    Returns:
        :class:`SensorViews`; with an identity config the inputs unchanged (depth as float32).
    """
    cfg = resolve_sensor(config)
    images = np.asarray(images)
    clean = np.asarray(depth, np.float64)
    n, h, w = clean.shape
    shape = (n, h, w)
    scale = w / cfg.native_width
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence([int(seed), _STREAM_SENSOR])
    # one independent stream per term, so switching a term off leaves the others unchanged
    (r_lat, r_noise, r_corr, r_edge, r_dark, r_spec, r_graze, r_thin, r_speckle, r_border,
     r_gain, r_color) = (np.random.default_rng(s) for s in ss.spawn(12))
    blob = cfg.hole_blob_px * scale
    hit = clean > 0

    # 1. lateral jitter
    z = clean
    if cfg.lateral_noise_px > 0:
        sigma = cfg.lateral_noise_px * scale
        dv = np.rint(r_lat.normal(0.0, sigma, shape)).astype(np.int64)
        du = np.rint(r_lat.normal(0.0, sigma, shape)).astype(np.int64)
        vv = np.clip(np.arange(h)[None, :, None] + dv, 0, h - 1)
        uu = np.clip(np.arange(w)[None, None, :] + du, 0, w - 1)
        z = clean[np.arange(n)[:, None, None], vv, uu]
    # 2. axial noise
    if cfg.axial_noise > 0 or cfg.axial_noise_offset > 0:
        sigma_z = cfg.axial_noise_offset + cfg.axial_noise * z**2
        white = r_noise.standard_normal(shape)
        c = cfg.noise_correlation
        noise = np.sqrt(1 - c) * white
        if c > 0:
            noise = noise + np.sqrt(c) * _gaussian_field(r_corr, shape, cfg.noise_correlation_px * scale)
        z = z + sigma_z * noise
    # 3. quantisation in disparity (inverse depth), then depth units
    if cfg.inverse_depth_step > 0:
        s = cfg.inverse_depth_step
        with np.errstate(divide="ignore"):
            q = np.rint(1.0 / (np.maximum(z, 1e-6) * s))
        z = np.where(q > 0, 1.0 / (np.maximum(q, 1) * s), np.inf)
    if cfg.depth_resolution > 0:
        z = np.rint(z / cfg.depth_resolution) * cfg.depth_resolution

    # 4. holes
    holes = np.zeros(shape, np.uint16)

    def mark(mask: np.ndarray, bit: int) -> None:
        holes[mask & hit] |= np.uint16(bit)

    holes[~hit] |= np.uint16(HOLE_NO_HIT)
    mark(hit & (z < cfg.near), HOLE_RANGE)
    mark(~np.isfinite(z) | (z <= 0), HOLE_RANGE)
    if cfg.far > 0:
        mark(z > cfg.far, HOLE_RANGE)
    if cfg.projector_baseline != 0:
        mark(projector_shadow(clean, intrinsics[:, 0, 0], cfg.projector_baseline), HOLE_SHADOW)
    if cfg.edge_band_px > 0:
        near_side, _ = depth_edges(clean, cfg.edge_jump)
        u = _uniform_field(r_edge, shape, blob)
        mark(_edge_band(near_side, clean, cfg.edge_band_px * scale, u, cfg.edge_jump), HOLE_EDGE)
    if cfg.albedo_threshold > 0:
        a = albedo_map if albedo_map is not None else images.astype(np.float32).mean(axis=-1) / 255.0
        p = np.clip((cfg.albedo_threshold - np.asarray(a, np.float32)) / cfg.albedo_softness, 0.0, 1.0)
        mark(_uniform_field(r_dark, shape, blob) < p, HOLE_DARK)
    if cfg.material_dropout and material_kind is not None:
        table = np.zeros(len(MATERIAL_KINDS) + 1, np.float32)  # last row: unknown (-1)
        for kind, prob in cfg.material_dropout.items():
            table[MATERIAL_KINDS.index(kind)] = prob
        p = table[np.asarray(material_kind, np.int64)]
        mark(_uniform_field(r_spec, shape, blob) < p, HOLE_SPECULAR)
    if cfg.max_incidence_deg < 90.0 and cos_incidence is not None:
        angle = np.degrees(np.arccos(np.clip(cos_incidence, -1.0, 1.0)))
        p = np.clip((angle - (cfg.max_incidence_deg - cfg.incidence_ramp_deg)) / cfg.incidence_ramp_deg, 0.0, 1.0)
        mark(_uniform_field(r_graze, shape, blob) < p, HOLE_GRAZING)
    if cfg.thin_px > 0 and cfg.thin_dropout > 0:
        radius = max(1, int(round(cfg.thin_px * scale)))
        thin = thin_structures(clean, radius, cfg.edge_jump)
        mark(thin & (_uniform_field(r_thin, shape, blob) < cfg.thin_dropout), HOLE_THIN)
    if cfg.speckle > 0:
        mark(r_speckle.uniform(size=shape) < cfg.speckle, HOLE_SPECKLE)
    if cfg.border_right_px > 0:
        # ragged right border: width varies per row around the nominal value
        width_px = cfg.border_right_px * scale * (0.5 + _uniform_field(r_border, (n, h, 1), blob)[..., 0])
        mark(np.arange(w)[None, None, :] >= w - width_px[..., None], HOLE_BORDER)
    out_depth = np.where(holes == 0, z, 0.0).astype(np.float32)

    # colour
    img = images.astype(np.float32)
    if cfg.blur_px > 0:
        img = ndimage.gaussian_filter(img, sigma=(0, cfg.blur_px * scale, cfg.blur_px * scale, 0), mode="nearest")
    gain = np.ones((n, 1, 1, 3), np.float32)
    if cfg.exposure_jitter > 0:
        gain *= np.exp(r_gain.normal(0.0, cfg.exposure_jitter, (n, 1, 1, 1))).astype(np.float32)
    if cfg.white_balance_jitter > 0:
        gain *= np.exp(r_gain.normal(0.0, cfg.white_balance_jitter, (n, 1, 1, 3))).astype(np.float32)
    img = img * gain
    if cfg.vignetting > 0:
        cx, cy = intrinsics[:, 0, 2].reshape(-1, 1, 1), intrinsics[:, 1, 2].reshape(-1, 1, 1)
        r2 = ((np.arange(w)[None, None, :] - cx) / (w / 2)) ** 2 + ((np.arange(h)[None, :, None] - cy) / (h / 2)) ** 2
        img = img * (1.0 - cfg.vignetting * np.clip(r2 / 2.0, 0.0, 1.0)).astype(np.float32)[..., None]
    if cfg.shot_noise > 0 or cfg.read_noise > 0:
        sd = np.sqrt(cfg.shot_noise * np.maximum(img, 0.0) + cfg.read_noise**2)
        img = img + sd * r_color.standard_normal(img.shape).astype(np.float32)
    out_images = images.copy() if cfg.is_identity else np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return SensorViews(out_images, out_depth, holes)


# ------------------------------------------------------------------------------ whole scenes
def surface_maps(images: np.ndarray, face_ids: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray,
                 cam_from_world: np.ndarray, paint: "Paint", layout: "RoomLayout") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the sensor model needs to know about the surface seen at each pixel of a render.

    The albedo is the rendered colour divided by the (cheap, exact) Lambertian irradiance, which
    recovers the texture's reflectance up to uint8 rounding without evaluating the textures again.

    Args:
        images: ``(N, H, W, 3) uint8`` clean render.
        face_ids: ``(N, H, W)`` visible mesh face, -1 for none.
        depth: ``(N, H, W)`` clean depth.
        intrinsics: ``(N, 3, 3)``; cam_from_world: ``(N, 3, 4)`` (synthetic frame).
        paint: the mesh's paint; layout: the room (for the material families).

    Returns:
        ``albedo (N, H, W) float32`` (mean RGB reflectance, 1 where no face), ``cos_incidence
        (N, H, W) float32`` (1 where no face) and ``material_kind (N, H, W) int16`` (index into
        ``MATERIAL_KINDS``, -1 where no face).
    """
    n, h, w = face_ids.shape
    kinds = ["floor", "wall", "ceiling"] + [k for o in layout.objects for k in o.model.slot_kinds]
    if len(kinds) != len(paint.materials.pattern):
        raise Sem3RError("the layout's material families do not match the paint's materials")
    kind_index = np.array([MATERIAL_KINDS.index(k) for k in kinds], np.int16)
    alb = np.ones((n, h, w), np.float32)
    cos = np.ones((n, h, w), np.float32)
    kind = np.full((n, h, w), -1, np.int16)
    flat = face_ids.reshape(-1)
    pix = np.flatnonzero(flat >= 0)
    if not len(pix):
        return alb, cos, kind
    view, rest = np.divmod(pix, h * w)
    v, u = np.divmod(rest, w)
    f = flat[pix]
    K, pose = intrinsics[view], cam_from_world[view]
    z = depth.reshape(-1)[pix].astype(np.float64)
    ray = np.stack([(u - K[:, 0, 2]) / K[:, 0, 0], (v - K[:, 1, 2]) / K[:, 1, 1], np.ones(len(pix))], axis=1)
    cam = ray * z[:, None]
    rot, t = pose[:, :, :3], pose[:, :, 3]
    world = np.einsum("pji,pj->pi", rot, cam - t)
    normals = paint.normals[f]
    shaded = images.reshape(-1, 3)[pix].astype(np.float32).mean(axis=1) / 255.0
    alb.reshape(-1)[pix] = np.clip(shaded / np.maximum(paint.lighting.irradiance(world, normals), 1e-3), 0.0, 1.0)
    normal_cam = np.einsum("pij,pj->pi", rot, normals)
    cos.reshape(-1)[pix] = np.abs(np.einsum("pi,pi->p", normal_cam, ray) / np.linalg.norm(ray, axis=1))
    kind.reshape(-1)[pix] = kind_index[paint.face_material[f]]
    return alb, cos, kind


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random rotation matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def world_transform(world_frame: str, cam_from_world: np.ndarray, seed: int | np.random.SeedSequence = 0) -> np.ndarray:
    """``world_from_synthetic (4, 4)`` of a world frame choice (see :class:`SensorConfig`).

    ``"first_camera"`` is the first camera's ``cam_from_world``; ``"random"`` a seeded uniform
    rotation with a translation of standard deviation 1 m per axis.
    """
    out = np.eye(4)
    if world_frame == "first_camera":
        out[:3, :] = cam_from_world[0]
    elif world_frame == "random":
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence([int(seed), _STREAM_SENSOR])
        rng = np.random.default_rng(ss.spawn(1)[0])
        out[:3, :3] = _random_rotation(rng)
        out[:3, 3] = rng.normal(0.0, 1.0, 3)
    elif world_frame != "synthetic":
        raise Sem3RError(f"unknown world_frame '{world_frame}' (expected one of {', '.join(WORLD_FRAMES)})")
    return out


def reframe(syn: "SyntheticScene", world_from_synthetic: np.ndarray) -> "SyntheticScene":
    """Re-express a synthetic scene in another world frame (exactly; rigid transform).

    Moves the cameras, the ground-truth cloud, its normals and the mesh, recomputes the instance
    table's axis-aligned boxes and centroids in the new frame and moves the objects' positions
    in ``metadata['objects']`` (their ``yaw`` and ``size`` stay relative to the true up and the
    synthetic axes). ``syn.layout`` stays in the synthetic frame. Metadata: ``gt_up``,
    ``world_from_synthetic``; ``up_axis`` is removed unless the transform keeps ``+z`` up.
    """
    from sem3r.data.synthetic.generator import SyntheticScene, instance_table
    from sem3r.data.synthetic.mesh import SceneMesh

    T = np.asarray(world_from_synthetic, np.float64)
    R, t = T[:3, :3], T[:3, 3]
    inv = np.eye(4)
    inv[:3, :3], inv[:3, 3] = R.T, -R.T @ t
    s = syn.scene
    poses = np.einsum("nij,jk->nik", s.cam_from_world, inv)[:, :3, :]
    mesh = SceneMesh(syn.mesh.vertices @ R.T + t, syn.mesh.faces, syn.mesh.face_instance_ids, syn.mesh.face_semantic_ids)
    cloud = PointCloud((syn.cloud.xyz.astype(np.float64) @ R.T + t).astype(np.float32), syn.cloud.rgb,
                       syn.cloud.instance_ids, syn.cloud.semantic_ids, syn.cloud.view_ids)
    normals = (syn.normals.astype(np.float64) @ R.T).astype(np.float32)
    meta = dict(s.metadata)
    up = R @ np.array([0.0, 0.0, 1.0])
    if not np.allclose(up, [0.0, 0.0, 1.0]):
        meta.pop("up_axis", None)
        meta.pop("up", None)
    meta["gt_up"] = [float(v) for v in up]
    meta["world_from_synthetic"] = T.tolist()
    if "objects" in meta:
        meta["objects"] = [
            {**o, "position": [round(float(v), 6) for v in R @ np.asarray(o["position"], np.float64) + t]}
            for o in meta["objects"]
        ]
    scene = Scene(
        images=s.images, intrinsics=s.intrinsics, cam_from_world=poses, depth=s.depth,
        depth_conf=s.depth_conf, world_points=None if s.world_points is None else s.world_points @ R.T + t,
        point_conf=s.point_conf, instance_masks=s.instance_masks, semantic_masks=s.semantic_masks,
        instance_features=s.instance_features, instances=instance_table(mesh, syn.layout, cloud.instance_ids),
        image_names=list(s.image_names), metadata=meta,
    )
    return SyntheticScene(scene, cloud, normals, mesh, syn.face_ids, syn.layout, clean=syn.clean, holes=syn.holes)


def apply_sensor(syn: "SyntheticScene", paint: "Paint", config: SensorConfig | str, seed: int = 0) -> "SyntheticScene":
    """Degrade a generated scene with a sensor model and move it to the sensor's world frame.

    The views' colour and depth are replaced by the sensor's (``syn.clean`` keeps the perfect
    render, ``syn.holes`` the hole causes); instance and semantic masks, the cloud and the mesh
    stay exact (moved rigidly with the world frame).

    Args:
        syn: a scene from :func:`~sem3r.data.synthetic.generator.generate_scene` (synthetic frame).
        paint: its paint (from ``build_mesh``).
        config: the sensor.
        seed: the scene's seed (the sensor uses its own random stream).

    Returns:
        A new :class:`SyntheticScene` whose metadata adds ``sensor``, ``sensor_config``,
        ``world_frame``, ``gt_up``, ``world_from_synthetic`` and ``depth_invalid_fraction``.
    """
    from sem3r.data.synthetic.generator import RenderedViews, SyntheticScene

    cfg = resolve_sensor(config)
    s = syn.scene
    ss = np.random.SeedSequence([int(seed), _STREAM_SENSOR])
    view_seed, frame_seed = ss.spawn(2)
    alb, cos, kind = surface_maps(s.images, syn.face_ids, s.depth, s.intrinsics, s.cam_from_world, paint, syn.layout)
    out = degrade_views(s.images, s.depth, s.intrinsics, cfg, view_seed, albedo_map=alb, cos_incidence=cos, material_kind=kind)
    clean = RenderedViews(s.images, s.depth, s.instance_masks, s.semantic_masks, syn.face_ids)
    meta = dict(s.metadata)
    meta["sensor"] = cfg.name
    meta["sensor_config"] = cfg.to_dict()
    meta["world_frame"] = cfg.world_frame
    meta["depth_invalid_fraction"] = out.invalid_fraction
    scene = Scene(
        images=out.images, intrinsics=s.intrinsics, cam_from_world=s.cam_from_world, depth=out.depth,
        instance_masks=s.instance_masks, semantic_masks=s.semantic_masks, instances=s.instances,
        image_names=list(s.image_names), metadata=meta,
    )
    degraded = SyntheticScene(scene, syn.cloud, syn.normals, syn.mesh, syn.face_ids, syn.layout, clean=clean, holes=out.holes)
    return reframe(degraded, world_transform(cfg.world_frame, s.cam_from_world, frame_seed))
