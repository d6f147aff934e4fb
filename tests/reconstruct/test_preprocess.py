import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.reconstruct.preprocess import PreprocessConfig, preprocess_images


def blob_image(h, w, u, v):
    img = np.zeros((h, w, 3), np.uint8)
    img[v - 3 : v + 4, u - 3 : u + 4, 0] = 255  # a red blob (padding is white)
    return img


def centroid(img):
    ys, xs = np.nonzero((img[..., 0] > 127) & (img[..., 1] < 128))
    return xs.mean(), ys.mean()


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (300, 1000)])
def test_sides_are_patch_multiples_and_pixels_map_by_the_recorded_affine(mode, shape):
    h, w = shape
    u, v = int(w * 0.4), int(h * 0.45)
    out = preprocess_images([blob_image(h, w, u, v)], PreprocessConfig(mode=mode))
    H, W = out.images.shape[1:3]
    assert H % 14 == 0 and W % 14 == 0 and max(H, W) <= 518
    if mode == "pad":
        assert (H, W) == (518, 518)
    (sx, sy), (ox, oy) = out.scale[0], out.offset[0]
    cu, cv = centroid(out.images[0])
    assert cu == pytest.approx(sx * (u + 0.5) - 0.5 + ox, abs=0.6)
    assert cv == pytest.approx(sy * (v + 0.5) - 0.5 + oy, abs=0.6)


def test_tall_image_is_centre_cropped_in_crop_mode():
    out = preprocess_images([np.zeros((1000, 400, 3), np.uint8)])
    assert out.images.shape[1:3] == (518, 518)
    assert out.offset[0, 1] < 0 and out.offset[0, 0] == 0


def test_mixed_sizes_pad_with_white_to_a_common_size():
    out = preprocess_images([np.zeros((480, 640, 3), np.uint8), np.zeros((300, 1000, 3), np.uint8)])
    assert out.images.shape == (2, 392, 518, 3)
    # the wide image is 518 x 154 after resizing: 119 white rows above and below
    assert (out.images[1, :119] == 255).all() and (out.images[1, 119:273] == 0).all()
    assert out.offset[1, 1] == 119


def test_grayscale_and_large_images_are_accepted():
    out = preprocess_images([np.full((40, 60), 7, np.uint8), np.zeros((4000, 6000, 3), np.uint8)])
    assert out.images.shape[0] == 2 and (out.original_sizes == [[40, 60], [4000, 6000]]).all()


def test_bad_input():
    with pytest.raises(Sem3RError, match="at least one image"):
        preprocess_images([])
    with pytest.raises(Sem3RError, match="tiny.png is 1x1"):
        preprocess_images([np.zeros((1, 1, 3), np.uint8)], names=["tiny.png"])
    with pytest.raises(Sem3RError, match="uint8"):
        preprocess_images([np.zeros((50, 50, 3), np.float32)])
