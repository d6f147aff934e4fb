"""What several benchmark scripts share (they run as ``python benchmarks/NAME.py``, so this imports as ``common``)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def size_arg(text: str) -> tuple[int, int]:
    """Parse an argparse ``"HxW"`` image size into ``(H, W)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 192x256 (HxW), got '{text}'") from None
    return h, w


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls of ``fn`` and its last result."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out
