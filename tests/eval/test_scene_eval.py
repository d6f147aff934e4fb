import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval.scene_eval import evaluate_scene, format_metrics_table
from sem3r.geometry.transforms import Sim3, random_rotation
from sem3r.scene import Scene

N, H, W = 3, 24, 32
NAMES = ["wall", "chair", "table"]


def _gt_scene() -> Scene:
    rng = np.random.default_rng(0)
    K = np.tile(np.array([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]]), (N, 1, 1))
    R = random_rotation(rng, N)
    cams = np.concatenate([R, rng.normal(scale=0.5, size=(N, 3, 1))], axis=2)
    v, u = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    depth = np.stack([2.0 + 0.5 * np.sin(u / 5.0 + i) + 0.3 * np.cos(v / 4.0) for i in range(N)]).astype(np.float32)
    inst = np.broadcast_to((u // 8) + 4 * (v // 12), (N, H, W)).astype(np.int32)
    return Scene(
        images=np.zeros((N, H, W, 3), np.uint8),
        intrinsics=K,
        cam_from_world=cams,
        depth=depth,
        instance_masks=inst,
        semantic_masks=inst % 3,
        metadata={"class_names": NAMES},
    )


def _predicted(gt: Scene) -> Scene:
    """The ground truth seen in another world frame and scale, with other ids and class order."""
    T = Sim3(0.4, random_rotation(7), [0.3, -1.0, 2.0])
    pred_names = ["table", "wall", "chair"]
    to_pred = np.array([pred_names.index(n) for n in NAMES])
    return Scene(
        images=gt.images,
        intrinsics=gt.intrinsics,
        cam_from_world=T.transform_cameras(gt.cam_from_world),
        depth=gt.depth * 0.4,
        instance_masks=gt.instance_masks + 100,
        semantic_masks=to_pred[gt.semantic_masks],
        metadata={"class_names": pred_names},
    )


def test_prediction_equal_up_to_similarity_scores_perfectly():
    gt = _gt_scene()
    m = evaluate_scene(_predicted(gt), gt)
    assert m["depth/abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert m["camera/auc@30"] == 1.0 and m["camera/rra@5"] == 1.0
    assert m["pointcloud/chamfer"] < 1e-4
    assert m["pointcloud/scale"] == pytest.approx(1 / 0.4, rel=1e-4)
    assert m["tracking/t_miou"] == 1.0 and m["tracking/t_sr"] == 1.0
    assert m["semantic2d/miou"] == 1.0
    assert m["instance3d/ap"] == pytest.approx(1.0)
    assert m["semantic3d/miou"] > 0.95


def test_explicit_ground_truth_cloud_and_partial_fields():
    gt = _gt_scene()
    pred = _predicted(gt)
    pred.update_instances()  # instance classes now come from the instance table
    pred.semantic_masks = None
    m = evaluate_scene(pred, gt, gt_cloud=gt.fused_point_cloud())
    assert "semantic2d/miou" not in m and "semantic3d/miou" not in m
    assert m["instance3d/ap"] == pytest.approx(1.0)
    cams_only = Scene(images=gt.images, intrinsics=gt.intrinsics, cam_from_world=pred.cam_from_world)
    m = evaluate_scene(cams_only, gt)
    assert m and all(k.startswith("camera/") for k in m)


def test_wrong_prediction_scores_lower():
    gt = _gt_scene()
    pred = _predicted(gt)
    pred.instance_masks = np.roll(pred.instance_masks, 5, axis=2)
    pred.depth = pred.depth * np.random.default_rng(0).uniform(0.8, 1.2, size=pred.depth.shape).astype(np.float32)
    m = evaluate_scene(pred, gt)
    assert m["depth/abs_rel"] > 0.01
    assert m["tracking/t_miou"] < 0.9
    assert m["instance3d/ap"] < 1.0


def test_mismatched_scenes():
    gt = _gt_scene()
    with pytest.raises(Sem3RError):
        evaluate_scene(gt.select_views([0, 1]), gt)
    images = np.zeros((N, H, W - 1, 3), np.uint8)
    small = Scene(images=images, intrinsics=gt.intrinsics, cam_from_world=gt.cam_from_world)
    with pytest.raises(Sem3RError):
        evaluate_scene(small, gt)


def test_format_metrics_table():
    text = format_metrics_table({"depth/abs_rel": 0.012345, "camera/num_pairs": 3.0, "tracking/t_sr": float("nan")})
    assert text.splitlines() == [
        "| metric | value |",
        "|---|---|",
        "| depth/abs_rel | 0.0123 |",
        "| camera/num_pairs | 3 |",
        "| tracking/t_sr | nan |",
    ]


def test_oracle_on_a_synthetic_scene_is_perfect_and_noise_is_not():
    from sem3r.data.synthetic import SynthConfig, generate_scene

    syn = generate_scene(SynthConfig(seed=5, num_views=4, height=96, width=128, num_points=60_000))
    gt = syn.scene
    m = evaluate_scene(gt, gt, syn.cloud)
    assert m["depth/abs_rel"] == 0.0 and m["camera/auc@30"] == 1.0
    assert m["pointcloud/chamfer"] < 1e-6
    assert m["tracking/t_sr"] == 1.0 and m["semantic2d/miou"] == 1.0
    # the mesh-sampled cloud is restricted to what the views saw, so ground-truth masks score AP 1
    assert m["instance3d/ap50"] == 1.0 and m["instance3d/ap"] > 0.95
    assert m["semantic3d/miou"] > 0.95

    rng = np.random.default_rng(0)
    noisy = gt.select_views(slice(None))
    noisy.depth = (gt.depth * rng.normal(1.0, 0.05, gt.depth.shape)).astype(np.float32)
    worse = evaluate_scene(noisy, gt, syn.cloud)
    assert 0.02 < worse["depth/abs_rel"] < 0.06
    assert worse["pointcloud/chamfer"] > 0.01
