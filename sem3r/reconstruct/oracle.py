"""The ``oracle`` backend: the exact ground-truth geometry of a synthetic scene.

It stands in for a perfect reconstruction, so that later stages (instances, semantics, reasoning)
can be measured without geometry errors. For a Scene made by :mod:`sem3r.data.synthetic`
(``metadata['source'] == 'synthetic'``):

* when the Scene has no depth (e.g. only its images were kept), the generator is run again from
  ``metadata['config']`` (which holds the seed) and the views are matched by image name
  (``view_0007`` is view 7 of the generator, so a Scene cut with ``select_views`` works). The
  regenerated images must equal the Scene's, otherwise the Scene was edited or made by another
  generator version and the oracle refuses. Depth, intrinsics and ``cam_from_world`` are then the
  generator's;
* when the Scene has depth, the generator's depth and cameras it carries are checked (generator
  version, image size, depth finite, non-negative and not empty) and kept; ``verify=True``
  re-renders the views and requires the depth and cameras to match too.

``depth_conf`` is 1 where ``depth > 0`` (exact) and 0 elsewhere; ``world_points=True`` also fills
``world_points`` (NaN where there is no surface) and ``point_conf``. ``metadata['metric']`` is True.
Any other source is refused: scenes with sensor depth and poses use the ``rgbd`` backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from sem3r.data.synthetic import GENERATOR_VERSION, SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reconstruct.common import derive_scene, valid_depth_points
from sem3r.scene import Scene

_VIEW_NAME = re.compile(r"^view_(\d+)$")


@dataclass
class OracleConfig:
    """Options of the ``oracle`` backend.

    Attributes:
        verify: when the Scene has depth, re-render the views anyway and require the depth and
            cameras to equal the generator's (``atol``).
        atol: tolerance of that comparison (metres for depth and translations).
        world_points: also fill ``world_points`` / ``point_conf`` from the depth.
    """

    verify: bool = False
    atol: float = 1e-5
    world_points: bool = False

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid option."""
        if not (np.isfinite(self.atol) and self.atol >= 0):
            raise Sem3RError(f"atol must be a non-negative number, got {self.atol}")


def _synth_config(scene: Scene) -> SynthConfig:
    """The generator config stored in the Scene's metadata (checked against this generator)."""
    meta = scene.metadata
    if meta.get("generator_version") != GENERATOR_VERSION:
        raise Sem3RError(
            f"the scene was made by synthetic generator version {meta.get('generator_version')}, this sem3r has version "
            f"{GENERATOR_VERSION}; regenerate the scene"
        )
    stored = meta.get("config")
    if not isinstance(stored, dict):
        raise Sem3RError("the synthetic scene has no metadata['config'], so its ground truth cannot be regenerated")
    try:
        config = SynthConfig(**stored)
    except TypeError as exc:
        raise Sem3RError(f"metadata['config'] is not a synthetic scene config ({exc})") from None
    config.validate()
    if (config.height, config.width) != (scene.height, scene.width):
        raise Sem3RError(
            f"the scene's images are {scene.height}x{scene.width} but its generator config renders "
            f"{config.height}x{config.width} (the images were resized); the oracle needs the original views"
        )
    return config


def _view_indices(scene: Scene, num_views: int) -> np.ndarray:
    """Generator view index of every view, parsed from names ``view_XXXX``."""
    indices = []
    for name in scene.image_names:
        match = _VIEW_NAME.match(name)
        if match is None or int(match.group(1)) >= num_views:
            raise Sem3RError(f"view '{name}' is not one of the generator's views view_0000..view_{num_views - 1:04d}")
        indices.append(int(match.group(1)))
    return np.array(indices, np.int64)


def ground_truth_views(scene: Scene) -> Scene:
    """Regenerate the synthetic views of ``scene`` (matched by image name).

    Args:
        scene: a synthetic Scene, possibly without depth, possibly a subset of the generator's views.

    Returns:
        The generator's Scene restricted to ``scene``'s views, in ``scene``'s order.

    Raises:
        Sem3RError: no usable config, unknown view names, or images that differ from the generator's.
    """
    config = _synth_config(scene)
    indices = _view_indices(scene, config.num_views)
    config.num_points = 0
    truth = generate_scene(config).scene.select_views(indices)
    differs = ~(truth.images == scene.images).all(axis=(1, 2, 3))
    if differs.any():
        raise Sem3RError(
            f"the image of view '{scene.image_names[int(np.argmax(differs))]}' differs from what the generator renders "
            "for metadata['config'] (the scene was edited); the oracle needs the generator's views"
        )
    return truth


def _check_truth(scene: Scene, truth: Scene, atol: float) -> None:
    for name in ("intrinsics", "cam_from_world", "depth"):
        diff = np.abs(getattr(scene, name) - getattr(truth, name)).reshape(scene.num_views, -1).max(axis=1)
        bad = diff > atol
        if bad.any():
            i = int(np.argmax(bad))
            raise Sem3RError(f"{name} of view '{scene.image_names[i]}' differs from the ground truth by {diff[i]:.3g} (> atol {atol})")


def reconstruct_oracle(scene: Scene, config: OracleConfig) -> Scene:
    """Backend function: the synthetic ground truth as the reconstruction (see the module docstring).

    Args:
        scene: a Scene with ``metadata['source'] == 'synthetic'``.
        config: backend options.

    Returns:
        A new Scene with the ground-truth ``intrinsics (N, 3, 3)``, ``cam_from_world (N, 3, 4)``,
        ``depth (N, H, W)`` metres, ``depth_conf (N, H, W)`` and optionally ``world_points``.

    Raises:
        Sem3RError: a non-synthetic scene, or a synthetic one whose ground truth cannot be
            regenerated or does not match.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> truth = generate_scene(SynthConfig(num_views=3, height=24, width=32, num_points=0)).scene
        >>> images_only = truth.select_views([2, 0])
        >>> images_only.depth = None
        >>> out = reconstruct_oracle(images_only, OracleConfig())
        >>> bool(np.array_equal(out.depth, truth.depth[[2, 0]])), out.metadata["metric"]
        (True, True)
    """
    source = scene.metadata.get("source")
    if source != "synthetic":
        raise Sem3RError(
            f"the oracle backend only works on synthetic scenes (metadata['source'] == 'synthetic'), this scene's source is "
            f"'{source}'; use backend 'rgbd' for sensor depth with known poses, or 'feedforward' / 'colmap'"
        )
    if scene.depth is None or config.verify:
        truth = ground_truth_views(scene)
        if scene.depth is not None:
            _check_truth(scene, truth, config.atol)
        intrinsics, cam_from_world, depth = truth.intrinsics, truth.cam_from_world, truth.depth
    else:
        _synth_config(scene)
        if (scene.depth < 0).any() or not (scene.depth > 0).any():
            raise Sem3RError("the synthetic scene's depth is negative or empty; it is not the generator's depth")
        intrinsics, cam_from_world, depth = scene.intrinsics, scene.cam_from_world, scene.depth
    conf = (depth > 0).astype(np.float32)
    return derive_scene(
        scene,
        {"metric": True, "point_source": "depth"},
        intrinsics=intrinsics.copy(),
        cam_from_world=cam_from_world.copy(),
        depth=depth.copy(),
        depth_conf=conf,
        world_points=valid_depth_points(depth, intrinsics, cam_from_world) if config.world_points else None,
        point_conf=conf.copy() if config.world_points else None,
    )
