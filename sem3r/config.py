"""Config dataclasses from parsed JSON (nested sections, unknown keys rejected, values validated) and
from command-line ``key=value`` options typed by the dataclass's field annotations."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
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


_TRUE, _FALSE, _NONE = ("true", "yes", "on", "1"), ("false", "no", "off", "0"), ("none", "null")


def parse_value(text: str, kind: Any) -> Any:
    """Parse one command-line string as a value of the type annotation ``kind``.

    Handles ``bool`` (true/false, yes/no, on/off, 1/0), ``int``, ``float``, ``str``, ``Path``,
    ``Literal[...]``, optional and union types (``none`` or ``null`` for ``None``; the members are
    tried in order), ``tuple[X, ...]``, fixed-length tuples and ``list[X]`` (comma-separated,
    optionally in brackets or parentheses) and ``dict`` (JSON). Other annotations (``Any``) take a
    JSON value when the text is one, else the string.

    Raises:
        ValueError: the text is not a value of that type (the message says what was expected).

    Example:
        >>> parse_value("none", float | None), parse_value("0.5", float | None), parse_value("yes", bool)
        (None, 0.5, True)
        >>> parse_value("1,2,3", tuple[int, ...]), parse_value("[0.5, 1]", tuple[float, float])
        ((1, 2, 3), (0.5, 1.0))
    """
    text = text.strip()
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any or kind is None:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if kind is type(None):
        if text.lower() in _NONE:
            return None
        raise ValueError("expected none")
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in _NONE:
            return None
        for member in args:
            if member is not type(None):
                try:
                    return parse_value(text, member)
                except ValueError:
                    pass
        raise ValueError(f"expected {_type_name(kind)}")
    if origin is typing.Literal:
        for choice in args:
            if str(choice) == text or (isinstance(choice, str) and choice.lower() == text.lower()):
                return choice
        raise ValueError(f"expected one of {', '.join(str(c) for c in args)}")
    if origin in (tuple, list) or kind in (tuple, list):
        inner = text[1:-1] if text[:1] + text[-1:] in ("()", "[]") else text
        items = [item for item in (part.strip() for part in inner.split(",")) if item] if inner.strip() else []
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise ValueError(f"expected {len(args)} comma-separated values")
            return tuple(parse_value(item, member) for item, member in zip(items, args))
        member = args[0] if args else Any
        values = [parse_value(item, member) for item in items]
        return tuple(values) if (origin or kind) is tuple else values
    if origin is dict or kind is dict:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    if kind is str:
        return text
    if kind is Path:
        return Path(text)
    raise ValueError(f"a {_type_name(kind)} cannot be given on the command line")


def _type_name(kind: Any) -> str:
    """Short readable name of a type annotation (``float or None``)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(member) for member in typing.get_args(kind))
    if kind is type(None):
        return "None"
    return getattr(kind, "__name__", None) if typing.get_origin(kind) is None else str(kind).replace("typing.", "")


def parse_options(cls: type, items: Iterable[str], label: str) -> dict[str, Any]:
    """Parse command-line ``key=value`` strings into typed fields of the dataclass ``cls``.

    Each value is parsed with :func:`parse_value` against the field's annotation; a later item
    overrides an earlier one with the same key. The result is meant as keyword overrides of the
    config (e.g. :func:`sem3r.registry.Registry.make_config`), which then validates the values.

    Args:
        cls: a dataclass.
        items: ``"key=value"`` strings.
        label: names the config in error messages, e.g. ``"mask source 'oversegment'"``.

    Returns:
        ``{field name: typed value}``.

    Raises:
        Sem3RError: an item without ``=``, an unknown key or a value that does not parse; the one-line
            message names the key and lists the valid keys.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Toy:
        ...     k: float = 0.5
        ...     min_size: int | None = None
        ...     fast: bool = False
        >>> parse_options(Toy, ["k=2", "min_size=none", "fast=true"], "toy")
        {'k': 2.0, 'min_size': None, 'fast': True}
        >>> parse_options(Toy, ["size=3"], "toy")
        Traceback (most recent call last):
        ...
        sem3r.errors.Sem3RError: toy has no option 'size' (valid keys: k, min_size, fast)
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.init]
    valid = f"valid keys: {', '.join(names)}"
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise Sem3RError(f"{label} option '{item}' is not of the form key=value ({valid})")
        if key not in names:
            raise Sem3RError(f"{label} has no option '{key}' ({valid})")
        try:
            out[key] = parse_value(text, hints.get(key, Any))
        except ValueError as exc:
            raise Sem3RError(f"{label} option {key}={text.strip()!r}: {exc} ({valid})") from None
    return out
