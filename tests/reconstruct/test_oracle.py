import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reconstruct import OracleConfig, reconstruct, reconstruct_oracle
from sem3r.reconstruct.common import valid_depth_points
from sem3r.scene import Scene

CONFIG = SynthConfig(seed=4, num_views=4, height=32, width=40, camera_path="walk", num_points=0)


@pytest.fixture(scope="module")
def truth():
    return generate_scene(CONFIG).scene


def strip(scene: Scene) -> Scene:
    out = scene.select_views(slice(None))
    out.depth = None
    out.intrinsics = np.tile(np.eye(3), (scene.num_views, 1, 1))
    out.cam_from_world = np.tile(np.eye(3, 4), (scene.num_views, 1, 1))
    return out


def test_regenerates_the_generator_output(truth):
    out = reconstruct(strip(truth), "oracle", world_points=True)
    for name in ("images", "intrinsics", "cam_from_world", "depth"):
        assert np.array_equal(getattr(out, name), getattr(truth, name)), name
    assert np.array_equal(out.depth_conf, (truth.depth > 0).astype(np.float32))
    assert np.array_equal(out.world_points, valid_depth_points(truth.depth, truth.intrinsics, truth.cam_from_world), equal_nan=True)
    assert out.metadata["metric"] is True and out.metadata["geometry"] == "oracle"


def test_views_are_matched_by_name(truth):
    subset = strip(truth.select_views([3, 1]))
    out = reconstruct(subset, "oracle")
    assert np.array_equal(out.depth, truth.depth[[3, 1]])
    assert np.array_equal(out.cam_from_world, truth.cam_from_world[[3, 1]])


def test_keeps_and_verifies_the_generators_depth(truth):
    out = reconstruct(truth, "oracle")
    assert np.array_equal(out.depth, truth.depth) and np.array_equal(out.cam_from_world, truth.cam_from_world)
    assert np.array_equal(reconstruct(truth, "oracle", verify=True).depth, truth.depth)
    moved = truth.select_views(slice(None))
    moved.cam_from_world[2, 0, 3] += 0.01
    with pytest.raises(Sem3RError, match="cam_from_world of view 'view_0002' differs from the ground truth by 0.01"):
        reconstruct_oracle(moved, OracleConfig(verify=True))


def test_edited_or_resized_scenes_are_refused(truth):
    edited = strip(truth)
    edited.images[1, 0, 0] ^= 1
    with pytest.raises(Sem3RError, match="image of view 'view_0001' differs from what the generator renders"):
        reconstruct(edited, "oracle")
    renamed = strip(truth)
    renamed.image_names[0] = "frame-000000"
    with pytest.raises(Sem3RError, match="view 'frame-000000' is not one of the generator's views view_0000..view_0003"):
        reconstruct(renamed, "oracle")
    other_version = strip(truth)
    other_version.metadata["generator_version"] = 0
    with pytest.raises(Sem3RError, match="synthetic generator version 0"):
        reconstruct(other_version, "oracle")


def test_refuses_a_7scenes_like_scene(truth):
    real = Scene(images=truth.images, intrinsics=truth.intrinsics, cam_from_world=truth.cam_from_world, depth=truth.depth,
                 metadata={"source": "7scenes", "metric": True, "poses_known": True, "intrinsics_known": True})
    with pytest.raises(Sem3RError, match="oracle backend only works on synthetic scenes.*source is '7scenes'; use backend 'rgbd'"):
        reconstruct(real, "oracle")
