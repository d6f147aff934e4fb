"""The 2D-3D correspondence record: both directions, lifting, feature sampling, projection lookups."""

import numpy as np
import pytest
import torch

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reconstruct.correspondence import (
    NOT_VISIBLE,
    Correspondence,
    CorrespondenceConfig,
    build_correspondence,
    correspond_points,
)
from sem3r.scene import Scene


@pytest.fixture(scope="module")
def syn():
    return generate_scene(SynthConfig(seed=3, num_views=3, height=48, width=64, num_points=4000, camera_path="random_large"))


def _plane_scene(depth: float = 2.0, masks=None) -> Scene:
    """One camera looking at a fronto-parallel plane at ``depth``; 4x6 pixels, f = 10."""
    K = np.array([[[10.0, 0, 2.5], [0, 10.0, 1.5], [0, 0, 1]]])
    return Scene(images=np.arange(72, dtype=np.uint8).reshape(1, 4, 6, 3), intrinsics=K,
                 cam_from_world=np.eye(3, 4)[None], depth=np.full((1, 4, 6), depth, np.float32),
                 instance_masks=masks)


def test_both_directions_agree(syn):
    corr = build_correspondence(syn.scene)
    scene = syn.scene
    assert corr.num_points == int((scene.depth > 0).sum())
    # point -> pixel -> point is the identity
    v, x, y = corr.view, corr.pixel[:, 0].astype(int), corr.pixel[:, 1].astype(int)
    assert np.array_equal(corr.point_of_pixel[v, y, x], np.arange(corr.num_points))
    # the recorded pixel reconstructs the point, and its colour is the pixel's
    pts, _ = scene.points()
    np.testing.assert_allclose(corr.points, pts[v, y, x], atol=1e-5)
    assert np.array_equal(corr.colors, scene.images[v, y, x])
    assert np.array_equal(corr.point_of_pixel >= 0, scene.depth > 0)


def test_voxel_merge_keeps_every_pixel_mapped(syn):
    corr = build_correspondence(syn.scene, CorrespondenceConfig(voxel_size=0.05))
    pts, valid = syn.scene.points()
    assert corr.num_points < int(valid.sum())
    assert np.array_equal(corr.point_of_pixel >= 0, valid)
    # every pixel's point lies within its voxel (half a diagonal of the voxel of the mean)
    dist = np.linalg.norm(pts[valid] - corr.points[corr.point_of_pixel[valid]], axis=1)
    assert dist.max() <= 0.05 * np.sqrt(3) + 1e-6
    # the representative pixel of each point maps back to it
    v, x, y = corr.view, corr.pixel[:, 0].astype(int), corr.pixel[:, 1].astype(int)
    assert np.array_equal(corr.point_of_pixel[v, y, x], np.arange(corr.num_points))
    # observed counts sum to the number of valid pixels
    assert corr.observed().sum() == int(valid.sum())


def test_lift_view_masks_hand_computed():
    masks = np.array([[[0, 0, 1, 1, 1, -1]] * 4], np.int32)
    scene = _plane_scene()
    corr = build_correspondence(scene, CorrespondenceConfig(stride=1))
    lifted = corr.lift_view_masks(masks)
    assert lifted.shape == (1, 24)
    assert np.array_equal(corr.to_pixels(lifted[0]), masks)
    # one voxel for the whole plane (moved away from the voxel grid's faces at 0): a majority vote
    pose = np.eye(3, 4)[None].copy()
    pose[0, :2, 3] = -5.0
    scene = Scene(images=scene.images, intrinsics=scene.intrinsics, cam_from_world=pose, depth=scene.depth)
    merged = build_correspondence(scene, CorrespondenceConfig(voxel_size=10.0))
    assert merged.num_points == 1
    assert merged.lift_view_masks(masks).tolist() == [[1]]          # 12 pixels of id 1, 8 of id 0, 4 of -1
    assert merged.point_labels(masks).tolist() == [1]


def test_point_labels_ignore_unlabelled(syn):
    corr = build_correspondence(syn.scene, CorrespondenceConfig(voxel_size=0.05))
    labels = corr.point_labels(syn.scene.instance_masks)
    back = corr.to_pixels(labels)
    labelled = syn.scene.instance_masks >= 0
    # carrying the majority back reproduces nearly every labelled pixel (voxels straddle boundaries)
    assert (back[labelled] == syn.scene.instance_masks[labelled]).mean() > 0.9


def test_sample_is_bilinear_at_the_recorded_pixel():
    scene = _plane_scene()
    corr = build_correspondence(scene)
    # a feature map that is linear in x and y at half resolution: bilinear sampling is exact inside
    h, w = 2, 3
    fy, fx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    maps = torch.tensor(np.stack([fx, fy])[None])
    out = corr.sample(maps).numpy()
    expect_x = np.clip((corr.pixel[:, 0] + 0.5) * w / 6 - 0.5, 0, w - 1)
    expect_y = np.clip((corr.pixel[:, 1] + 0.5) * h / 4 - 0.5, 0, h - 1)
    np.testing.assert_allclose(out[:, 0], expect_x, atol=1e-5)
    np.testing.assert_allclose(out[:, 1], expect_y, atol=1e-5)
    # full-resolution maps return the pixel's own value
    full = torch.tensor(scene.images.transpose(0, 3, 1, 2).astype(np.float32))
    np.testing.assert_allclose(corr.sample(full).numpy(), corr.colors, atol=1e-4)


def test_labels_in_views_projection_and_occlusion():
    # two cameras at the origin: view 0 sees a plane at 2 m, view 1 sees a plane at 1 m (an occluder)
    near = _plane_scene(1.0)
    scene = Scene(images=np.concatenate([_plane_scene().images, near.images]),
                  intrinsics=np.concatenate([_plane_scene().intrinsics] * 2),
                  cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)),
                  depth=np.stack([np.full((4, 6), 2.0, np.float32), np.full((4, 6), 1.0, np.float32)]))
    corr = build_correspondence(scene)
    masks = np.stack([np.zeros((4, 6), np.int32), np.full((4, 6), 7, np.int32)])
    far_points = np.flatnonzero(corr.view == 0)[:5]
    # in its own view a point reads its own label; view 1's plane hides it (z-buffer)
    assert corr.labels_in_views(masks, far_points, np.zeros(5, int)).tolist() == [0] * 5
    assert corr.labels_in_views(masks, far_points, np.ones(5, int)).tolist() == [NOT_VISIBLE] * 5
    # the near points float 1 m in front of what view 0 reconstructed there: the depth test rejects them
    near_points = np.flatnonzero(corr.view == 1)[:5]
    assert corr.labels_in_views(masks, near_points, np.zeros(5, int)).tolist() == [NOT_VISIBLE] * 5
    # a camera shifted sideways that sees the far plane reads its label by projection
    shifted = scene.cam_from_world.copy()
    shifted[1, 0, 3] = -0.4  # 2 px to the left at 2 m: two columns leave the image
    scene2 = Scene(images=scene.images, intrinsics=scene.intrinsics, cam_from_world=shifted,
                   depth=np.full((2, 4, 6), 2.0, np.float32))
    corr2 = build_correspondence(scene2)
    pts = np.flatnonzero(corr2.view == 0)
    got = corr2.labels_in_views(masks, pts, np.ones(len(pts), int))
    assert (got == NOT_VISIBLE).sum() == 8 and (got == 7).sum() == 16


def test_rigid_motion_changes_nothing_but_points(syn):
    from sem3r.geometry.transforms import random_rotation

    scene = syn.scene
    R = random_rotation(0)
    t = np.array([0.3, -1.0, 2.0])
    moved_pose = scene.cam_from_world.copy()
    moved_pose[:, :, :3] = scene.cam_from_world[:, :, :3] @ R.T
    moved_pose[:, :, 3] = scene.cam_from_world[:, :, 3] - np.einsum("nij,j->ni", moved_pose[:, :, :3], t)
    moved = Scene(images=scene.images, intrinsics=scene.intrinsics, cam_from_world=moved_pose, depth=scene.depth)
    a = build_correspondence(scene)
    b = build_correspondence(moved)
    np.testing.assert_allclose(b.points, a.points @ R.T + t, atol=1e-4)
    assert np.array_equal(a.point_of_pixel, b.point_of_pixel)
    sel = np.arange(0, a.num_points, 7)
    views = (a.view[sel] + 1) % scene.num_views
    la = a.labels_in_views(scene.instance_masks, sel, views)
    lb = b.labels_in_views(scene.instance_masks, sel, views)
    assert (la == lb).mean() > 0.999


def test_correspond_points_for_mesh_vertices(syn):
    scene = syn.scene
    corr_pix = build_correspondence(scene)
    pick = np.arange(0, corr_pix.num_points, 97)
    corr = correspond_points(corr_pix.points[pick], scene)
    assert (corr.point_of_pixel == -1).all()
    # every point is seen by a view; reading it in its representative view gives its ground-truth id
    labels = corr.labels_in_views(scene.instance_masks, np.arange(len(pick)), corr.view)
    truth = corr_pix.point_labels(scene.instance_masks)[pick]
    assert (labels == truth).mean() > 0.97


def test_bad_input(syn):
    corr = build_correspondence(syn.scene, CorrespondenceConfig(stride=4))
    with pytest.raises(Sem3RError, match="no view correspondence"):
        Correspondence(points=corr.points, colors=corr.colors, view=np.full(corr.num_points, -1, np.int32),
                       pixel=corr.pixel, point_of_pixel=corr.point_of_pixel, intrinsics=corr.intrinsics,
                       cam_from_world=corr.cam_from_world, view_depth=corr.view_depth)
    with pytest.raises(Sem3RError, match="no view correspondence"):
        correspond_points(np.array([[0.0, 0.0, -50.0]]), syn.scene)
    with pytest.raises(Sem3RError, match="view_masks must have shape"):
        corr.lift_view_masks(np.zeros((1, 2, 2), np.int32))
    with pytest.raises(Sem3RError, match="NaN"):
        corr.sample(np.full((3, 1, 4, 4), np.nan, np.float32))
    empty = Scene(images=syn.scene.images, intrinsics=syn.scene.intrinsics, cam_from_world=syn.scene.cam_from_world,
                  depth=np.zeros_like(syn.scene.depth))
    with pytest.raises(Sem3RError, match="no valid reconstructed pixel"):
        build_correspondence(empty)
    with pytest.raises(Sem3RError, match="stride"):
        build_correspondence(syn.scene, CorrespondenceConfig(stride=0))


def test_labels_in_all_views_equals_the_pairwise_lookup(syn):
    corr = build_correspondence(syn.scene, CorrespondenceConfig(voxel_size=0.05))
    masks = syn.scene.instance_masks
    table = corr.labels_in_all_views(masks)
    assert table.shape == (syn.scene.num_views, corr.num_points)
    for v in range(syn.scene.num_views):
        pairwise = corr.labels_in_views(masks, np.arange(corr.num_points), np.full(corr.num_points, v))
        assert np.array_equal(table[v], pairwise)
    assert (table != NOT_VISIBLE).sum(0).min() >= 1          # every point is seen by the view that made it
