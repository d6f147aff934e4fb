"""ROSS3D's language model: a plain Qwen2 decoder (transformers' ``Qwen2DecoderLayer`` / ``Qwen2RMSNorm``, whose
keys fit the official ``model.layers.N`` / ``model.norm``), run by hand with a small KV cache.

Facts section 5: positions are ``0 .. L-1`` (nothing is passed, so the official model counts from 0, and a
decoding step continues from the cache length). The official rotary code is M-RoPE-shaped (sections 32/16/16 of
the 128-dim head over three position streams) but all streams get the same 1D index, so it is exactly standard
rotate-half RoPE with ``theta = 1e6``: channel ``d`` uses frequency ``theta^(-2 (d mod hd/2) / hd)``. The
tables are computed on the fly in float32 (no buffers, so a meta-device build needs nothing re-initialised).
Attention is causal over the whole sequence (no sliding window).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from sem3r.errors import require
from sem3r.models.ross3d.config import Ross3DConfig


def _qwen2():
    return require("transformers.models.qwen2.modeling_qwen2", "vlm", "ROSS3D's language model")


def hf_qwen2_config(config: Ross3DConfig):
    """transformers' ``Qwen2Config`` for the decoder layers (sizes, eps, activation, attention kernel)."""
    tf = require("transformers", "vlm", "ROSS3D's language model")
    hf = tf.Qwen2Config(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                        intermediate_size=config.intermediate_size, num_hidden_layers=config.num_hidden_layers,
                        num_attention_heads=config.num_attention_heads, num_key_value_heads=config.num_key_value_heads,
                        rms_norm_eps=config.rms_norm_eps, max_position_embeddings=config.max_position_embeddings,
                        hidden_act=config.hidden_act, use_sliding_window=False, attention_dropout=0.0)
    hf._attn_implementation = config.attn_implementation
    return hf


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate-half RoPE tables.

    Args:
        positions: ``(B, L)`` integer positions.
        head_dim: channels per head.
        theta: base (1e6).
        dtype: dtype of the returned tables (the hidden states' dtype; computed in float32).

    Returns:
        ``cos, sin``: ``(B, L, head_dim)``.

    Example:
        >>> cos, sin = rope_cos_sin(torch.arange(3)[None], 4, 100.0, torch.float32)
        >>> [round(v, 4) for v in sin[0, 1].tolist()]
        [0.8415, 0.0998, 0.8415, 0.0998]
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim))
    freqs = positions[..., None].float() * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


@dataclass
class KVCache:
    """Keys and values of every decoder layer (append-only), the interface transformers' attention calls.

    Attributes:
        keys, values: per layer ``(B, kv_heads, P, head_dim)`` after RoPE.
    """

    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        """Append ``(B, kv_heads, L, head_dim)`` keys / values of layer ``layer_idx``; returns all of them."""
        if layer_idx < len(self.keys):
            self.keys[layer_idx] = torch.cat((self.keys[layer_idx], key), dim=2)
            self.values[layer_idx] = torch.cat((self.values[layer_idx], value), dim=2)
        elif layer_idx == len(self.keys):
            self.keys.append(key)
            self.values.append(value)
        else:
            raise IndexError(f"KVCache: layer {layer_idx} updated before layer {len(self.keys)}")
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """P, the number of cached tokens."""
        return 0 if len(self.keys) <= layer_idx else int(self.keys[layer_idx].shape[2])


def causal_mask(length: int, past: int, device, dtype: torch.dtype = torch.float32,
                attn_implementation: str = "sdpa") -> torch.Tensor | None:
    """The attention mask of ``L`` new tokens after ``P`` cached ones, in the form the kernel wants.

    ``sdpa``: ``(1, 1, L, P + L)`` bool (True = may attend), or ``None`` where the kernel's own rule is exact (no
    past: its causal flag; a single new token: sees everything). ``eager``: an additive float mask (0 / dtype
    minimum), ``None`` for a single new token.
    """
    if length == 1 or (past == 0 and attn_implementation == "sdpa"):
        return None
    q = torch.arange(length, device=device)[:, None] + past
    allowed = (torch.arange(past + length, device=device)[None, :] <= q)[None, None]
    if attn_implementation == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)


class Qwen2Decoder(nn.Module):
    """``embed_tokens``, ``layers`` and ``norm`` of Qwen2 (the official ``model.*`` names); the vision modules
    of :class:`~sem3r.models.ross3d.model.Ross3DBackbone` sit beside them.

    Args:
        config: sizes; the embedding has ``embed_vocab_size`` rows.
    """

    def __init__(self, config: Ross3DConfig) -> None:
        super().__init__()
        qwen2 = _qwen2()
        hf = hf_qwen2_config(config)
        self.config = config
        self.embed_tokens = nn.Embedding(config.embed_vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(qwen2.Qwen2DecoderLayer(hf, i) for i in range(config.num_hidden_layers))
        self.norm = qwen2.Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.gradient_checkpointing = False

    def decode(self, embeds: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Run the decoder on new tokens.

        Args:
            embeds: ``(B, L, D)`` input embeddings.
            cache: extended in place; positions continue from its length.

        Returns:
            ``(B, L, D)`` final hidden states (after the final RMSNorm).
        """
        B, L, _ = embeds.shape
        past = cache.get_seq_length() if cache is not None else 0
        positions = torch.arange(past, past + L, device=embeds.device)[None].expand(B, L)
        cos_sin = rope_cos_sin(positions, self.config.head_dim, self.config.rope_theta, embeds.dtype)
        mask = causal_mask(L, past, embeds.device, embeds.dtype, self.config.attn_implementation)
        x = embeds
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and cache is None:
                x = torch.utils.checkpoint.checkpoint(layer, x, mask, positions, None, False, cos_sin, use_reentrant=False)
            else:
                x = layer(x, attention_mask=mask, position_ids=positions, cache=cache, use_cache=cache is not None,
                          position_embeddings=cos_sin)
        return self.norm(x)
