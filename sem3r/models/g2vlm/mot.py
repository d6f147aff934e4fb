"""G2VLM's language model: Qwen2 decoder layers turned into a two-expert Mixture-of-Transformers.

Every decoder layer holds a *semantic* copy (the Qwen2-VL names: ``input_layernorm``, ``self_attn.q_proj``,
``mlp``, ...) and a *geometry* copy (same names + ``_moe_geo``) of the input norm, q/k/v/o projections,
q/k RMS-norms, post-attention norm and MLP, plus two layer-scale vectors ``ls1``, ``ls2`` for the
geometry copy (G2VLM section 3.1). Each token is processed by the copy of its expert (text and ViT tokens:
semantic; DINO tokens: geometry), but all tokens share ONE self-attention: queries of either expert
attend over the keys and values of all visible tokens, each token's keys and values coming from its
own expert. For token x of expert e::

    q, k, v = QKNorm_e(W_e x_n) with x_n = InputNorm_e(x), then M-RoPE on q, k
    x <- x + LS1_e(O_e(attention(q, K, V)))        (LS_e = identity for the semantic expert)
    x <- x + LS2_e(MLP_e(PostNorm_e(x)))

Final norms: ``norm`` for semantic tokens, ``norm_moe_geo`` for geometry tokens; logits come from the
semantic tokens only (``lm_head``, untied from ``embed_tokens``).

M-RoPE (Qwen2-VL): every token has a 3-row position (t, h, w). Head channel ``d`` uses frequency
``j = d mod (head_dim / 2)`` of ``theta ** (-2 j / head_dim)`` and the position row chosen by ``j``
(the first ``mrope_section[0]`` frequencies use t, the next ``mrope_section[1]`` use h, the rest w);
the rotation is "rotate half" (channel ``d`` pairs with ``d + head_dim / 2``). Text tokens have
t = h = w, so for them M-RoPE is ordinary 1D RoPE.

The RMS-norm and the SiLU-gated MLP are transformers' Qwen2 modules (their keys fit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.errors import require
from sem3r.models.g2vlm.config import TextConfig
from sem3r.models.vggt.layers import LayerScale

GEO = "_moe_geo"


def _qwen2():
    return require("transformers.models.qwen2.modeling_qwen2", "vlm", "G2VLM")


def mrope_cos_sin(positions: torch.Tensor, config: TextConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of M-RoPE for 3-row positions.

    Args:
        positions: ``(B, 3, L)`` integer (t, h, w) positions.
        config: gives ``head_dim``, ``rope_theta`` and ``mrope_section``.

    Returns:
        ``cos, sin``: ``(B, L, head_dim)`` float32 each.

    Example:
        >>> cfg = TextConfig(hidden_size=64, num_attention_heads=2, num_key_value_heads=1, mrope_section=(4, 6, 6))
        >>> cos, sin = mrope_cos_sin(torch.arange(5).expand(1, 3, 5), cfg)
        >>> cos.shape, bool(torch.allclose(cos[0, :, :16], cos[0, :, 16:]))
        (torch.Size([1, 5, 32]), True)
    """
    half = config.head_dim // 2
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, half, device=positions.device, dtype=torch.float32) * 2 / config.head_dim))
    row = torch.repeat_interleave(torch.arange(3, device=positions.device),
                                  torch.tensor(config.mrope_section, device=positions.device))  # (half,)
    pos = positions.float().gather(1, row[None, :, None].expand(positions.shape[0], half, positions.shape[2]))
    angles = pos.transpose(1, 2) * inv_freq  # (B, L, half)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE: ``x`` ``(B, heads, L, D)``, ``cos`` / ``sin`` ``(B, L, D)`` -> ``(B, heads, L, D)``."""
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-second, first), dim=-1) * sin


def route(x: torch.Tensor, geo: torch.Tensor | None, semantic, geometry) -> torch.Tensor:
    """Apply ``semantic`` to the semantic tokens of ``x`` and ``geometry`` to the geometry tokens.

    Args:
        x: ``(B, L, C)`` tokens.
        geo: ``(B, L)`` bool, True for geometry tokens, or ``None`` (all semantic).
        semantic, geometry: callables ``(M, C) -> (M, C')``.

    Returns:
        ``(B, L, C')``.
    """
    if geo is None or not bool(geo.any()):
        return semantic(x)
    if bool(geo.all()):
        return geometry(x)
    sem_out, geo_out = semantic(x[~geo]), geometry(x[geo])
    out = sem_out.new_empty(*geo.shape, sem_out.shape[-1])
    out[~geo] = sem_out
    out[geo] = geo_out
    return out


class MoTAttention(nn.Module):
    """Shared self-attention over both experts' tokens, with per-expert q/k/v/o and q/k norms (GQA).

    Query head ``j`` uses KV head ``j // (num_heads / num_kv_heads)``; scores are scaled by
    ``head_dim ** -0.5``; q/k RMS-norm (per head, over ``head_dim``) is applied before RoPE.
    """

    def __init__(self, config: TextConfig, geometry_expert: bool = True) -> None:
        super().__init__()
        self.config = config
        qwen2 = _qwen2()
        D, hd = config.hidden_size, config.head_dim
        suffixes = ("", GEO) if geometry_expert else ("",)
        for s in suffixes:
            setattr(self, f"q_proj{s}", nn.Linear(D, config.num_attention_heads * hd, bias=config.attention_bias))
            setattr(self, f"k_proj{s}", nn.Linear(D, config.num_key_value_heads * hd, bias=config.attention_bias))
            setattr(self, f"v_proj{s}", nn.Linear(D, config.num_key_value_heads * hd, bias=config.attention_bias))
            setattr(self, f"o_proj{s}", nn.Linear(config.num_attention_heads * hd, D, bias=False))
            if config.qk_norm:
                setattr(self, f"q_norm{s}", qwen2.Qwen2RMSNorm(hd, eps=config.rms_norm_eps))
                setattr(self, f"k_norm{s}", qwen2.Qwen2RMSNorm(hd, eps=config.rms_norm_eps))

    def _qkv(self, suffix: str):
        cfg = self.config

        def project(x: torch.Tensor) -> torch.Tensor:
            q = getattr(self, f"q_proj{suffix}")(x).unflatten(-1, (cfg.num_attention_heads, cfg.head_dim))
            k = getattr(self, f"k_proj{suffix}")(x).unflatten(-1, (cfg.num_key_value_heads, cfg.head_dim))
            v = getattr(self, f"v_proj{suffix}")(x)
            if cfg.qk_norm:
                q, k = getattr(self, f"q_norm{suffix}")(q), getattr(self, f"k_norm{suffix}")(k)
            return torch.cat((q.flatten(-2), k.flatten(-2), v), dim=-1)

        return project

    def forward(self, x: torch.Tensor, geo: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attend.

        Args:
            x: ``(B, L, D)`` normalised tokens.
            geo: ``(B, L)`` bool geometry-token flags or ``None``.
            cos, sin: ``(B, L, head_dim)`` M-RoPE tables of the L new tokens.
            mask: ``(B, 1, L, P + L)`` bool, True where a query may see a key (P cached keys first),
                or ``None`` for full attention.
            past: cached ``(k, v)``, each ``(B, kv_heads, P, head_dim)`` after RoPE, or ``None``.

        Returns:
            ``(B, L, D)`` attention output after ``o_proj`` (before layer scale), and the updated
            ``(k, v)`` cache entries ``(B, kv_heads, P + L, head_dim)``.
        """
        cfg = self.config
        H, KV, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        qkv = route(x, geo, self._qkv(""), self._qkv(GEO))
        q, k, v = qkv.split((H * hd, KV * hd, KV * hd), dim=-1)
        B, L = x.shape[:2]
        q = apply_rope(q.view(B, L, H, hd).transpose(1, 2), cos, sin)
        k = apply_rope(k.view(B, L, KV, hd).transpose(1, 2), cos, sin)
        v = v.view(B, L, KV, hd).transpose(1, 2)
        if past is not None:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        groups = H // KV
        out = F.scaled_dot_product_attention(q, k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1),
                                             attn_mask=mask)
        out = out.transpose(1, 2).reshape(B, L, H * hd)
        return route(out, geo, self.o_proj, getattr(self, "o_proj" + GEO, None)), (k, v)


class MoTDecoderLayer(nn.Module):
    """One decoder layer with a semantic and a geometry copy (see the module docstring)."""

    def __init__(self, config: TextConfig, geometry_expert: bool = True) -> None:
        super().__init__()
        qwen2 = _qwen2()
        mlp_config = SimpleNamespace(hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
                                     hidden_act=config.hidden_act)
        D = config.hidden_size
        self.self_attn = MoTAttention(config, geometry_expert)
        self.mlp = qwen2.Qwen2MLP(mlp_config)
        self.input_layernorm = qwen2.Qwen2RMSNorm(D, eps=config.rms_norm_eps)
        self.post_attention_layernorm = qwen2.Qwen2RMSNorm(D, eps=config.rms_norm_eps)
        self.geometry_expert = geometry_expert
        if geometry_expert:
            self.ls1 = LayerScale(D, 1.0)
            self.ls2 = LayerScale(D, 1.0)
            self.mlp_moe_geo = qwen2.Qwen2MLP(mlp_config)
            self.input_layernorm_moe_geo = qwen2.Qwen2RMSNorm(D, eps=config.rms_norm_eps)
            self.post_attention_layernorm_moe_geo = qwen2.Qwen2RMSNorm(D, eps=config.rms_norm_eps)

    def forward(self, x: torch.Tensor, geo: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None, past=None):
        """``x``: ``(B, L, D)`` -> ``(B, L, D)`` and the layer's updated ``(k, v)`` cache."""
        g = self.geometry_expert
        h = route(x, geo, self.input_layernorm, self.input_layernorm_moe_geo if g else None)
        attn, kv = self.self_attn(h, geo, cos, sin, mask, past)
        x = x + route(attn, geo, nn.Identity(), self.ls1 if g else None)
        h = route(x, geo, lambda t: self.mlp(self.post_attention_layernorm(t)),
                  (lambda t: self.ls2(self.mlp_moe_geo(self.post_attention_layernorm_moe_geo(t)))) if g else None)
        return x + h, kv


class MoTModel(nn.Module):
    """Token embedding, the decoder layers and the two final norms (checkpoint prefix ``language_model.model``)."""

    def __init__(self, config: TextConfig, geometry_expert: bool = True) -> None:
        super().__init__()
        qwen2 = _qwen2()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(MoTDecoderLayer(config, geometry_expert) for _ in range(config.num_hidden_layers))
        self.norm = qwen2.Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        if geometry_expert:
            self.norm_moe_geo = qwen2.Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)


@dataclass
class KVCache:
    """Keys and values of every layer for the tokens seen so far (append-only).

    Attributes:
        layers: per layer ``(k, v)``, each ``(B, kv_heads, P, head_dim)``; empty before the first call.
        next_position: the next free position (text tokens take it, image blocks start from it).
    """

    layers: list = field(default_factory=list)
    next_position: int = 0

    @property
    def length(self) -> int:
        """P, the number of cached tokens."""
        return 0 if not self.layers else int(self.layers[0][0].shape[2])


class MoTLanguageModel(nn.Module):
    """``model`` (:class:`MoTModel`) and the untied ``lm_head`` (checkpoint prefix ``language_model``).

    Args:
        config: language-model sizes.
        geometry_expert: build the geometry copy of every layer (``False``: a plain Qwen2 decoder).
    """

    def __init__(self, config: TextConfig, geometry_expert: bool = True) -> None:
        super().__init__()
        self.config = config
        self.model = MoTModel(config, geometry_expert)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.gradient_checkpointing = False

    def forward(self, embeds: torch.Tensor, positions: torch.Tensor, geo: torch.Tensor | None,
                mask: torch.Tensor | None, cache: KVCache | None = None) -> torch.Tensor:
        """Run the decoder on new tokens, extending ``cache`` when given.

        Args:
            embeds: ``(B, L, D)`` input embeddings (text rows of ``embed_tokens``, ViT / DINO tokens).
            positions: ``(B, 3, L)`` M-RoPE positions.
            geo: ``(B, L)`` bool geometry-token flags, or ``None``.
            mask: ``(B, 1, L, P + L)`` bool visibility (see :class:`MoTAttention`), or ``None``.
            cache: extended in place with the new keys and values.

        Returns:
            ``(B, L, D)`` final hidden states: ``norm`` for semantic tokens, ``norm_moe_geo`` for
            geometry tokens.
        """
        cos, sin = mrope_cos_sin(positions, self.config)
        x = embeds
        has_past = cache is not None and len(cache.layers) == len(self.model.layers)
        for i, layer in enumerate(self.model.layers):
            past = cache.layers[i] if has_past else None
            if self.gradient_checkpointing and self.training:
                x, kv = torch.utils.checkpoint.checkpoint(layer, x, geo, cos, sin, mask, past, use_reentrant=False)
            else:
                x, kv = layer(x, geo, cos, sin, mask, past)
            if cache is not None:
                if len(cache.layers) > i:
                    cache.layers[i] = kv
                else:
                    cache.layers.append(kv)
        return route(x, geo, self.model.norm, getattr(self.model, "norm_moe_geo", None))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` semantic hidden states -> ``(..., vocab)`` logits."""
        return self.lm_head(hidden)
