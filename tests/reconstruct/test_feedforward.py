import numpy as np
import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.geometry.camera import unproject_depth
from sem3r.models.vggt import VGGT, VGGTConfig
from sem3r.reconstruct.feedforward import FeedforwardConfig, Sem3RGeometry, reconstruct_feedforward
from sem3r.reconstruct.preprocess import PreprocessConfig
from sem3r.scene import Scene

PRE = PreprocessConfig(target_size=112)


@pytest.fixture(scope="module")
def geometry():
    torch.manual_seed(0)
    return Sem3RGeometry(VGGT(VGGTConfig.small(enable_track=False)), device="cpu")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8) for _ in range(3)]


def test_save_and_reload_predict_bit_identical(tmp_path, geometry, images):
    geometry.save_pretrained(tmp_path / "ckpt")
    reloaded = Sem3RGeometry.from_pretrained(tmp_path / "ckpt", device="cpu")
    a, b = geometry.predict(images, PRE), reloaded.predict(images, PRE)
    for name in ("depth", "depth_conf", "world_points", "cam_from_world", "intrinsics"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_official_style_pt_with_module_prefix_loads(tmp_path, geometry, images):
    state = {f"module.{k}": v for k, v in geometry.model.state_dict().items()}
    torch.save(state, tmp_path / "model.pt")
    config = VGGTConfig.small(enable_track=False)
    reloaded = Sem3RGeometry.from_pretrained(tmp_path / "model.pt", device="cpu", model_config=config)
    assert np.array_equal(reloaded.predict(images, PRE).depth, geometry.predict(images, PRE).depth)


def test_checkpoint_with_wrong_shapes_is_a_clear_error(tmp_path, geometry):
    state = dict(geometry.model.state_dict())
    state["aggregator.camera_token"] = torch.zeros(1, 2, 1, 64)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(Sem3RError, match=r"wrong shapes \(aggregator.camera_token \(1, 2, 1, 64\)"):
        Sem3RGeometry.from_pretrained(tmp_path / "bad.pt", model_config=VGGTConfig.small(enable_track=False))


def test_outputs_form_a_consistent_scene(geometry, images):
    scene = geometry.predict(images, PRE, names=["a.png", "b.png", "c.png"])
    assert scene.images.shape == (3, 84, 112, 3) and scene.image_names == ["a.png", "b.png", "c.png"]
    assert np.isfinite(scene.intrinsics).all() and (scene.depth > 0).all()
    # the pose encoding puts the principal point at the image centre
    assert np.allclose(scene.intrinsics[:, 0, 2], 56.0) and np.allclose(scene.intrinsics[:, 1, 2], 42.0)
    assert scene.metadata["metric"] is False and scene.metadata["point_source"] == "points"
    from_depth = geometry.predict(images, PRE, points_from="depth")
    assert np.allclose(from_depth.world_points, unproject_depth(from_depth.depth, from_depth.intrinsics, from_depth.cam_from_world))


def test_conf_percentile_marks_the_least_confident_pixels_invalid(geometry, images):
    full = geometry.predict(images, PRE)
    cut = geometry.predict(images, PRE, conf_percentile=30)
    dropped = cut.depth == 0
    assert 0.25 < dropped.mean() < 0.35
    assert full.depth_conf[dropped].max() <= full.depth_conf[~dropped].min()
    assert np.isnan(cut.world_points).any(axis=-1).mean() == pytest.approx(0.3, abs=0.05)


def test_backend_function_keeps_input_metadata(geometry, images):
    scene = Scene(images=np.stack(images), intrinsics=np.tile(np.eye(3), (3, 1, 1)),
                  cam_from_world=np.tile(np.eye(3, 4), (3, 1, 1)), metadata={"source": "image_folder"})
    out = reconstruct_feedforward(scene, FeedforwardConfig(checkpoint="unused", preprocess=PRE), geometry=geometry)
    assert out.metadata["source"] == "image_folder" and out.metadata["geometry"] == "feedforward"
    assert out.num_views == 3
