"""`sem3r segment --method geometric|combined`, `--up` everywhere: results, notes, one-line errors."""

import dataclasses

import numpy as np
import pytest

from sem3r.cli import main
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.scene import Scene


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("structure_cli")
    room = generate_scene(SynthConfig(seed=0, num_views=3, height=96, width=128, num_points=0)).scene
    bare = dataclasses.replace(room, instance_masks=None, semantic_masks=None,
                               metadata={k: v for k, v in room.metadata.items() if k not in ("up_axis", "source")})
    bare.save(root / "room")
    empty = generate_scene(SynthConfig(seed=0, num_views=2, height=64, width=80, num_points=0, categories=())).scene
    dataclasses.replace(empty, instance_masks=None, semantic_masks=None).save(root / "empty")
    dataclasses.replace(room, depth=np.zeros_like(room.depth)).save(root / "nodepth")
    return root


def test_geometric_finds_objects_and_the_floor(scenes, capsys, tmp_path):
    code, out, err = run(capsys, "segment", scenes / "room", "--method", "geometric", "--out", tmp_path / "seg")
    assert code == 0, err
    assert "up: 0.000, 0.000, 1.000 (from the floor" in out
    seg = Scene.load(tmp_path / "seg")
    assert len(seg.instances) > 5 and seg.metadata["up"] == pytest.approx([0, 0, 1], abs=1e-3)
    code, out, err = run(capsys, "bev", tmp_path / "seg", "--out", tmp_path / "bev.png")
    assert code == 0 and (tmp_path / "bev.png").is_file()


def test_up_override(scenes, capsys, tmp_path):
    code, out, _ = run(capsys, "segment", scenes / "room", "--method", "geometric", "--up", "0,0,2",
                       "--out", tmp_path / "seg")
    assert code == 0 and "(from the given;" in out
    code, out, _ = run(capsys, "ask", tmp_path / "seg", "how big is this room?", "--up", "+z")
    assert code == 0 and "m2" in out


def test_segment3d_takes_up(scenes, capsys, tmp_path):
    code, out, err = run(capsys, "segment3d", scenes / "room", "--classes", "chair,table", "--source", "oversegment",
                         "--up", "0,0,1", "--out", tmp_path / "seg3d")
    assert code == 0, err
    assert len(Scene.load(tmp_path / "seg3d").instances) > 3
    code, out, err = run(capsys, "segment3d", scenes / "room", "--classes", "chair", "--up", "nowhere")
    assert code == 2 and "unknown up axis" in err


def test_all_structure_scene_is_zero_proposals_and_a_note(scenes, capsys, tmp_path):
    code, out, err = run(capsys, "segment", scenes / "empty", "--method", "geometric", "--out", tmp_path / "seg")
    assert code == 0, err
    assert "geometric: 0 instances" in out and "note: no object proposals" in out


@pytest.mark.parametrize("args, message", [
    (("segment", "{nodepth}", "--method", "geometric"), "no valid reconstructed pixel"),
    (("segment", "{room}", "--method", "geometric", "--up", "sideways"), "unknown up axis"),
    (("bev", "{room}", "--up", "0,0,0"), "non-zero"),
])
def test_bad_input_is_one_line_and_exit_2(scenes, capsys, args, message):
    args = [a.format(nodepth=scenes / "nodepth", room=scenes / "room") for a in args]
    code, out, err = run(capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
