"""The `sem3r` command: bad input gives one line and exit code 2; the demo writes every output."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sem3r.cli import main
from sem3r.scene import Scene


def write_7scenes(folder, n=2, h=24, w=32):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savetxt(folder / "camera-intrinsics.txt", [[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]])
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"frame-{i:06d}.color.png")
        Image.fromarray(np.full((h, w), 1500 + i, np.uint16)).save(folder / f"frame-{i:06d}.depth.png")
        pose = np.eye(4)
        pose[0, 3] = 0.1 * i
        np.savetxt(folder / f"frame-{i:06d}.pose.txt", pose)
    return folder


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_7scenes_then_info(tmp_path, capsys):
    src = write_7scenes(tmp_path / "seq")
    code, out, err = run_cli(capsys, "import", str(src), "--out", str(tmp_path / "scene"))
    assert code == 0, err
    scene = Scene.load(tmp_path / "scene")
    assert scene.num_views == 2
    assert np.allclose(scene.depth[1], 1.501)
    assert np.allclose(scene.cam_from_world[1][:, 3], [-0.1, 0, 0])
    code, out, _ = run_cli(capsys, "info", str(tmp_path / "scene"))
    assert code == 0 and "views: 2 at 24x32" in out


def corrupt_image(folder):
    (folder / "frame-000001.color.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return "frame-000001.color.png"


def wrong_depth_size(folder):
    Image.fromarray(np.full((10, 10), 1000, np.uint16)).save(folder / "frame-000001.depth.png")
    return "frame-000001.depth.png"


def nan_pose(folder):
    pose = np.eye(4)
    pose[1, 3] = np.nan
    np.savetxt(folder / "frame-000000.pose.txt", pose)
    return "frame-000000.pose.txt"


def empty_folder(folder):
    for f in folder.iterdir():
        f.unlink()
    return str(folder.name)


@pytest.mark.parametrize("breaker", [corrupt_image, wrong_depth_size, nan_pose, empty_folder])
def test_bad_input_is_one_line_exit_2_and_keeps_existing_output(tmp_path, capsys, breaker):
    good = write_7scenes(tmp_path / "good")
    assert main(["import", str(good), "--out", str(tmp_path / "scene")]) == 0
    before = Scene.load(tmp_path / "scene")
    bad = write_7scenes(tmp_path / "bad")
    name = breaker(bad)
    layout = ["--layout", "7scenes"] if breaker is empty_folder else []
    code, _, err = run_cli(capsys, "import", str(bad), "--out", str(tmp_path / "scene"), *layout)
    assert code == 2
    assert err.startswith("sem3r: error: ") and err.count("\n") == 1 and name in err
    assert "Traceback" not in err
    after = Scene.load(tmp_path / "scene")
    assert np.array_equal(after.depth, before.depth) and np.array_equal(after.images, before.images)


def test_console_script_exit_code_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sem3r.cli", "info", str(tmp_path / "missing")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert "missing" in proc.stderr


def test_synth_rejects_zero_views(tmp_path, capsys):
    code, _, err = run_cli(capsys, "synth", "--out", str(tmp_path / "d"), "--views", "0")
    assert code == 2 and "--views" in err


def test_demo_writes_every_output(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, err = run_cli(capsys, "demo", "--out", str(out), "--views", "3", "--height", "96", "--width", "128")
    assert code == 0, err
    for name in ("scene/scene.json", "scene/ground_truth.npz", "scene.ply", "scene.glb", "viewer.html", "report.md", "metrics.json"):
        assert (out / name).is_file(), name
        assert str(out / name.split("/")[0]) in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    # oracle geometry: exact depth; instances from combined (geometric proposals + lifted 2D over-segments)
    assert metrics["depth/abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < metrics["tracking/t_miou"] < 1.0
    scene = Scene.load(out / "scene")
    assert scene.metadata["segmentation"] == "combined" and scene.metadata["segmentation_config"]["source"] == "oversegment"
    assert scene.metadata["structure"]["up_source"] == "floor" and 0.0 <= metrics["objects/ap"] <= 1.0
    assert len(scene.instances) > 5 and all(scene.instances.labels)
    assert "Metrics against ground truth" in (out / "report.md").read_text()


def test_import_image_folder_with_max_frames_and_resize(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, h in enumerate((60, 70, 80)):
        Image.fromarray(np.full((h, 80, 3), 40 * i, np.uint8)).save(photos / f"{i}.png")
    code, _, err = run_cli(capsys, "import", str(photos), "--out", str(tmp_path / "s"), "--max-frames", "2", "--resize", "64", "80")
    assert code == 0, err
    scene = Scene.load(tmp_path / "s")
    assert scene.image_names == ["0.png", "2.png"] and scene.images.shape[1:3] == (64, 80)
    code, _, err = run_cli(capsys, "import", str(photos), "--out", str(tmp_path / "s"), "--stride", "2")
    assert code == 2 and "stride" in err


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    import torch

    from sem3r.models.vggt import VGGT, VGGTConfig
    from sem3r.reconstruct.feedforward import Sem3RGeometry

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt")
    Sem3RGeometry(VGGT(VGGTConfig.small(enable_track=False)), device="cpu").save_pretrained(path)
    return path


def test_reconstruct_feedforward_from_photos_of_mixed_sizes(tmp_path, capsys, small_checkpoint):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(photos / "a.png")
    Image.fromarray(rng.integers(0, 255, (120, 90), dtype=np.uint8)).save(photos / "b.png")  # greyscale, portrait
    Image.fromarray(rng.integers(0, 255, (400, 600, 3), dtype=np.uint8)).save(photos / "c.jpg")
    out = tmp_path / "scene"
    code, _, err = run_cli(capsys, "reconstruct", str(photos), "--out", str(out), "--checkpoint", str(small_checkpoint),
                           "--resolution", "112", "--device", "cpu")
    assert code == 0, err
    scene = Scene.load(out)
    assert scene.image_names == ["a.png", "b.png", "c.jpg"] and scene.images.shape[2] == 112
    assert scene.depth is not None and scene.world_points is not None
    assert scene.metadata["geometry"] == "feedforward" and scene.metadata["metric"] is False


def test_reconstruct_bad_inputs_are_one_line_errors(tmp_path, capsys, small_checkpoint):
    empty = tmp_path / "empty"
    empty.mkdir()
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny / "dot.png")
    bad_ckpt = tmp_path / "bad.pt"
    import torch

    torch.save({"aggregator.camera_token": torch.zeros(3)}, bad_ckpt)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(photos / "a.png")
    cases = [
        ([str(empty), "--checkpoint", str(small_checkpoint)], "empty"),
        ([str(tiny), "--checkpoint", str(small_checkpoint)], "dot.png is 1x1"),
        ([str(photos), "--checkpoint", str(bad_ckpt)], "does not match"),
        ([str(photos), "--checkpoint", str(tmp_path / "missing.pt")], "does not exist"),
    ]
    for args, needle in cases:
        code, _, err = run_cli(capsys, "reconstruct", *args, "--out", str(tmp_path / "o"), "--device", "cpu")
        assert code == 2 and needle in err and err.count("\n") == 1, (args, err)
    assert not (tmp_path / "o").exists()


def test_train_iggt_bad_configs_are_one_line_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "iggt", "--config", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err and err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dataset_root": str(tmp_path), "loss": {"contrastive_wieght": 1.0}}))
    code, _, err = run_cli(capsys, "train", "iggt", "--config", str(bad))
    assert code == 2 and "contrastive_wieght" in err and "Traceback" not in err


def test_train_segmenter3d_bad_configs_are_one_line_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "segmenter3d", "--config", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err and err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dataset_root": str(tmp_path), "loss": {"vipp": True}}))
    code, _, err = run_cli(capsys, "train", "segmenter3d", "--config", str(bad))
    assert code == 2 and "vipp" in err and "Traceback" not in err
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"dataset_root": str(tmp_path / "nothing"), "train": {"out_dir": str(tmp_path / "run")}}))
    code, _, err = run_cli(capsys, "train", "segmenter3d", "--config", str(empty))
    assert code == 2 and "manifest" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_ask_and_bev(tmp_path, capsys):
    from sem3r.data.synthetic import SynthConfig, generate_scene

    syn = generate_scene(SynthConfig(seed=0, num_views=6, height=96, width=128, num_points=0))
    scene_dir = syn.scene.save(tmp_path / "scene")
    visible = set(np.unique(syn.scene.instance_masks[syn.scene.instance_masks >= 0]).tolist())
    chairs = sum(1 for i, lab in zip(syn.scene.instances.ids, syn.scene.instances.labels) if lab == "chair" and i in visible)
    code, out, _ = run_cli(capsys, "ask", str(scene_dir), "how many chairs are there?")
    assert code == 0 and out.splitlines()[0] == f"{chairs}"
    code, _, err = run_cli(capsys, "ask", str(scene_dir), "how far is the unicorn from the door?")
    assert code == 2 and "unicorn" in err and "known: " in err and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "ask", str(scene_dir), "what colour is the sky?")
    assert code == 0 and out.startswith("cannot answer")
    code, _, err = run_cli(capsys, "ask", str(scene_dir), "what colour is the sky?", "--lmm", "http://127.0.0.1:9/v1")
    assert code == 2 and "cannot reach" in err
    code, out, _ = run_cli(capsys, "bev", str(scene_dir), "--out", str(tmp_path / "top.png"), "--markers")
    assert code == 0 and (tmp_path / "top.png").is_file() and (tmp_path / "top_mask.png").is_file()


def test_segment_source_options_are_typed_and_bad_ones_are_one_line_errors(tmp_path, capsys):
    from sem3r.data.synthetic import SynthConfig, generate_scene

    scene_dir = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64, num_points=0)).scene.save(tmp_path / "s")
    lift = ("segment", str(scene_dir), "--method", "lift", "--source", "oversegment")
    masks = {}
    for name, options in (("default", ()), ("coarse", ("--source-option", "min_size=400", "--source-option", "depth_cut=none"))):
        code, out, err = run_cli(capsys, *lift, *options, "--out", str(tmp_path / name))
        assert code == 0 and out.startswith("lift: "), err
        masks[name] = Scene.load(tmp_path / name).instance_masks
    # min_size=400 (of 3072 pixels) leaves at most 7 segments per view to lift: fewer instances.
    assert len(np.unique(masks["coarse"])) < len(np.unique(masks["default"]))
    for bad, words in ((("nope=1",), ("'nope'", "valid keys: k, ", "min_size")),
                       (("min_size=abc",), ("min_size", "expected int", "valid keys")),
                       (("min_size",), ("key=value", "valid keys")),
                       (("depth_cut=-1",), ("depth_cut",))):
        code, out, err = run_cli(capsys, *lift, "--source-option", *bad, "--out", str(tmp_path / "bad"))
        assert code == 2 and err.startswith("sem3r: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert all(word in err for word in words), err
    assert not (tmp_path / "bad").exists()
    code, _, err = run_cli(capsys, "segment", str(scene_dir), "--method", "iggt", "--source-option", "min_size=3")
    assert code == 2 and "--source-option" in err and err.count("\n") == 1
    # --sam-model is --source-option model=...: the gt source has no model
    code, _, err = run_cli(capsys, *lift[:5], "gt", "--sam-model", "x", "--out", str(tmp_path / "bad"))
    assert code == 2 and "'model'" in err and "miss_rate" in err


def test_segment3d_takes_source_options(tmp_path, capsys):
    from sem3r.data.synthetic import SynthConfig, generate_scene

    scene_dir = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64, num_points=0)).scene.save(tmp_path / "s")
    base = ("segment3d", str(scene_dir), "--classes", "chair,table", "--source", "gt")
    code, out, err = run_cli(capsys, *base, "--source-option", "miss_rate=1.0", "--out", str(tmp_path / "none"))
    assert code == 0, err
    assert (Scene.load(tmp_path / "none").instance_masks == -1).all()  # every 2D mask missed: nothing to lift
    code, _, err = run_cli(capsys, *base, "--source-option", "miss_rat=0.5", "--out", str(tmp_path / "bad"))
    assert code == 2 and "miss_rat" in err and "valid keys: seed, miss_rate" in err and err.count("\n") == 1
