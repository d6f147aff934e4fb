"""Geometry backends behind one entry point, :func:`reconstruct`.

A backend is a function ``(scene, config) -> Scene`` with a config dataclass beside it. It returns
a **new** Scene (the input is never modified) holding cameras and whatever dense geometry it
produces, and sets ``metadata['metric']`` to whether the result is in metres. :func:`reconstruct`
builds the config, calls the backend and records ``metadata['geometry']`` (the backend's name) and
``metadata['geometry_config']`` (its options as JSON).

Built-in backends, registered by module path so that a backend's module (and its heavy or optional
dependencies) is imported only when the backend is requested:

* ``feedforward``: the geometry transformer on the images
  (``sem3r.reconstruct.feedforward``: ``reconstruct_feedforward`` / ``FeedforwardConfig``);
* ``rgbd``: sensor depth and known poses (:mod:`sem3r.reconstruct.rgbd`);
* ``oracle``: the generator's ground truth of a synthetic scene (:mod:`sem3r.reconstruct.oracle`);
* ``colmap``: structure from motion with pycolmap, ``pip install 'sem3r[sfm]'``
  (:mod:`sem3r.reconstruct.colmap`).

A user plugs in another backend with :func:`register_backend`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

from sem3r.errors import MissingDependencyError, Sem3RError
from sem3r.scene import Scene

BackendFn = Callable[[Scene, Any], Scene]


@dataclass
class Backend:
    """A registered backend.

    Attributes:
        name: the name :func:`reconstruct` is called with.
        fn: the backend function, or ``"module:attribute"`` imported on first use.
        config_cls: its config dataclass, or ``"module:attribute"``.
    """

    name: str
    fn: BackendFn | str
    config_cls: type | str

    def load(self) -> tuple[BackendFn, type]:
        """Import (once) and return ``(fn, config_cls)``.

        Raises:
            Sem3RError: the backend's module or one of its dependencies is missing, or the module
                lacks the named attribute.
        """
        if isinstance(self.fn, str):
            self.fn = _import_attribute(self.name, self.fn)
        if isinstance(self.config_cls, str):
            self.config_cls = _import_attribute(self.name, self.config_cls)
        if not callable(self.fn):
            raise Sem3RError(f"backend '{self.name}': {self.fn!r} is not callable")
        if not (isinstance(self.config_cls, type) and dataclasses.is_dataclass(self.config_cls)):
            raise Sem3RError(f"backend '{self.name}': its config {self.config_cls!r} is not a dataclass")
        return self.fn, self.config_cls


_REGISTRY: dict[str, Backend] = {}

BACKENDS = MappingProxyType(_REGISTRY)
"""Read-only, live view ``name -> Backend`` of the registered backends (``list(BACKENDS)`` gives the names)."""


def _import_attribute(backend: str, target: str) -> Any:
    """Import ``"package.module:attribute"`` with a one-line error that names the backend."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except MissingDependencyError:
        raise
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise Sem3RError(
                f"backend '{backend}' is not available: its module '{module_name}' is not part of this installation "
                f"(registered backends: {', '.join(_REGISTRY)})"
            ) from None
        raise Sem3RError(f"backend '{backend}' needs the package '{missing}', which is not installed ({exc})") from None
    except ImportError as exc:
        raise Sem3RError(f"backend '{backend}' cannot be loaded: importing '{module_name}' failed ({exc})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise Sem3RError(f"backend '{backend}' is not available: module '{module_name}' has no '{attribute}'") from None


def register_backend(name: str, fn: BackendFn | str, config_cls: type | str, replace: bool = False) -> None:
    """Register a geometry backend.

    Args:
        name: the name passed to :func:`reconstruct`.
        fn: ``(scene, config) -> Scene``, or ``"module:attribute"`` to import it on first use.
        config_cls: the config dataclass (or ``"module:attribute"``); :func:`reconstruct` builds it
            from keyword options and calls its ``validate()`` method when it has one.
        replace: allow replacing a backend of the same name.

    Raises:
        Sem3RError: the name is taken (and ``replace`` is False) or empty.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class NoopConfig:
        ...     pass
        >>> register_backend("noop", lambda scene, config: scene.select_views(slice(None)), NoopConfig)
        >>> "noop" in BACKENDS
        True
        >>> unregister_backend("noop")
    """
    if not isinstance(name, str) or not name:
        raise Sem3RError(f"a backend name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not replace:
        raise Sem3RError(f"a geometry backend named '{name}' is already registered; pass replace=True to replace it")
    _REGISTRY[name] = Backend(name, fn, config_cls)


def unregister_backend(name: str) -> None:
    """Remove a registered backend (unknown names raise :class:`Sem3RError`)."""
    get_backend(name)
    del _REGISTRY[name]


def get_backend(name: str) -> Backend:
    """The registered :class:`Backend` called ``name``.

    Raises:
        Sem3RError: unknown name; the message lists the registered backends.
    """
    if name not in _REGISTRY:
        raise Sem3RError(f"unknown geometry backend '{name}'; known backends: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def make_config(name: str, config: Any = None, **options: Any) -> Any:
    """Build and validate the config of backend ``name``.

    Args:
        name: a registered backend.
        config: an instance of the backend's config class, or ``None`` for its defaults.
        **options: config fields to set (they override ``config``'s values).

    Returns:
        The config instance.

    Raises:
        Sem3RError: an option the config does not have (the message lists the ones it has), a
            config of the wrong class, or a value its ``validate()`` rejects.

    Example:
        >>> make_config("rgbd", max_depth=4.0).max_depth
        4.0
    """
    _, config_cls = get_backend(name).load()
    accepted = [f.name for f in dataclasses.fields(config_cls) if f.init]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise Sem3RError(f"backend '{name}' has no option(s) {', '.join(unknown)} (it takes: {', '.join(accepted)})")
    if config is None:
        config = config_cls(**options)
    elif isinstance(config, config_cls):
        config = dataclasses.replace(config, **options)
    else:
        raise Sem3RError(f"backend '{name}' takes a {config_cls.__name__} config, got {type(config).__name__}")
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def reconstruct(scene: Scene, backend: str = "feedforward", config: Any = None, **options: Any) -> Scene:
    """Recover the geometry of a Scene with the named backend.

    Args:
        scene: the input views; not modified.
        backend: a name in :data:`BACKENDS` (``feedforward``, ``rgbd``, ``oracle``, ``colmap``, or a
            registered plugin).
        config: the backend's config dataclass instance (default: its defaults).
        **options: config fields to override, e.g. ``max_depth=4.0``.

    Returns:
        A new Scene with cameras (and the dense fields the backend produces);
        ``metadata['geometry']`` is the backend's name, ``metadata['geometry_config']`` its
        options and ``metadata['metric']`` whether the result is in metres.

    Raises:
        Sem3RError: an unknown backend (the message lists the known ones), a backend whose module
            or dependency is missing, a bad option, or input the backend cannot use.
        TypeError: a backend broke the contract (returned no new Scene, or left
            ``metadata['metric']`` unset).

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(num_views=2, height=24, width=32, num_points=0)).scene
        >>> out = reconstruct(scene, "rgbd", max_depth=3.0)
        >>> out.metadata["geometry"], out.metadata["metric"], bool(out.depth.max() <= 3.0)
        ('rgbd', True, True)
    """
    if not isinstance(scene, Scene):
        raise Sem3RError(f"reconstruct needs a Scene, got {type(scene).__name__}")
    fn, _ = get_backend(backend).load()
    config = make_config(backend, config, **options)
    result = fn(scene, config)
    if not isinstance(result, Scene) or result is scene:
        raise TypeError(f"geometry backend '{backend}' must return a new Scene, got {type(result).__name__}")
    if not isinstance(result.metadata.get("metric"), bool):
        raise TypeError(f"geometry backend '{backend}' did not set metadata['metric'] to True or False")
    result.metadata["geometry"] = backend
    result.metadata["geometry_config"] = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return result


register_backend("feedforward", "sem3r.reconstruct.feedforward:reconstruct_feedforward", "sem3r.reconstruct.feedforward:FeedforwardConfig")
register_backend("rgbd", "sem3r.reconstruct.rgbd:reconstruct_rgbd", "sem3r.reconstruct.rgbd:RGBDConfig")
register_backend("oracle", "sem3r.reconstruct.oracle:reconstruct_oracle", "sem3r.reconstruct.oracle:OracleConfig")
register_backend("colmap", "sem3r.reconstruct.colmap:reconstruct_colmap", "sem3r.reconstruct.colmap:ColmapConfig")
