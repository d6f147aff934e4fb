"""`segment(scene, method)`: the registry, the Scene it returns, and the `sem3r segment` command."""

import numpy as np
import pytest

from sem3r.cli import main
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.eval import tracking_metrics
from sem3r.instances import METHODS, segment
from sem3r.scene import Scene


@pytest.fixture(scope="module")
def room():
    return generate_scene(SynthConfig(seed=3, num_views=4, height=72, width=96, num_points=0)).scene


def category_features(scene: Scene, seed: int = 0) -> np.ndarray:
    """Per-category unit features: every instance of a category looks the same, structure another way."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(64, 8))
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    return table[scene.semantic_masks + 1].astype(np.float32)


@pytest.fixture(scope="module")
def iggt_checkpoint(tmp_path_factory):
    import torch

    from sem3r.models.iggt import IGGT, IGGTConfig
    from sem3r.reconstruct.feedforward import Sem3RGeometry

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("iggt")
    Sem3RGeometry(IGGT(IGGTConfig.small(enable_track=False)), device="cpu").save_pretrained(path)
    return path


def test_methods_are_registered_and_unknown_ones_are_listed(room):
    assert {"iggt", "perview", "lift"} <= set(METHODS)
    with pytest.raises(Sem3RError, match="unknown segmentation method 'sam3d'; known methods: iggt, perview, lift"):
        segment(room, "sam3d")
    with pytest.raises(Sem3RError, match="method 'lift' has no option"):
        segment(room, "lift", treshold=0.5)


def test_lift_of_gt_masks_recovers_identity_and_leaves_the_input_alone(room):
    before = room.instance_masks.copy()
    out = segment(room, "lift", source="gt")
    assert np.array_equal(room.instance_masks, before)
    assert out is not room and out.metadata["segmentation"] == "lift"
    assert out.metadata["segmentation_config"]["source"] == "gt"
    m = tracking_metrics(out.instance_masks, room.instance_masks)
    assert m["t_miou"] > 0.9 and m["t_sr"] > 0.9
    ids = np.unique(out.instance_masks[out.instance_masks >= 0])
    assert np.array_equal(np.sort(out.instances.ids), ids)


def test_iggt_and_perview_cluster_the_scene_features(room):
    featured = room.select_views(slice(None))
    featured.instance_features = category_features(room)
    joint = segment(featured, "iggt")
    per_view = segment(featured, "perview")
    view_sets = [set(np.unique(v[v >= 0]).tolist()) for v in per_view.instance_masks]
    assert all(not (a & b) for i, a in enumerate(view_sets) for b in view_sets[i + 1:])
    # at 72x96 the smallest objects are a few voxels and cannot form a cluster: joint clustering
    # tracks most objects, per-view clustering (no shared ids) only those seen in a single view
    joint_sr = tracking_metrics(joint.instance_masks, room.instance_masks)["t_sr"]
    per_view_sr = tracking_metrics(per_view.instance_masks, room.instance_masks)["t_sr"]
    assert joint_sr > 0.7 and per_view_sr < 0.5 and joint_sr - per_view_sr > 0.3


def test_iggt_without_features_or_checkpoint_says_what_to_do(room):
    with pytest.raises(Sem3RError, match="no instance features: pass an IGGT checkpoint"):
        segment(room, "iggt")
    with pytest.raises(Sem3RError, match="multiple of 14"):
        segment(room, "iggt", checkpoint="x", resolution=100)


def test_iggt_with_a_checkpoint_predicts_features_at_scene_resolution(room, iggt_checkpoint):
    out = segment(room, "iggt", checkpoint=str(iggt_checkpoint), resolution=56, device="cpu")
    assert out.instance_features.shape == (*room.instance_masks.shape, 8)
    assert np.allclose(np.linalg.norm(out.instance_features.astype(np.float32), axis=-1), 1.0, atol=1e-2)
    assert out.instance_masks.shape == room.instance_masks.shape and (out.instance_masks >= 0).any()


def test_cli_segment_writes_masks_and_bad_input_is_one_line(tmp_path, capsys, room):
    room.save(tmp_path / "scene")
    code = main(["segment", str(tmp_path / "scene"), "--method", "lift", "--source", "gt", "--out", str(tmp_path / "seg")])
    out, err = capsys.readouterr()
    assert code == 0, err
    seg = Scene.load(tmp_path / "seg")
    assert seg.metadata["segmentation"] == "lift" and f"{len(seg.instances)} instances" in out
    assert tracking_metrics(seg.instance_masks, room.instance_masks)["t_sr"] > 0.9

    code = main(["segment", str(tmp_path / "scene"), "--method", "iggt"])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("sem3r: error: ") and err.count("\n") == 1 and "--checkpoint" in err
    assert np.array_equal(Scene.load(tmp_path / "scene").instance_masks, room.instance_masks)

    code = main(["segment", str(tmp_path / "missing")])
    _, err = capsys.readouterr()
    assert code == 2 and "missing" in err
