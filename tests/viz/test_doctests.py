import doctest
import importlib

import pytest

MODULES = ["sem3r.viz", "sem3r.viz.colors", "sem3r.viz.common", "sem3r.viz.ply", "sem3r.viz.glb", "sem3r.viz.html", "sem3r.viz.pca"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
