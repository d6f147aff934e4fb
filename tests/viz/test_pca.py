import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.viz.pca import PCAColorMap, pca_colors


def _line_features(n=64, channels=12, seed=0):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=channels)
    t = np.linspace(-2.0, 3.0, n)
    return t, (t[:, None] * direction + rng.normal(size=channels)).astype(np.float32)


def test_one_direction_maps_to_a_monotonic_colour():
    t, feats = _line_features()
    rgb = pca_colors(feats[None, :, None, :])[0, :, 0].astype(int)
    assert rgb.shape == (64, 3)
    steps = np.diff(rgb[:, 0])
    assert (steps >= 0).all() or (steps <= 0).all()
    assert abs(int(rgb[-1, 0]) - int(rgb[0, 0])) == 255
    assert (rgb[:, 1:] == 128).all()


def test_sign_convention_makes_largest_loading_positive():
    _, feats = _line_features(seed=1)
    noisy = feats + 0.01 * np.random.default_rng(2).normal(size=feats.shape)
    cmap = PCAColorMap.fit(noisy)
    lead = np.abs(cmap.components).argmax(axis=0)
    assert (cmap.components[lead, [0, 1, 2]] > 0).all()
    np.testing.assert_allclose(cmap.components.T @ cmap.components, np.eye(3), atol=1e-9)
    flipped = PCAColorMap.fit(noisy[::-1].copy())
    np.testing.assert_allclose(flipped.components[:, 0], cmap.components[:, 0], atol=1e-9)


def test_identical_views_get_identical_colours_and_joint_fit_is_shared():
    rng = np.random.default_rng(0)
    view = rng.normal(size=(10, 12, 8)) @ rng.normal(size=(8, 8))
    other = rng.normal(size=(10, 12, 8)) * 3.0
    same = pca_colors(np.stack([view, view]))
    assert same.shape == (2, 10, 12, 3) and same.dtype == np.uint8
    np.testing.assert_array_equal(same[0], same[1])
    stack = np.stack([view, other])
    joint = pca_colors(stack)
    cmap = PCAColorMap.fit(stack)
    np.testing.assert_array_equal(cmap(view), joint[0])
    np.testing.assert_array_equal(cmap(other), joint[1])


def test_mask_excludes_pixels_from_fit_and_colours_them_black():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2, 6, 7, 5))
    mask = np.ones(feats.shape[:-1], bool)
    mask[1, :2] = False
    outliers = feats.copy()
    outliers[~mask] = 1e6
    outliers[0, 0, 0] = np.nan
    mask_nan = mask.copy()
    mask_nan[0, 0, 0] = False
    a = pca_colors(feats, mask_nan)
    b = pca_colors(outliers, mask)
    np.testing.assert_array_equal(a, b)
    assert (b[~mask_nan] == 0).all()


def test_few_channels_and_errors():
    feats = np.random.default_rng(0).normal(size=(30, 2))
    rgb = pca_colors(feats)
    assert rgb.shape == (30, 3) and (rgb[:, 2] == 128).all()
    assert len(np.unique(rgb[:, 0])) > 10
    with pytest.raises(Sem3RError, match="mask"):
        pca_colors(feats, np.ones(29, bool))
    with pytest.raises(Sem3RError, match="at least one"):
        pca_colors(feats, np.zeros(30, bool))
    with pytest.raises(Sem3RError, match="channels"):
        PCAColorMap.fit(feats)(np.zeros((4, 3)))


def test_subsampled_fit_is_deterministic():
    feats = np.random.default_rng(0).normal(size=(4, 32, 32, 6)).astype(np.float16)
    a = pca_colors(feats, max_samples=500, seed=1)
    b = pca_colors(feats, max_samples=500, seed=1)
    np.testing.assert_array_equal(a, b)
