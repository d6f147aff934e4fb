"""The docstring examples of every eval module run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["camera", "depth", "instance_ap", "pointcloud", "qa", "scene_eval", "semantic", "tracking"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"sem3r.eval.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
