"""The packed token sequence of G2VLM: segments, M-RoPE positions, expert routing and visibility.

A sequence is a list of segments appended in order (G2VLM facts, sections 4-6):

* a **text** segment of n tokens takes positions ``p .. p+n-1`` in all three M-RoPE rows and is causal
  inside itself;
* an **image block** (one image of the ViT or one frame of the DINO branch) is ``<|vision_start|>`` at
  ``p``, the ``rows x cols`` image tokens at ``t = p+1``, ``h = p+1+row``, ``w = p+1+col`` (row-major),
  and ``<|vision_end|>`` at ``p+1+max(rows, cols)``; the next free position is one past the end token.
  All frames of a DINO call form ONE segment of back-to-back image blocks; a ViT image is its own
  segment. Image segments have full attention inside.

A query sees every token of earlier segments and the visible tokens of its own; later segments are
never seen. DINO tokens are routed to the geometry expert, everything else (text, ViT tokens, the
start / end tokens of every block) to the semantic expert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def text_positions(start: int, n: int) -> torch.Tensor:
    """``(3, n)`` positions of a text segment starting at ``start``.

    Example:
        >>> text_positions(4, 3).tolist()
        [[4, 5, 6], [4, 5, 6], [4, 5, 6]]
    """
    return torch.arange(start, start + n).expand(3, n).clone()


def image_block_positions(start: int, rows: int, cols: int) -> torch.Tensor:
    """``(3, rows * cols + 2)`` positions of one image block (start token, tokens, end token).

    Example:
        >>> image_block_positions(10, 2, 3).tolist()
        [[10, 11, 11, 11, 11, 11, 11, 14], [10, 11, 11, 11, 12, 12, 12, 14], [10, 11, 12, 13, 11, 12, 13, 14]]
    """
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    body = torch.stack((torch.zeros_like(r), r, c)).reshape(3, -1) + start + 1
    end = start + 1 + max(rows, cols)
    return torch.cat((torch.full((3, 1), start), body, torch.full((3, 1), end)), dim=1)


@dataclass
class PackedSequence:
    """Segments appended one after the other (one sample).

    Attributes:
        embeds: per segment ``(n, D)`` input embeddings.
        positions: per segment ``(3, n)``.
        geo: per segment ``(n,)`` bool, True for geometry-expert tokens.
        causal: per segment, True for text (causal), False for image blocks (full).
        next_position: the next free position.
    """

    embeds: list = field(default_factory=list)
    positions: list = field(default_factory=list)
    geo: list = field(default_factory=list)
    causal: list = field(default_factory=list)
    next_position: int = 0

    def add_text(self, embeds: torch.Tensor) -> slice:
        """Append a text segment ``(n, D)``; returns its token slice."""
        n = embeds.shape[0]
        return self._add(embeds, text_positions(self.next_position, n), torch.zeros(n, dtype=torch.bool),
                         True, self.next_position + n)

    def add_images(self, start: torch.Tensor, tokens: torch.Tensor, end: torch.Tensor, grid: tuple[int, int],
                   geometry: bool) -> tuple[slice, torch.Tensor]:
        """Append one segment of image blocks.

        Args:
            start, end: ``(D,)`` embeddings of ``<|vision_start|>`` / ``<|vision_end|>``.
            tokens: ``(F, rows * cols, D)`` image tokens of F images (frames).
            grid: ``(rows, cols)`` of every image.
            geometry: route the image tokens to the geometry expert.

        Returns:
            The segment's token slice and ``(F, rows * cols)`` indices of the image tokens in the sequence.
        """
        F_, n, D = tokens.shape
        rows, cols = grid
        p = self.next_position
        pos = []
        for _ in range(F_):
            pos.append(image_block_positions(p, rows, cols))
            p = int(pos[-1][0, -1]) + 1
        block = torch.cat((start.expand(F_, 1, D), tokens, end.expand(F_, 1, D)), dim=1)  # (F, n+2, D)
        geo = torch.zeros(F_, n + 2, dtype=torch.bool)
        geo[:, 1:-1] = geometry
        offset = sum(e.shape[0] for e in self.embeds)
        index = offset + torch.arange(F_)[:, None] * (n + 2) + 1 + torch.arange(n)
        seg = self._add(block.reshape(F_ * (n + 2), D), torch.cat(pos, dim=1), geo.reshape(-1), False, p)
        return seg, index

    def _add(self, embeds, positions, geo, causal, next_position) -> slice:
        offset = sum(e.shape[0] for e in self.embeds)
        self.embeds.append(embeds)
        self.positions.append(positions.to(embeds.device))
        self.geo.append(geo.to(embeds.device))
        self.causal.append(causal)
        self.next_position = next_position
        return slice(offset, offset + embeds.shape[0])

    def __len__(self) -> int:
        return sum(e.shape[0] for e in self.embeds)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``embeds (L, D)``, ``positions (3, L)``, ``geo (L,)`` and ``visible (L, L)`` bool."""
        return (torch.cat(self.embeds), torch.cat(self.positions, dim=1), torch.cat(self.geo),
                visibility([e.shape[0] for e in self.embeds], self.causal, device=self.embeds[0].device))


def visibility(lengths: list[int], causal: list[bool], device=None) -> torch.Tensor:
    """``(L, L)`` bool: query i may see key j (earlier segments fully; own segment causal or full).

    Example:
        >>> visibility([2, 2], [True, False]).int().tolist()
        [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    """
    seg = torch.repeat_interleave(torch.arange(len(lengths), device=device), torch.tensor(lengths, device=device))
    idx = torch.arange(seg.numel(), device=device)
    is_causal = torch.tensor(causal, device=device)[seg]
    same = seg[:, None] == seg[None, :]
    return (seg[None, :] < seg[:, None]) | (same & (~is_causal[:, None] | (idx[None, :] <= idx[:, None])))


def pad_batch(sequences: list[PackedSequence]) -> dict[str, torch.Tensor]:
    """Stack samples right-padded to the longest: ``embeds (B, L, D)``, ``positions (B, 3, L)``,
    ``geo (B, L)``, ``mask (B, 1, L, L)`` (padding keys hidden; a padding query sees only itself) and
    ``valid (B, L)``."""
    parts = [s.tensors() for s in sequences]
    L = max(p[0].shape[0] for p in parts)
    B, D = len(parts), parts[0][0].shape[1]
    dev = parts[0][0].device
    embeds = parts[0][0].new_zeros(B, L, D)
    positions = torch.zeros(B, 3, L, dtype=torch.long, device=dev)
    geo = torch.zeros(B, L, dtype=torch.bool, device=dev)
    mask = torch.eye(L, dtype=torch.bool, device=dev).repeat(B, 1, 1)
    valid = torch.zeros(B, L, dtype=torch.bool, device=dev)
    for b, (e, p, g, v) in enumerate(parts):
        n = e.shape[0]
        embeds[b, :n], positions[b, :, :n], geo[b, :n], valid[b, :n] = e, p, g, True
        mask[b, :n, :n] = v
    return {"embeds": embeds, "positions": positions, "geo": geo, "mask": mask[:, None], "valid": valid}
