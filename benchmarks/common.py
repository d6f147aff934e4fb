"""What several benchmark scripts share (they run as ``python benchmarks/NAME.py``, so this imports as ``common``)."""

from __future__ import annotations

import argparse


def size_arg(text: str) -> tuple[int, int]:
    """Parse an argparse ``"HxW"`` image size into ``(H, W)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 192x256 (HxW), got '{text}'") from None
    return h, w
