"""IGGT's ``part_adaptor``: multi-scale instance maps from the aggregator's tokens.

The adaptor (``SamProjector`` in the official code) reads the same four aggregator layers as
the DPT heads (4, 11, 17, 23 for the official model), patch tokens only. Each is normalised by one
shared LayerNorm (2048 channels), projected by a 1x1 convolution to ``channels`` (256) and resampled
to 4x, 2x, 1x and 1/2x the patch grid, like the DPT reassemble stage, but every resampling step is
followed by a :class:`ResidualProjection` (BatchNorm'd residual conv block):

=====  ==========================================================================================
level  ``resize_layers[i]``
=====  ==========================================================================================
0      ConvTranspose2d(k4, s2, p1), ResidualProjection, ConvTranspose2d(k4, s2, p1), ResidualProjection
1      ConvTranspose2d(k2, s2), ResidualProjection
2      Identity, ResidualProjection
3      Conv2d(k3, s2, p1), ResidualProjection
=====  ==========================================================================================

There is no UV position embedding (the official model builds the adaptor with ``pos_embed=False``).
This is the official ``SamProjector`` (github lifuguan/IGGT_official, ``iggt/heads/adaptor.py``);
checked against it with identical random weights (the four maps agree bit for bit on CPU). Its
sine position encodings of the maps (``pes``) are computed there but not used by the instance head,
and have no weights, so they are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class ResidualProjection(nn.Module):
    """``output_proj(y + residual_conv(y))`` with ``y = input_proj(x)``.

    ``input_proj`` = 1x1 conv (no bias), BatchNorm, ReLU; ``residual_conv`` = 3x3 conv (no bias),
    BatchNorm, ReLU, 3x3 conv (no bias), BatchNorm; ``output_proj`` = 1x1 conv with bias. In eval
    mode the BatchNorms use their running statistics, so every frame is processed independently.

    Args:
        dim_in: input channels.
        dim_out: output channels.

    Example:
        >>> import torch
        >>> ResidualProjection(8, 16).eval()(torch.randn(2, 8, 5, 7)).shape
        torch.Size([2, 16, 5, 7])
    """

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.input_proj = nn.Sequential(
            nn.Conv2d(dim_in, dim_out, kernel_size=1, bias=False), nn.BatchNorm2d(dim_out), nn.ReLU()
        )
        self.residual_conv = nn.Sequential(
            nn.Conv2d(dim_out, dim_out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(dim_out),
            nn.ReLU(),
            nn.Conv2d(dim_out, dim_out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(dim_out),
        )
        self.output_proj = nn.Conv2d(dim_out, dim_out, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, dim_in, h, w) -> (N, dim_out, h, w)``."""
        y = self.input_proj(x)
        return self.output_proj(y + self.residual_conv(y))


class PartAdaptor(nn.Module):
    """Four instance feature maps at 4x, 2x, 1x and 1/2x the patch grid from aggregator tokens.

    Args:
        dim_in: token channels (2048 for IGGT: frame and global outputs concatenated).
        channels: width of every level (256).
        intermediate_layer_idx: the four aggregator layers read, shallow to deep.

    Example:
        >>> import torch
        >>> adaptor = PartAdaptor(dim_in=32, channels=8, intermediate_layer_idx=(0, 1, 2, 3)).eval()
        >>> tokens = [torch.randn(1, 2, 1 + 3 * 5, 32) for _ in range(4)]
        >>> [tuple(x.shape) for x in adaptor(tokens, patch_start_idx=1, patch_hw=(3, 5))]
        [(2, 8, 12, 20), (2, 8, 6, 10), (2, 8, 3, 5), (2, 8, 2, 3)]
    """

    def __init__(
        self, dim_in: int = 2048, channels: int = 256, intermediate_layer_idx: Sequence[int] = (4, 11, 17, 23)
    ) -> None:
        super().__init__()
        if len(intermediate_layer_idx) != 4:
            raise ValueError(f"the adaptor reads exactly four layers, got {tuple(intermediate_layer_idx)}")
        self.intermediate_layer_idx = tuple(intermediate_layer_idx)
        c = channels
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList([nn.Conv2d(dim_in, c, kernel_size=1) for _ in range(4)])
        self.resize_layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.ConvTranspose2d(c, c, kernel_size=4, stride=2, padding=1),
                    ResidualProjection(c, c),
                    nn.ConvTranspose2d(c, c, kernel_size=4, stride=2, padding=1),
                    ResidualProjection(c, c),
                ),
                nn.Sequential(nn.ConvTranspose2d(c, c, kernel_size=2, stride=2), ResidualProjection(c, c)),
                nn.Sequential(nn.Identity(), ResidualProjection(c, c)),
                nn.Sequential(nn.Conv2d(c, c, kernel_size=3, stride=2, padding=1), ResidualProjection(c, c)),
            ]
        )

    def forward(
        self, aggregated_tokens_list: Sequence[Tensor | None], patch_start_idx: int, patch_hw: tuple[int, int]
    ) -> list[Tensor]:
        """Reassemble the selected layers of every frame.

        Args:
            aggregated_tokens_list: per aggregator layer, ``(B, S, P, dim_in)`` tokens (layers not
                read may be ``None``); patch tokens start at ``patch_start_idx``, row-major.
            patch_start_idx: number of special tokens per frame.
            patch_hw: the patch grid ``(h, w)``.

        Returns:
            Four ``(B * S, channels, h_i, w_i)`` maps: ``(4h, 4w)``, ``(2h, 2w)``, ``(h, w)``,
            ``(ceil(h / 2), ceil(w / 2))``.
        """
        h, w = patch_hw
        levels = []
        for project, resize, layer_idx in zip(self.projects, self.resize_layers, self.intermediate_layer_idx):
            x = aggregated_tokens_list[layer_idx][:, :, patch_start_idx:]
            x = self.norm(x.reshape(-1, h * w, x.shape[-1]))
            levels.append(resize(project(x.transpose(1, 2).reshape(x.shape[0], -1, h, w))))
        return levels
