"""Bad input to any `sem3r` command: one line `sem3r: error: ...`, exit code 2, and nothing already written changes.

One test per class of bad input (issue 14, item 7): unwritable outputs, corrupt Scene folders,
corrupt checkpoint and training configs, invalid numeric / device options, write order of commands
with several outputs (and in-place rewrites), and hub ids without network.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from sem3r.cli import main
from sem3r.errors import Sem3RError
from sem3r.scene import Scene


def make_scene(folder, n=2, h=16, w=20):
    rng = np.random.default_rng(0)
    k = np.tile(np.array([[20.0, 0, 10], [0, 20, 8], [0, 0, 1]]), (n, 1, 1))
    poses = np.tile(np.eye(3, 4), (n, 1, 1))
    poses[1:, 0, 3] = 0.1
    Scene(images=rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8), intrinsics=k, cam_from_world=poses,
          depth=np.full((n, h, w), 2.0, np.float32), metadata={"source": "test"}).save(folder)
    return folder


def make_images(folder, n=2):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((28, 28, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def snapshot(root):
    """Every file under ``root`` with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_one_line_error(capsys, argv, *needles):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert "sem3r: error: " in err, err
    err = err[err.index("sem3r: error: "):]  # a progress bar of work done before the failure may precede the line
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture
def workspace(tmp_path):
    """A Scene folder, an image folder, an existing file and an existing folder."""
    make_scene(tmp_path / "scene")
    make_images(tmp_path / "images")
    (tmp_path / "afile").write_text("keep me\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "inside.txt").write_text("keep me too\n")
    return tmp_path


def unwritable_place(tmp_path):
    """A folder path nobody may write under: a read-only folder, or under /proc for root (who ignores modes)."""
    if os.geteuid() == 0:
        return "/proc/sem3r_test/out"
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return str(locked / "out")


OUT_CASES = {
    # a file where a folder is written
    "export_out_is_file": (["export", "{t}/scene", "--out", "{t}/afile"], "afile"),
    "segment_out_is_file": (["segment", "{t}/scene", "--method", "geometric", "--out", "{t}/afile"], "afile"),
    "import_out_is_file": (["import", "{t}/scene", "--out", "{t}/afile"], "afile"),
    "synth_out_is_file": (["synth", "--out", "{t}/afile", "--scenes", "1", "--views", "1"], "afile"),
    # a folder where a file is written
    "eval_out_is_dir": (["eval", "{t}/scene", "{t}/scene", "--out", "{t}/adir"], "adir"),
    "bev_out_is_dir": (["bev", "{t}/scene", "--out", "{t}/adir"], "adir"),
    # a path under a file
    "export_out_under_file": (["export", "{t}/scene", "--out", "{t}/afile/x"], "afile"),
    "bev_out_under_file": (["bev", "{t}/scene", "--out", "{t}/afile/bev.png"], "afile"),
    "reconstruct_out_under_file": (["reconstruct", "{t}/images", "--out", "{t}/afile/s", "--device", "cpu"], "afile"),
    # an unwritable place
    "export_unwritable": (["export", "{t}/scene", "--out", "{locked}"], "not writable"),
    "segment3d_unwritable": (["segment3d", "{t}/scene", "--classes", "a,b", "--out", "{locked}"], "not writable"),
    "eval_unwritable": (["eval", "{t}/scene", "{t}/scene", "--out", "{locked}/m.json"], "not writable"),
}


@pytest.mark.parametrize("case", sorted(OUT_CASES))
def test_out_that_cannot_be_written(workspace, capsys, case):
    argv, needle = OUT_CASES[case]
    locked = unwritable_place(workspace)
    before = snapshot(workspace)
    assert_one_line_error(capsys, [a.format(t=workspace, locked=locked) for a in argv], needle)
    assert snapshot(workspace) == before
    assert not os.path.exists("/proc/sem3r_test")


def truncated_views(folder):
    path = next(folder.glob("views-*.npz"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path.name


def no_views_key(folder):
    doc = json.loads((folder / "scene.json").read_text())
    del doc["files"]["views"]
    (folder / "scene.json").write_text(json.dumps(doc))
    return "scene.json"


def metadata_list(folder):
    doc = json.loads((folder / "scene.json").read_text())
    doc["metadata"] = ["not", "an", "object"]
    (folder / "scene.json").write_text(json.dumps(doc))
    return "scene.json"


def metadata_string(folder):
    doc = json.loads((folder / "scene.json").read_text())
    doc["metadata"] = "text"
    (folder / "scene.json").write_text(json.dumps(doc))
    return "scene.json"


def missing_array(folder):
    path = next(folder.glob("views-*.npz"))
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "intrinsics"}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path.name


@pytest.mark.parametrize("breaker", [truncated_views, no_views_key, metadata_list, metadata_string, missing_array])
@pytest.mark.parametrize("command", ["info", "segment"])
def test_corrupt_scene_folder(workspace, capsys, breaker, command):
    scene = workspace / "scene"
    name = breaker(scene)
    before = snapshot(workspace)
    argv = ["info", scene] if command == "info" else ["segment", scene, "--method", "geometric"]
    assert_one_line_error(capsys, argv, name)
    assert snapshot(workspace) == before


def write_checkpoint(folder, config_text, weights=b"not read before the config"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "config.json").write_text(config_text)
    return folder


def segmenter_checkpoint(folder):
    """A real (tiny) trained-segmenter folder."""
    from sem3r.models.segmenter3d import Segmenter3D, Segmenter3DConfig
    from sem3r.semantics.checkpoint import save_segmenter
    from sem3r.semantics.point_inputs import PointInputsConfig

    model = Segmenter3D(Segmenter3DConfig.from_dict({}))
    return save_segmenter(folder, model, PointInputsConfig(), "hash", 16, ["chair", "table"])


def test_corrupt_checkpoint_and_training_configs(workspace, capsys):
    geo = write_checkpoint(workspace / "geo_bad_json", "{not json")
    assert_one_line_error(capsys, ["segment", workspace / "scene", "--checkpoint", geo, "--device", "cpu"],
                          "config.json", "not valid JSON")
    geo = write_checkpoint(workspace / "geo_unknown", json.dumps({"model_type": "vggt", "no_such_field": 3}))
    assert_one_line_error(capsys, ["reconstruct", workspace / "images", "--out", workspace / "r", "--checkpoint", geo,
                                   "--device", "cpu", "--resolution", "28"], "config.json", "no_such_field")

    seg = segmenter_checkpoint(workspace / "seg")
    config = json.loads((seg / "config.json").read_text())
    weights = (seg / "model.safetensors").read_bytes()
    for name, text, blob, needle in (
        ("seg_bad_json", "[1, 2", weights, "not valid JSON"),
        ("seg_unknown_key", json.dumps(config | {"extra": 1}), weights, "extra"),
        ("seg_unknown_model_key", json.dumps(config | {"model": config["model"] | {"wings": 2}}), weights, "wings"),
        ("seg_truncated", json.dumps(config), weights[: len(weights) // 2], "model.safetensors"),
    ):
        folder = write_checkpoint(workspace / name, text, blob)
        before = snapshot(workspace)
        assert_one_line_error(capsys, ["segment3d", workspace / "scene", "--classes", "chair,table",
                                       "--checkpoint", folder], name, needle)
        assert snapshot(workspace) == before

    (workspace / "bad.json").write_text('{"train": {"steps": 1,')
    assert_one_line_error(capsys, ["train", "geometry", "--config", workspace / "bad.json"], "bad.json", "not valid JSON")
    (workspace / "unknown.json").write_text(json.dumps({"dataset_root": str(workspace), "train": {"steps": 1},
                                                           "learning_speed": 2}))
    for what in ("geometry", "segmenter3d"):
        assert_one_line_error(capsys, ["train", what, "--config", workspace / "unknown.json"], "unknown.json", "learning_speed")
    (workspace / "out_is_file.json").write_text(json.dumps({"dataset_root": str(workspace),
                                                               "train": {"out_dir": str(workspace / "afile")}}))
    assert_one_line_error(capsys, ["train", "iggt", "--config", workspace / "out_is_file.json"], "afile")
    assert (workspace / "afile").read_text() == "keep me\n"


OPTION_CASES = {
    "resolution_zero": (["reconstruct", "{t}/missing", "--out", "{t}/o", "--resolution", "0"], "--resolution"),
    "resolution_not_14": (["reconstruct", "{t}/missing", "--out", "{t}/o", "--resolution", "500"], "multiple of 14"),
    "segment_resolution": (["segment", "{t}/missing", "--resolution", "100"], "--resolution"),
    "bev_resolution": (["bev", "{t}/missing", "--resolution", "0"], "--resolution"),
    "device_tpu": (["reconstruct", "{t}/missing", "--out", "{t}/o", "--device", "tpu"], "tpu"),
    "device_cuda_x": (["segment", "{t}/missing", "--device", "cuda:x"], "cuda:x"),
    "segment3d_device": (["segment3d", "{t}/missing", "--classes", "a", "--device", "tpu"], "tpu"),
    "max_points_negative": (["export", "{t}/missing", "--max-points", "-1"], "--max-points"),
    "max_frames_zero": (["import", "{t}/missing", "--out", "{t}/o", "--max-frames", "0"], "--max-frames"),
    "max_frames_negative": (["reconstruct", "{t}/missing", "--out", "{t}/o", "--max-frames", "-2"], "--max-frames"),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_invalid_options_fail_before_reading_inputs(tmp_path, capsys, case):
    argv, needle = OPTION_CASES[case]
    assert_one_line_error(capsys, [a.format(t=tmp_path) for a in argv], needle)
    assert not (tmp_path / "o").exists()


def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert_one_line_error(capsys, ["segment3d", tmp_path / "missing", "--classes", "a", "--device", "cuda"],
                          "CUDA is not available")


def test_outputs_checked_before_anything_is_written(workspace, capsys, monkeypatch):
    scene = workspace / "scene"
    out = make_scene(workspace / "out")
    before = snapshot(workspace)
    # segment3d --out S --export FILE: the export cannot be written, so S is not rewritten either
    assert_one_line_error(capsys, ["segment3d", scene, "--classes", "a,b", "--source", "oversegment", "--out", out,
                                   "--export", workspace / "afile"], "afile")
    assert snapshot(workspace) == before

    # an export that fails while it is computed leaves --out as it was (the Scene is saved after it)
    import sem3r.viz

    def failing_export(*args, **kwargs):
        raise Sem3RError("simulated export failure")

    monkeypatch.setattr(sem3r.viz, "export_scene", failing_export)
    assert_one_line_error(capsys, ["segment3d", scene, "--classes", "a,b", "--source", "oversegment", "--out", out,
                                   "--export", workspace / "exported"], "simulated export failure")
    assert snapshot(workspace) == before

    # an in-place rewrite that fails at its last step leaves the input Scene loadable and byte-identical
    import sem3r.scene

    def failing_json(*args, **kwargs):
        raise Sem3RError("simulated failure while writing scene.json")

    monkeypatch.setattr(sem3r.scene, "write_json_atomic", failing_json)
    for argv in (["import", scene, "--out", scene], ["segment", scene, "--method", "geometric"],
                 ["reconstruct", scene, "--out", scene, "--backend", "rgbd"]):
        assert_one_line_error(capsys, argv, "simulated failure")
        assert snapshot(workspace) == before
    monkeypatch.undo()
    assert Scene.load(scene).num_views == 2


def test_hub_ids_without_network_fail_fast(workspace, capsys, monkeypatch):
    import sem3r.hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sem3r.hub, "hub_reachable", lambda timeout=sem3r.hub.HUB_TIMEOUT_S: False)
    before = snapshot(workspace)
    assert_one_line_error(capsys, ["reconstruct", workspace / "images", "--out", workspace / "o",
                                   "--checkpoint", "sem3r-test/no-such-model"],
                          "cannot reach the Hugging Face hub", "'sem3r-test/no-such-model'", "--checkpoint")
    assert_one_line_error(capsys, ["segment", workspace / "scene", "--method", "iggt",
                                   "--checkpoint", "sem3r-test/no-such-model"], "cannot reach the Hugging Face hub")

    # segment3d --vlm loads its model before the segmentation runs
    import sem3r.semantics.segment3d

    def not_reached(*args, **kwargs):
        raise AssertionError("the segmentation ran before the --vlm model was loaded")

    monkeypatch.setattr(sem3r.semantics.segment3d, "segment3d", not_reached)
    assert_one_line_error(capsys, ["segment3d", workspace / "scene", "--classes", "a,b",
                                   "--vlm", "sem3r-test/no-such-clip"], "cannot reach the Hugging Face hub", "--vlm")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_one_line_error(capsys, ["reconstruct", workspace / "images", "--out", workspace / "o",
                                   "--checkpoint", "sem3r-test/no-such-model"], "HF_HUB_OFFLINE")
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", None)
    assert_one_line_error(capsys, ["reconstruct", workspace / "images", "--out", workspace / "o",
                                   "--checkpoint", "sem3r-test/no-such-model"], "sem3r[hub]")
    assert snapshot(workspace) == before
