"""2D rotary position embedding (RoPE) as used by VGGT's alternating-attention blocks.

Every query / key head vector of dimension D is split into two halves: the first half is rotated
by the token's row position, the second half by its column position. Inside a half of dimension
d = D / 2 the layout is "rotate half" (not interleaved): feature ``i`` and feature ``i + d / 2``
form a pair that is rotated by the angle ``p * theta_i`` with ``theta_i = frequency ** (-2 i / d)``,
``i = 0 .. d / 2 - 1``, ``p`` the integer position. VGGT uses ``frequency = 100``.

Because every pair is rotated by an angle linear in the position, the dot product of a rotated
query and a rotated key depends only on the difference of their positions.

Patch positions are ``(row, column)`` of the patch grid in row-major order; the aggregator shifts
them by +1 and gives the camera and register tokens position ``(0, 0)``.
"""

from __future__ import annotations

import torch
from torch import nn


def patch_positions(batch: int, rows: int, cols: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Integer ``(row, column)`` positions of a ``rows x cols`` patch grid, row-major.

    Args:
        batch: number of copies.
        rows: grid height (patches).
        cols: grid width (patches).
        device: device of the result.

    Returns:
        ``(batch, rows * cols, 2)`` int64.

    Example:
        >>> patch_positions(1, 2, 3)[0].tolist()
        [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    """
    r = torch.arange(rows, device=device)
    c = torch.arange(cols, device=device)
    grid = torch.stack(torch.meshgrid(r, c, indexing="ij"), dim=-1).reshape(1, rows * cols, 2)
    return grid.expand(batch, -1, -1).clone()


class RotaryPositionEmbedding2D(nn.Module):
    """Rotate query / key head vectors by their 2D positions (no learned parameters).

    Args:
        frequency: base of the geometric frequency ladder (VGGT: 100).

    Example:
        >>> rope = RotaryPositionEmbedding2D(100.0)
        >>> q = torch.randn(2, 4, 6, 16)            # (B, heads, N, head_dim)
        >>> pos = patch_positions(2, 2, 3)          # (B, N, 2)
        >>> rope(q, pos).shape
        torch.Size([2, 4, 6, 16])
    """

    def __init__(self, frequency: float = 100.0) -> None:
        super().__init__()
        self.frequency = float(frequency)

    def _rotate(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` ``(B, heads, N, d)`` by the 1D positions ``pos`` ``(B, N)``."""
        d = x.shape[-1]
        inv_freq = 1.0 / (self.frequency ** (torch.arange(0, d, 2, device=x.device).float() / d))
        angles = pos.to(inv_freq.dtype)[..., None] * inv_freq  # (B, N, d / 2), float32
        angles = torch.cat((angles, angles), dim=-1).to(x.dtype)[:, None]  # (B, 1, N, d)
        first, second = x[..., : d // 2], x[..., d // 2 :]
        rotated_half = torch.cat((-second, first), dim=-1)
        return x * angles.cos() + rotated_half * angles.sin()

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Apply the 2D rotation.

        Args:
            x: ``(B, heads, N, D)`` queries or keys, D divisible by 4.
            positions: ``(B, N, 2)`` integer (row, column) positions.

        Returns:
            ``(B, heads, N, D)``, same dtype as ``x``.
        """
        half = x.shape[-1] // 2
        rows = self._rotate(x[..., :half], positions[..., 0])
        cols = self._rotate(x[..., half:], positions[..., 1])
        return torch.cat((rows, cols), dim=-1)
