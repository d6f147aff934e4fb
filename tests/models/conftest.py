"""The official checkpoint layouts (``../shared/reference``) that the models must reproduce."""

from pathlib import Path

import pytest
import torch

REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def _read_layout(name: str) -> dict[str, tuple[int, ...]]:
    path = REFERENCE_DIR / f"{name}_state_dict.txt"
    if not path.is_file():
        pytest.skip(f"reference layout {path} not available")
    layout = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split("\t")
            layout[key] = tuple(int(d) for d in shape.strip("[] ").split(",") if d.strip())
    return layout


@pytest.fixture
def official_layout():
    """``official_layout(name="vggt") -> {key: shape}`` of the official checkpoint (skips when absent)."""
    return _read_layout


@pytest.fixture
def assert_official_layout():
    """``assert_official_layout(module, prefix="", name="vggt")``: ``module``'s state dict, with its
    keys prefixed by ``prefix``, equals the official layout under that prefix (keys and shapes)."""

    def check(module: torch.nn.Module, prefix: str = "", name: str = "vggt") -> None:
        expected = {k: v for k, v in _read_layout(name).items() if k.startswith(prefix)}
        mine = {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}
        missing = sorted(set(expected) - set(mine))
        unexpected = sorted(set(mine) - set(expected))
        wrong = sorted(f"{k}: {mine[k]} != {expected[k]}" for k in set(mine) & set(expected) if mine[k] != expected[k])
        assert not (missing or unexpected or wrong), f"missing {missing}\nunexpected {unexpected}\nwrong shapes {wrong}"

    return check


@pytest.fixture
def small_track():
    """Keyword arguments of a small :class:`~sem3r.models.vggt.track_head.TrackHead` for CPU tests."""
    return dict(
        dim_in=32,
        features=16,
        out_channels=(8, 16, 32, 32),
        intermediate_layer_idx=(0, 1, 2, 3),
        corr_levels=3,
        corr_radius=2,
        hidden_size=32,
        depth=2,
        num_heads=4,
        num_virtual_tracks=4,
    )
