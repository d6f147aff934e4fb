"""Every example in a docstring of the package runs and prints what it claims."""

import doctest
import importlib
import pkgutil

import pytest

import sem3r

MODULES = sorted(m.name for m in pkgutil.walk_packages(sem3r.__path__, "sem3r."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0
