"""One entry point for instance segmentation: ``segment(scene, method, config, **options) -> Scene``.

Methods (a :class:`~sem3r.registry.Registry`, so a user can plug in another with
:func:`register_method`):

* ``iggt``: IGGT section 3.3, cluster the per-pixel instance features of all views jointly
  (:func:`sem3r.instances.clustering.cluster_scene`); the features are the Scene's
  ``instance_features`` (written by the ``feedforward`` backend with an IGGT checkpoint) or are
  predicted here by ``checkpoint`` on the Scene's images at the Scene's resolution;
* ``perview``: the same features clustered in each view alone, without cross-view association
  (the baseline that shows what joint clustering buys);
* ``lift``: per-view 2D masks from a source (:mod:`sem3r.instances.mask_sources`: ground truth
  with per-view random ids, a classical over-segmentation, or a SAM-family model) lifted into 3D
  through the reconstruction and merged across views by view consensus
  (:func:`sem3r.instances.lifting.lift_masks`);
* ``geometric``: no learned weights and no 2D masks: the room's structure (floor, walls, ceiling)
  is detected and removed, and the remaining superpoints are grouped into objects across convex or
  flat joins and split at concave ones (:func:`sem3r.instances.proposals.geometric_proposals`);
* ``combined``: ``geometric`` with the lifted 2D masks of a source as a second cue (superpoints of
  one lifted instance merge, flat objects on walls come from the masks); the best method without
  downloaded weights.

``geometric`` and ``combined`` also write the structure: ``metadata['up']`` (gravity, from the floor
plane), ``metadata['structure']`` (planes, up source, floor height) and, when the Scene has no
semantic masks yet, ``semantic_masks`` with the structure classes (floor, wall, ceiling; instance
id -1 there, as in the synthetic ground truth).

The result is a new Scene (the input is not modified) whose ``instance_masks`` hold ids shared
across views (-1 unlabelled), with the instance table recomputed from the geometry,
``metadata['segmentation']`` the method and ``metadata['segmentation_config']`` its options.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.instances.clustering import ClusteringConfig, cluster_scene
from sem3r.instances.lifting import LiftConfig, lift_masks, lift_scene
from sem3r.instances.mask_sources import view_masks
from sem3r.instances.proposals import ProposalConfig, geometric_proposals
from sem3r.instances.structure import STRUCTURE_CLASSES
from sem3r.registry import Registry
from sem3r.scene import Scene

_METHODS = Registry("segmentation method", noun="method")

METHODS = _METHODS.entries
"""Read-only, live view ``name -> Entry`` of the registered segmentation methods."""


@dataclass
class FeatureSegmentConfig:
    """Options of the ``iggt`` and ``perview`` methods.

    Attributes:
        checkpoint: IGGT weights (file, folder or hub id) used to predict instance features on the
            Scene's images; ``None`` uses the Scene's ``instance_features``.
        clustering: HDBSCAN clustering options (presets small / medium / large objects).
        resolution: model resolution when predicting features (a multiple of 14).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    checkpoint: str | None = None
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    resolution: int = 518
    device: str = "auto"

    def validate(self) -> None:
        """Raise :class:`Sem3RError` for a resolution that is not a positive multiple of 14."""
        if self.resolution < 14 or self.resolution % 14:
            raise Sem3RError(f"resolution must be a positive multiple of 14, got {self.resolution}")


@dataclass
class LiftSegmentConfig:
    """Options of the ``lift`` method.

    Attributes:
        source: name of the 2D mask source (``gt``, ``oversegment``, ``sam`` or a registered one).
        source_options: options of the source's config (e.g. ``{"model": "facebook/sam-vit-base"}``).
        lift: lifting and view-consensus merging thresholds.
    """

    source: str = "oversegment"
    source_options: dict[str, Any] = field(default_factory=dict)
    lift: LiftConfig = field(default_factory=LiftConfig)


@dataclass
class GeometricSegmentConfig:
    """Options of the ``geometric`` method (and of ``combined``, which only changes ``source``'s default).

    Attributes:
        proposals: structure detection, superpoints, joins and filtering
            (:class:`~sem3r.instances.proposals.ProposalConfig`; ``proposals.structure.up`` overrides up).
        source: 2D mask source combined with the geometry (``None``: geometry alone).
        source_options: options of the source's config.
        lift: lifting and view-consensus merging of the source's masks.
    """

    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    source: str | None = None
    source_options: dict[str, Any] = field(default_factory=dict)
    lift: LiftConfig = field(default_factory=LiftConfig)

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        self.proposals.validate()
        self.lift.validate()


@dataclass
class CombinedSegmentConfig(GeometricSegmentConfig):
    """Options of the ``combined`` method: :class:`GeometricSegmentConfig` with ``source="oversegment"``."""

    source: str | None = "oversegment"


def with_instance_features(scene: Scene, config: FeatureSegmentConfig) -> Scene:
    """``scene``, with ``instance_features`` predicted by ``config.checkpoint`` when one is given.

    Raises:
        Sem3RError: no checkpoint and the Scene has no instance features.
    """
    if config.checkpoint is None:
        if scene.instance_features is None:
            raise Sem3RError(
                "the scene has no instance features: pass an IGGT checkpoint (sem3r segment --checkpoint ...) "
                "or use --method lift"
            )
        return scene
    from sem3r.reconstruct.feedforward import Sem3RGeometry

    return predict_instance_features(scene, Sem3RGeometry.from_pretrained(config.checkpoint, device=config.device),
                                     config.resolution)


def predict_instance_features(scene: Scene, geometry, resolution: int = 518) -> Scene:
    """A copy of ``scene`` whose ``instance_features (N, H, W, C)`` are predicted by ``geometry`` (a
    :class:`~sem3r.reconstruct.feedforward.Sem3RGeometry` holding an IGGT) at model resolution
    ``resolution`` and mapped back to the Scene's own pixels."""
    from sem3r.reconstruct.preprocess import PreprocessConfig

    features = geometry.instance_features(scene, PreprocessConfig(target_size=resolution))
    out = scene.select_views(slice(None))
    out.instance_features = features.astype(np.float16)
    out.validate()
    return out


def segment_iggt(scene: Scene, config: FeatureSegmentConfig) -> Scene:
    """The ``iggt`` method: joint clustering of all views' instance features (see the module docstring)."""
    scene = with_instance_features(scene, config)
    return _with_masks(scene, cluster_scene(scene, config.clustering, per_view=False))


def segment_per_view(scene: Scene, config: FeatureSegmentConfig) -> Scene:
    """The ``perview`` method: each view's instance features clustered alone; no id is shared by two views."""
    scene = with_instance_features(scene, config)
    return _with_masks(scene, cluster_scene(scene, config.clustering, per_view=True))


def segment_lift(scene: Scene, config: LiftSegmentConfig) -> Scene:
    """The ``lift`` method: 2D masks from ``config.source`` lifted and merged across views."""
    return _with_masks(scene, lift_scene(scene, config.source, config.lift, **config.source_options))


def segment_geometric(scene: Scene, config: GeometricSegmentConfig) -> Scene:
    """The ``geometric`` / ``combined`` methods: structure removed, superpoints grouped into objects."""
    from tqdm import tqdm

    masks = lifted = None
    with tqdm(total=3 if config.source is not None else 1, desc=f"segment ({'combined' if config.source else 'geometric'})",
              unit="step", delay=1.0, leave=False) as bar:
        if config.source is not None:
            bar.set_postfix_str(f"2D masks ({config.source})")
            masks = view_masks(scene, config.source, **config.source_options)
            bar.update()
            bar.set_postfix_str("lifting")
            lifted = lift_masks(scene, masks, config.lift)
            bar.update()
        bar.set_postfix_str("structure and proposals")
        proposals = geometric_proposals(scene, config.proposals, lifted, masks)
        bar.update()
    out = _with_masks(scene, proposals.to_pixels(), {k: float(v) for k, v in enumerate(proposals.scores)})
    structure = proposals.structure
    if out.semantic_masks is None:
        out.semantic_masks = proposals.structure_pixels()
        out.metadata["class_names"] = list(STRUCTURE_CLASSES)
        out.update_instances()
    out.metadata["up"] = [float(v) for v in structure.up]
    out.metadata["structure"] = structure.metadata() | {"proposals": proposals.num_proposals,
                                                         "flat_objects": int(proposals.flat.sum())}
    if proposals.num_proposals == 0:
        out.metadata["structure"]["note"] = ("no object proposals: every reconstructed surface is floor, wall or "
                                             "ceiling, or too small to be an object")
    return out


def _with_masks(scene: Scene, masks: np.ndarray, scores: dict[int, float] | None = None) -> Scene:
    """A copy of ``scene`` with ``instance_masks = masks (N, H, W) int32`` and a fresh instance table."""
    out = scene.select_views(slice(None))
    out.instance_masks = np.asarray(masks, np.int32)
    out.validate()
    out.update_instances()
    if scores is not None:
        out.instances.scores = np.array([scores.get(int(i), 1.0) for i in out.instances.ids], np.float32)
    return out


def register_method(name: str, fn, config_cls, replace: bool = False) -> None:
    """Register a segmentation method ``fn(scene, config) -> Scene`` with its config dataclass.

    ``fn`` and ``config_cls`` may be ``"module:attribute"`` strings, imported on first use.
    """
    _METHODS.register(name, fn, config_cls, replace)


def get_method(name: str):
    """The registered segmentation method ``name`` (:class:`sem3r.registry.Entry`: ``fn``, ``config_cls``, ``load()``)."""
    return _METHODS.get(name)


def make_segment_config(method: str, config: Any = None, **options: Any) -> Any:
    """Build and validate the config of ``method`` (options override ``config``'s fields)."""
    return _METHODS.make_config(method, config, **options)


def segment(scene: Scene, method: Literal["iggt", "perview", "lift", "geometric", "combined"] | str = "iggt", config: Any = None,
            **options: Any) -> Scene:
    """Segment a reconstructed Scene into 3D-consistent instances.

    Args:
        scene: views with geometry (``depth`` or ``world_points``); not modified.
        method: ``iggt``, ``perview``, ``lift``, ``geometric``, ``combined`` or a registered method.
        config: the method's config instance (default: its defaults).
        **options: config fields to override, e.g. ``checkpoint="runs/iggt/model"``.

    Returns:
        A new Scene with ``instance_masks (N, H, W) int32`` (ids shared across views except for
        ``perview``, -1 unlabelled), its instance table, ``metadata['segmentation']`` and
        ``metadata['segmentation_config']``.

    Raises:
        Sem3RError: unknown method (the message lists the known ones), a bad option, or input the
            method cannot use (no geometry, no features, NaN features ...).

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(num_views=3, height=48, width=64, num_points=0)).scene
        >>> out = segment(scene, "lift", source="gt")
        >>> out.metadata["segmentation"], out.instance_masks.shape
        ('lift', (3, 48, 64))
    """
    if not isinstance(scene, Scene):
        raise Sem3RError(f"segment needs a Scene, got {type(scene).__name__}")
    fn, _ = _METHODS.get(method).load()
    config = _METHODS.make_config(method, config, **options)
    result = fn(scene, config)
    result.metadata["segmentation"] = method
    result.metadata["segmentation_config"] = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return result


register_method("iggt", segment_iggt, FeatureSegmentConfig)
register_method("perview", segment_per_view, FeatureSegmentConfig)
register_method("lift", segment_lift, LiftSegmentConfig)
register_method("geometric", segment_geometric, GeometricSegmentConfig)
register_method("combined", segment_geometric, CombinedSegmentConfig)
