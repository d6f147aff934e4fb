"""Open-vocabulary semantics of 3D-consistent instances: embeddings, labels, queries, semantic maps.

An instance id names the same object in every view, so its embedding is fused over all views:

* :func:`mask_pool` (IGGT: masks as prompts for a VLM): average the dense VLM features inside the
  instance's masks over all views.
* :func:`crop_embeddings` (OpenMask3D): embed multi-scale crops around the instance's mask in its
  top views with the VLM's image tower and average them.

:func:`label_instances` classifies embeddings against a vocabulary (prompt-template ensembles),
:func:`query_instances` ranks instances for a free-form text, :func:`semantic_maps` and
:func:`semantic_points` turn instance labels into 2D and 3D semantic labels, and
:func:`label_scene` runs it all on a :class:`~sem3r.scene.Scene`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse

from sem3r.errors import Sem3RError
from sem3r.scene import InstanceTable, Scene
from sem3r.semantics.text import validate_class_names
from sem3r.semantics.vlm import ImageEncoder, check_images

DEFAULT_TEMPLATES = ("a photo of a {}.", "a {} in a room.")
"""Prompt templates averaged per class by :func:`label_instances`."""


def _check_ids(ids: np.ndarray) -> np.ndarray:
    """``(K,) int64`` unique non-negative ids, or :class:`Sem3RError`."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise Sem3RError(f"instance ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    ids = ids.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise Sem3RError(f"instance ids must be non-negative (-1 is 'unlabelled'), got {int(ids.min())}")
    if len(np.unique(ids)) != len(ids):
        raise Sem3RError("instance ids contain duplicates")
    return ids


def _check_masks(masks: np.ndarray, views: int | None = None) -> np.ndarray:
    """``(N, H, W)`` integer instance masks, or :class:`Sem3RError`."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or not np.issubdtype(masks.dtype, np.integer):
        raise Sem3RError(f"instance masks must be integer (N, H, W), got {masks.dtype} {masks.shape}")
    if views is not None and masks.shape[0] != views:
        raise Sem3RError(f"{masks.shape[0]} instance masks for {views} views")
    return masks


def _rows(masks: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each pixel's id in ``ids`` (same shape as ``masks``), -1 where the id is not listed."""
    order = np.argsort(ids)
    sorted_ids = ids[order]
    pos = np.clip(np.searchsorted(sorted_ids, masks), 0, max(len(ids) - 1, 0))
    hit = (sorted_ids[pos] == masks) if len(ids) else np.zeros(masks.shape, bool)
    return np.where(hit, order[pos], -1)


def _normalize(x: np.ndarray, what: str) -> np.ndarray:
    """Rows of ``x`` scaled to unit length; a zero or non-finite row raises :class:`Sem3RError`."""
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    bad = ~np.isfinite(norm[..., 0]) | (norm[..., 0] == 0)
    if bad.any():
        raise Sem3RError(f"{what} {int(np.flatnonzero(bad.reshape(-1))[0])} is zero or not finite")
    return x / norm


# ------------------------------------------------------------------------------------ mask pooling
@dataclass
class MaskPoolConfig:
    """Options of :func:`mask_pool`.

    Attributes:
        weighting: ``"pixel"``: every pixel of the instance in every view counts once (views where it
            is large dominate); ``"view"``: average per view first, then average the views it appears
            in with equal weight.
        normalize: L2-normalise each pooled embedding (for cosine similarity); ``False`` returns the
            plain weighted mean.
    """

    weighting: Literal["pixel", "view"] = "pixel"
    normalize: bool = True

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.weighting not in ("pixel", "view"):
            raise Sem3RError(f"mask pooling weighting must be 'pixel' or 'view', got {self.weighting!r}")


def mask_pool(features: np.ndarray, masks: np.ndarray, ids: np.ndarray,
              config: MaskPoolConfig | None = None) -> np.ndarray:
    """Average dense features inside each instance's masks, fused over all views (IGGT).

    Features on a coarser grid than the masks are read at the grid cell containing each mask
    pixel's centre (nearest-neighbour upsampling of the features), and the mean is taken over the
    instance's pixels. This equals averaging over the grid cells weighted by how many of the
    instance's pixels fall in each, so an instance smaller than a patch still gets an embedding
    (downsampling the masks to the grid would lose it). With features at the mask resolution it is
    exactly the mean of the pixel features inside the mask.

    Args:
        features: ``(N, h, w, D)`` float dense features (e.g. :meth:`ImageEncoder.dense_features`).
        masks: ``(N, H, W)`` int instance ids, -1 = unlabelled.
        ids: ``(K,)`` int instance ids to pool (each must have at least one pixel).
        config: a :class:`MaskPoolConfig` (default: pixel weighting, normalised).

    Returns:
        ``(K, D) float32``: the weighted mean per id (unit rows when ``config.normalize``).

    Raises:
        Sem3RError: mismatched view counts, non-finite features (the view is named), malformed or
            duplicate ids, an id with no pixel, or a zero pooled vector to normalise.

    Example:
        >>> f = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
        >>> m = np.array([[[0, 0], [1, -1]]], np.int32)
        >>> mask_pool(f, m, np.array([0, 1]), MaskPoolConfig(normalize=False))
        array([[1., 2.],
               [4., 5.]], dtype=float32)
    """
    config = config or MaskPoolConfig()
    config.validate()
    features = np.asarray(features)
    if features.ndim != 4 or not np.issubdtype(features.dtype, np.floating):
        raise Sem3RError(f"features must be float (N, h, w, D), got {features.dtype} {features.shape}")
    n, h, w, dim = features.shape
    masks = _check_masks(masks, n)
    ids = _check_ids(ids)
    bad = ~np.isfinite(features).reshape(n, -1).all(axis=1)
    if bad.any():
        raise Sem3RError(f"features contain NaN or inf in view {int(np.argmax(bad))}")
    big_h, big_w = masks.shape[1:]
    cell_y = np.minimum((2 * np.arange(big_h) + 1) * h // (2 * big_h), h - 1)
    cell_x = np.minimum((2 * np.arange(big_w) + 1) * w // (2 * big_w), w - 1)
    cells = (np.arange(n)[:, None, None] * h + cell_y[None, :, None]) * w + cell_x[None, None, :]
    rows = _rows(masks, ids)
    inside = rows >= 0
    row, cell = rows[inside], cells[inside]
    view = np.broadcast_to(np.arange(n)[:, None, None], masks.shape)[inside]
    per_view = np.bincount(row * n + view, minlength=len(ids) * n).reshape(len(ids), n)
    counts = per_view.sum(axis=1)
    if (counts == 0).any():
        raise Sem3RError(f"instance id {int(ids[np.argmax(counts == 0)])} has no pixel in the masks")
    weight = np.ones(len(row)) if config.weighting == "pixel" else 1.0 / per_view[row, view]
    matrix = scipy.sparse.coo_matrix((weight, (row, cell)), shape=(len(ids), n * h * w)).tocsr()
    pooled = matrix @ features.reshape(-1, dim).astype(np.float64)
    pooled /= np.asarray(matrix.sum(axis=1))
    if config.normalize:
        pooled = _normalize(pooled, "pooled embedding of instance row")
    return pooled.astype(np.float32)


# ------------------------------------------------------------------------------------------- crops
@dataclass
class CropConfig:
    """Options of :func:`crop_embeddings` (OpenMask3D's multi-scale crops).

    Attributes:
        scales: each crop is the mask's bounding box scaled about its centre by these factors
            (clipped to the image).
        top_views: an instance is embedded from the views where it has the most pixels, at most this many.
    """

    scales: tuple[float, ...] = (1.0, 1.5, 2.0)
    top_views: int = 5

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if not len(self.scales) or any(not np.isfinite(s) or s < 1.0 for s in self.scales):
            raise Sem3RError(f"crop scales must be a non-empty list of finite factors >= 1, got {self.scales!r}")
        if isinstance(self.top_views, bool) or not isinstance(self.top_views, int) or self.top_views < 1:
            raise Sem3RError(f"crop top_views must be a positive int, got {self.top_views!r}")


def crop_boxes(masks: np.ndarray, ids: np.ndarray, config: CropConfig | None = None) -> np.ndarray:
    """The crops :func:`crop_embeddings` takes: top views per instance and scaled bounding boxes.

    Args:
        masks: ``(N, H, W)`` int instance ids, -1 = unlabelled.
        ids: ``(K,)`` int instance ids (each must have at least one pixel).
        config: a :class:`CropConfig`.

    Returns:
        ``(B, 6) int64`` rows ``(row, view, y0, y1, x0, x1)``: the instance's row in ``ids``, the view,
        and the half-open pixel box, ordered by row, then view rank (most pixels first), then scale.

    Raises:
        Sem3RError: malformed masks or ids, or an id with no pixel.

    Example:
        >>> m = np.full((1, 6, 6), -1, np.int32); m[0, 2:4, 2:4] = 7
        >>> crop_boxes(m, np.array([7]), CropConfig(scales=(1.0, 2.0))).tolist()
        [[0, 0, 2, 4, 2, 4], [0, 0, 1, 5, 1, 5]]
    """
    config = config or CropConfig()
    config.validate()
    masks = _check_masks(masks)
    ids = _check_ids(ids)
    n, big_h, big_w = masks.shape
    k = len(ids)
    rows = _rows(masks, ids)
    v, y, x = np.nonzero(rows >= 0)
    key = rows[v, y, x] * n + v
    counts = np.bincount(key, minlength=k * n).reshape(k, n)
    if (counts.sum(axis=1) == 0).any():
        raise Sem3RError(f"instance id {int(ids[np.argmax(counts.sum(axis=1) == 0)])} has no pixel in the masks")
    lo_y, hi_y = np.full(k * n, big_h), np.full(k * n, -1)
    lo_x, hi_x = np.full(k * n, big_w), np.full(k * n, -1)
    np.minimum.at(lo_y, key, y)
    np.maximum.at(hi_y, key, y)
    np.minimum.at(lo_x, key, x)
    np.maximum.at(hi_x, key, x)
    rank = np.argsort(-counts, axis=1, kind="stable")[:, :config.top_views]
    row_idx = np.repeat(np.arange(k), rank.shape[1])
    view_idx = rank.reshape(-1)
    keep = counts[row_idx, view_idx] > 0
    row_idx, view_idx = row_idx[keep], view_idx[keep]
    sel = row_idx * n + view_idx
    scales = np.asarray(config.scales, np.float64)
    cy, cx = (lo_y[sel] + hi_y[sel] + 1) / 2.0, (lo_x[sel] + hi_x[sel] + 1) / 2.0
    half_h = (hi_y[sel] - lo_y[sel] + 1)[:, None] * scales[None] / 2.0
    half_w = (hi_x[sel] - lo_x[sel] + 1)[:, None] * scales[None] / 2.0
    y0 = np.clip(np.floor(cy[:, None] - half_h + 1e-9), 0, big_h)
    y1 = np.clip(np.ceil(cy[:, None] + half_h - 1e-9), 0, big_h)
    x0 = np.clip(np.floor(cx[:, None] - half_w + 1e-9), 0, big_w)
    x1 = np.clip(np.ceil(cx[:, None] + half_w - 1e-9), 0, big_w)
    s = len(scales)
    return np.stack([np.repeat(row_idx, s), np.repeat(view_idx, s), y0.reshape(-1), y1.reshape(-1),
                     x0.reshape(-1), x1.reshape(-1)], axis=1).astype(np.int64)


def crop_embeddings(images: np.ndarray, masks: np.ndarray, ids: np.ndarray, encoder: ImageEncoder,
                    config: CropConfig | None = None) -> np.ndarray:
    """Instance embeddings from multi-scale crops in the top views (OpenMask3D).

    For each instance, the ``top_views`` views with the most mask pixels are chosen; in each, the
    mask's bounding box scaled by every factor in ``scales`` is cropped (see :func:`crop_boxes`)
    and embedded with ``encoder.crop_features``; the unit crop embeddings are averaged over scales
    and views and the mean is L2-normalised.

    Args:
        images: ``(N, H, W, 3) uint8``.
        masks: ``(N, H, W)`` int instance ids, -1 = unlabelled.
        ids: ``(K,)`` int instance ids (each must have at least one pixel).
        encoder: an :class:`~sem3r.semantics.vlm.ImageEncoder`.
        config: a :class:`CropConfig`.

    Returns:
        ``(K, D) float32``, unit rows.

    Raises:
        Sem3RError: malformed images, masks of another size, malformed ids or an id with no pixel.
    """
    images = check_images(images)
    masks = _check_masks(masks, images.shape[0])
    if masks.shape[1:] != images.shape[1:3]:
        raise Sem3RError(f"instance masks {masks.shape[1:]} do not match the images {images.shape[1:3]}")
    ids = _check_ids(ids)
    boxes = crop_boxes(masks, ids, config)
    crops = [images[v, y0:y1, x0:x1] for _, v, y0, y1, x0, x1 in boxes]
    features = np.asarray(encoder.crop_features(crops), np.float64)
    summed = np.zeros((len(ids), features.shape[1]))
    np.add.at(summed, boxes[:, 0], features)
    return _normalize(summed, "crop embedding of instance row").astype(np.float32)


# ------------------------------------------------------------------------------- labels and queries
def class_text_embeddings(vocabulary: Sequence[str], encoder: ImageEncoder,
                          templates: Sequence[str] = DEFAULT_TEMPLATES) -> np.ndarray:
    """One text embedding per class: the mean of its unit prompt embeddings over ``templates``, normalised.

    Args:
        vocabulary: ``C`` class names (checked with :func:`~sem3r.semantics.text.validate_class_names`).
        encoder: anything with ``text_features(texts) -> (T, D)``.
        templates: format strings with ``{}`` for the name.

    Returns:
        ``(C, D) float32``, unit rows.

    Raises:
        Sem3RError: a bad vocabulary, no templates, or a template without ``{}``.
    """
    names = validate_class_names(vocabulary)
    templates = list(templates)
    if not templates or any(not isinstance(t, str) or "{}" not in t for t in templates):
        raise Sem3RError(f"prompt templates must be a non-empty list of strings containing '{{}}', got {templates!r}")
    prompts = [t.format(name) for name in names for t in templates]
    text = _normalize(np.asarray(encoder.text_features(prompts), np.float64), "text embedding of prompt")
    mean = text.reshape(len(names), len(templates), -1).mean(axis=1)
    return _normalize(mean, "text embedding of class").astype(np.float32)


def _check_embeddings(embeddings: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Unit rows of a ``(K, D)`` float array, or :class:`Sem3RError`."""
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or not np.issubdtype(embeddings.dtype, np.floating):
        raise Sem3RError(f"instance embeddings must be float (K, D), got {embeddings.dtype} {embeddings.shape}")
    if dim is not None and embeddings.shape[1] != dim:
        raise Sem3RError(f"instance embeddings have dimension {embeddings.shape[1]}, the text embeddings {dim}")
    return _normalize(embeddings, "embedding of instance row") if len(embeddings) else embeddings.astype(np.float64)


def label_instances(embeddings: np.ndarray, vocabulary: Sequence[str], encoder: ImageEncoder,
                    templates: Sequence[str] = DEFAULT_TEMPLATES,
                    temperature: float = 100.0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Classify instance embeddings against a vocabulary.

    Cosine similarities to the class text embeddings (:func:`class_text_embeddings`) times
    ``temperature`` (CLIP's logit scale, 100) go through a softmax over the classes; the label is the
    arg-max and its score that probability.

    Args:
        embeddings: ``(K, D)`` float instance embeddings (normalised here).
        vocabulary: ``C`` class names.
        encoder: anything with ``text_features``.
        templates: prompt templates averaged per class.
        temperature: logit scale of the softmax.

    Returns:
        ``labels`` (``K`` names from ``vocabulary``), ``scores (K,) float32`` in ``[0, 1]`` and
        ``probs (K, C) float32`` (rows sum to 1).

    Raises:
        Sem3RError: an empty or duplicate vocabulary, malformed or zero embeddings, or a dimension
            that differs from the text embeddings'.
    """
    names = validate_class_names(vocabulary)
    if not np.isfinite(temperature) or temperature <= 0:
        raise Sem3RError(f"temperature must be a positive number, got {temperature!r}")
    text = class_text_embeddings(names, encoder, templates).astype(np.float64)
    emb = _check_embeddings(embeddings, text.shape[1])
    logits = temperature * emb @ text.T
    logits -= logits.max(axis=1, keepdims=True) if len(emb) else 0.0
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    best = probs.argmax(axis=1)
    return [names[i] for i in best], probs[np.arange(len(best)), best].astype(np.float32), probs.astype(np.float32)


def query_instances(embeddings: np.ndarray, text: str, encoder: ImageEncoder, ids: np.ndarray,
                    top_k: int | None = None) -> list[tuple[int, float]]:
    """Rank instances for a free-form query such as ``"the red chair"``.

    Args:
        embeddings: ``(K, D)`` float instance embeddings (normalised here).
        text: the query, embedded verbatim with ``encoder.text_features``.
        encoder: anything with ``text_features``.
        ids: ``(K,)`` int instance ids of the embedding rows.
        top_k: keep the best ``top_k`` (``None``: all).

    Returns:
        ``(id, cosine similarity)`` pairs, best first (ties keep the row order).

    Raises:
        Sem3RError: an empty query, ids that do not match the rows, or malformed embeddings.
    """
    if not isinstance(text, str) or not text.strip():
        raise Sem3RError(f"the query must be a non-empty string, got {text!r}")
    ids = _check_ids(ids)
    query = _normalize(np.asarray(encoder.text_features([text.strip()]), np.float64), "query embedding")[0]
    emb = _check_embeddings(embeddings, len(query))
    if len(ids) != len(emb):
        raise Sem3RError(f"{len(ids)} instance ids for {len(emb)} embeddings")
    scores = emb @ query
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [(int(ids[i]), float(scores[i])) for i in order]


# ---------------------------------------------------------------------------------- semantic maps
def _class_of_instance(ids: np.ndarray, labels: Sequence[str], vocabulary: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` and the class index of each (``""`` -> -1)."""
    names = validate_class_names(vocabulary)
    ids = _check_ids(ids)
    labels = list(labels)
    if len(labels) != len(ids):
        raise Sem3RError(f"{len(labels)} labels for {len(ids)} instance ids")
    index = {name: i for i, name in enumerate(names)}
    unknown = [lab for lab in labels if lab and lab not in index]
    if unknown:
        raise Sem3RError(f"label '{unknown[0]}' is not in the vocabulary")
    return ids, np.array([index[lab] if lab else -1 for lab in labels], np.int32).reshape(-1)


def semantic_points(instance_ids: np.ndarray, ids: np.ndarray, labels: Sequence[str],
                    vocabulary: Sequence[str]) -> np.ndarray:
    """Class index of every element (point or pixel) from its instance's label.

    Args:
        instance_ids: ``(...)`` int instance ids, e.g. ``(M,)`` per 3D point; -1 = unlabelled.
        ids: ``(K,)`` int instance ids.
        labels: ``K`` labels from ``vocabulary`` (``""`` = unknown).
        vocabulary: ``C`` class names.

    Returns:
        ``(...) int32`` index into ``vocabulary``; -1 for unlabelled points, unlisted ids and
        unknown labels.

    Raises:
        Sem3RError: labels and ids of different lengths, a label outside the vocabulary, bad ids.

    Example:
        >>> semantic_points(np.array([3, -1, 5, 9]), np.array([5, 3]), ["sofa", "chair"], ["chair", "sofa"])
        array([ 0, -1,  1, -1], dtype=int32)
    """
    ids, classes = _class_of_instance(ids, labels, vocabulary)
    instance_ids = np.asarray(instance_ids)
    if not np.issubdtype(instance_ids.dtype, np.integer):
        raise Sem3RError(f"instance ids must be integers, got {instance_ids.dtype}")
    rows = _rows(instance_ids.astype(np.int64), ids)
    lut = np.append(classes, np.int32(-1))
    return lut[rows].astype(np.int32)


def semantic_maps(instance_masks: np.ndarray, ids: np.ndarray, labels: Sequence[str],
                  vocabulary: Sequence[str]) -> np.ndarray:
    """2D semantic maps from instance masks and instance labels.

    Args:
        instance_masks: ``(N, H, W)`` int instance ids, -1 = unlabelled.
        ids: ``(K,)`` int instance ids.
        labels: ``K`` labels from ``vocabulary`` (``""`` = unknown).
        vocabulary: ``C`` class names.

    Returns:
        ``(N, H, W) int32`` class index into ``vocabulary``, -1 = unlabelled.

    Raises:
        Sem3RError: malformed masks, or see :func:`semantic_points`.
    """
    return semantic_points(_check_masks(instance_masks), ids, labels, vocabulary)


# ------------------------------------------------------------------------------------------- stage
@dataclass
class LabelSceneConfig:
    """Options of :func:`label_scene`.

    Attributes:
        method: ``"pool"``: :func:`mask_pool` of ``dense_features``; ``"crops"``: :func:`crop_embeddings`.
        templates: prompt templates averaged per class.
        temperature: softmax logit scale.
        pool: options of :func:`mask_pool` (used by ``"pool"``; always normalised).
        crops: options of :func:`crop_embeddings` (used by ``"crops"``).
    """

    method: Literal["pool", "crops"] = "pool"
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    temperature: float = 100.0
    pool: MaskPoolConfig = dataclasses.field(default_factory=MaskPoolConfig)
    crops: CropConfig = dataclasses.field(default_factory=CropConfig)

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.method not in ("pool", "crops"):
            raise Sem3RError(f"label_scene method must be 'pool' or 'crops', got {self.method!r}")
        self.pool.validate()
        self.crops.validate()


def instance_embeddings(scene: Scene, encoder: ImageEncoder, config: LabelSceneConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every instance in ``scene.instance_masks`` (ids ``>= 0``), fused over views.

    Args:
        scene: a Scene with ``instance_masks``.
        encoder: an :class:`~sem3r.semantics.vlm.ImageEncoder`.
        config: chooses the method (:class:`LabelSceneConfig`).

    Returns:
        ``ids (K,) int32`` (sorted) and ``embeddings (K, D) float32`` unit rows.

    Raises:
        Sem3RError: the scene has no instance masks.
    """
    config = config or LabelSceneConfig()
    config.validate()
    if scene.instance_masks is None:
        raise Sem3RError("the scene has no instance masks; run an instance segmentation first")
    masks = scene.instance_masks
    ids = np.unique(masks[masks >= 0])
    if config.method == "pool":
        pool = dataclasses.replace(config.pool, normalize=True)
        emb = mask_pool(encoder.dense_features(scene.images), masks, ids, pool) if len(ids) else np.zeros((0, encoder.dim), np.float32)
    else:
        emb = crop_embeddings(scene.images, masks, ids, encoder, config.crops) if len(ids) else np.zeros((0, encoder.dim), np.float32)
    return ids.astype(np.int32), emb


def label_scene(scene: Scene, vocabulary: Sequence[str], encoder: ImageEncoder,
                config: LabelSceneConfig | None = None) -> Scene:
    """Open-vocabulary labels for the instances of a Scene.

    Every instance in ``instance_masks`` is embedded (:func:`instance_embeddings`) and classified
    (:func:`label_instances`). The returned Scene shares the arrays of ``scene`` except for: an
    instance table whose ``labels``, ``semantic_ids`` and ``scores`` (softmax probability) are set
    for the instances seen in the masks (rows of the old table with no pixel get ``""``, -1 and 0;
    instances missing from the table are appended with empty geometry), ``semantic_masks`` from
    :func:`semantic_maps`, and ``metadata['class_names'] = vocabulary``.

    Args:
        scene: a Scene with ``instance_masks``.
        vocabulary: ``C`` class names.
        encoder: an :class:`~sem3r.semantics.vlm.ImageEncoder`.
        config: a :class:`LabelSceneConfig`.

    Returns:
        The labelled Scene (``scene`` itself is not modified).

    Raises:
        Sem3RError: no instance masks, or a bad vocabulary.
    """
    config = config or LabelSceneConfig()
    config.validate()
    names = validate_class_names(vocabulary)
    ids, emb = instance_embeddings(scene, encoder, config)
    labels, scores, _ = label_instances(emb, names, encoder, config.templates, config.temperature)
    classes = semantic_points(ids, ids, labels, names)
    old = scene.instances
    missing = np.setdiff1d(ids, old.ids)
    k = len(old) + len(missing)
    table = InstanceTable(
        ids=np.concatenate([old.ids, missing]).astype(np.int32),
        labels=[""] * k,
        semantic_ids=np.full(k, -1, np.int32),
        scores=np.zeros(k, np.float32),
        box_min=np.concatenate([old.box_min, np.zeros((len(missing), 3), np.float32)]),
        box_max=np.concatenate([old.box_max, np.zeros((len(missing), 3), np.float32)]),
        centroids=np.concatenate([old.centroids, np.zeros((len(missing), 3), np.float32)]),
        point_counts=np.concatenate([old.point_counts, np.zeros(len(missing), np.int64)]),
    )
    at = _rows(ids.astype(np.int64), table.ids.astype(np.int64))
    for row, label in zip(at.tolist(), labels):
        table.labels[row] = label
    table.semantic_ids[at] = classes
    table.scores[at] = scores
    return dataclasses.replace(
        scene,
        instances=table,
        semantic_masks=semantic_maps(scene.instance_masks, ids, labels, names),
        metadata={**scene.metadata, "class_names": names},
    )
