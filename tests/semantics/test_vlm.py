"""Image encoders on a tiny randomly initialised CLIP / SigLIP saved locally (real code path, offline)."""

import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.semantics.text import make_text_encoder
from sem3r.semantics.vlm import (
    IMAGE_ENCODERS,
    CLIPImageEncoder,
    ImageEncoder,
    check_images,
    make_image_encoder,
)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory, tiny_vlm_saver):
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("tiny_clip")
    return path, tiny_vlm_saver(transformers, path)


def _images(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_dense_features_shape_norm_and_maskclip_projection(tiny_clip):
    import torch

    path, model = tiny_clip
    enc = make_image_encoder(str(path))
    assert isinstance(enc, ImageEncoder) and isinstance(enc, CLIPImageEncoder) and enc.dim == 24 and not enc.is_siglip
    f = enc.dense_features(_images(3, 16, 24))
    assert f.shape == (3, 2, 3, 24) and f.dtype == np.float32  # short side 16 -> 8 px = 2 patches
    np.testing.assert_allclose(np.linalg.norm(f, axis=-1), 1.0, atol=1e-5)
    # at the model's own size: post-layernorm + visual projection of every patch token, row-major grid
    images = _images(2, 8, 8, seed=1)
    mean = np.array(enc.processor.image_mean).reshape(1, 3, 1, 1)
    std = np.array(enc.processor.image_std).reshape(1, 3, 1, 1)
    pixels = torch.tensor((images.transpose(0, 3, 1, 2) / 255.0 - mean) / std, dtype=torch.float32)
    with torch.no_grad():
        hidden = model.vision_model(pixel_values=pixels).last_hidden_state[:, 1:]
        tokens = model.visual_projection(model.vision_model.post_layernorm(hidden)).numpy()
    expected = _normalize(tokens).reshape(2, 2, 2, 24)
    np.testing.assert_allclose(enc.dense_features(images), expected, atol=1e-4)
    bigger = make_image_encoder("clip", model=str(path), dense_resolution=16, batch_size=1)
    assert bigger.dense_features(_images(2, 16, 24)).shape == (2, 4, 6, 24)


def test_crop_features_equal_normalised_image_features(tiny_clip):
    import torch

    path, model = tiny_clip
    enc = make_image_encoder(str(path), batch_size=2)
    crops = [_images(1, 8, 8, seed=2)[0], _images(1, 5, 11, seed=3)[0], _images(1, 20, 9, seed=4)[0]]
    got = enc.crop_features(crops)
    assert got.shape == (3, 24) and got.dtype == np.float32
    pixels = enc.processor(images=crops, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = model.get_image_features(pixel_values=pixels)
    ref = (out if isinstance(out, torch.Tensor) else out.pooler_output).numpy()
    np.testing.assert_allclose(got, _normalize(ref), atol=1e-5)
    assert enc.crop_features([]).shape == (0, 24)
    with pytest.raises(Sem3RError, match="crop 1 must be"):
        enc.crop_features([crops[0], np.zeros((0, 4, 3), np.uint8)])


def test_text_features_are_the_text_tower(tiny_clip):
    path, _ = tiny_clip
    enc = make_image_encoder(str(path))
    texts = ["the red chair", "a photo of a table ."]
    np.testing.assert_allclose(enc.text_features(texts), make_text_encoder(str(path), prompt_template="{}").encode(texts),
                               atol=1e-6)


def test_siglip_dense_feature_of_one_patch_is_the_pooled_embedding(tmp_path, tiny_vlm_saver):
    transformers = pytest.importorskip("transformers")
    import torch

    model = tiny_vlm_saver(transformers, tmp_path, siglip=True)
    enc = make_image_encoder("siglip", model=str(tmp_path), dense_resolution=4)
    assert enc.is_siglip and enc.dim == 32
    images = _images(2, 4, 4, seed=5)
    dense = enc.dense_features(images)
    assert dense.shape == (2, 1, 1, 32)
    # a single patch token: the attention-pooling head over one key is what the head does per token
    pixels = enc._pixels(images, (1, 1))
    with torch.no_grad():
        out = model.get_image_features(pixel_values=pixels, interpolate_pos_encoding=True)
    pooled = (out if isinstance(out, torch.Tensor) else out.pooler_output).numpy()
    np.testing.assert_allclose(dense[:, 0, 0], _normalize(pooled), atol=1e-5)
    assert make_image_encoder(str(tmp_path)).dense_features(_images(1, 8, 16)).shape == (1, 2, 4, 32)


def test_registry_and_bad_input(tiny_clip, tmp_path):
    path, _ = tiny_clip
    assert {"clip", "siglip"} <= set(IMAGE_ENCODERS)
    with pytest.raises(Sem3RError, match="unknown image encoder 'nonsense'"):
        make_image_encoder("nonsense")
    with pytest.raises(Sem3RError, match="has no option"):
        make_image_encoder("clip", model=str(path), width=3)
    with pytest.raises(Sem3RError, match="dense_resolution"):
        make_image_encoder("clip", model=str(path), dense_resolution=0)
    with pytest.raises(Sem3RError, match="does not exist"):
        make_image_encoder(str(tmp_path / "missing"))
    with pytest.raises(Sem3RError, match="uint8"):
        check_images(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(Sem3RError, match="empty"):
        check_images(np.zeros((0, 8, 8, 3), np.uint8))
