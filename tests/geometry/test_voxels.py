import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.geometry.voxels import VoxelGrid, pack_voxel_keys, unpack_voxel_keys, voxel_downsample, voxel_keys


def test_pack_unpack_round_trip_with_negatives_and_extremes():
    lo, hi = -(1 << 20), (1 << 20) - 1
    rng = np.random.default_rng(0)
    extremes = [[lo, lo, lo], [hi, hi, hi], [-1, 0, 1], [lo, hi, 0]]
    ijk = np.concatenate([rng.integers(lo, hi + 1, size=(500, 3)), extremes])
    keys = pack_voxel_keys(ijk)
    assert keys.dtype == np.int64 and (keys >= 0).all()
    np.testing.assert_array_equal(unpack_voxel_keys(keys), ijk)
    assert len(np.unique(keys)) == len(np.unique(ijk, axis=0))


@pytest.mark.parametrize("bad", [[1 << 20, 0, 0], [0, -(1 << 20) - 1, 0]])
def test_pack_out_of_range_raises(bad):
    with pytest.raises(Sem3RError, match="range"):
        pack_voxel_keys(np.array([bad]))


def test_pack_wrong_shape_raises():
    with pytest.raises(Sem3RError):
        pack_voxel_keys(np.zeros((4, 2), np.int64))


def test_voxel_keys_floor_negative_coordinates():
    keys = voxel_keys(np.array([[-0.05, 0.05, 0.15]]), 0.1)
    np.testing.assert_array_equal(unpack_voxel_keys(keys), [[-1, 0, 1]])


@pytest.mark.parametrize("size", [0.0, -1.0, float("nan")])
def test_bad_voxel_size_raises(size):
    with pytest.raises(Sem3RError):
        voxel_keys(np.zeros((1, 3)), size)


def test_nan_points_raise():
    with pytest.raises(Sem3RError, match="NaN"):
        voxel_keys(np.array([[0.0, np.nan, 0.0]]), 0.1)


def test_grid_counts_centers_mean_first():
    pts = np.array([[0.01, 0.01, 0.01], [0.09, 0.02, 0.03], [0.15, 0.0, 0.0], [-0.05, 0.0, 0.0]])
    grid = VoxelGrid.from_points(pts, 0.1)
    assert grid.counts.sum() == 4 and len(grid.keys) == 3
    slot = grid.inverse[0]
    assert grid.inverse[1] == slot and grid.counts[slot] == 2
    np.testing.assert_allclose(grid.centers[slot], [0.05, 0.05, 0.05])
    np.testing.assert_allclose(grid.mean(pts)[slot], [0.05, 0.015, 0.02])
    values = np.array([10, 11, 12, 13])
    assert grid.first(values)[slot] == 10
    np.testing.assert_allclose(grid.centers[grid.inverse[3]], [-0.05, 0.05, 0.05])


def test_majority_hand_case():
    # voxel A: labels 2, 2, 5, -1 -> 2; voxel B: only -1 -> -1; voxel C: tie 7/3 -> smaller label 3.
    pts = np.array([[0.05, 0, 0]] * 4 + [[1.05, 0, 0]] * 2 + [[2.05, 0, 0]] * 2)
    labels = np.array([2, 5, 2, -1, -1, -1, 7, 3])
    grid = VoxelGrid.from_points(pts, 0.1)
    result = grid.majority(labels)
    order = np.argsort(grid.centers[:, 0])
    assert result[order].tolist() == [2, -1, 3]


def test_voxel_downsample():
    pts = np.array([[0.0, 0, 0], [0.02, 0, 0], [1.0, 1.0, 1.0]], np.float32)
    down, grid = voxel_downsample(pts, 0.5)
    assert down.dtype == np.float32 and down.shape == (2, 3)
    np.testing.assert_allclose(np.sort(down[:, 0]), [0.01, 1.0], rtol=1e-6)
    assert grid.voxel_size == 0.5


def test_group_majority_hand_computed():
    from sem3r.geometry.voxels import group_majority

    groups, winner, count, total = group_majority(np.array([5, 5, 5, -1, -1, 9]), np.array([2, 3, 3, 4, 1, -1]))
    assert groups.tolist() == [-1, 5, 9]
    assert winner.tolist() == [1, 3, -1]          # group -1 ties 4 and 1: the smaller label wins
    assert count.tolist() == [1, 2, 1] and total.tolist() == [2, 3, 1]
    assert all(len(x) == 0 for x in group_majority(np.zeros(0, int), np.zeros(0, int)))
