"""Ground truth on disk and whole synthetic datasets.

A scene directory holds the :class:`~sem3r.scene.Scene` files (``scene.json`` and its ``.npz``
arrays) plus ``ground_truth.npz`` with the labelled point cloud and mesh (written atomically,
read without pickle). A dataset directory holds ``scene_0000/``, ``scene_0001/``, ... and
``manifest.json``, which is rewritten atomically after every finished scene, so an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sem3r.data.synthetic.categories import CATEGORY_SPLITS, CLASS_NAMES
from sem3r.data.synthetic.generator import GENERATOR_VERSION, SynthConfig, SyntheticScene, generate_scene
from sem3r.data.synthetic.mesh import SceneMesh
from sem3r.errors import Sem3RError
from sem3r.io import read_json, write_json_atomic, write_npz_atomic
from sem3r.scene import PointCloud

GROUND_TRUTH_FILE = "ground_truth.npz"
MANIFEST_FILE = "manifest.json"

_GT_DTYPES = {
    "xyz": np.float32,
    "rgb": np.uint8,
    "normals": np.float32,
    "instance_ids": np.int32,
    "semantic_ids": np.int32,
    "mesh_vertices": np.float64,
    "mesh_faces": np.int32,
    "face_instance_ids": np.int32,
    "face_semantic_ids": np.int32,
}


@dataclass
class GroundTruth:
    """Ground truth read back from ``ground_truth.npz``.

    Attributes:
        cloud: labelled point cloud (``view_ids`` all -1).
        normals: ``(M, 3) float32`` unit normals of the cloud.
        mesh: the labelled mesh.
    """

    cloud: PointCloud
    normals: np.ndarray
    mesh: SceneMesh


def save_ground_truth(syn: SyntheticScene, scene_dir: str | Path) -> Path:
    """Write the cloud and mesh of ``syn`` to ``scene_dir/ground_truth.npz`` (atomic, no pickle).

    Returns:
        The file's path.
    """
    arrays = {
        "xyz": syn.cloud.xyz,
        "rgb": syn.cloud.rgb,
        "normals": syn.normals,
        "instance_ids": syn.cloud.instance_ids,
        "semantic_ids": syn.cloud.semantic_ids,
        "mesh_vertices": syn.mesh.vertices,
        "mesh_faces": syn.mesh.faces,
        "face_instance_ids": syn.mesh.face_instance_ids,
        "face_semantic_ids": syn.mesh.face_semantic_ids,
    }
    arrays = {k: np.asarray(v, _GT_DTYPES[k]) for k, v in arrays.items()}
    return write_npz_atomic(Path(scene_dir) / GROUND_TRUTH_FILE, arrays)


def load_ground_truth(scene_dir: str | Path) -> GroundTruth:
    """Read ``scene_dir/ground_truth.npz`` written by :func:`save_ground_truth`.

    Raises:
        Sem3RError: the file is missing, unreadable or lacks an array.
    """
    path = Path(scene_dir) / GROUND_TRUTH_FILE
    if not path.is_file():
        raise Sem3RError(f"'{scene_dir}' has no {GROUND_TRUTH_FILE}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = sorted(set(_GT_DTYPES) - set(z.files))
            if missing:
                raise Sem3RError(f"'{path}' lacks the arrays {missing}")
            a = {k: z[k] for k in _GT_DTYPES}
    except (OSError, ValueError) as exc:
        raise Sem3RError(f"cannot read '{path}': {exc}") from None
    cloud = PointCloud(a["xyz"], a["rgb"], a["instance_ids"], a["semantic_ids"], np.full(len(a["xyz"]), -1, np.int32))
    mesh = SceneMesh(a["mesh_vertices"], a["mesh_faces"], a["face_instance_ids"], a["face_semantic_ids"])
    return GroundTruth(cloud, a["normals"], mesh)


def _read_manifest(path: Path) -> dict:
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != "sem3r.synthetic_dataset":
        raise Sem3RError(f"'{path}' is not a Sem3R synthetic dataset manifest")
    return doc


def write_dataset(out_dir: str | Path, num_scenes: int, config: SynthConfig, resume: bool = True,
                  progress: bool = True) -> Path:
    """Generate ``num_scenes`` scenes into ``out_dir`` with a manifest.

    Scene ``i`` is generated with seed ``config.seed + i`` into ``out_dir/scene_{i:04d}/``
    (:meth:`Scene.save` plus ``ground_truth.npz``). ``manifest.json`` records the generator
    version, the config, the class names and splits and, per finished scene, its index, folder,
    seed, number of views and objects and its categories; it is rewritten atomically after each
    scene.

    Args:
        out_dir: dataset directory (created if needed).
        num_scenes: number of scenes.
        config: settings shared by all scenes (``seed`` is the first scene's seed).
        resume: skip scenes the manifest lists as complete whose files exist; the manifest must
            have been written with the same config and generator version. ``False`` regenerates
            every scene and starts a new manifest.
        progress: show a tqdm progress bar.

    Returns:
        The path of ``manifest.json``.

    Raises:
        Sem3RError: invalid config or ``num_scenes``, or resuming a dataset made differently.
    """
    config.validate()
    if num_scenes < 0:
        raise Sem3RError(f"num_scenes must be non-negative, got {num_scenes}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise Sem3RError(f"cannot write a dataset to '{out_dir}': it is a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_FILE
    config_dict = json.loads(json.dumps(config.to_dict()))
    done: dict[int, dict] = {}
    if resume and manifest_path.is_file():
        doc = _read_manifest(manifest_path)
        if doc.get("generator_version") != GENERATOR_VERSION or doc.get("config") != config_dict:
            raise Sem3RError(
                f"'{out_dir}' holds a dataset made with another config or generator version; "
                "use a new directory or resume=False"
            )
        for entry in doc.get("scenes", []):
            folder = out_dir / str(entry.get("folder", ""))
            if entry.get("complete") and (folder / "scene.json").is_file() and (folder / GROUND_TRUTH_FILE).is_file():
                done[int(entry["index"])] = entry

    def write_manifest() -> None:
        write_json_atomic(manifest_path, {
            "format": "sem3r.synthetic_dataset",
            "generator_version": GENERATOR_VERSION,
            "config": config_dict,
            "num_scenes": num_scenes,
            "class_names": list(CLASS_NAMES),
            "category_splits": {k: list(v) for k, v in CATEGORY_SPLITS.items()},
            "scenes": [done[i] for i in sorted(done)],
        })

    todo = [i for i in range(num_scenes) if i not in done]
    bar = tqdm(total=num_scenes, initial=num_scenes - len(todo), desc="synthetic scenes", unit="scene", disable=not progress)
    with bar:
        for i in todo:
            syn = generate_scene(replace(config, seed=config.seed + i))
            folder = f"scene_{i:04d}"
            syn.scene.save(out_dir / folder)
            save_ground_truth(syn, out_dir / folder)
            done[i] = {
                "index": i,
                "folder": folder,
                "seed": config.seed + i,
                "num_views": syn.scene.num_views,
                "num_objects": len(syn.scene.instances),
                "categories": sorted(set(syn.scene.instances.labels)),
                "complete": True,
            }
            write_manifest()
            bar.update(1)
    write_manifest()
    return manifest_path
