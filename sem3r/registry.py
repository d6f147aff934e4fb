"""Named plug-ins with config dataclasses: one :class:`Registry` per kind of stage (geometry backends,
segmentation methods, 2D mask sources, ...).

An entry is a function and the config dataclass beside it, either objects or ``"module:attribute"``
strings imported on first use, so that a plug-in's module (and its heavy or optional dependencies)
loads only when it is requested.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class ScaleConfig:
    ...     factor: float = 2.0
    >>> ops = Registry("toy operation", noun="operation")
    >>> ops.register("scale", lambda x, config: x * config.factor, ScaleConfig)
    >>> fn, _ = ops.get("scale").load()
    >>> fn(3.0, ops.make_config("scale", factor=4.0))
    12.0
    >>> list(ops.entries)
    ['scale']
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sem3r.errors import MissingDependencyError, Sem3RError


@dataclass
class Entry:
    """A registered plug-in.

    Attributes:
        name: the name it is requested by.
        fn: the function, or ``"module:attribute"`` imported on first use.
        config_cls: its config dataclass, or ``"module:attribute"``.
        registry: the :class:`Registry` it belongs to (for messages).
    """

    name: str
    fn: Callable | str
    config_cls: type | str
    registry: Registry

    def load(self) -> tuple[Callable, type]:
        """Import (once) and return ``(fn, config_cls)``.

        Raises:
            Sem3RError: the module or one of its dependencies is missing, or the module lacks the
                named attribute.
        """
        noun = self.registry.noun
        if isinstance(self.fn, str):
            self.fn = self.registry._import(self.name, self.fn)
        if isinstance(self.config_cls, str):
            self.config_cls = self.registry._import(self.name, self.config_cls)
        if not callable(self.fn):
            raise Sem3RError(f"{noun} '{self.name}': {self.fn!r} is not callable")
        if not (isinstance(self.config_cls, type) and dataclasses.is_dataclass(self.config_cls)):
            raise Sem3RError(f"{noun} '{self.name}': its config {self.config_cls!r} is not a dataclass")
        return self.fn, self.config_cls


class Registry:
    """Plug-ins of one kind, by name.

    Args:
        kind: what an entry is, for messages (``"geometry backend"``).
        noun: the short word used in messages about one entry (``"backend"``).
    """

    def __init__(self, kind: str, noun: str | None = None) -> None:
        self.kind = kind
        self.noun = noun or kind
        self._entries: dict[str, Entry] = {}
        self.entries = MappingProxyType(self._entries)
        """Read-only, live view ``name -> Entry`` (``list(registry.entries)`` gives the names)."""

    def _import(self, name: str, target: str) -> Any:
        """Import ``"package.module:attribute"`` with a one-line error that names the entry."""
        noun = self.noun
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except MissingDependencyError:
            raise
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing and (module_name == missing or module_name.startswith(missing + ".")):
                raise Sem3RError(
                    f"{noun} '{name}' is not available: its module '{module_name}' is not part of this installation "
                    f"(registered {noun}s: {', '.join(self._entries)})"
                ) from None
            raise Sem3RError(f"{noun} '{name}' needs the package '{missing}', which is not installed ({exc})") from None
        except ImportError as exc:
            raise Sem3RError(f"{noun} '{name}' cannot be loaded: importing '{module_name}' failed ({exc})") from None
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise Sem3RError(f"{noun} '{name}' is not available: module '{module_name}' has no '{attribute}'") from None

    def register(self, name: str, fn: Callable | str, config_cls: type | str, replace: bool = False) -> None:
        """Register ``fn`` (or ``"module:attribute"``) with its config dataclass under ``name``.

        Raises:
            Sem3RError: the name is taken (and ``replace`` is False) or empty.
        """
        if not isinstance(name, str) or not name:
            raise Sem3RError(f"a {self.noun} name must be a non-empty string, got {name!r}")
        if name in self._entries and not replace:
            raise Sem3RError(f"a {self.kind} named '{name}' is already registered; pass replace=True to replace it")
        self._entries[name] = Entry(name, fn, config_cls, self)

    def unregister(self, name: str) -> None:
        """Remove an entry (unknown names raise :class:`Sem3RError`)."""
        self.get(name)
        del self._entries[name]

    def get(self, name: str) -> Entry:
        """The :class:`Entry` called ``name``.

        Raises:
            Sem3RError: unknown name; the message lists the registered ones.
        """
        if name not in self._entries:
            raise Sem3RError(f"unknown {self.kind} '{name}'; known {self.noun}s: {', '.join(self._entries)}")
        return self._entries[name]

    def make_config(self, name: str, config: Any = None, **options: Any) -> Any:
        """Build and validate the config of entry ``name``.

        Args:
            name: a registered entry.
            config: an instance of its config class, or ``None`` for the defaults.
            **options: config fields to set (they override ``config``'s values).

        Raises:
            Sem3RError: an option the config does not have (the message lists the ones it has), a
                config of the wrong class, or a value its ``validate()`` rejects.
        """
        _, config_cls = self.get(name).load()
        accepted = [f.name for f in dataclasses.fields(config_cls) if f.init]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise Sem3RError(f"{self.noun} '{name}' has no option(s) {', '.join(unknown)} (it takes: {', '.join(accepted)})")
        if config is None:
            config = config_cls(**options)
        elif isinstance(config, config_cls):
            config = dataclasses.replace(config, **options)
        else:
            raise Sem3RError(f"{self.noun} '{name}' takes a {config_cls.__name__} config, got {type(config).__name__}")
        validate = getattr(config, "validate", None)
        if callable(validate):
            validate()
        return config
