"""The ``rgbd`` backend: the scene already has metric depth and camera poses (7-Scenes, ScanNet, TUM,
synthetic); check them and add confidences (and optionally world points).

* **Validation.** Depth must be present, finite and non-negative with at least one valid pixel;
  ``metadata['poses_known']``, when set, must be True (TUM without ``groundtruth.txt`` has
  placeholder poses); every rotation must be orthonormal with determinant +1.
* **Depth range.** ``min_depth`` / ``max_depth`` mark depths outside ``[min_depth, max_depth]``
  invalid (0). Consumer depth sensors are unreliable close up and noisy far away (Kinect v1: about
  0.4-4 m), so a range is the usual first filter.
* **Confidence.** ``depth_conf`` is 1 where ``depth > 0`` and 0 elsewhere. With ``edge_threshold``
  set, pixels at depth discontinuities get ``edge_weight`` instead of 1: a pixel is at a
  discontinuity when a valid 4-neighbour's depth differs by more than ``edge_threshold`` relative
  to the nearer of the two, ``|d_p - d_q| / min(d_p, d_q) > edge_threshold``. Structured-light and
  time-of-flight sensors return "flying pixels" mixing foreground and background there, so both
  sides of the jump are down-weighted; a neighbour without depth (a hole) is not a discontinuity.
* **World points** (``world_points=True``): the depth unprojected with the cameras, NaN where the
  depth is invalid; ``point_conf`` is a copy of ``depth_conf``.

The result keeps the input's cameras, images, masks and instances; its geometry is the depth
(``metadata['point_source'] = 'depth'``; world points of the input are not carried over).
``metadata['metric']`` is the input's value (True when unset: this backend's input is sensor depth
in metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.reconstruct.common import derive_scene, valid_depth_points
from sem3r.scene import Scene

_ROTATION_TOL = 1e-3


@dataclass
class RGBDConfig:
    """Options of the ``rgbd`` backend.

    Attributes:
        min_depth: depths below this (metres) become invalid; ``None`` keeps all.
        max_depth: depths above this (metres) become invalid; ``None`` keeps all.
        edge_threshold: relative depth jump that marks a discontinuity (e.g. ``0.05`` = 5 %);
            ``None`` disables the down-weighting.
        edge_weight: confidence of pixels at a discontinuity, in ``[0, 1]``.
        world_points: also fill ``world_points`` / ``point_conf`` from the depth.
    """

    min_depth: float | None = None
    max_depth: float | None = None
    edge_threshold: float | None = None
    edge_weight: float = 0.5
    world_points: bool = False

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid option."""
        for name in ("min_depth", "max_depth"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise Sem3RError(f"{name} must be a non-negative number of metres, got {value}")
        if self.min_depth is not None and self.max_depth is not None and self.min_depth >= self.max_depth:
            raise Sem3RError(f"min_depth ({self.min_depth}) must be below max_depth ({self.max_depth})")
        if self.edge_threshold is not None and not (np.isfinite(self.edge_threshold) and self.edge_threshold > 0):
            raise Sem3RError(f"edge_threshold must be positive, got {self.edge_threshold}")
        if not 0.0 <= self.edge_weight <= 1.0:
            raise Sem3RError(f"edge_weight must be in [0, 1], got {self.edge_weight}")


def depth_discontinuities(depth: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels on either side of a relative depth jump larger than ``threshold``.

    Args:
        depth: ``(N, H, W)`` depth, 0 = invalid.
        threshold: relative jump ``|d_p - d_q| / min(d_p, d_q)`` between 4-neighbours that are
            both valid.

    Returns:
        ``(N, H, W) bool``.

    Example:
        >>> d = np.array([[[1.0, 1.0, 2.0, 2.0]]])
        >>> depth_discontinuities(d, 0.1).astype(int).tolist()
        [[[0, 1, 1, 0]]]
    """
    depth = np.asarray(depth, np.float64)
    edges = np.zeros(depth.shape, bool)
    for axis in (1, 2):
        n = depth.shape[axis]
        a = depth.take(np.arange(n - 1), axis=axis)
        b = depth.take(np.arange(1, n), axis=axis)
        near = np.minimum(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            jump = (near > 0) & (np.abs(a - b) > threshold * near)
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        edges[tuple(lo)] |= jump
        edges[tuple(hi)] |= jump
    return edges


def _check_poses(scene: Scene) -> None:
    if scene.metadata.get("poses_known") is False:
        raise Sem3RError(
            "the rgbd backend needs known camera poses, but metadata['poses_known'] is False "
            "(e.g. TUM without groundtruth.txt); use backend 'colmap' or 'feedforward'"
        )
    R = scene.cam_from_world[:, :, :3]
    singular = np.linalg.svd(R, compute_uv=False)
    bad = (np.abs(singular - 1.0).max(axis=1) > _ROTATION_TOL) | (np.linalg.det(R) < 0)
    if bad.any():
        raise Sem3RError(f"the rotation of view '{scene.image_names[int(np.argmax(bad))]}' is not orthonormal with determinant +1")


def reconstruct_rgbd(scene: Scene, config: RGBDConfig) -> Scene:
    """Backend function: validate sensor depth and poses, add confidences (see the module docstring).

    Args:
        scene: views with ``depth (N, H, W)`` in metres and known ``cam_from_world (N, 3, 4)``.
        config: backend options.

    Returns:
        A new Scene with the (range-clipped) ``depth``, ``depth_conf (N, H, W) float32`` and, when
        asked, ``world_points (N, H, W, 3) float32`` / ``point_conf``.

    Raises:
        Sem3RError: no depth (the message names the backends to use instead), unknown poses,
            negative depth, no valid depth, or a non-rigid pose.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(num_views=1, height=24, width=32, num_points=0)).scene
        >>> out = reconstruct_rgbd(scene, RGBDConfig(world_points=True))
        >>> bool(np.array_equal(out.depth_conf, (scene.depth > 0).astype(np.float32)))
        True
    """
    if scene.depth is None:
        raise Sem3RError(
            "the rgbd backend needs metric depth, but the scene has none; use backend 'feedforward' or 'colmap' "
            "for images only (or 'oracle' for a synthetic scene)"
        )
    if (scene.depth < 0).any():
        raise Sem3RError(f"depth of view '{scene.image_names[int(np.argmax((scene.depth < 0).any(axis=(1, 2))))]}' is negative")
    _check_poses(scene)
    depth = scene.depth.copy()
    if config.min_depth is not None:
        depth[depth < config.min_depth] = 0.0
    if config.max_depth is not None:
        depth[depth > config.max_depth] = 0.0
    valid = depth > 0
    if not valid.any():
        clipped = config.min_depth is not None or config.max_depth is not None
        raise Sem3RError("the scene has no valid depth" + (f" in [{config.min_depth}, {config.max_depth}] m" if clipped else ""))
    conf = valid.astype(np.float32)
    if config.edge_threshold is not None:
        conf[depth_discontinuities(depth, config.edge_threshold)] = config.edge_weight
    points = valid_depth_points(depth, scene.intrinsics, scene.cam_from_world) if config.world_points else None
    return derive_scene(
        scene,
        {"metric": bool(scene.metadata.get("metric", True)), "point_source": "depth"},
        depth=depth,
        depth_conf=conf,
        world_points=points,
        point_conf=conf.copy() if config.world_points else None,
    )
