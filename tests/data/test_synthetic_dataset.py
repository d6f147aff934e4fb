"""Writing synthetic datasets: layout on disk, manifest, resume after an interruption."""

import json

import numpy as np
import pytest

import sem3r.data.synthetic.dataset as dataset_module
from sem3r.data.synthetic import GENERATOR_VERSION, SynthConfig, load_ground_truth, write_dataset
from sem3r.errors import Sem3RError
from sem3r.scene import Scene

CONFIG = SynthConfig(seed=100, num_views=2, height=24, width=32, num_points=500)


@pytest.fixture
def counted(monkeypatch):
    """Count calls of generate_scene made by write_dataset."""
    calls = []
    original = dataset_module.generate_scene

    def spy(config):
        calls.append(config.seed)
        return original(config)

    monkeypatch.setattr(dataset_module, "generate_scene", spy)
    return calls


def test_write_dataset_layout_and_manifest(tmp_path, counted):
    out = tmp_path / "ds"
    assert write_dataset(out, 3, CONFIG, progress=False) == out / "manifest.json"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generator_version"] == GENERATOR_VERSION
    assert manifest["config"] == json.loads(json.dumps(CONFIG.to_dict()))
    assert [e["folder"] for e in manifest["scenes"]] == ["scene_0000", "scene_0001", "scene_0002"]
    assert [e["seed"] for e in manifest["scenes"]] == [100, 101, 102] == counted
    for entry in manifest["scenes"]:
        scene = Scene.load(out / entry["folder"])
        gt = load_ground_truth(out / entry["folder"])
        assert entry["complete"] and entry["num_views"] == scene.num_views == 2
        assert entry["num_objects"] == len(scene.instances) and entry["categories"] == sorted(set(scene.instances.labels))
        assert scene.metadata["seed"] == entry["seed"] and len(gt.cloud) == 500
    assert not list(out.glob("**/*.tmp"))


def test_resume_skips_finished_scenes(tmp_path, counted):
    out = tmp_path / "ds"
    write_dataset(out, 3, CONFIG, progress=False)
    before = {p: p.stat().st_mtime_ns for p in out.glob("scene_*/*")}
    counted.clear()
    write_dataset(out, 3, CONFIG, progress=False)
    assert counted == []
    assert {p: p.stat().st_mtime_ns for p in out.glob("scene_*/*")} == before

    # simulate a run killed after scene 1: its manifest entry never got written
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["scenes"] = [e for e in manifest["scenes"] if e["index"] != 1]
    (out / "manifest.json").write_text(json.dumps(manifest))
    reference = Scene.load(out / "scene_0001").images
    write_dataset(out, 4, CONFIG, progress=False)
    assert counted == [101, 103]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["index"] for e in manifest["scenes"]] == [0, 1, 2, 3] and manifest["num_scenes"] == 4
    assert np.array_equal(Scene.load(out / "scene_0001").images, reference)


def test_resume_refuses_other_config_and_restart_regenerates(tmp_path, counted):
    out = tmp_path / "ds"
    write_dataset(out, 1, CONFIG, progress=False)
    with pytest.raises(Sem3RError):
        write_dataset(out, 1, SynthConfig(seed=100, num_views=3, height=24, width=32, num_points=500), progress=False)
    counted.clear()
    write_dataset(out, 1, CONFIG, resume=False, progress=False)
    assert counted == [100]


def test_bad_arguments(tmp_path):
    with pytest.raises(Sem3RError):
        write_dataset(tmp_path / "ds", -1, CONFIG, progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(Sem3RError):
        write_dataset(tmp_path / "file", 1, CONFIG, progress=False)
