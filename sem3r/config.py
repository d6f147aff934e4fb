"""Config dataclasses from parsed JSON: nested sections, unknown keys rejected, values validated."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from sem3r.errors import Sem3RError


def dataclass_from_dict(cls: type, doc: Any, label: str):
    """Build the dataclass ``cls`` from a parsed JSON object, recursing into dataclass-typed fields.

    A nested field is built with its class's own ``from_dict`` when it has one, else recursively;
    the result is validated when it has a ``validate`` method. Unknown keys are an error.

    Args:
        cls: a dataclass.
        doc: the JSON object.
        label: names the section in error messages, e.g. ``"segmenter3d training config"``.

    Returns:
        An instance of ``cls``.

    Raises:
        Sem3RError: not an object, unknown keys, or values the dataclass rejects.
    """
    if not isinstance(doc, Mapping):
        raise Sem3RError(f"the {label} must be a JSON object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(doc) - names)
    if unknown:
        raise Sem3RError(f"unknown {label} keys {unknown}")
    kwargs = {}
    for key, value in doc.items():
        kind = hints.get(key)
        if isinstance(kind, type) and is_dataclass(kind) and isinstance(value, Mapping):
            from_dict = getattr(kind, "from_dict", None)
            value = from_dict(value) if from_dict else dataclass_from_dict(kind, value, f"{label} '{key}' section")
        kwargs[key] = value
    try:
        obj = cls(**kwargs)
        if callable(getattr(obj, "validate", None)):
            obj.validate()
    except TypeError as exc:
        raise Sem3RError(f"invalid {label}: {exc}") from None
    return obj
