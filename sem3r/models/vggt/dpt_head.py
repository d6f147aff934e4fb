"""DPT dense prediction head of VGGT (depth, point map and tracking features).

The head follows "Vision Transformers for Dense Prediction" (DPT, Ranftl et al. 2021) as adapted by
VGGT: four aggregator layers are read, each is layer-normalised, projected by a 1x1 convolution,
given a UV position embedding and resampled to 4x, 2x, 1x and 1/2x the patch grid ("reassemble");
the four maps are fused from the coarsest up by RefineNet-style fusion blocks; the result is
upsampled to the image size, given the position embedding again and mapped to the outputs.

Facts this module reproduces so that the official VGGT-1B weights compute what they were trained to:

- ``norm`` is one LayerNorm shared by the four selected layers; patch tokens are laid out row-major
  (``h`` then ``w``) in the token sequence, after ``patch_start_idx`` special tokens.
- The UV position embedding is the MoGe-style grid whose corners lie at
  ``(+-w/d * (n_w-1)/n_w, +-h/d * (n_h-1)/n_h)`` with ``d`` the image diagonal (aspect ratio of the
  *image*, not of the feature map), embedded by sin/cos with ``omega_0 = 100`` (x in the first half of
  the channels, y in the second), scaled by 0.1 and added after ``projects[i]`` and again after the
  final upsampling.
- The official residual conv unit uses an in-place ReLU, so its skip connection carries ``relu(x)``,
  not ``x``: ``out = relu(x) + conv2(relu(conv1(relu(x))))``. There is no batch norm.
- Fusion upsampling is bilinear with ``align_corners=True``; ``refinenet4..2`` resize to the next
  finer level's size, ``refinenet1`` doubles its input.
- The output size is ``patch_h * patch_size / down_ratio`` (images are expected to be a multiple of
  the patch size, as VGGT's preprocessing guarantees).
- ``return_intermediates=True`` also returns the fused maps after ``refinenet2``, ``refinenet3`` and
  ``refinenet4`` (4x, 2x and 1x the patch grid, ``features`` channels), which IGGT's instance head
  attends to; the default outputs are unchanged.
- Activations: depth ``exp``, points ``inv_log`` = ``sign(x) * expm1(|x|)``, confidence ``expp1`` =
  ``1 + exp(x)``; the last output channel is the confidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Above this many output elements a single bilinear interpolation call is split along the batch
# (CUDA kernels index with 32-bit integers).
_MAX_INTERPOLATE_ELEMENTS = 1_610_612_736


def inverse_log_transform(x: Tensor) -> Tensor:
    """``sign(x) * (exp(|x|) - 1)``, the inverse of ``sign(y) * log(1 + |y|)``.

    >>> inverse_log_transform(torch.tensor([-1.0, 0.0, 1.0]))
    tensor([-1.7183,  0.0000,  1.7183])
    """
    return torch.sign(x) * torch.expm1(x.abs())


_VALUE_ACTIVATIONS = {
    "exp": torch.exp,
    "inv_log": inverse_log_transform,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}
_CONF_ACTIVATIONS = {
    "expp1": lambda x: 1.0 + torch.exp(x),
    "expp0": torch.exp,
    "sigmoid": torch.sigmoid,
}


def activate_head(out: Tensor, activation: str = "inv_log", conf_activation: str = "expp1") -> tuple[Tensor, Tensor]:
    """Split a dense output into activated values and a confidence map.

    Args:
        out: ``(N, C, H, W)`` raw head output; channels ``:C-1`` are values, channel ``C-1`` confidence.
        activation: one of ``exp``, ``inv_log``, ``relu``, ``sigmoid``, ``linear``.
        conf_activation: one of ``expp1`` (``1 + exp``), ``expp0`` (``exp``), ``sigmoid``.

    Returns:
        values ``(N, H, W, C-1)`` and confidence ``(N, H, W)``.

    >>> values, conf = activate_head(torch.zeros(1, 2, 1, 1), "exp", "expp1")
    >>> values.flatten().tolist(), conf.flatten().tolist()
    ([1.0], [2.0])
    """
    if activation not in _VALUE_ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(_VALUE_ACTIVATIONS)}")
    if conf_activation not in _CONF_ACTIVATIONS:
        raise ValueError(f"unknown conf_activation {conf_activation!r}; expected one of {sorted(_CONF_ACTIVATIONS)}")
    fmap = out.permute(0, 2, 3, 1)
    return _VALUE_ACTIVATIONS[activation](fmap[..., :-1]), _CONF_ACTIVATIONS[conf_activation](fmap[..., -1])


def uv_grid(width: int, height: int, aspect_ratio: float | None = None, dtype=None, device=None) -> Tensor:
    """Normalised view-plane UV coordinates of a ``height x width`` grid of cell centres.

    The plane spans ``[-a/d, a/d] x [-1/d, 1/d]`` with ``a`` the aspect ratio (width / height) and
    ``d = sqrt(1 + a^2)``, so its half-diagonal has length 1; cell centres sit ``(n-1)/n`` of the way
    to the border.

    Args:
        width, height: grid size in cells.
        aspect_ratio: width / height of the *image*; defaults to ``width / height``.

    Returns:
        ``(height, width, 2)`` with ``[..., 0] = u`` (to the right) and ``[..., 1] = v`` (down).

    >>> uv = uv_grid(4, 2, aspect_ratio=2.0)
    >>> uv.shape, round(uv[0, 0, 0].item(), 4), round(uv[-1, -1, 1].item(), 4)
    (torch.Size([2, 4, 2]), -0.6708, 0.2236)
    """
    if aspect_ratio is None:
        aspect_ratio = width / height
    diagonal = (aspect_ratio**2 + 1.0) ** 0.5
    span_u = aspect_ratio / diagonal * (width - 1) / width
    span_v = 1.0 / diagonal * (height - 1) / height
    u = torch.linspace(-span_u, span_u, width, dtype=dtype, device=device)
    v = torch.linspace(-span_v, span_v, height, dtype=dtype, device=device)
    return torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1)


def sincos_embedding_2d(grid: Tensor, channels: int, omega_0: float = 100.0) -> Tensor:
    """Sin/cos embedding of 2D positions: ``[sin(u w), cos(u w), sin(v w), cos(v w)]``.

    Frequencies are ``w_k = omega_0 ** (-k / (channels / 4))`` for ``k < channels / 4``; the products
    are taken in float64 (as the official code does) and returned in float32.

    Args:
        grid: ``(..., 2)`` positions.
        channels: embedding size, a multiple of 4.

    Returns:
        ``(..., channels)`` float32.

    >>> sincos_embedding_2d(torch.zeros(3, 2), 8)[0].tolist()
    [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    """
    if channels % 4:
        raise ValueError(f"channels must be a multiple of 4, got {channels}")
    quarter = channels // 4
    omega = omega_0 ** -(torch.arange(quarter, dtype=torch.float64, device=grid.device) / quarter)
    angles = grid.to(torch.float64)[..., None] * omega  # (..., 2, quarter)
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., 2, 2 * quarter)
    return emb.flatten(-2).float()


def add_uv_position_embedding(x: Tensor, image_width: int, image_height: int, ratio: float = 0.1) -> Tensor:
    """Add ``ratio`` times the UV sin/cos embedding of ``x``'s grid (image aspect ratio) to ``x``.

    Args:
        x: ``(N, C, h, w)`` feature maps, ``C`` a multiple of 4.
        image_width, image_height: size of the image the maps come from (only the ratio matters).

    Returns:
        ``(N, C, h, w)`` in ``x.dtype``.
    """
    n_ch, h, w = x.shape[-3:]
    grid = uv_grid(w, h, aspect_ratio=image_width / image_height, dtype=x.dtype, device=x.device)
    emb = sincos_embedding_2d(grid, n_ch).permute(2, 0, 1) * ratio  # (C, h, w)
    return (x + emb[None]).to(x.dtype)


def interpolate_bilinear(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize with ``align_corners=True``, split along the batch when very large.

    Args:
        x: ``(N, C, h, w)``.
        size: ``(H, W)`` output size.

    Returns:
        ``(N, C, H, W)``.
    """
    size = (int(size[0]), int(size[1]))
    n_out = size[0] * size[1] * x.shape[0] * x.shape[1]
    if n_out <= _MAX_INTERPOLATE_ELEMENTS:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    pieces = torch.chunk(x, n_out // _MAX_INTERPOLATE_ELEMENTS + 1, dim=0)
    return torch.cat([F.interpolate(p, size=size, mode="bilinear", align_corners=True) for p in pieces]).contiguous()


class ResidualConvUnit(nn.Module):
    """Pre-activation residual unit: ``relu(x) + conv2(relu(conv1(relu(x))))``, 3x3 convs with bias.

    The skip carries ``relu(x)`` because the official implementation applies an in-place ReLU to
    its input before the convolutions.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, h, w) -> (N, C, h, w)``."""
        x = F.relu(x)
        return x + self.conv2(F.relu(self.conv1(x)))


class FeatureFusionBlock(nn.Module):
    """RefineNet-style fusion: ``out_conv(up(rcu2(x + rcu1(skip))))``.

    ``resConfUnit1`` (the unit on the skip input) exists only when ``has_residual`` (the coarsest
    block, ``refinenet4``, has no skip). ``up`` is bilinear (``align_corners=True``) to ``size`` or,
    when no size is given, by a factor of 2. ``out_conv`` is a 1x1 convolution.
    """

    def __init__(self, features: int, has_residual: bool = True) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.has_residual = has_residual
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: Sequence[int] | None = None) -> Tensor:
        """Fuse ``x (N, C, h, w)`` with ``skip (N, C, h, w)``; returns ``(N, C, *size)`` or ``(N, C, 2h, 2w)``."""
        if self.has_residual:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        return self.out_conv(interpolate_bilinear(x, size))


class DPTHead(nn.Module):
    """DPT head turning aggregator tokens into dense per-pixel outputs (or features).

    Args:
        dim_in: token channels (2048 for VGGT: frame and global outputs concatenated).
        patch_size: pixels per patch side.
        output_dim: output channels including the confidence (depth: 2, points: 4).
        activation: value activation, see :func:`activate_head`.
        conf_activation: confidence activation, see :func:`activate_head`.
        features: fusion width.
        out_channels: projection width of each of the four selected layers.
        intermediate_layer_idx: which aggregator layers are read, shallow to deep.
        pos_embed: add the UV position embedding.
        feature_only: stop after ``output_conv1`` and return features (track head extractor).
        down_ratio: output resolution is the image size divided by this.

    With ``pos_embed`` every embedded width (``out_channels`` and ``features // 2``, or ``features``
    when ``feature_only``) must be a multiple of 4.

    Example:
        >>> head = DPTHead(dim_in=32, features=16, out_channels=(8, 16, 32, 32), intermediate_layer_idx=(0, 1, 2, 3))
        >>> tokens = [torch.randn(1, 2, 1 + 2 * 3, 32) for _ in range(4)]
        >>> preds, conf = head(tokens, torch.rand(1, 2, 3, 28, 42), patch_start_idx=1)
        >>> preds.shape, conf.shape
        (torch.Size([1, 2, 28, 42, 3]), torch.Size([1, 2, 28, 42]))
    """

    def __init__(
        self,
        dim_in: int = 2048,
        patch_size: int = 14,
        output_dim: int = 4,
        activation: str = "inv_log",
        conf_activation: str = "expp1",
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23),
        pos_embed: bool = True,
        feature_only: bool = False,
        down_ratio: int = 1,
    ) -> None:
        super().__init__()
        if len(out_channels) != 4 or len(intermediate_layer_idx) != 4:
            raise ValueError("DPTHead reads exactly four layers")
        self.patch_size = patch_size
        self.activation = activation
        self.conf_activation = conf_activation
        self.pos_embed = pos_embed
        self.feature_only = feature_only
        self.down_ratio = down_ratio
        self.intermediate_layer_idx = tuple(intermediate_layer_idx)

        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList([nn.Conv2d(dim_in, oc, kernel_size=1) for oc in out_channels])
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
            ]
        )

        self.scratch = nn.Module()
        for level, oc in enumerate(out_channels, start=1):
            setattr(self.scratch, f"layer{level}_rn", nn.Conv2d(oc, features, kernel_size=3, padding=1, bias=False))
        self.scratch.refinenet1 = FeatureFusionBlock(features)
        self.scratch.refinenet2 = FeatureFusionBlock(features)
        self.scratch.refinenet3 = FeatureFusionBlock(features)
        self.scratch.refinenet4 = FeatureFusionBlock(features, has_residual=False)
        if feature_only:
            self.scratch.output_conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        else:
            self.scratch.output_conv1 = nn.Conv2d(features, features // 2, kernel_size=3, padding=1)
            self.scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, 32, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(32, output_dim, kernel_size=1),
            )

    def forward(
        self,
        aggregated_tokens_list: Sequence[Tensor],
        images: Tensor,
        patch_start_idx: int,
        frames_chunk_size: int | None = 8,
        return_intermediates: bool = False,
    ) -> Tensor | tuple[Tensor, ...]:
        """Dense prediction for every frame, ``frames_chunk_size`` frames at a time.

        Args:
            aggregated_tokens_list: per aggregator layer, ``(B, S, P, dim_in)`` tokens whose first
                ``patch_start_idx`` tokens per frame are special tokens, followed by
                ``(H / patch_size) * (W / patch_size)`` patch tokens in row-major order.
            images: ``(B, S, 3, H, W)``; only the size is used.
            patch_start_idx: number of special tokens per frame.
            frames_chunk_size: frames per chunk (``None``: all at once); the result does not depend
                on it, peak memory grows with it.
            return_intermediates: also return the fused maps the instance head of IGGT reads.

        Returns:
            ``(values (B, S, H', W', output_dim - 1), conf (B, S, H', W'))``, or when ``feature_only``
            the features ``(B, S, features, H', W')``; ``H' = (H // patch_size) * patch_size / down_ratio``.
            With ``return_intermediates`` a third (second when ``feature_only``) element follows: the
            list ``[refinenet2, refinenet3, refinenet4]`` of outputs, ``(B, S, features, h_i, w_i)``
            at 4x, 2x and 1x the patch grid (finest first).
        """
        num_frames = images.shape[1]
        chunk = num_frames if frames_chunk_size is None else max(1, min(frames_chunk_size, num_frames))
        outputs = [
            self._forward_frames(
                aggregated_tokens_list, images.shape, patch_start_idx, s, min(s + chunk, num_frames), return_intermediates
            )
            for s in range(0, num_frames, chunk)
        ]
        if len(outputs) == 1:
            return outputs[0]
        if self.feature_only and not return_intermediates:
            return torch.cat(outputs, dim=1)
        if not return_intermediates:
            return tuple(torch.cat(parts, dim=1) for parts in zip(*outputs))
        maps = [torch.cat(parts, dim=1) for parts in zip(*(o[-1] for o in outputs))]
        return (*(torch.cat(parts, dim=1) for parts in zip(*(o[:-1] for o in outputs))), maps)

    def _forward_frames(
        self,
        tokens_list: Sequence[Tensor],
        image_shape: torch.Size,
        patch_start_idx: int,
        start: int,
        end: int,
        return_intermediates: bool = False,
    ) -> Tensor | tuple[Tensor, ...]:
        """The head on frames ``start:end``; shapes as in :meth:`forward` with ``S = end - start``."""
        batch, _, _, height, width = image_shape
        frames = end - start
        patch_h, patch_w = height // self.patch_size, width // self.patch_size

        levels = []
        for i, layer_idx in enumerate(self.intermediate_layer_idx):
            x = tokens_list[layer_idx][:, start:end, patch_start_idx:]
            x = self.norm(x.reshape(batch * frames, patch_h * patch_w, x.shape[-1]))
            x = x.transpose(1, 2).reshape(batch * frames, -1, patch_h, patch_w)
            x = self.projects[i](x)
            if self.pos_embed:
                x = add_uv_position_embedding(x, width, height)
            levels.append(self.resize_layers[i](x))

        out, intermediates = self._fuse(levels)
        intermediates = [m.reshape(batch, frames, *m.shape[1:]) for m in intermediates]
        out_size = (patch_h * self.patch_size // self.down_ratio, patch_w * self.patch_size // self.down_ratio)
        out = interpolate_bilinear(out, out_size)
        if self.pos_embed:
            out = add_uv_position_embedding(out, width, height)
        if self.feature_only:
            out = out.reshape(batch, frames, *out.shape[1:])
            return (out, intermediates) if return_intermediates else out

        values, conf = activate_head(self.scratch.output_conv2(out), self.activation, self.conf_activation)
        values, conf = values.reshape(batch, frames, *values.shape[1:]), conf.reshape(batch, frames, *conf.shape[1:])
        return (values, conf, intermediates) if return_intermediates else (values, conf)

    def _fuse(self, levels: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Fuse the four reassembled maps (fine to coarse, ``(N, out_channels[i], h_i, w_i)``).

        Returns ``output_conv1`` of the fused map at twice the finest level's size, ``(N, C', 8h, 8w)``,
        and the outputs of ``refinenet2``, ``refinenet3``, ``refinenet4`` (``(N, features, h_i, w_i)``,
        finest first).
        """
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(x) for i, x in enumerate(levels, start=1))
        out4 = s.refinenet4(l4, size=l3.shape[-2:])
        out3 = s.refinenet3(out4, l3, size=l2.shape[-2:])
        out2 = s.refinenet2(out3, l2, size=l1.shape[-2:])
        out = s.refinenet1(out2, l1)
        return s.output_conv1(out), [out2, out3, out4]
