import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.reconstruct.correspondence import Correspondence, build_correspondence
from sem3r.scene import Scene
from sem3r.superpoints.graph import knn_edges
from sem3r.superpoints.ibsp import instance_boundary_cut
from sem3r.superpoints.segment import SuperpointConfig, scene_superpoints

K = np.array([[10.0, 0, 1.5], [0, 10, 0], [0, 0, 1]])


def plane_scene(h: int = 24, w: int = 32) -> Scene:
    """One camera at the origin looking at the plane z = 2 that fills its image."""
    intr = np.array([[20.0, 0, (w - 1) / 2], [0, 20, (h - 1) / 2], [0, 0, 1]])
    return Scene(images=np.zeros((1, h, w, 3), np.uint8), intrinsics=intr[None], cam_from_world=np.eye(3, 4)[None],
                 depth=np.full((1, h, w), 2.0, np.float32))


def two_view_corr(occluder_depth: float = 2.0) -> Correspondence:
    """Two identical cameras seeing a 1x4 row at z = 2 (pixel u <-> x = (u - 1.5) / 5).

    View 0 reconstructed points 0, 1, 2 at pixels 0, 1, 2; view 1 reconstructed only point 3, at its
    pixel 2, where point 2 lies too. With ``occluder_depth < 2`` point 2 (and view 0's z-buffer at
    pixel 2) sits in front of point 3, which view 0 then cannot see.
    """
    z2 = occluder_depth
    points = np.array([[-0.3, 0, 2], [-0.1, 0, 2], [0.05 * z2, 0, z2], [0.1, 0, 2]], np.float32)
    return Correspondence(
        points=points, colors=np.zeros((4, 3), np.uint8), view=np.array([0, 0, 0, 1], np.int32),
        pixel=np.array([[0, 0], [1, 0], [2, 0], [2, 0]], np.float32),
        point_of_pixel=np.array([[[0, 1, 2, -1]], [[-1, -1, 3, -1]]]), intrinsics=np.stack([K, K]),
        cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)),
        view_depth=np.array([[[2, 2, z2, 0]], [[0, 0, 2, 0]]], np.float32),
    )


def test_plane_split_by_a_2d_mask_is_never_merged_across():
    scene = plane_scene()
    corr = build_correspondence(scene)
    masks = np.zeros((1, 24, 32), np.int32)
    masks[:, :, 13:] = 1  # the 2D mask splits the plane at column 13
    side = corr.pixel[:, 0] >= 12.5
    config = SuperpointConfig(k=8, normal_k=8, min_size=5)
    # Identical normals: every geometric weight is 0 and geometry alone merges the whole plane.
    geometric = scene_superpoints(corr, config)
    assert geometric.max() == 0
    ibsp = scene_superpoints(corr, config, view_masks=masks)
    for sp in np.unique(ibsp):
        assert len(np.unique(side[ibsp == sp])) == 1
    assert ibsp.max() == 1  # and each side is one superpoint
    # The cut edges are exactly the KNN edges across the mask boundary.
    edges = knn_edges(corr.points, 8)
    keep = instance_boundary_cut(corr, edges, masks)
    np.testing.assert_array_equal(keep, side[edges[:, 0]] == side[edges[:, 1]])


def test_unlabelled_counts_as_an_id_and_ids_are_compared_within_a_view():
    corr = two_view_corr()
    edges = np.array([[0, 1], [1, 2]])
    masks = np.array([[[-1, 3, 3, 3]], [[0, 0, 0, 0]]])
    assert instance_boundary_cut(corr, edges, masks).tolist() == [False, True]
    # Ids of another view never meet view 0's: view 1 labels everything 3 as well, nothing changes.
    masks[1] = 3
    assert instance_boundary_cut(corr, edges, masks).tolist() == [False, True]


@pytest.mark.parametrize("edge", [[1, 3], [3, 1]])
def test_endpoint_read_by_projection_in_the_other_endpoints_view(edge):
    corr = two_view_corr()
    # Point 3 belongs to view 1 only; view 0 reads it by projection at pixel 2 (z-buffer 2 m: visible).
    # View 1 cannot see point 1 (no depth at its pixel), so only view 0 gives evidence.
    same = np.array([[[5, 5, 5, 7]], [[9, 9, 9, 9]]])
    split = np.array([[[5, 5, 7, 7]], [[9, 9, 9, 9]]])
    assert instance_boundary_cut(corr, np.array([edge]), same).tolist() == [True]
    assert instance_boundary_cut(corr, np.array([edge]), split).tolist() == [False]


def test_occluded_endpoint_does_not_cut():
    corr = two_view_corr(occluder_depth=1.0)  # view 0 sees an occluder at 1 m in front of point 3
    split = np.array([[[5, 5, 7, 7]], [[9, 9, 9, 9]]])
    assert instance_boundary_cut(corr, np.array([[1, 3]]), split).tolist() == [True]
    # The occluder itself, reconstructed by view 0, is visible there and does get cut from point 1.
    assert instance_boundary_cut(corr, np.array([[1, 2]]), split).tolist() == [False]


def test_lifted_labels_can_be_passed_once_and_empty_edges():
    corr = two_view_corr()
    masks = np.array([[[5, 5, 7, 7]], [[9, 9, 9, 9]]])
    edges = np.array([[0, 1], [1, 2], [1, 3]])
    lifted = corr.lift_view_masks(masks)
    np.testing.assert_array_equal(instance_boundary_cut(corr, edges, masks, lifted=lifted),
                                  instance_boundary_cut(corr, edges, masks))
    assert instance_boundary_cut(corr, np.zeros((0, 2), np.int64), masks).shape == (0,)


@pytest.mark.parametrize(
    "edges, masks, match",
    [
        (np.array([[0, 4]]), np.zeros((2, 1, 4), np.int32), "edge point ids"),
        (np.array([0, 1]), np.zeros((2, 1, 4), np.int32), "edges must"),
        (np.array([[0, 1]]), np.zeros((1, 1, 4), np.int32), "view_masks must have shape"),
        (np.array([[0, 1]]), np.zeros((2, 1, 4), np.float32), "integer"),
    ],
)
def test_bad_input_raises(edges, masks, match):
    with pytest.raises(Sem3RError, match=match):
        instance_boundary_cut(two_view_corr(), edges, masks)


def test_all_views_mode_reads_views_that_reconstructed_neither_endpoint():
    # Three identical cameras; view 2 reconstructed no point but sees points 0 and 1 by projection.
    base = two_view_corr()
    corr = Correspondence(
        points=base.points, colors=base.colors, view=base.view, pixel=base.pixel,
        point_of_pixel=np.concatenate([base.point_of_pixel, np.full((1, 1, 4), -1)]),
        intrinsics=np.stack([K, K, K]), cam_from_world=np.tile(np.eye(3, 4), (3, 1, 1)),
        view_depth=np.concatenate([base.view_depth, np.full((1, 1, 4), 2.0, np.float32)]),
    )
    edge = np.array([[0, 1]])
    masks = np.array([[[4, 4, 4, 4]], [[4, 4, 4, 4]], [[1, 2, 2, 2]]])   # only view 2 separates 0 and 1
    assert instance_boundary_cut(corr, edge, masks, views="endpoints").tolist() == [True]
    assert instance_boundary_cut(corr, edge, masks, views="all").tolist() == [False]
    masks[2] = 4
    assert instance_boundary_cut(corr, edge, masks, views="all").tolist() == [True]
    with pytest.raises(Sem3RError, match="unknown IBSp views"):
        instance_boundary_cut(corr, edge, masks, views="some")
