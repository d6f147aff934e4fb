"""``sem3r run``: stage choice, outputs, resume, failures and the write-before-check rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sem3r.cli import main
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.pipeline import RunConfig, choose_geometry, run_pipeline
from sem3r.scene import Scene


@pytest.fixture(scope="module")
def synthetic_input(tmp_path_factory):
    """A saved synthetic Scene (RGB, metric depth, cameras and ground-truth masks)."""
    folder = tmp_path_factory.mktemp("input") / "room"
    generate_scene(SynthConfig(seed=3, num_views=3, height=96, width=128)).scene.save(folder)
    return folder


def _statuses(out):
    return {name: rec["status"] for name, rec in json.loads((out / "run.json").read_text())["stages"].items()}


def test_run_picks_rgbd_segments_and_exports(synthetic_input, tmp_path):
    out = tmp_path / "out"
    result = run_pipeline(synthetic_input, out, RunConfig(questions=("how big is the room?",)))
    assert result.stages["geometry"].method == "rgbd"
    assert result.stages["instances"].method == "combined"
    assert result.stages["labels"].status == "skipped"
    scene = Scene.load(out / "scene")
    truth = Scene.load(synthetic_input)
    # the pipeline's masks are its own, not the input's ground truth
    assert scene.instance_masks is not None and not np.array_equal(scene.instance_masks, truth.instance_masks)
    assert len(scene.instances) > 0 and scene.metadata["structure"]["up_source"] == "floor"
    np.testing.assert_allclose(scene.cam_from_world, truth.cam_from_world, atol=1e-9)
    for name in ("scene.ply", "scene.glb", "viewer.html", "report.md", "answers.jsonl"):
        assert (out / name).is_file(), name
    answer = json.loads((out / "answers.jsonl").read_text().splitlines()[0])
    assert answer["question"] == "how big is the room?" and answer["kind"] == "number" and answer["value"] > 0
    report = (out / "report.md").read_text()
    assert "| geometry | done | rgbd |" in report and "| instances | done | combined |" in report


def test_rerun_resumes_and_changed_options_rerun_from_their_stage(synthetic_input, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_pipeline(synthetic_input, out)
    import sem3r.reconstruct as reconstruct_module

    def no_geometry(*args, **kwargs):
        raise AssertionError("geometry must be resumed")

    monkeypatch.setattr(reconstruct_module, "reconstruct", no_geometry)
    run_pipeline(synthetic_input, out)
    assert set(_statuses(out).values()) <= {"resumed", "skipped", "done"}
    assert _statuses(out)["geometry"] == "resumed" and _statuses(out)["instances"] == "resumed"
    run_pipeline(synthetic_input, out, RunConfig(instances="geometric"))
    statuses = _statuses(out)
    assert statuses["geometry"] == "resumed" and statuses["instances"] == "done" and statuses["export"] == "done"
    assert Scene.load(out / "scene").metadata["segmentation"] == "geometric"


def test_failed_stage_is_named_recorded_and_keeps_earlier_outputs(synthetic_input, tmp_path, monkeypatch):
    import sem3r.instances as instances_module

    def broken(*args, **kwargs):
        raise Sem3RError("no superpoints")

    monkeypatch.setattr(instances_module, "segment", broken)
    out = tmp_path / "out"
    with pytest.raises(Sem3RError, match="stage 'instances' failed: no superpoints"):
        run_pipeline(synthetic_input, out)
    assert _statuses(out) == {"input": "done", "geometry": "done", "instances": "failed"}
    assert Scene.load(out / "geometry").depth is not None
    assert "Stopped at stage 'instances'" in (out / "report.md").read_text()
    monkeypatch.undo()
    run_pipeline(synthetic_input, out)
    assert _statuses(out)["geometry"] == "resumed" and _statuses(out)["instances"] == "done"


def test_bad_options_fail_before_anything_is_written(synthetic_input, tmp_path):
    out = tmp_path / "out"
    for config, match in [
        (RunConfig(vlm="clip"), "--classes"),
        (RunConfig(classes=("chair",)), "--vlm"),
        (RunConfig(formats=("obj",)), "unknown export format"),
        (RunConfig(geometry_options=("max_depth=far",)), "max_depth"),
        (RunConfig(instances_options=("no_such_key=1",)), "no_such_key"),
        (RunConfig(checkpoint="ckpt"), "--checkpoint"),
        (RunConfig(max_frames=0), "max_frames"),
    ]:
        with pytest.raises(Sem3RError, match=match):
            run_pipeline(synthetic_input, out, config)
        assert not out.exists()
    with pytest.raises(Sem3RError, match="is the input"):
        run_pipeline(synthetic_input, synthetic_input)
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    with pytest.raises(Sem3RError, match="is a file"):
        run_pipeline(synthetic_input, blocker)
    assert blocker.read_text() == "keep"


def test_choose_geometry_prefers_sensor_depth_then_checkpoint_then_colmap(synthetic_input):
    scene = Scene.load(synthetic_input)
    assert choose_geometry("sem3r", scene, None) == "rgbd"
    photos = scene.select_views(slice(None))
    photos.depth = None
    assert choose_geometry("sem3r", photos, None) == "colmap"
    assert choose_geometry("sem3r", photos, "facebook/VGGT-1B") == "feedforward"
    assert choose_geometry("tum", None, None) == "rgbd"


def test_cli_run_prints_stages_and_exit_codes(synthetic_input, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(synthetic_input), "--out", str(out), "--instances", "geometric",
                 "--question", "how big is the room?"]) == 0
    printed = capsys.readouterr().out
    assert "geometry   done     rgbd" in printed and "A: " in printed
    assert main(["run", str(synthetic_input), "--out", str(out), "--geometry-option", "nonsense=1"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_models_are_resolved_before_anything_is_written(synthetic_input, tmp_path, monkeypatch):
    """A hub checkpoint or --vlm that cannot be had fails at once, before any stage runs or writes."""
    import sem3r.hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sem3r.hub, "hub_reachable", lambda timeout=sem3r.hub.HUB_TIMEOUT_S: False)
    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image

    for i, image in enumerate(Scene.load(synthetic_input).images):
        Image.fromarray(image).save(photos / f"{i}.png")
    out = tmp_path / "out"
    with pytest.raises(Sem3RError, match="cannot reach the Hugging Face hub.*sem3r-test/no-such-model"):
        run_pipeline(photos, out, RunConfig(checkpoint="sem3r-test/no-such-model"))
    with pytest.raises(Sem3RError, match="cannot reach the Hugging Face hub"):
        run_pipeline(synthetic_input, out, RunConfig(classes=("chair",), vlm="sem3r-test/no-such-clip"))
    assert not out.exists()


def test_sparse_geometry_skips_instances_but_exports_and_explains(synthetic_input, tmp_path):
    """A backend without dense geometry (like colmap): instances skipped with a note, points exported."""
    from dataclasses import dataclass

    from sem3r.reconstruct import register_backend, unregister_backend
    from sem3r.viz import read_ply

    @dataclass
    class SparseConfig:
        pass

    def sparse(scene, config):
        out = scene.select_views(slice(None))
        out.depth = out.depth_conf = out.world_points = out.point_conf = None
        out.sparse_points = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
        out.sparse_colors = np.full((50, 3), 200, np.uint8)
        out.metadata["metric"] = False
        return out

    register_backend("sparse_test", sparse, SparseConfig)
    try:
        out = tmp_path / "out"
        result = run_pipeline(synthetic_input, out, RunConfig(geometry="sparse_test", questions=("how big is the room?",)))
    finally:
        unregister_backend("sparse_test")
    assert result.stages["instances"].status == "skipped"
    assert "dense geometry" in result.stages["instances"].summary
    assert result.stages["geometry"].summary.startswith("3/3 cameras, no dense geometry, 50 sparse points")
    assert len(read_ply(out / "scene.ply").xyz) == 50
    assert result.answers[0]["kind"] == "error" and result.stages["questions"].status == "done"
