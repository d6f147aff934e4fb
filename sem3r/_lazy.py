"""Lazy package exports: a package names its public objects and their submodules, and a submodule is
imported only when one of its names is first used (keeps ``import sem3r...`` cheap: no torch,
no pycolmap until needed)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, submodule_of: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` exporting ``name -> submodule`` lazily.

    Example:
        >>> getattr_, dir_, all_ = lazy_exports("sem3r.geometry", {"umeyama": "transforms"})
        >>> getattr_("umeyama").__name__, all_
        ('umeyama', ['umeyama'])
    """

    def __getattr__(name: str) -> Any:
        if name not in submodule_of:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        return getattr(importlib.import_module(f"{package}.{submodule_of[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(submodule_of)

    return __getattr__, __dir__, list(submodule_of)
