"""The docstring examples of every geometry module run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["camera", "icp", "knn", "normals", "pose_encoding", "relative", "transforms", "voxels", "_validate"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"sem3r.geometry.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
