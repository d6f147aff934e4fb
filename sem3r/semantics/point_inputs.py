"""What the 3D instance segmenter reads: points, superpoints and 2D features through the correspondence.

OVSeg3R (section 3.1) prepares, for a reconstructed video, the point cloud with its 2D-3D
correspondence record, per-view 2D instance masks and class names from a 2D segmenter, per-point 2D
features sampled from the segmenter's feature maps (eq. 2), and superpoints (IBSp, section 3.3).
:func:`prepare_point_inputs` does exactly that for a :class:`~sem3r.scene.Scene`, for training and
inference alike.

**2D features.** The 2D segmenter of the paper (DINO-X) hands over image- and object-level features
that already carry its open-vocabulary semantics. Ours is any mask source of
:mod:`sem3r.instances.mask_sources` plus, where known, the class name of each 2D mask. The feature
map of a view is the text embedding of each pixel's 2D class (zeros where no 2D instance or no
class), at ``1 / feature_stride`` of the image resolution like a backbone's feature map; each point
samples it bilinearly at its recorded pixel. This is how a class detected in 2D, also a class never
seen in 3D training, reaches the 3D model in the embedding space it classifies in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sem3r.config import dataclass_from_dict
from sem3r.errors import Sem3RError
from sem3r.geometry.voxels import group_majority
from sem3r.instances.mask_sources import view_masks as mask_source_masks
from sem3r.reconstruct.correspondence import (
    Correspondence,
    CorrespondenceConfig,
    build_correspondence,
)
from sem3r.scene import Scene
from sem3r.superpoints import SuperpointConfig, scene_superpoints


@dataclass
class PointInputsConfig:
    """How a Scene becomes the segmenter's inputs.

    Attributes:
        correspondence: pixels -> points (stride, voxel merging).
        superpoints: the superpoint graph and Felzenszwalb settings.
        ibsp: cut superpoint-graph edges across 2D instance boundaries (OVSeg3R IBSp); ``False``
            gives geometric-only superpoints.
        feature_stride: the 2D feature maps have ``1 / feature_stride`` of the image resolution.
    """

    correspondence: CorrespondenceConfig = field(default_factory=lambda: CorrespondenceConfig(voxel_size=0.04))
    superpoints: SuperpointConfig = field(default_factory=SuperpointConfig)
    ibsp: bool = True
    feature_stride: int = 4

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        self.correspondence.validate()
        self.superpoints.validate()
        if self.feature_stride < 1:
            raise Sem3RError(f"feature_stride must be at least 1, got {self.feature_stride}")

    @classmethod
    def from_dict(cls, doc) -> PointInputsConfig:
        """Build from a parsed JSON object (nested sections); unknown keys are an error."""
        return dataclass_from_dict(cls, doc, "point inputs config")


@dataclass
class PointInputs:
    """A scene prepared for the segmenter (``P`` points, ``S`` superpoints, ``N`` views).

    Attributes:
        correspondence: the 2D-3D record of the points.
        colors: ``(P, 3) float32`` in ``[0, 1]``.
        normals: ``(P, 3) float32`` unit normals oriented toward the point's camera (the
            superpoint graph's own PCA normals, ``superpoints.normal_k`` neighbours).
        features: ``(P, D) float32`` sampled 2D features (text embeddings of the 2D classes).
        superpoints: ``(P,) int64`` superpoint ids ``0..S-1``.
        view_labels: ``(N, P) int32`` view-wise 3D annotations: each view's 2D instance id of the
            points it reconstructed, -1 elsewhere.
        view_classes: ``(N, G) int64`` vocabulary index of 2D instance ``g`` of view ``n``, -1
            when the 2D mask has no class in the vocabulary (``G`` = largest 2D id + 1).
    """

    correspondence: Correspondence
    colors: np.ndarray
    normals: np.ndarray
    features: np.ndarray
    superpoints: np.ndarray
    view_labels: np.ndarray
    view_classes: np.ndarray

    @property
    def num_superpoints(self) -> int:
        """``S``."""
        return int(self.superpoints.max()) + 1 if len(self.superpoints) else 0

    def seen(self) -> np.ndarray:
        """``(N, P) bool``: which views reconstructed each point (OVSeg3R's view-belonging mask)."""
        return self.correspondence.observed().toarray() > 0

    def model_inputs(self, text: np.ndarray, query_superpoints: np.ndarray) -> dict[str, torch.Tensor]:
        """Keyword arguments of :class:`~sem3r.models.segmenter3d.Segmenter3D`'s forward.

        Args:
            text: ``(C, D_t)`` text embeddings of the vocabulary.
            query_superpoints: ``(Q,)`` superpoints that seed the queries.
        """
        return {
            "xyz": torch.from_numpy(self.correspondence.points.astype(np.float32)),
            "colors": torch.from_numpy(self.colors),
            "normals": torch.from_numpy(self.normals),
            "features": torch.from_numpy(self.features),
            "superpoints": torch.from_numpy(self.superpoints),
            "num_superpoints": self.num_superpoints,
            "text": torch.as_tensor(text, dtype=torch.float32),
            "query_superpoints": torch.as_tensor(query_superpoints, dtype=torch.int64),
        }


def detection_classes(scene: Scene, view_masks: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """The class of every 2D instance, as a 2D segmenter that names what it finds would give it.

    A 2D instance takes the majority of the Scene's ``semantic_masks`` over its pixels (a stand-in
    for the class a detector such as DINO-X reports), mapped to ``vocabulary`` by name.

    Args:
        scene: a Scene with ``semantic_masks`` and ``metadata['class_names']``; without them every
            2D instance is unclassified.
        view_masks: ``(N, H, W) int`` per-view 2D instance ids, -1 = none.
        vocabulary: the class names the model classifies into.

    Returns:
        ``(N, G) int64`` vocabulary index per view and 2D id (``G`` = largest id + 1), -1 where
        the class is unknown or outside the vocabulary.
    """
    view_masks = np.asarray(view_masks)
    num = int(view_masks.max(initial=-1)) + 1
    out = np.full((len(view_masks), num), -1, np.int64)
    if scene.semantic_masks is None or not scene.class_names or num == 0:
        return out
    lookup = {name: i for i, name in enumerate(vocabulary)}
    to_vocab = np.array([lookup.get(name, -1) for name in scene.class_names] + [-1], np.int64)
    views = np.broadcast_to(np.arange(len(view_masks))[:, None, None], view_masks.shape)
    keep = (view_masks >= 0) & (scene.semantic_masks >= 0)
    groups, winner, _, _ = group_majority(views[keep] * num + view_masks[keep], scene.semantic_masks[keep])
    out.reshape(-1)[groups] = to_vocab[np.minimum(winner, len(scene.class_names))]
    return out


def scene_annotations(scene: Scene, vocabulary: list[str], mask_source: str = "gt", seed: int = 0,
                      **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-view 2D instance masks and their classes from a 2D mask source.

    Args:
        scene: the Scene.
        vocabulary: class names; each 2D instance's class is looked up here.
        mask_source: name of a :mod:`sem3r.instances.mask_sources` source.
        seed: seed of the source (``gt`` permutes ids per view with it).
        **options: further options of the source.

    Returns:
        ``masks (N, H, W) int32`` and ``classes (N, G) int64`` (see
        :func:`~sem3r.semantics.point_inputs.detection_classes`). Only the ``gt`` source names its
        masks (from the Scene's semantic masks); the other sources' masks are unclassified (-1).
    """
    opts = dict(options)
    if mask_source != "gt":
        masks = mask_source_masks(scene, mask_source, **opts)
        return masks, np.full((len(masks), int(masks.max(initial=-1)) + 1), -1, np.int64)
    opts.setdefault("seed", seed)
    masks = mask_source_masks(scene, mask_source, **opts)
    return masks, detection_classes(scene, masks, vocabulary)


def detection_feature_maps(view_masks: np.ndarray, view_classes: np.ndarray, text: np.ndarray, stride: int) -> torch.Tensor:
    """Per-view 2D feature maps: the text embedding of each pixel's 2D class (see the module docstring).

    Args:
        view_masks: ``(N, H, W) int`` 2D instance ids, -1 = none.
        view_classes: ``(N, G) int64`` vocabulary index per 2D id, -1 = unknown.
        text: ``(C, D) float`` text embeddings of the vocabulary.
        stride: output resolution ``ceil(H / stride) x ceil(W / stride)`` (area-averaged).

    Returns:
        ``(N, D, h, w) float32``.
    """
    text = torch.as_tensor(text, dtype=torch.float32)
    table = torch.cat([text, torch.zeros(1, text.shape[1])])        # row C: no class
    masks = torch.as_tensor(np.asarray(view_masks), dtype=torch.int64)
    classes = torch.as_tensor(view_classes, dtype=torch.int64)
    n = masks.shape[0]
    cls = torch.full_like(masks, len(text))
    labelled = masks >= 0
    views = torch.arange(n).view(n, 1, 1).expand_as(masks)
    if classes.shape[1]:
        found = classes[views[labelled], masks[labelled]]
        cls[labelled] = torch.where(found >= 0, found, torch.full_like(found, len(text)))
    maps = table[cls].permute(0, 3, 1, 2)
    if stride > 1:
        maps = F.avg_pool2d(maps, stride, stride, ceil_mode=True)
    return maps.contiguous()


def prepare_point_inputs(scene: Scene, view_masks: np.ndarray, view_classes: np.ndarray, text: np.ndarray,
                         config: PointInputsConfig | None = None) -> PointInputs:
    """Points, superpoints, normals, 2D features and view-wise annotations of a reconstructed Scene.

    Args:
        scene: a Scene with depth or world points.
        view_masks: ``(N, H, W) int`` per-view 2D instance ids from a 2D segmenter, -1 = none.
        view_classes: ``(N, G) int64`` vocabulary index per 2D id (:func:`detection_classes`).
        text: ``(C, D) float32`` text embeddings of the vocabulary.
        config: see :class:`PointInputsConfig`.

    Returns:
        :class:`PointInputs`.

    Raises:
        Sem3RError: no geometry, mismatched mask shapes, too few points.
    """
    config = config or PointInputsConfig()
    config.validate()
    view_masks = np.asarray(view_masks)
    if view_masks.shape != (scene.num_views, scene.height, scene.width):
        raise Sem3RError(f"2D masks must have shape {(scene.num_views, scene.height, scene.width)}, got {view_masks.shape}")
    corr = build_correspondence(scene, config.correspondence)
    if corr.num_points < config.superpoints.normal_k:
        raise Sem3RError(f"the scene has {corr.num_points} reconstructed points; "
                         f"at least {config.superpoints.normal_k} are needed")
    view_labels = corr.lift_view_masks(view_masks)
    superpoints, normals = scene_superpoints(corr, config.superpoints, view_masks=view_masks if config.ibsp else None,
                                             return_normals=True, lifted=view_labels)
    maps = detection_feature_maps(view_masks, view_classes, text, config.feature_stride)
    return PointInputs(
        correspondence=corr,
        colors=corr.colors.astype(np.float32) / 255.0,
        normals=normals.astype(np.float32),
        features=corr.sample(maps).numpy(),
        superpoints=np.asarray(superpoints, np.int64),
        view_labels=view_labels,
        view_classes=np.asarray(view_classes, np.int64),
    )
