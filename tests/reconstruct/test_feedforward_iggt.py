import json

import numpy as np
import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.models.iggt import IGGT, IGGTConfig
from sem3r.models.vggt import VGGT, VGGTConfig
from sem3r.reconstruct.feedforward import Sem3RGeometry, checkpoint_model_type
from sem3r.reconstruct.preprocess import PreprocessConfig, preprocess_images

PRE = PreprocessConfig(target_size=112)
CONFIG = IGGTConfig.small(enable_track=False)


@pytest.fixture(scope="module")
def geometry():
    torch.manual_seed(0)
    return Sem3RGeometry(IGGT(CONFIG), device="cpu")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8) for _ in range(2)]


def test_predict_fills_unit_instance_features(geometry, images):
    scene = geometry.predict(images, PRE)
    assert scene.instance_features.shape == (2, 84, 112, 8) and scene.instance_features.dtype == np.float16
    norms = np.linalg.norm(scene.instance_features.astype(np.float32), axis=-1)
    assert np.allclose(norms, 1.0, atol=2e-3)


def test_save_and_reload_keeps_model_type(tmp_path, geometry, images):
    geometry.save_pretrained(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["model_type"] == "iggt"
    reloaded = Sem3RGeometry.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert isinstance(reloaded.model, IGGT) and reloaded.model.config == CONFIG
    a, b = geometry.predict(images, PRE), reloaded.predict(images, PRE)
    for name in ("instance_features", "depth", "world_points", "cam_from_world"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    with pytest.raises(Sem3RError, match="model_type 'iggt', not 'vggt'"):
        Sem3RGeometry.from_pretrained(tmp_path / "ckpt", device="cpu", model_type="vggt")


def test_vggt_folders_with_and_without_model_type_load_as_vggt(tmp_path):
    torch.manual_seed(0)
    vggt = Sem3RGeometry(VGGT(VGGTConfig.small(enable_track=False)), device="cpu")
    vggt.save_pretrained(tmp_path / "new")
    config_file = tmp_path / "new" / "config.json"
    fields = json.loads(config_file.read_text())
    assert fields.pop("model_type") == "vggt"
    config_file.write_text(json.dumps(fields))  # a folder written before model_type existed
    reloaded = Sem3RGeometry.from_pretrained(tmp_path / "new", device="cpu")
    assert type(reloaded.model) is VGGT and reloaded.model_type == "vggt"


def test_bare_weights_file_with_explicit_or_detected_type(tmp_path, geometry, images):
    state = geometry.model.state_dict()
    torch.save(state, tmp_path / "iggt.pt")
    assert checkpoint_model_type(state) == "iggt"
    assert checkpoint_model_type(VGGT(VGGTConfig.small(enable_track=False)).state_dict()) == "vggt"
    reloaded = Sem3RGeometry.from_pretrained(tmp_path / "iggt.pt", device="cpu", model_config=CONFIG, model_type="iggt")
    assert np.array_equal(reloaded.predict(images, PRE).instance_features, geometry.predict(images, PRE).instance_features)
    with pytest.raises(Sem3RError, match="contradicts"):
        Sem3RGeometry.from_pretrained(tmp_path / "iggt.pt", model_config=CONFIG, model_type="vggt")
    with pytest.raises(Sem3RError, match="unknown model_type"):
        Sem3RGeometry.from_pretrained(tmp_path / "iggt.pt", model_type="dino")
    with pytest.raises(Sem3RError, match="unexpected keys"):  # an IGGT file read as a VGGT
        Sem3RGeometry.from_pretrained(tmp_path / "iggt.pt", model_config=VGGTConfig.small(enable_track=False))


def test_instance_features_at_model_resolution_match_predict(geometry, images):
    scene = geometry.predict(images, PRE)  # already at model resolution: the pixel map is the identity
    features = geometry.instance_features(scene, PRE)
    assert features.shape == (2, 84, 112, 8) and features.dtype == np.float32
    assert np.abs(features - scene.instance_features.astype(np.float32)).max() < 2e-3


def test_instance_features_at_scene_resolution_follow_the_pixel_map(geometry):
    rng = np.random.default_rng(1)
    big = rng.integers(0, 255, (2, 168, 224, 3), dtype=np.uint8)  # twice the model's 84 x 112
    scene = geometry.predict(list(big), PreprocessConfig(target_size=224))
    features = geometry.instance_features(scene, PRE)
    assert features.shape == (2, 168, 224, 8)
    assert np.allclose(np.linalg.norm(features, axis=-1), 1.0, atol=1e-5)
    # u_model = 0.5 * (u + 0.5) - 0.5: scene pixel (v=5, u=3) sits at model (2.25, 1.25)
    batch = preprocess_images(list(big), PRE)
    assert np.allclose(batch.scale, 0.5) and np.allclose(batch.offset, 0.0)
    with torch.no_grad():
        model = geometry.model.instance_features(batch.to_tensor()[None])[0].numpy()
    f = model[1]
    expected = (0.5625 * f[2, 1] + 0.1875 * f[2, 2] + 0.1875 * f[3, 1] + 0.0625 * f[3, 2])
    assert np.allclose(features[1, 5, 3], expected / np.linalg.norm(expected), atol=1e-5)


def test_instance_features_need_an_instance_head(images):
    vggt = Sem3RGeometry(VGGT(VGGTConfig.small(enable_track=False)), device="cpu")
    scene = vggt.predict(images, PRE)
    assert scene.instance_features is None
    with pytest.raises(Sem3RError, match="no instance head"):
        vggt.instance_features(scene, PRE)
