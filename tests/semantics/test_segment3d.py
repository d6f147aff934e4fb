"""Open-vocabulary 3D instances: the training-free path against ground truth, the trained path, the CLI."""

import numpy as np
import pytest
import torch

from sem3r.cli import main
from sem3r.data.synthetic import CATEGORIES, CLASS_NAMES, SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.eval import instance_ap
from sem3r.reconstruct.correspondence import CorrespondenceConfig
from sem3r.semantics.point_inputs import PointInputsConfig
from sem3r.semantics.segment3d import (
    Segment3DConfig,
    farthest_point_sampling,
    segment3d,
)

FAST = PointInputsConfig(correspondence=CorrespondenceConfig(voxel_size=0.05))


@pytest.fixture(scope="module")
def syn():
    return generate_scene(SynthConfig(seed=2, num_views=4, height=72, width=96, num_points=0, camera_path="random_large"))


def _gt(result, scene):
    corr = result.inputs.correspondence
    return corr.point_labels(scene.instance_masks), corr.point_labels(scene.semantic_masks)


def test_training_free_path_recovers_the_ground_truth(syn):
    scene = syn.scene
    result = segment3d(scene, list(CLASS_NAMES), Segment3DConfig(inputs=FAST))
    gt_ids, gt_sem = _gt(result, scene)
    metrics = instance_ap(result.masks, result.classes, result.scores, gt_ids, gt_sem, list(CLASS_NAMES),
                          min_region_size=5)
    assert metrics["ap50"] > 0.8
    # masks are sorted best first, scores in [0, 1], classes are object categories
    assert np.all(np.diff(result.scores) <= 0) and result.scores.min() >= 0 and result.scores.max() <= 1
    assert {CLASS_NAMES[c] for c in result.classes} <= set(CATEGORIES)
    # the Scene copy carries non-overlapping instances with labels, and the input is untouched
    out = result.scene
    assert out.metadata["class_names"] == list(CLASS_NAMES)
    assert set(out.instances.labels) <= set(CATEGORIES)
    assert out.instance_masks.max() == len(result.masks) - 1
    assert scene.metadata["class_names"] == list(CLASS_NAMES) and scene.instance_masks.max() >= 0
    labelled = out.instance_masks >= 0
    assert np.array_equal(out.semantic_masks[labelled], result.classes[out.instance_masks[labelled]])


def test_requested_classes_name_the_labels(syn):
    result = segment3d(syn.scene, ["chair", "painting"], Segment3DConfig(inputs=FAST))
    assert set(result.scene.instances.labels) <= {"chair", "painting", ""}
    gt_ids, _ = _gt(result, syn.scene)
    chairs = {int(i) for i, lab in zip(syn.scene.instances.ids, syn.scene.instances.labels) if lab == "chair"}
    found = result.classes == 0
    # every mask labelled chair mostly covers a ground-truth chair
    for mask in result.masks[found]:
        ids, counts = np.unique(gt_ids[mask], return_counts=True)
        assert int(ids[np.argmax(counts)]) in chairs


def test_farthest_point_sampling_spreads_out():
    pts = np.array([[0.0, 0, 0], [0.1, 0, 0], [10, 0, 0], [5, 0, 0], [10.1, 0, 0]])
    assert farthest_point_sampling(pts, 3).tolist() == [0, 4, 3]
    assert len(farthest_point_sampling(pts, 99)) == 5


def test_bad_class_lists(syn):
    with pytest.raises(Sem3RError, match="empty"):
        segment3d(syn.scene, [], Segment3DConfig(inputs=FAST))
    with pytest.raises(Sem3RError, match="duplicate"):
        segment3d(syn.scene, ["chair", "table", " chair"], Segment3DConfig(inputs=FAST))


def test_cli_segment3d(tmp_path, syn, capsys):
    scene_dir = syn.scene.save(tmp_path / "scene")
    before = sorted(p.name for p in scene_dir.iterdir())
    assert main(["segment3d", str(scene_dir), "--classes", ""]) == 2
    assert main(["segment3d", str(scene_dir), "--classes", "chair,table,chair"]) == 2
    err = capsys.readouterr().err
    assert "duplicate" in err and "Traceback" not in err
    assert sorted(p.name for p in scene_dir.iterdir()) == before            # nothing written
    out_dir = tmp_path / "out"
    assert main(["segment3d", str(scene_dir), "--classes", "chair,table,painting", "--out", str(out_dir),
                 "--export", str(tmp_path / "export")]) == 0
    from sem3r.scene import Scene
    from sem3r.viz.ply import read_ply

    seg = Scene.load(out_dir)
    assert seg.metadata["class_names"] == ["chair", "table", "painting"]
    assert len(seg.instances) > 0 and set(seg.instances.labels) <= {"chair", "table", "painting", ""}
    cloud = read_ply(tmp_path / "export" / "scene.ply")
    assert cloud.instance_ids.max() >= 0
    assert (tmp_path / "export" / "viewer.html").is_file()


class _EverywhereModel(torch.nn.Module):
    """A stand-in segmenter whose every query claims every superpoint as class 0."""

    def forward(self, superpoints, num_superpoints, text, query_superpoints, **_):
        q = len(query_superpoints)
        classes = torch.full((q, len(text)), -5.0)
        classes[:, 0] = 5.0
        return {"mask_logits": torch.full((q, num_superpoints), 5.0), "class_logits": classes}


def test_masks_stay_in_the_views_of_their_seed(syn):
    from sem3r.semantics.point_inputs import prepare_point_inputs, scene_annotations
    from sem3r.semantics.segment3d import _predict
    from sem3r.semantics.text import HashTextEncoder

    text = HashTextEncoder(dim=8).encode(["chair", "table"])
    masks, classes = scene_annotations(syn.scene, ["chair", "table"])
    inputs = prepare_point_inputs(syn.scene, masks, classes, text, FAST)
    free, _, _ = _predict(inputs, _EverywhereModel(), text, Segment3DConfig(seed_views_only=False, nms_iou=1.0))
    assert free.all()                                              # no restriction: every mask is everything
    kept, _, _ = _predict(inputs, _EverywhereModel(), text, Segment3DConfig(nms_iou=1.0, min_points=1))
    # every superpoint seeds a query; its mask is exactly the superpoints that share a view with the
    # seed (rows compared as a multiset: the order follows scores that differ by rounding only)
    sp = inputs.superpoints
    sp_seen = np.zeros((syn.scene.num_views, inputs.num_superpoints), bool)
    views, points = np.nonzero(inputs.seen())
    sp_seen[views, sp[points]] = True
    covisible = (sp_seen.T.astype(int) @ sp_seen.astype(int)) > 0
    expected = covisible[:, sp]
    assert sorted(row.tobytes() for row in kept) == sorted(row.tobytes() for row in expected)
    assert not covisible.all()                                      # the restriction does cut something


def test_cli_segment3d_labels_unnamed_masks_with_a_vlm(tmp_path, syn, tiny_vlm_saver):
    transformers = pytest.importorskip("transformers")
    from sem3r.scene import Scene

    tiny_vlm_saver(transformers, tmp_path / "clip")
    scene_dir = syn.scene.save(tmp_path / "scene")
    assert main(["segment3d", str(scene_dir), "--classes", "chair,table", "--source", "oversegment",
                 "--out", str(tmp_path / "plain")]) == 0
    assert not any(Scene.load(tmp_path / "plain").instances.labels)          # oversegments carry no class
    assert main(["segment3d", str(scene_dir), "--classes", "chair,table", "--source", "oversegment",
                 "--vlm", str(tmp_path / "clip"), "--out", str(tmp_path / "named")]) == 0
    named = Scene.load(tmp_path / "named")
    assert len(named.instances) and set(named.instances.labels) <= {"chair", "table"} and all(named.instances.labels)
    labelled = named.instance_masks >= 0
    assert (named.semantic_masks[labelled] >= 0).all()
