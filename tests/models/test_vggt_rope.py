import math

import torch

from sem3r.models.vggt.rope import RotaryPositionEmbedding2D, patch_positions


def _random_positions(gen, batch, n, high=20):
    return torch.randint(0, high, (batch, n, 2), generator=gen)


def test_patch_positions_are_row_major_row_col():
    pos = patch_positions(2, 3, 4)
    assert pos.shape == (2, 12, 2) and pos.dtype == torch.int64
    assert pos[1, 5].tolist() == [1, 1]
    assert pos[0, :, 0].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert pos[0, :, 1].tolist() == [0, 1, 2, 3] * 3


def test_rotation_preserves_norms_and_position_zero_is_identity():
    gen = torch.Generator().manual_seed(0)
    rope = RotaryPositionEmbedding2D(100.0)
    x = torch.randn(2, 3, 10, 32, generator=gen)
    pos = _random_positions(gen, 2, 10)
    out = rope(x, pos)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rope(x, torch.zeros_like(pos)), x)


def test_scores_depend_only_on_relative_position():
    gen = torch.Generator().manual_seed(1)
    rope = RotaryPositionEmbedding2D(100.0)
    q = torch.randn(1, 2, 8, 64, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 2, 8, 64, generator=gen, dtype=torch.float64)
    pq = _random_positions(gen, 1, 8)
    pk = _random_positions(gen, 1, 8)
    scores = rope(q, pq) @ rope(k, pk).transpose(-1, -2)
    shift = torch.tensor([7, 3])
    shifted = rope(q, pq + shift) @ rope(k, pk + shift).transpose(-1, -2)
    torch.testing.assert_close(shifted, scores, rtol=1e-4, atol=1e-4)
    # and it does depend on the relative position
    moved = rope(q, pq + torch.tensor([1, 0])) @ rope(k, pk).transpose(-1, -2)
    assert not torch.allclose(moved, scores, atol=1e-3)


def test_layout_rows_then_columns_rotate_half_pairs():
    """Head dim 8: features 0-3 rotate with the row, 4-7 with the column; within a half, feature i
    pairs with i + 2 and turns by ``p * 100 ** (-2 i / 4)``."""
    rope = RotaryPositionEmbedding2D(100.0)
    x = torch.randn(1, 1, 1, 8, dtype=torch.float64)
    row, col = 3, 5
    out = rope(x, torch.tensor([[[row, col]]]))[0, 0, 0]
    expected = torch.empty(8, dtype=torch.float64)
    v = x[0, 0, 0]
    for offset, p in ((0, row), (4, col)):
        for i in range(2):
            angle = p * 100.0 ** (-2 * i / 4)
            a, b = v[offset + i], v[offset + i + 2]
            expected[offset + i] = a * math.cos(angle) - b * math.sin(angle)
            expected[offset + i + 2] = b * math.cos(angle) + a * math.sin(angle)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
