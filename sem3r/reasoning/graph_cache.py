"""A scene-graph cache inside the Scene folder, so that repeated questions skip the graph build.

:func:`load_or_build_scene_graph` returns the :class:`~sem3r.reasoning.scene_graph.SceneGraph` of a
Scene folder. The first call builds it and writes ``scene_graph.npz`` (:data:`CACHE_FILE`) beside
``scene.json``; later calls (a new ``sem3r ask`` process, a ``sem3r run`` pipeline) read it back.

Validity. The cache records two keys and is used when either matches:

* a **files key**: a hash of the graph config, the bytes of ``scene.json`` and the name, size and
  modification time of the array files it names. :meth:`Scene.save` writes array files under fresh
  names and a new ``scene.json`` on every save, so any save (``sem3r segment`` rewriting the
  masks, say) changes it. Checking it reads no arrays: a warm question costs the cache read only.
* a **content key** (:func:`scene_fingerprint`): a BLAKE2b hash of everything the graph depends on:
  ``intrinsics``, ``cam_from_world``, ``depth``, ``depth_conf``, ``world_points``, ``point_conf``,
  ``instance_masks``, ``semantic_masks``, the instance table, the metadata (class names, declared
  up axis, point source ...) and the :class:`~sem3r.reasoning.scene_graph.SceneGraphConfig`
  (including its ``up`` override). It is computed when the files key does not match, from just
  those arrays (images and instance features are not read); when it matches (the same Scene saved
  again), the cache is kept and its files key refreshed. A graph built from a Scene given in memory
  is keyed by content only, since the folder may hold another version of it.

Anything else (a missing, truncated, corrupt or older-version cache, a stale key) is silently
rebuilt, and a folder that cannot be written to just goes without a cache. The cache is plain
arrays (``np.load(..., allow_pickle=False)``), written atomically.

Example:
    >>> import tempfile
    >>> from sem3r.data.synthetic import SynthConfig, generate_scene
    >>> folder = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64, num_points=0)).scene.save(
    ...     tempfile.mkdtemp())
    >>> graph = load_or_build_scene_graph(folder)  # built, then written to folder/scene_graph.npz
    >>> again = load_or_build_scene_graph(folder)  # read back
    >>> [o.id for o in again.objects] == [o.id for o in graph.objects]
    True
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.io import write_npz_atomic
from sem3r.reasoning.scene_graph import (
    SceneGraph,
    SceneGraphConfig,
    SceneObject,
    build_scene_graph,
)
from sem3r.scene import FORMAT_VERSION, InstanceTable, Scene

CACHE_FILE = "scene_graph.npz"
"""Name of the cache file in a Scene folder."""

CACHE_VERSION = 1
"""Layout version of :data:`CACHE_FILE`; a cache of another version is rebuilt."""

GRAPH_INPUTS = {
    "intrinsics": np.float64, "cam_from_world": np.float64, "depth": np.float32, "depth_conf": np.float32,
    "world_points": np.float32, "point_conf": np.float32, "instance_masks": np.int32, "semantic_masks": np.int32,
}
"""The Scene arrays a scene graph depends on, with the dtype a Scene holds them in."""


def _config_json(config: SceneGraphConfig) -> str:
    fields = asdict(config)
    if not isinstance(fields["up"], str):
        fields["up"] = [float(x) for x in np.asarray(fields["up"], np.float64).reshape(-1)]
    return json.dumps(fields, sort_keys=True)


def _digest(arrays: Mapping[str, np.ndarray | None], table: InstanceTable, metadata: dict,
            config: SceneGraphConfig) -> str:
    """BLAKE2b-128 hex digest of the graph inputs, in a fixed order and canonical dtypes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"sem3r.scene_graph/{CACHE_VERSION}\n{_config_json(config)}\n".encode())
    h.update(json.dumps({"metadata": metadata, "labels": list(table.labels)}, sort_keys=True, default=str).encode())
    columns = {f"table.{k}": v for k, v in table.to_arrays().items()}
    for name in sorted(GRAPH_INPUTS) + sorted(columns):
        value = columns[name] if name in columns else arrays.get(name)
        if value is None:
            h.update(f"\n{name}:none".encode())
            continue
        a = np.ascontiguousarray(value, GRAPH_INPUTS.get(name))
        h.update(f"\n{name}:{a.dtype.str}{a.shape}".encode())
        h.update(a.reshape(-1).view(np.uint8).data if a.size else b"")
    return h.hexdigest()


def scene_fingerprint(scene: Scene, config: SceneGraphConfig | None = None) -> str:
    """The content key of ``scene``'s graph under ``config`` (see the module docstring).

    Args:
        scene: any Scene; only the arrays in :data:`GRAPH_INPUTS`, the instance table and the
            metadata are read.
        config: the graph settings (defaults when ``None``).

    Returns:
        A 32-character hex string; equal strings mean the same graph.
    """
    return _digest({name: getattr(scene, name) for name in GRAPH_INPUTS}, scene.instances, scene.metadata,
                   config or SceneGraphConfig())


def _scene_doc(scene_dir: Path) -> tuple[bytes, dict] | None:
    try:
        raw = (scene_dir / "scene.json").read_bytes()
        doc = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != "sem3r.scene" or doc.get("format_version") != FORMAT_VERSION:
        return None
    files = doc.get("files")
    if not isinstance(files, dict) or not all(isinstance(files.get(k), str) for k in ("views", "instances")):
        return None
    return raw, doc


def _files_key(scene_dir: Path, config: SceneGraphConfig) -> str | None:
    """Hash of the config, ``scene.json`` and the stat of the array files it names (``None`` when unreadable)."""
    found = _scene_doc(scene_dir)
    if found is None:
        return None
    raw, doc = found
    h = hashlib.blake2b(digest_size=16)
    h.update(f"sem3r.scene_graph.files/{CACHE_VERSION}\n{_config_json(config)}\n".encode() + raw)
    for key in ("views", "instances"):
        try:
            st = (scene_dir / doc["files"][key]).stat()
        except OSError:
            return None
        h.update(f"\n{doc['files'][key]}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _folder_fingerprint(scene_dir: Path, config: SceneGraphConfig) -> str | None:
    """:func:`scene_fingerprint` of the Scene saved in ``scene_dir``, reading only the graph inputs."""
    found = _scene_doc(scene_dir)
    if found is None:
        return None
    _, doc = found
    try:
        with np.load(scene_dir / doc["files"]["views"], allow_pickle=False) as z:
            arrays = {name: z[name] for name in GRAPH_INPUTS if name in z.files}
        with np.load(scene_dir / doc["files"]["instances"], allow_pickle=False) as z:
            table = InstanceTable(labels=doc.get("instance_labels", []), **{k: z[k] for k in z.files})
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, Sem3RError):
        return None
    return _digest(arrays, table, doc.get("metadata", {}), config)


def _graph_arrays(graph: SceneGraph, files_key: str, content_key: str) -> dict[str, np.ndarray]:
    """The graph as flat arrays: per-object columns ``(K, ...)`` and all points ``(P, 3)`` cut by ``offsets (K+1,)``."""
    objs = graph.objects
    k, n = len(objs), graph.num_views
    counts = np.array([len(o.points) for o in objs], np.int64)
    return {
        "cache_version": np.array(CACHE_VERSION, np.int64),
        "files_key": np.array(files_key), "content_key": np.array(content_key),
        "ids": np.array([o.id for o in objs], np.int64),
        "labels": np.array([str(o.label) for o in objs], dtype=str).reshape(k),
        "scores": np.array([o.score for o in objs], np.float64),
        "offsets": np.r_[0, np.cumsum(counts)].astype(np.int64),
        "points": np.concatenate([np.asarray(o.points, np.float32).reshape(-1, 3) for o in objs] or [np.zeros((0, 3), np.float32)]),
        "centroids": np.array([o.centroid for o in objs], np.float64).reshape(k, 3),
        "box_centers": np.array([o.box_center for o in objs], np.float64).reshape(k, 3),
        "box_sizes": np.array([o.box_size for o in objs], np.float64).reshape(k, 3),
        "box_rotations": np.array([o.box_rotation for o in objs], np.float64).reshape(k, 3, 3),
        "visible_pixels": np.array([o.visible_pixels for o in objs], np.int64).reshape(k, n),
        "first_views": np.array([o.first_view for o in objs], np.int64),
        "up": np.asarray(graph.up, np.float64), "ground_basis": np.asarray(graph.ground_basis, np.float64),
        "floor_height": np.array(graph.floor_height, np.float64), "floor_area": np.array(graph.floor_area, np.float64),
        "cam_from_world": np.asarray(graph.cam_from_world, np.float64),
        "intrinsics": np.asarray(graph.intrinsics, np.float64),
    }


def _graph_from_arrays(z: Mapping[str, np.ndarray]) -> SceneGraph:
    """Inverse of :func:`_graph_arrays`; raises ``ValueError`` on any inconsistency."""
    ids, offsets, points = z["ids"], z["offsets"], z["points"]
    k = len(ids)
    n = len(z["cam_from_world"])
    shapes = {"labels": (k,), "scores": (k,), "offsets": (k + 1,), "centroids": (k, 3), "box_centers": (k, 3),
              "box_sizes": (k, 3), "box_rotations": (k, 3, 3), "visible_pixels": (k, n), "first_views": (k,),
              "up": (3,), "ground_basis": (3, 3), "cam_from_world": (n, 3, 4), "intrinsics": (n, 3, 3)}
    for name, shape in shapes.items():
        if z[name].shape != shape:
            raise ValueError(f"{name} has shape {z[name].shape}, expected {shape}")
    if points.ndim != 2 or points.shape[1] != 3 or offsets[0] != 0 or offsets[-1] != len(points) or np.any(np.diff(offsets) < 0):
        raise ValueError("points and offsets disagree")
    objects = [
        SceneObject(
            id=int(ids[i]), label=str(z["labels"][i]), score=float(z["scores"][i]),
            points=points[offsets[i]:offsets[i + 1]].copy(), centroid=z["centroids"][i].copy(),
            box_center=z["box_centers"][i].copy(), box_size=z["box_sizes"][i].copy(),
            box_rotation=z["box_rotations"][i].copy(), visible_pixels=z["visible_pixels"][i].copy(),
            first_view=int(z["first_views"][i]),
        )
        for i in range(k)
    ]
    return SceneGraph(objects=objects, up=z["up"], ground_basis=z["ground_basis"],
                      floor_height=float(z["floor_height"]), floor_area=float(z["floor_area"]),
                      cam_from_world=z["cam_from_world"], intrinsics=z["intrinsics"])


def _read_cache(path: Path) -> tuple[SceneGraph, str, str] | None:
    """``(graph, files_key, content_key)`` from a cache file, ``None`` when absent or unusable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            z = {name: npz[name] for name in npz.files}
        if int(z["cache_version"]) != CACHE_VERSION:
            return None
        return _graph_from_arrays(z), str(z["files_key"]), str(z["content_key"])
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(path: Path, graph: SceneGraph, files_key: str, content_key: str) -> None:
    """Write the cache atomically; a folder that cannot be written to is left without one."""
    try:
        write_npz_atomic(path, _graph_arrays(graph, files_key, content_key))
    except OSError:
        pass


def load_or_build_scene_graph(scene_dir: str | Path, scene: Scene | None = None,
                              config: SceneGraphConfig | None = None, progress: bool = False) -> SceneGraph:
    """The scene graph of a Scene folder: from its cache when valid, else built and cached.

    Args:
        scene_dir: the Scene folder; the cache is ``scene_dir / CACHE_FILE``.
        scene: the Scene, when the caller has it in memory already (then it is what the graph is of,
            and the folder's own arrays are not read); ``None`` loads the folder only on a cache miss.
        config: the graph settings (defaults when ``None``); part of the cache key.
        progress: show a tqdm bar (on stderr, after half a second) while loading and building.

    Returns:
        The :class:`~sem3r.reasoning.scene_graph.SceneGraph`.

    Raises:
        Sem3RError: an invalid config, or (on a cache miss) a folder that is not a readable Scene or
            a Scene without instance masks or geometry, as :func:`build_scene_graph` does.
    """
    from tqdm import tqdm

    config = config or SceneGraphConfig()
    config.validate()
    scene_dir = Path(scene_dir)
    path = scene_dir / CACHE_FILE
    cached = _read_cache(path)
    files_key, content_key = "", None
    if scene is None:
        files_key = _files_key(scene_dir, config) or ""
        if cached is not None and files_key and cached[1] == files_key:
            return cached[0]
        content_key = _folder_fingerprint(scene_dir, config) if cached is not None else None
        if cached is not None and content_key is not None and cached[2] == content_key:
            _write_cache(path, cached[0], files_key, content_key)
            return cached[0]
    else:
        content_key = scene_fingerprint(scene, config)
        if cached is not None and cached[2] == content_key:
            return cached[0]
    with tqdm(total=3, desc="scene graph", unit="step", delay=0.5, leave=False, disable=not progress) as bar:
        if scene is None:
            bar.set_postfix_str("load Scene")
            scene = Scene.load(scene_dir)
        bar.update()
        if content_key is None:
            content_key = scene_fingerprint(scene, config)
        bar.set_postfix_str(f"build ({len(scene.instances)} instances)")
        graph = build_scene_graph(scene, config)
        bar.update()
        bar.set_postfix_str("write cache")
        _write_cache(path, graph, files_key, content_key)
        bar.update()
    return graph
