"""``sem3r batch``: many scenes locally and on Ray, failures recorded, finished scenes skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sem3r.batch import BatchConfig, is_finished, read_manifest, run_batch, scene_names
from sem3r.cli import main
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.pipeline import RunConfig
from sem3r.scene import Scene

FAST = RunConfig(instances="geometric", formats=("ply",))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two small synthetic Scene folders and one input no reader accepts."""
    root = tmp_path_factory.mktemp("batch_inputs")
    for seed in (1, 2):
        generate_scene(SynthConfig(seed=seed, num_views=2, height=72, width=96)).scene.save(root / f"room{seed}")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a scene")
    return root


def test_local_batch_records_failures_and_resumes(inputs, tmp_path):
    out = tmp_path / "out"
    sources = [inputs / "room1", inputs / "notes", inputs / "room2"]
    rows = run_batch(sources, out, BatchConfig(run=FAST))
    assert [r.status for r in rows] == ["done", "failed", "done"]
    assert "cannot tell the layout" in rows[1].error
    assert all(r.instances > 0 and r.geometry == "rgbd" for r in (rows[0], rows[2]))
    assert is_finished(out / "room1") and Scene.load(out / "room2" / "scene").instance_masks is not None
    summary = json.loads((out / "batch.json").read_text())["scenes"]
    assert [s["status"] for s in summary] == ["done", "failed", "done"]
    assert "| notes | failed |" in (out / "batch.md").read_text()
    again = run_batch(sources, out, BatchConfig(run=FAST))
    assert [r.status for r in again] == ["skipped", "failed", "skipped"]
    assert again[0].instances == rows[0].instances


def test_process_pool_gives_the_same_scenes(inputs, tmp_path):
    serial = run_batch([inputs / "room1", inputs / "room2"], tmp_path / "serial", BatchConfig(run=FAST))
    pooled = run_batch([inputs / "room1", inputs / "room2"], tmp_path / "pool", BatchConfig(run=FAST, workers=2))
    assert [r.status for r in pooled] == ["done", "done"], [r.error for r in pooled]
    assert [r.instances for r in pooled] == [r.instances for r in serial]
    assert [r.name for r in pooled] == ["room1", "room2"]


def test_ray_batch_on_a_local_instance(inputs, tmp_path):
    pytest.importorskip("ray")
    rows = run_batch([inputs / "room1", inputs / "notes"], tmp_path / "ray", BatchConfig(run=FAST, ray=True))
    assert [r.status for r in rows] == ["done", "failed"]
    assert rows[0].instances > 0 and is_finished(tmp_path / "ray" / "room1")


def test_manifests_and_names(inputs, tmp_path):
    text = tmp_path / "scenes.txt"
    text.write_text(f"# two rooms\n{inputs / 'room1'}\n\n../{tmp_path.name}/rel  # relative\n")
    assert read_manifest(text) == [inputs / "room1", tmp_path / f"../{tmp_path.name}/rel"]
    listed = tmp_path / "scenes.json"
    listed.write_text(json.dumps(["a", "/abs/b"]))
    assert read_manifest(listed) == [tmp_path / "a", Path("/abs/b")]
    synth = tmp_path / "manifest.json"
    synth.write_text(json.dumps({"format": "sem3r.synthetic_dataset", "scenes": [{"folder": "scene_0000"}]}))
    assert read_manifest(synth) == [tmp_path / "scene_0000"]
    for bad, match in [("{}", "neither"), ("[]", "no inputs")]:
        listed.write_text(bad)
        with pytest.raises(Sem3RError, match=match):
            read_manifest(listed)
    assert scene_names([inputs / "room1", tmp_path / "room1", tmp_path / "clip.mp4"]) == ["room1", "room1-2", "clip"]


def test_cli_batch_bad_input_and_exit_codes(inputs, tmp_path, capsys):
    assert main(["batch", "--out", str(tmp_path / "o")]) == 2
    assert "no scenes given" in capsys.readouterr().err
    assert main(["batch", str(inputs / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert main(["batch", str(inputs / "room1"), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert main(["batch", str(inputs / "room1"), str(inputs / "notes"), "--out", str(tmp_path / "o"),
                 "--instances", "geometric", "--formats", "ply"]) == 2
    captured = capsys.readouterr()
    assert "| room1 | done |" in captured.out and "1 of 2 scenes failed" in captured.err
