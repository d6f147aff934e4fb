"""Query decoder of the 3D instance segmenter: superpoint-seeded queries refined by masked attention.

OVSeg3R (section 3.1.3) selects superpoints as the initial object queries and refines them with a
multi-layer decoder in which each query cross-attends to the superpoint features (masked by the
previous layer's mask prediction), then the queries attend to each other, then a feed-forward
network updates them; masks are the similarity of queries and superpoint features, classes the
similarity of queries and text embeddings. Choices (Mask2Former / grounding-DINO practice where
the paper is silent):

* A query's content starts as its seed superpoint's feature; its position embedding is the
  decoder's :class:`~sem3r.models.segmenter3d.encoder.PositionEncoding` of the seed's centroid,
  the same embedding that is added to the superpoint keys, so attention can use proximity. Nothing
  depends on the order of the queries.
* Layers are pre-norm with residuals: ``q + cross(norm(q) + pos, memory + memory_pos, memory)``,
  ``q + self(norm(q) + pos, norm(q) + pos, norm(q))``, ``q + ffn(norm(q))``. SegDINO3D's second
  cross-attention, to 2D object features, is left out (no 2D object features at this scale).
* The attention mask of a layer is ``previous mask logit > 0``; a query whose mask is empty attends
  to every (non-empty) superpoint (Mask2Former's rule, :func:`attention_mask_from_logits`).
* One :class:`PredictionHead`, shared by the initial queries and every layer, gives
  ``mask_logits = <mask_embed(norm(q)), sp_proj(s)> / sqrt(D)`` and sigmoid-per-class
  ``class_logits = exp(min(t, t_max)) * cos(class_proj(norm(q)), text) + b``, with a learnable
  log-temperature ``t`` (CLIP's init ``log(1/0.07)``) and bias ``b`` (init -4: small initial
  probabilities, as sigmoid-focal detectors). No softmax over classes: the vocabulary is open.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.models.segmenter3d.config import Segmenter3DConfig
from sem3r.models.segmenter3d.encoder import Attention, FeedForward, PositionEncoding


def attention_mask_from_logits(mask_logits: torch.Tensor, nonempty: torch.Tensor | None = None) -> torch.Tensor:
    """Where each query may attend: its predicted mask (logit > 0), or everywhere when that is empty.

    Args:
        mask_logits: ``(Q, S)`` float mask logits of the previous prediction.
        nonempty: ``(S,)`` bool superpoints that exist (have points); others are never attended.
            ``None``: all exist.

    Returns:
        ``(Q, S)`` bool, True where query ``q`` may attend to superpoint ``s``; every row has a True
        wherever ``nonempty`` has one.

    Example:
        >>> logits = torch.tensor([[1.0, -1.0, 2.0], [-1.0, -2.0, -3.0]])
        >>> attention_mask_from_logits(logits).tolist()
        [[True, False, True], [True, True, True]]
    """
    exists = torch.ones(mask_logits.shape[1], dtype=torch.bool, device=mask_logits.device) if nonempty is None else nonempty
    allowed = (mask_logits > 0) & exists
    return torch.where(allowed.any(dim=1, keepdim=True), allowed, exists.expand_as(allowed))


class DecoderLayer(nn.Module):
    """Masked cross-attention to the superpoints, self-attention among queries, FFN (all pre-norm).

    Args:
        dim: channels ``D``.
        heads: attention heads.
        ffn_ratio: feed-forward width multiple.
        dropout: dropout probability.

    Example:
        >>> layer = DecoderLayer(8, 2, 2.0)
        >>> q, s = torch.rand(2, 8), torch.rand(5, 8)
        >>> allowed = torch.tensor([[True, True, False, False, False]]).expand(2, 5)
        >>> layer(q, torch.zeros(2, 8), s, torch.zeros(5, 8), allowed).shape
        torch.Size([2, 8])
    """

    def __init__(self, dim: int, heads: int, ffn_ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads, dropout)
        self.self_norm = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_ratio, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor,
                memory_pos: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Refine the queries once.

        Args:
            queries: ``(Q, D)`` query contents.
            query_pos: ``(Q, D)`` query position embeddings.
            memory: ``(S, D)`` superpoint features.
            memory_pos: ``(S, D)`` superpoint position embeddings.
            allowed: ``(Q, S)`` bool cross-attention mask (True: attend), at least one True per row.

        Returns:
            ``(Q, D)`` refined query contents.
        """
        h = self.cross_norm(queries)
        queries = queries + self.dropout(self.cross_attn(h + query_pos, memory + memory_pos, memory, allowed))
        h = self.self_norm(queries)
        queries = queries + self.dropout(self.self_attn(h + query_pos, h + query_pos, h))
        return queries + self.ffn(self.ffn_norm(queries))


class PredictionHead(nn.Module):
    """Mask and open-vocabulary class logits of a set of queries.

    Args:
        config: sizes (``dim``, ``text_dim``, ``logit_scale_init``, ``logit_scale_max``, ``class_bias_init``).

    Example:
        >>> head = PredictionHead(Segmenter3DConfig(dim=8, text_dim=4, heads=2))
        >>> masks, classes = head(torch.rand(3, 8), head.project_superpoints(torch.rand(6, 8)),
        ...                       F.normalize(torch.rand(2, 4), dim=1))
        >>> masks.shape, classes.shape
        (torch.Size([3, 6]), torch.Size([3, 2]))
    """

    def __init__(self, config: Segmenter3DConfig) -> None:
        super().__init__()
        dim = config.dim
        self.logit_scale_max = config.logit_scale_max
        self.norm = nn.LayerNorm(dim)
        self.mask_embed = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.sp_proj = nn.Linear(dim, dim)
        self.class_proj = nn.Linear(dim, config.text_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))
        self.class_bias = nn.Parameter(torch.tensor(float(config.class_bias_init)))

    def project_superpoints(self, superpoint_features: torch.Tensor) -> torch.Tensor:
        """``(S, D)`` superpoint features -> ``(S, D)`` mask keys (computed once per scene)."""
        return self.sp_proj(superpoint_features)

    def forward(self, queries: torch.Tensor, mask_keys: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict from query contents.

        Args:
            queries: ``(Q, D)`` query contents.
            mask_keys: ``(S, D)`` from :meth:`project_superpoints`.
            text: ``(C, D_t)`` unit-norm text embeddings.

        Returns:
            ``mask_logits (Q, S)`` and ``class_logits (Q, C)``.
        """
        h = self.norm(queries)
        mask_logits = self.mask_embed(h) @ mask_keys.T / math.sqrt(h.shape[1])
        cosine = F.normalize(self.class_proj(h), dim=1) @ text.T
        scale = self.logit_scale.clamp(max=self.logit_scale_max).exp()
        return mask_logits, scale * cosine + self.class_bias


class QueryDecoder(nn.Module):
    """Superpoint-seeded queries, ``decoder_layers`` :class:`DecoderLayer`, a shared :class:`PredictionHead`.

    Args:
        config: sizes (``dim``, ``decoder_layers``, ``heads``, ``ffn_ratio``, ``dropout``,
            ``pos_frequencies``, ``text_dim`` and the head's settings).

    Example:
        >>> dec = QueryDecoder(Segmenter3DConfig(dim=8, text_dim=4, heads=2, decoder_layers=2, pos_frequencies=2))
        >>> preds = dec(torch.rand(6, 8), torch.rand(6, 3), torch.ones(6, dtype=torch.bool),
        ...             torch.tensor([0, 4]), F.normalize(torch.rand(3, 4), dim=1))
        >>> len(preds), preds[-1][0].shape, preds[-1][1].shape
        (3, torch.Size([2, 6]), torch.Size([2, 3]))
    """

    def __init__(self, config: Segmenter3DConfig) -> None:
        super().__init__()
        self.pos_embed = PositionEncoding(config.dim, config.pos_frequencies)
        self.layers = nn.ModuleList(
            DecoderLayer(config.dim, config.heads, config.ffn_ratio, config.dropout) for _ in range(config.decoder_layers)
        )
        self.head = PredictionHead(config)

    def forward(self, superpoint_features: torch.Tensor, centroids: torch.Tensor, nonempty: torch.Tensor,
                query_superpoints: torch.Tensor, text: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Predictions of the initial queries and after every layer.

        Args:
            superpoint_features: ``(S, D)`` encoder output.
            centroids: ``(S, 3)`` normalised superpoint centroids.
            nonempty: ``(S,)`` bool superpoints with points (the only ones attended).
            query_superpoints: ``(Q,)`` int64 seed superpoint of every query.
            text: ``(C, D_t)`` unit-norm text embeddings.

        Returns:
            ``decoder_layers + 1`` pairs ``(mask_logits (Q, S), class_logits (Q, C))``, the initial
            prediction first.
        """
        memory_pos = self.pos_embed(centroids)
        query_pos = memory_pos[query_superpoints]
        queries = superpoint_features[query_superpoints]
        mask_keys = self.head.project_superpoints(superpoint_features)
        predictions = [self.head(queries, mask_keys, text)]
        for layer in self.layers:
            allowed = attention_mask_from_logits(predictions[-1][0].detach(), nonempty)
            queries = layer(queries, query_pos, superpoint_features, memory_pos, allowed)
            predictions.append(self.head(queries, mask_keys, text))
        return predictions
