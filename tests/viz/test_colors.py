import colorsys

import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.viz.colors import (
    UNLABELLED_COLOR,
    cloud_colors,
    hsv_to_rgb,
    instance_colors,
    label_palette,
    semantic_colors,
)


def test_instance_colors_deterministic_distinct_and_grey_for_unlabelled():
    ids = np.arange(-1, 500)
    a, b = instance_colors(ids), instance_colors(ids.copy())
    assert a.dtype == np.uint8 and a.shape == (501, 3)
    np.testing.assert_array_equal(a, b)
    assert a[0].tolist() == UNLABELLED_COLOR.tolist() == [128, 128, 128]
    assert len(np.unique(a[1:], axis=0)) == 500
    assert not (a[1:] == UNLABELLED_COLOR).all(axis=1).any()


def test_colour_of_an_id_does_not_depend_on_other_ids():
    np.testing.assert_array_equal(instance_colors(np.array([42])), instance_colors(np.arange(100))[42:43])
    np.testing.assert_array_equal(semantic_colors(np.array([5, 5])), label_palette(6)[[5, 5]])


def test_shapes_are_preserved_and_negative_ids_are_grey():
    ids = np.array([[0, -1, 3], [-7, 2, 2]], np.int64)
    for fn in (instance_colors, semantic_colors):
        c = fn(ids)
        assert c.shape == (2, 3, 3)
        assert (c[ids < 0] == 128).all()


def test_first_colours_are_well_separated():
    for fn in (instance_colors, semantic_colors):
        c = fn(np.arange(20)).astype(int)
        dist = np.abs(c[:, None] - c[None]).sum(-1) + np.eye(20, dtype=int) * 1000
        assert dist.min() >= 25


def test_semantic_and_instance_palettes_differ():
    ids = np.arange(10)
    assert (instance_colors(ids) != semantic_colors(ids)).any(axis=1).all()


def test_hsv_to_rgb_matches_colorsys():
    hsv = np.random.default_rng(0).random((50, 3))
    expected = np.array([colorsys.hsv_to_rgb(*row) for row in hsv])
    np.testing.assert_allclose(hsv_to_rgb(hsv), expected, atol=1e-12)


def test_float_ids_are_refused():
    with pytest.raises(TypeError):
        instance_colors(np.array([1.5]))


def test_cloud_colors_modes(scene):
    cloud = scene.fused_point_cloud()
    np.testing.assert_array_equal(cloud_colors(cloud, "rgb"), cloud.rgb)
    np.testing.assert_array_equal(cloud_colors(cloud, "instance"), instance_colors(cloud.instance_ids))
    np.testing.assert_array_equal(cloud_colors(cloud, "semantic"), semantic_colors(cloud.semantic_ids))
    with pytest.raises(Sem3RError, match="color_by"):
        cloud_colors(cloud, "depth")
