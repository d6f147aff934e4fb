import dataclasses

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sem3r.data.synthetic import WALL_FLAT_CATEGORIES, SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.eval.superpoints import instance_recovery, superpoint_metrics
from sem3r.geometry.camera import camera_centers
from sem3r.geometry.transforms import compose, random_rotation
from sem3r.reconstruct.correspondence import (
    CorrespondenceConfig,
    build_correspondence,
    correspond_points,
)
from sem3r.scene import Scene
from sem3r.superpoints.graph import knn_edges
from sem3r.superpoints.ibsp import instance_boundary_cut
from sem3r.superpoints.segment import (
    SuperpointConfig,
    compute_superpoints,
    mesh_superpoints,
    scene_superpoints,
)


def _clique(nodes):
    i, j = np.triu_indices(len(nodes), 1)
    return np.stack([np.asarray(nodes)[i], np.asarray(nodes)[j]], axis=1)


def _tilted(deg):
    """Unit normal tilted ``deg`` degrees from +z toward +y (perpendicular to the x axis)."""
    r = np.deg2rad(deg)
    return np.array([0.0, np.sin(r), np.cos(r)])


@pytest.fixture(scope="module")
def room():
    """A small room (seed 1: three wall-flat objects in view) in 4 views of 60x80, voxelised at 4 cm."""
    scene = generate_scene(SynthConfig(seed=1, num_views=4, height=60, width=80, camera_path="random_large",
                                       num_points=0)).scene
    corr = build_correspondence(scene, CorrespondenceConfig(voxel_size=0.04))
    return scene, corr, corr.point_labels(scene.instance_masks)


def test_two_flat_cliques_joined_by_a_fold_give_two_superpoints():
    # Points along x; normals tilt about x, so no edge is convex and each weight is 1 - n_a . n_b.
    pts = np.c_[np.arange(8.0), np.zeros(8), np.zeros(8)]
    normals = np.array([_tilted(0)] * 4 + [_tilted(90)] * 4)
    edges = np.concatenate([_clique([0, 1, 2, 3]), _clique([4, 5, 6, 7]), [[3, 4]]])
    config = SuperpointConfig(kthresh=0.01, min_size=1)
    assert compute_superpoints(pts, config, normals=normals, edges=edges).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # A scale that pays for the fold (1 <= 0 + k / 4) merges them.
    assert compute_superpoints(pts, SuperpointConfig(kthresh=4.0, min_size=1), normals=normals, edges=edges).max() == 0


def test_min_size_merges_a_tiny_superpoint_along_its_lightest_uncut_edge():
    # A = 0..2 (0 deg), T = 3..4 (40 deg), B = 5..7 (90 deg): w(A-T) = 1 - cos 40 < w(T-B) = 1 - cos 50.
    pts = np.c_[np.arange(8.0), np.zeros(8), np.zeros(8)]
    normals = np.array([_tilted(0)] * 3 + [_tilted(40)] * 2 + [_tilted(90)] * 3)
    edges = np.concatenate([_clique([0, 1, 2]), [[3, 4]], _clique([5, 6, 7]), [[2, 3], [4, 5]]])
    config = SuperpointConfig(kthresh=0.01, min_size=1)
    assert compute_superpoints(pts, config, normals=normals, edges=edges).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    merged = dataclasses.replace(config, min_size=3)
    assert compute_superpoints(pts, merged, normals=normals, edges=edges).tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    # With the A-T edge cut (as IBSp would), the min-size pass can only use T-B.
    keep = np.ones(len(edges), bool)
    keep[-2] = False
    assert compute_superpoints(pts, merged, normals=normals, edges=edges, keep=keep).tolist() == [0, 0, 0, 1, 1, 1, 1, 1]


def test_convex_edges_are_cheaper_than_concave_ones():
    # A roof ridge (convex) and a valley (concave) with 30 degree creases: w^2 ~ 0.018 vs w ~ 0.134.
    s, c = np.sin(np.deg2rad(30)), np.cos(np.deg2rad(30))
    pts = np.array([[0.0, 0, 0], [1, 0, 0]])
    edges = np.array([[0, 1]])
    ridge = np.array([[0, 0, 1], [s, 0, c]])
    valley = np.array([[0, 0, 1], [-s, 0, c]])
    config = SuperpointConfig(kthresh=0.05, min_size=1)  # merges when w <= 0.05 / 1
    assert compute_superpoints(pts, config, normals=ridge, edges=edges).tolist() == [0, 0]
    assert compute_superpoints(pts, config, normals=valley, edges=edges).tolist() == [0, 1]
    # 'angle' weights have no convexity: the ridge splits too.
    assert compute_superpoints(pts, dataclasses.replace(config, weights="angle"), normals=ridge, edges=edges).tolist() == [0, 1]


def test_room_ibsp_lowers_undersegmentation_and_recovers_wall_flat_objects(room):
    scene, corr, gt = room
    config = SuperpointConfig()
    geometric = scene_superpoints(corr, config)
    ibsp = scene_superpoints(corr, config, view_masks=scene.instance_masks)
    for ids in (geometric, ibsp):
        assert ids.shape == (corr.num_points,) and ids.dtype == np.int64
        np.testing.assert_array_equal(np.unique(ids), np.arange(ids.max() + 1))
    m_geo = superpoint_metrics(geometric, gt, points=corr.points)
    m_ibsp = superpoint_metrics(ibsp, gt, points=corr.points)
    assert m_ibsp["undersegmentation_error"] < 0.5 * m_geo["undersegmentation_error"]
    assert m_ibsp["undersegmentation_error"] < 0.02
    assert m_ibsp["boundary_recall"] > m_geo["boundary_recall"]
    flat = scene.instances.ids[np.isin(scene.instances.labels, WALL_FLAT_CATEGORIES)]
    assert instance_recovery(ibsp, gt, flat) > instance_recovery(geometric, gt, flat)


def test_room_ibsp_superpoints_are_connected_through_uncut_edges_only(room):
    scene, corr, _ = room
    config = SuperpointConfig()
    ids = scene_superpoints(corr, config, view_masks=scene.instance_masks)
    edges = knn_edges(corr.points, config.k)
    keep = instance_boundary_cut(corr, edges, scene.instance_masks)
    inside = keep & (ids[edges[:, 0]] == ids[edges[:, 1]])
    graph = coo_matrix((np.ones(int(inside.sum())), tuple(edges[inside].T)), shape=(corr.num_points,) * 2)
    count, _ = connected_components(graph, directed=False)
    assert count == ids.max() + 1  # every superpoint is one piece of the cut graph
    assert (~keep).sum() > 0


def test_rigid_transform_gives_identical_superpoints(room):
    _, corr, _ = room
    rng = np.random.default_rng(4)
    R, t = random_rotation(rng), rng.normal(size=3)
    pts = corr.points.astype(np.float64)
    views = camera_centers(corr.cam_from_world)[corr.view]
    base = compute_superpoints(pts, viewpoints=views)
    np.testing.assert_array_equal(compute_superpoints(pts @ R.T + t, viewpoints=views @ R.T + t), base)


def test_scene_superpoints_invariant_to_moving_points_and_cameras(room):
    scene, corr, _ = room
    # A signed axis permutation moves float32 points exactly; cameras follow: cam' = cam o R^-1.
    R = np.array([[0.0, -1, 0], [0, 0, 1], [-1, 0, 0]])
    moved = dataclasses.replace(corr, points=corr.points @ R.T.astype(np.float32),
                                cam_from_world=compose(corr.cam_from_world, np.c_[R.T, np.zeros(3)]))
    for masks in (None, scene.instance_masks):
        np.testing.assert_array_equal(scene_superpoints(moved, view_masks=masks), scene_superpoints(corr, view_masks=masks))


def _grid_faces(index):
    """Two triangles per cell of a 7x7 vertex grid, ``index(i, j)`` naming vertex ``(i, j)``; normal along +i x +j."""
    cells = [(i, j) for i in range(6) for j in range(6)]
    return np.array([[index(i, j), index(i + 1, j), index(i, j + 1)] for i, j in cells]
                    + [[index(i + 1, j), index(i + 1, j + 1), index(i, j + 1)] for i, j in cells])


def test_mesh_superpoints_split_a_concave_fold():
    # Floor z = 0 (vertex (i, j) at x = i/10, y = j/10) and wall x = 0 (z = i/10) share the row i = 0;
    # both face into the room (+z and +x), so the fold is concave.
    g = np.arange(7) * 0.1
    a, b = np.meshgrid(g, g, indexing="ij")
    floor = np.c_[a.ravel(), b.ravel(), np.zeros(49)]
    wall = np.c_[np.zeros(42), b[1:].ravel(), a[1:].ravel()]
    floor_faces = _grid_faces(lambda i, j: i * 7 + j)
    wall_faces = _grid_faces(lambda i, j: j if i == 0 else 49 + (i - 1) * 7 + j)[:, ::-1]
    ids = mesh_superpoints(np.r_[floor, wall], np.r_[floor_faces, wall_faces], SuperpointConfig(kthresh=0.01, min_size=1))
    # Fold vertices (normals at 45 degrees, w = 1 - cos 45 to either side) stay a row of their own.
    assert ids.tolist() == [0] * 7 + [1] * 42 + [2] * 42
    # The Segmentator's min-size pass then joins the 7 fold vertices to a side.
    assert mesh_superpoints(np.r_[floor, wall], np.r_[floor_faces, wall_faces], SuperpointConfig(min_size=10)).max() == 1


def test_mesh_superpoints_respect_2d_masks():
    # A flat 7x7 mesh at z = 2 in front of one camera; pixel u = 10 x + 15.5 = 13 .. 19 for the columns.
    scene = Scene(images=np.zeros((1, 24, 32, 3), np.uint8),
                  intrinsics=np.array([[[20.0, 0, 15.5], [0, 20, 11.5], [0, 0, 1]]]),
                  cam_from_world=np.eye(3, 4)[None], depth=np.full((1, 24, 32), 2.0, np.float32))
    g = np.arange(7) * 0.1 - 0.25
    a, b = np.meshgrid(g, g, indexing="ij")
    plane = np.c_[a.ravel(), b.ravel(), np.full(49, 2.0)]
    faces = _grid_faces(lambda i, j: i * 7 + j)
    corr = correspond_points(plane, scene)
    masks = np.where(np.arange(32) < 16, 4, 8)[None, None].repeat(24, axis=1).astype(np.int32)
    right = np.arange(49) >= 21  # columns i >= 3 land on u >= 16
    np.testing.assert_array_equal(corr.pixel[:, 0] >= 16, right)
    for config in (SuperpointConfig(min_size=1), SuperpointConfig(min_size=1, compat="scannet")):
        assert mesh_superpoints(plane, faces, config).max() == 0
        np.testing.assert_array_equal(mesh_superpoints(plane, faces, config, corr=corr, view_masks=masks), right)
    # config=None means the defaults, also with 2D masks (this used to raise AttributeError)
    default = mesh_superpoints(plane, faces, None, corr=corr, view_masks=masks)
    np.testing.assert_array_equal(default, mesh_superpoints(plane, faces, SuperpointConfig(), corr=corr, view_masks=masks))


def test_mesh_superpoints_build_the_edges_once(monkeypatch):
    from sem3r.superpoints import graph, segment

    calls = []
    real = graph.mesh_edges

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(graph, "mesh_edges", counting)
    monkeypatch.setattr(segment, "mesh_edges", counting)
    g = np.arange(7) * 0.1
    a, b = np.meshgrid(g, g, indexing="ij")
    verts = np.c_[a.ravel(), b.ravel(), np.zeros(49)]
    mesh_superpoints(verts, _grid_faces(lambda i, j: i * 7 + j), SuperpointConfig(min_size=1))
    assert len(calls) == 1


def test_bad_input_raises(room):
    scene, corr, _ = room
    with pytest.raises(Sem3RError, match="no view correspondence"):
        dataclasses.replace(corr, view=np.where(np.arange(corr.num_points) == 3, -1, corr.view).astype(np.int32))
    with pytest.raises(Sem3RError, match="no view correspondence"):
        correspond_points(np.array([[0.0, 0, 0], [100.0, 100, 100]]), scene)
    with pytest.raises(Sem3RError, match="view_masks must have shape"):
        scene_superpoints(corr, view_masks=scene.instance_masks[:, :-1])
    with pytest.raises(Sem3RError, match="NaN"):
        compute_superpoints(np.array([[0.0, 0, 0], [np.nan, 0, 0], [1, 1, 1]]))
    pts = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(Sem3RError, match="keep mask needs the edges"):
        compute_superpoints(pts, keep=np.ones(3, bool))
    with pytest.raises(Sem3RError, match="keep must be"):
        compute_superpoints(pts, edges=np.array([[0, 1]]), keep=np.ones(2, bool))
    with pytest.raises(Sem3RError, match="edge point ids"):
        compute_superpoints(pts, edges=np.array([[0, 10]]))
    with pytest.raises(Sem3RError, match="normals must"):
        compute_superpoints(pts, normals=np.zeros((9, 3)))
    with pytest.raises(Sem3RError, match="viewpoints"):
        compute_superpoints(pts, viewpoints=np.zeros(2))
    with pytest.raises(Sem3RError, match="at least 3 points"):
        compute_superpoints(pts[:2])
    with pytest.raises(Sem3RError, match="pass corr"):
        mesh_superpoints(pts[:3], np.array([[0, 1, 2]]), view_masks=np.zeros((1, 2, 2), np.int32))
    with pytest.raises(Sem3RError, match="vertices"):
        mesh_superpoints(pts[:3], np.array([[0, 1, 2]]), corr=corr, view_masks=scene.instance_masks)


@pytest.mark.parametrize(
    "field, value",
    [("k", 0), ("normal_k", 2), ("kthresh", -1.0), ("kthresh", float("nan")), ("min_size", 0), ("weights", "rgb"),
     ("workers", 0)],
)
def test_config_validation(field, value):
    with pytest.raises(Sem3RError, match=field):
        compute_superpoints(np.random.default_rng(0).normal(size=(10, 3)), SuperpointConfig(**{field: value}))


def test_tiny_inputs():
    assert compute_superpoints(np.zeros((1, 3)), normals=np.array([[0.0, 0, 1]])).tolist() == [0]
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert compute_superpoints(pts, SuperpointConfig(min_size=1), viewpoints=np.array([0, 0, 1.0])).tolist() == [0, 0, 0]


def test_scene_superpoints_return_the_normals_they_weighted_with():
    from sem3r.geometry.normals import estimate_normals

    scene = generate_scene(SynthConfig(seed=0, num_views=2, height=48, width=64, num_points=0)).scene
    corr = build_correspondence(scene, CorrespondenceConfig(voxel_size=0.05))
    config = SuperpointConfig()
    ids, normals = scene_superpoints(corr, config, return_normals=True)
    assert np.array_equal(ids, scene_superpoints(corr, config))
    expected = estimate_normals(corr.points.astype(np.float64), k=config.normal_k,
                                viewpoints=camera_centers(corr.cam_from_world)[corr.view])
    # the same PCA normals, oriented toward the camera that reconstructed each point
    assert np.mean(np.abs(np.einsum("ij,ij->i", normals, expected)) > 0.999) > 0.99
    assert (np.einsum("ij,ij->i", normals, expected) > 0).mean() > 0.99
