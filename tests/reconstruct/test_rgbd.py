from pathlib import Path

import numpy as np
import pytest

from sem3r.data.readers import read_7scenes
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import unproject_depth
from sem3r.reconstruct import RGBDConfig, depth_discontinuities, reconstruct, reconstruct_rgbd
from sem3r.scene import Scene

SEVEN_SCENES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "7scenes-sample"


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SynthConfig(seed=2, num_views=3, height=32, width=40, num_points=0)).scene


def step_scene(depth: np.ndarray) -> Scene:
    n, h, w = depth.shape
    K = np.array([[20.0, 0.0, (w - 1) / 2], [0.0, 20.0, (h - 1) / 2], [0.0, 0.0, 1.0]])
    return Scene(images=np.zeros((n, h, w, 3), np.uint8), intrinsics=np.tile(K, (n, 1, 1)),
                 cam_from_world=np.tile(np.eye(3, 4), (n, 1, 1)), depth=depth, metadata={"source": "test"})


def test_keeps_depth_and_cameras_and_fills_confidence(scene):
    out = reconstruct(scene, "rgbd")
    for name in ("images", "intrinsics", "cam_from_world", "depth", "instance_masks", "semantic_masks"):
        assert np.array_equal(getattr(out, name), getattr(scene, name)), name
    assert np.array_equal(out.depth_conf, (scene.depth > 0).astype(np.float32))
    assert out.world_points is None and out.metadata["metric"] is True and out.metadata["point_source"] == "depth"
    assert len(out.instances) == len(scene.instances)


def test_world_points_equal_unprojected_depth(scene):
    out = reconstruct(scene, "rgbd", world_points=True)
    valid = scene.depth > 0
    expected = unproject_depth(scene.depth, scene.intrinsics, scene.cam_from_world)
    assert np.array_equal(out.world_points[valid], expected[valid])
    assert np.isnan(out.world_points[~valid]).all()
    assert np.array_equal(out.point_conf, out.depth_conf)
    _, ok = out.points("points")
    assert np.array_equal(ok, valid)


def test_input_is_not_modified(scene):
    depth = scene.depth.copy()
    out = reconstruct(scene, "rgbd", max_depth=2.0)
    assert np.array_equal(scene.depth, depth) and scene.depth_conf is None
    assert not np.shares_memory(out.depth, scene.depth)


def test_depth_range_clipping(scene):
    lo, hi = np.percentile(scene.depth[scene.depth > 0], [20, 80])
    out = reconstruct(scene, "rgbd", min_depth=float(lo), max_depth=float(hi))
    inside = (scene.depth >= lo) & (scene.depth <= hi)
    assert np.array_equal(out.depth, np.where(inside, scene.depth, 0.0))
    assert np.array_equal(out.depth_conf > 0, inside)


def test_edges_of_a_depth_step_are_down_weighted():
    depth = np.full((1, 6, 8), 1.0, np.float32)
    depth[:, :, 4:] = 3.0
    depth[:, 0, 0] = 0.0  # a hole is not a discontinuity
    out = reconstruct(step_scene(depth), "rgbd", edge_threshold=0.1, edge_weight=0.25)
    expected = np.ones((6, 8), np.float32)
    expected[:, 3:5] = 0.25
    expected[0, 0] = 0.0
    assert np.array_equal(out.depth_conf[0], expected)
    assert not depth_discontinuities(depth * np.float32(1.05), 0.1)[:, :, :3].any()


def test_scene_without_depth_is_refused_with_the_alternatives(scene):
    images_only = scene.select_views(slice(None))
    images_only.depth = None
    with pytest.raises(Sem3RError, match="rgbd backend needs metric depth.*use backend 'feedforward' or 'colmap'"):
        reconstruct(images_only, "rgbd")


def test_unknown_poses_are_refused(scene):
    unknown = scene.select_views(slice(None))
    unknown.metadata["poses_known"] = False
    with pytest.raises(Sem3RError, match=r"needs known camera poses, but metadata\['poses_known'\] is False"):
        reconstruct_rgbd(unknown, RGBDConfig())


def test_bad_depth_and_poses_are_refused():
    depth = np.ones((2, 4, 5), np.float32)
    depth[1, 2, 2] = -1.0
    with pytest.raises(Sem3RError, match="depth of view 'view_0001' is negative"):
        reconstruct(step_scene(depth), "rgbd")
    with pytest.raises(Sem3RError, match=r"no valid depth in \[2.0, None\] m"):
        reconstruct(step_scene(np.ones((1, 4, 5), np.float32)), "rgbd", min_depth=2.0)
    skewed = step_scene(np.ones((2, 4, 5), np.float32))
    skewed.cam_from_world[1, 0, 0] = 1.5
    with pytest.raises(Sem3RError, match="rotation of view 'view_0001' is not orthonormal"):
        reconstruct(skewed, "rgbd")


@pytest.mark.skipif(not SEVEN_SCENES.is_dir(), reason="the 7-Scenes sample in ../shared is absent")
def test_real_rgbd_frames():
    scene = read_7scenes(SEVEN_SCENES, max_frames=2)
    out = reconstruct(scene, "rgbd", max_depth=4.0, edge_threshold=0.05)
    valid = (scene.depth > 0) & (scene.depth <= 4.0)
    assert out.metadata["metric"] is True and np.array_equal(out.depth_conf > 0, valid)
    assert 0 < (out.depth_conf == 0.5).mean() < 0.2
