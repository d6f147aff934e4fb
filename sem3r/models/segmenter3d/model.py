"""The OVSeg3R 3D instance segmenter (SegDINO3D-VL style, CPU scale): points in, query masks and classes out.

One scene per call, no batch dimension. The points (with colours, normals and the 2D features
sampled for them) are encoded into superpoint features
(:class:`~sem3r.models.segmenter3d.encoder.SuperpointEncoder`); the queries, seeded by the
superpoints the caller chooses (a random subset in training, all of them or a farthest-point sample
at inference), are refined by masked attention
(:class:`~sem3r.models.segmenter3d.decoder.QueryDecoder`); every query predicts a mask over the
superpoints and a sigmoid score per class of an open vocabulary given as text embeddings. The
module does no I/O and nothing in it depends on the number of classes or queries.
"""

from __future__ import annotations

import torch
from torch import nn

from sem3r.errors import Sem3RError
from sem3r.models.segmenter3d.config import Segmenter3DConfig
from sem3r.models.segmenter3d.decoder import QueryDecoder
from sem3r.models.segmenter3d.encoder import (
    SuperpointEncoder,
    normalize_points,
    pool_superpoints,
)


def _check_float(name: str, value: torch.Tensor | None, shape: tuple[int | None, ...]) -> None:
    """Raise unless ``value`` is a float tensor of ``shape`` (None: any size) with finite entries."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise Sem3RError(f"segmenter3d input {name} must be a float tensor, got {type(value).__name__}")
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise Sem3RError(f"segmenter3d input {name} has shape {tuple(value.shape)}, expected {expected}")
    finite = torch.isfinite(value)
    if not bool(finite.all()):
        row = int((~finite).reshape(value.shape[0], -1).any(1).nonzero()[0])
        raise Sem3RError(f"segmenter3d input {name} contains NaN or inf (row {row})")


def _check_ids(name: str, value: torch.Tensor, length: int | None, upper: int) -> None:
    """Raise unless ``value`` is a 1D integer tensor (of ``length`` when given) with entries in ``[0, upper)``."""
    if not isinstance(value, torch.Tensor) or value.dtype.is_floating_point or value.dtype == torch.bool or value.ndim != 1:
        raise Sem3RError(f"segmenter3d input {name} must be a 1D integer tensor")
    if length is not None and value.shape[0] != length:
        raise Sem3RError(f"segmenter3d input {name} has {value.shape[0]} entries, expected {length} (one per point)")
    if value.numel() == 0:
        raise Sem3RError(f"segmenter3d input {name} is empty")
    low, high = int(value.min()), int(value.max())
    if low < 0 or high >= upper:
        raise Sem3RError(f"segmenter3d input {name} has ids in [{low}, {high}], outside [0, {upper})")


class Segmenter3D(nn.Module):
    """Open-vocabulary 3D instance segmenter over superpoints (OVSeg3R's SegDINO3D-VL at CPU scale).

    Architecture (see :mod:`~sem3r.models.segmenter3d.encoder` and
    :mod:`~sem3r.models.segmenter3d.decoder` for the choices): points normalised by their mean and
    RMS radius (so outputs are invariant to translating the scene), a point MLP over
    ``[Fourier(xyz), colors, normals, features]``, mean pooling to superpoints plus a centroid
    embedding, ``encoder_layers`` self-attention blocks among superpoints; queries seeded from
    superpoints, ``decoder_layers`` layers of masked cross-attention, query self-attention and FFN;
    a shared head predicting masks (query-superpoint similarity) and sigmoid class logits (scaled
    cosine to the text embeddings plus a bias) from the initial queries and after every layer.

    Args:
        config: sizes (default :class:`Segmenter3DConfig`); validated.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> cfg = Segmenter3DConfig(feature_dim=8, text_dim=16, dim=32, heads=2)
        >>> model = Segmenter3D(cfg).eval()
        >>> P, S = 200, 12
        >>> xyz, colors = torch.rand(P, 3), torch.rand(P, 3)
        >>> normals = torch.nn.functional.normalize(torch.randn(P, 3), dim=1)
        >>> superpoints = torch.arange(P) % S
        >>> text = torch.nn.functional.normalize(torch.randn(5, 16), dim=1)
        >>> out = model(xyz, colors, normals, torch.rand(P, 8), superpoints, S, text, torch.tensor([0, 3, 7]))
        >>> out["mask_logits"].shape, out["class_logits"].shape, len(out["aux"])
        (torch.Size([3, 12]), torch.Size([3, 5]), 3)
    """

    def __init__(self, config: Segmenter3DConfig | None = None) -> None:
        super().__init__()
        self.config = config or Segmenter3DConfig()
        self.config.validate()
        self.encoder = SuperpointEncoder(self.config)
        self.decoder = QueryDecoder(self.config)

    @staticmethod
    def superpoint_centroids(xyz: torch.Tensor, superpoints: torch.Tensor, num_superpoints: int) -> torch.Tensor:
        """Mean position of every superpoint's points (0 for empty superpoints).

        Args:
            xyz: ``(P, 3)`` float points.
            superpoints: ``(P,)`` integer ids in ``[0, S)``.
            num_superpoints: ``S``.

        Returns:
            ``(S, 3)`` in ``xyz``'s dtype.

        Example:
            >>> xyz = torch.tensor([[0.0, 0, 0], [2.0, 0, 0], [5.0, 5, 5]])
            >>> Segmenter3D.superpoint_centroids(xyz, torch.tensor([1, 1, 0]), 2).tolist()
            [[5.0, 5.0, 5.0], [1.0, 0.0, 0.0]]
        """
        return pool_superpoints(xyz, superpoints, num_superpoints)

    def check_inputs(self, xyz: torch.Tensor, colors: torch.Tensor | None, normals: torch.Tensor | None,
                     features: torch.Tensor, superpoints: torch.Tensor, num_superpoints: int,
                     text: torch.Tensor, query_superpoints: torch.Tensor) -> None:
        """Raise :class:`Sem3RError` with a one-line message for the first bad input of :meth:`forward`.

        Checks types, shapes (against each other and the config's ``feature_dim``, ``text_dim``),
        finiteness (NaN or inf) and id ranges. ``colors`` / ``normals`` may be None when the config
        does not use them.
        """
        _check_float("xyz", xyz, (None, 3))
        points = xyz.shape[0]
        if points == 0:
            raise Sem3RError("segmenter3d input xyz has no points")
        if self.config.use_colors or colors is not None:
            _check_float("colors", colors, (points, 3))
        if self.config.use_normals or normals is not None:
            _check_float("normals", normals, (points, 3))
        _check_float("features", features, (points, self.config.feature_dim))
        if isinstance(num_superpoints, bool) or not isinstance(num_superpoints, int) or num_superpoints < 1:
            raise Sem3RError(f"segmenter3d num_superpoints must be a positive int, got {num_superpoints!r}")
        _check_ids("superpoints", superpoints, points, num_superpoints)
        _check_float("text", text, (None, self.config.text_dim))
        if text.shape[0] == 0:
            raise Sem3RError("segmenter3d input text has no classes (C = 0)")
        _check_ids("query_superpoints", query_superpoints, None, num_superpoints)

    def forward(self, xyz: torch.Tensor, colors: torch.Tensor | None, normals: torch.Tensor | None,
                features: torch.Tensor, superpoints: torch.Tensor, num_superpoints: int, text: torch.Tensor,
                query_superpoints: torch.Tensor) -> dict:
        """Instance masks over superpoints and open-vocabulary class logits for one scene.

        Args:
            xyz: ``(P, 3)`` float32 world points, metres (normalised inside).
            colors: ``(P, 3)`` float32 in ``[0, 1]`` (None allowed when ``use_colors`` is False).
            normals: ``(P, 3)`` float32 unit normals, zeros where unknown (None allowed when
                ``use_normals`` is False).
            features: ``(P, F)`` float32 2D features sampled for every point.
            superpoints: ``(P,)`` int64 superpoint ids in ``[0, S)``.
            num_superpoints: ``S``; ids no point carries are empty superpoints: zero features,
                never attended, their mask-logit columns carry no meaning.
            text: ``(C, D_t)`` float32 unit-norm text embeddings of the vocabulary, ``C >= 1``.
            query_superpoints: ``(Q,)`` int64 seed superpoint of every query, ``Q >= 1``.

        Returns:
            dict with ``mask_logits (Q, S)`` and ``class_logits (Q, C)`` of the last layer;
            ``aux``: ``decoder_layers`` dicts ``{"mask_logits", "class_logits"}`` (the initial
            queries' prediction, then every layer but the last) for deep supervision;
            ``superpoint_features (S, D)``; ``query_superpoints (Q,)`` (the input).

        Raises:
            Sem3RError: mismatched shapes, ids out of range, NaN or inf in an input.
        """
        self.check_inputs(xyz, colors, normals, features, superpoints, num_superpoints, text, query_superpoints)
        superpoints = superpoints.long()
        query_superpoints = query_superpoints.long()
        xyz_norm = normalize_points(xyz)
        centroids = pool_superpoints(xyz_norm, superpoints, num_superpoints)
        nonempty = torch.bincount(superpoints, minlength=num_superpoints) > 0
        superpoint_features = self.encoder(xyz_norm, colors, normals, features, superpoints, centroids, nonempty)
        text = torch.nn.functional.normalize(text, dim=1)
        predictions = self.decoder(superpoint_features, centroids, nonempty, query_superpoints, text)
        mask_logits, class_logits = predictions[-1]
        return {
            "mask_logits": mask_logits,
            "class_logits": class_logits,
            "aux": [{"mask_logits": m, "class_logits": c} for m, c in predictions[:-1]],
            "superpoint_features": superpoint_features,
            "query_superpoints": query_superpoints,
        }
