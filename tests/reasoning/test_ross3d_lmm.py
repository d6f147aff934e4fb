"""ROSS3D as an LMM: chat_scene on a synthetic Scene, its input checks, make_lmm("ross3d:...") and sem3r ask."""

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from sem3r.cli import main
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.models.ross3d.position_encoding import (
    resize_crop_points,
    world_points_from_depth,
)
from sem3r.models.ross3d.preprocess import frame_pixel_values
from sem3r.reasoning.lmm import LMM, make_lmm
from sem3r.reasoning.ross3d_lmm import Ross3DLMM, uniform_frame_indices
from sem3r.scene import Scene


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SynthConfig(seed=0, num_views=3, height=48, width=64, num_points=0)).scene


@pytest.fixture(scope="module")
def lmm(tiny_ross3d):
    return make_lmm(f"ross3d:{tiny_ross3d[0]}", device="cpu", max_new_tokens=4, max_views=2)


def test_chat_scene_is_the_models_greedy_path(lmm, tiny_ross3d, scene):
    assert isinstance(lmm, Ross3DLMM) and isinstance(lmm, LMM)
    reply = lmm.chat_scene("how big is the room?", scene)
    assert isinstance(reply, str)
    assert lmm.chat_scene("how big is the room?", scene) == reply  # greedy: deterministic

    _, model = tiny_ross3d
    idx = uniform_frame_indices(scene.num_views, 2)
    assert idx.tolist() == [0, 2]
    pose = np.tile(np.eye(4), (2, 1, 1))
    pose[:, :3] = scene.cam_from_world[idx]
    pts = world_points_from_depth(torch.from_numpy(scene.depth[idx]), torch.from_numpy(scene.intrinsics[idx]).float(),
                                  torch.from_numpy(np.linalg.inv(pose)).float())
    ids = lmm.prompt_ids("how big is the room?")
    assert ids.count(-200) == 1
    tokens = model.generate(torch.tensor(ids), frame_pixel_values(scene.images[idx], 70), resize_crop_points(pts, 70), 4)
    assert reply == lmm.tokenizer.decode(tokens, skip_special_tokens=True).strip()


def test_world_points_without_depth(lmm, scene):
    from dataclasses import replace

    pts = replace(scene, depth=None, world_points=np.zeros((3, 48, 64, 3), np.float32))
    assert isinstance(lmm.chat_scene("where is the chair?", pts), str)


def test_bad_inputs_are_one_line_errors(lmm, scene):
    with pytest.raises(Sem3RError, match="question is empty"):
        lmm.chat_scene("  \n", scene)
    with pytest.raises(Sem3RError, match="needs depth or points"):
        lmm.chat_views("how big?", scene.images)
    with pytest.raises(Sem3RError, match="mismatched frame counts: 3 images, 2 depth"):
        lmm.chat_views("how big?", scene.images, scene.depth[:2], scene.intrinsics, scene.cam_from_world)
    with pytest.raises(Sem3RError, match="prompt is too long"):
        lmm.chat_views("x" * 4000, scene.images, scene.depth, scene.intrinsics, scene.cam_from_world)
    with pytest.raises(Sem3RError, match="use chat_scene"):
        lmm.chat("how big?", list(scene.images))
    with pytest.raises(Sem3RError, match="unknown option"):
        make_lmm("ross3d:/x", width=3)


def test_cli_ask(tiny_ross3d, scene, tmp_path, capsys):
    folder = tiny_ross3d[0]
    scene_dir = scene.save(tmp_path / "s")
    assert main(["ask", str(scene_dir), "how big is the room?", "--lmm", f"ross3d:{folder}", "--device", "cpu",
                 "--max-views", "2", "--max-new-tokens", "3"]) == 0
    assert "answered by ROSS3D" in capsys.readouterr().out

    bare = Scene(images=scene.images, intrinsics=scene.intrinsics, cam_from_world=scene.cam_from_world).save(tmp_path / "b")
    for args, message in (([str(bare), "how big?"], "needs depth or points"),
                          ([str(scene_dir), "  "], "question is empty"),
                          ([str(scene_dir), "x" * 4000], "prompt is too long"),
                          ([str(scene_dir), "how big?", "--max-views", "0"], "max-views must be at least 1")):
        assert main(["ask", *args, "--lmm", f"ross3d:{folder}", "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["ask", str(scene_dir), "how big?", "--lmm", f"ross3d:{tmp_path / 'none'}"]) == 2
    assert "ROSS3D checkpoint folder" in capsys.readouterr().err
