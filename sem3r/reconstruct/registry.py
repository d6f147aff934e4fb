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
  (:mod:`sem3r.reconstruct.colmap`);
* ``g2vlm``: G2VLM's geometry expert on the images (:mod:`sem3r.reconstruct.g2vlm`, the ``[vlm]`` extra).

A user plugs in another backend with :func:`register_backend`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from sem3r.errors import Sem3RError
from sem3r.registry import Entry, Registry
from sem3r.scene import Scene

BackendFn = Callable[[Scene, Any], Scene]


_REGISTRY = Registry("geometry backend", noun="backend")

Backend = Entry
"""A registered backend: :class:`sem3r.registry.Entry` (``name``, ``fn``, ``config_cls``, ``load()``)."""

BACKENDS = _REGISTRY.entries
"""Read-only, live view ``name -> Backend`` of the registered backends (``list(BACKENDS)`` gives the names)."""


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
    _REGISTRY.register(name, fn, config_cls, replace)


def unregister_backend(name: str) -> None:
    """Remove a registered backend (unknown names raise :class:`Sem3RError`)."""
    _REGISTRY.unregister(name)


def get_backend(name: str) -> Backend:
    """The registered backend called ``name``.

    Raises:
        Sem3RError: unknown name; the message lists the registered backends.
    """
    return _REGISTRY.get(name)


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
    return _REGISTRY.make_config(name, config, **options)


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
register_backend("g2vlm", "sem3r.reconstruct.g2vlm:reconstruct_g2vlm", "sem3r.reconstruct.g2vlm:G2VLMReconstructConfig")
