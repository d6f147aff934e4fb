"""Command-line ``key=value`` options typed by a config dataclass's field annotations."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from sem3r.config import parse_options, parse_value
from sem3r.errors import Sem3RError
from sem3r.instances.mask_sources import OversegmentConfig, make_mask_config


@dataclass
class Everything:
    count: int = 1
    scale: float = 0.5
    limit: float | None = 0.1
    size: int | None = None
    flag: bool = False
    name: str = "auto"
    mode: Literal["crop", "pad"] = "crop"
    levels: tuple[float, ...] = (1.0,)
    pair: tuple[int, int] = (0, 0)
    names: list[str] = field(default_factory=list)
    path: Path = Path(".")
    extra: dict = field(default_factory=dict)
    anything: Any = None


def test_values_follow_the_field_types():
    items = ["count=3", "scale=2", "limit=none", "size=12", "flag=yes", "name=points", "mode=pad", "levels=95,90.5",
             "pair=(1, 2)", "names=[a, b]", "path=out/x", 'extra={"a": 1}', "anything=[1, 2]"]
    assert parse_options(Everything, items, "toy") == {
        "count": 3, "scale": 2.0, "limit": None, "size": 12, "flag": True, "name": "points", "mode": "pad",
        "levels": (95.0, 90.5), "pair": (1, 2), "names": ["a", "b"], "path": Path("out/x"), "extra": {"a": 1},
        "anything": [1, 2],
    }
    assert parse_options(Everything, ["limit=0.25", "flag=0", "levels=", "count=1", "count=2"], "toy") == {
        "limit": 0.25, "flag": False, "levels": (), "count": 2}  # a later item wins
    assert isinstance(parse_value("7", float), float) and parse_value("none", int | None) is None


@pytest.mark.parametrize("item, words", [
    ("count=2.5", ["count", "expected an integer"]),
    ("scale=big", ["scale", "expected a number"]),
    ("size=x", ["size", "int or None"]),
    ("flag=maybe", ["flag", "true or false"]),
    ("mode=zoom", ["mode", "crop, pad"]),
    ("pair=1,2,3", ["pair", "2 comma-separated"]),
    ("extra=[1]", ["extra", "JSON object"]),
    ("colour=red", ["'colour'"]),
    ("=3", ["key=value"]),
    ("count", ["key=value"]),
])
def test_bad_items_name_the_key_and_list_the_valid_ones_on_one_line(item, words):
    with pytest.raises(Sem3RError) as info:
        parse_options(Everything, [item], "toy")
    message = str(info.value)
    assert "\n" not in message and "valid keys: count, scale, limit, size, flag" in message
    assert all(word in message for word in words), message


def test_mask_source_options_round_trip_into_the_registry_config():
    options = parse_options(OversegmentConfig, ["min_size=200", "depth_cut=none", "depth_noise=0.006", "k=1"],
                            "mask source 'oversegment'")
    config = make_mask_config("oversegment", **options)
    assert (config.min_size, config.depth_cut, config.depth_noise, config.k) == (200, None, 0.006, 1.0)
    assert isinstance(config.k, float) and isinstance(config.min_size, int)
