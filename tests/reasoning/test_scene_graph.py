import itertools

import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reasoning.scene_graph import (
    SceneGraphConfig,
    build_scene_graph,
    floor_area,
    ground_basis,
    oriented_box,
)
from sem3r.scene import InstanceTable, Scene

Z_UP = (0.0, 0.0, 1.0)


@pytest.fixture(scope="module")
def synth():
    return generate_scene(SynthConfig(seed=0, num_views=6, height=96, width=128, num_points=0)).scene


def box_surface(size, step=0.01):
    """Points on the six faces of an axis-aligned box ``[0, size]`` on a ``step`` grid."""
    axes = [np.linspace(0.0, s, round(s / step) + 1) for s in size]
    faces = []
    for k in range(3):
        i, j = [a for a in range(3) if a != k]
        u, v = np.meshgrid(axes[i], axes[j], indexing="ij")
        for value in (0.0, size[k]):
            face = np.zeros((u.size, 3))
            face[:, i], face[:, j], face[:, k] = u.ravel(), v.ravel(), value
            faces.append(face)
    return np.unique(np.concatenate(faces).round(9), axis=0)


def yaw_matrix(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def points_scene(points, ids, labels=None, width=128, cam_from_world=None):
    """A one-view Scene whose ``world_points`` hold ``points (P, 3)`` (NaN padded) with instance ``ids``."""
    p = len(points)
    h = -(-p // width)
    world = np.full((h * width, 3), np.nan, np.float32)
    world[:p] = points
    inst = np.full(h * width, -1, np.int32)
    inst[:p] = ids
    uniq = np.unique(ids[ids >= 0])
    table = InstanceTable.from_points(points, ids, scores=dict(zip(uniq.tolist(), np.linspace(0.5, 1.0, len(uniq)))))
    table.labels = labels or [f"obj{i}" for i in uniq]
    pose = np.eye(3, 4)[None] if cam_from_world is None else cam_from_world[None]
    return Scene(images=np.zeros((1, h, width, 3), np.uint8), intrinsics=np.eye(3)[None], cam_from_world=pose,
                 world_points=world.reshape(1, h, width, 3), instance_masks=inst.reshape(1, h, width), instances=table)


EXACT = SceneGraphConfig(voxel_size=0.005, up=Z_UP, box_percentile=0.0, min_points=1)


def test_rotated_box_gets_true_size_and_yaw_not_aabb():
    dims = np.array([1.2, 0.5, 0.8])
    rot = yaw_matrix(np.deg2rad(30.0))
    offset = np.array([2.0, -1.0, 0.3])
    pts = (box_surface(dims) - dims / 2) @ rot.T + offset
    graph = build_scene_graph(points_scene(pts, np.zeros(len(pts), np.int32)), EXACT)
    (obj,) = graph.objects
    np.testing.assert_allclose(obj.box_size, dims, atol=1e-4)
    np.testing.assert_allclose(obj.box_center, offset, atol=1e-4)
    aabb = np.ptp(pts, axis=0)
    assert aabb[0] > dims[0] + 0.05  # the axis-aligned box would be wrong
    angle = np.rad2deg(np.arctan2(obj.box_rotation[1, 0], obj.box_rotation[0, 0])) % 180.0
    assert abs(angle - 30.0) < 0.1
    np.testing.assert_allclose(obj.box_rotation[:, 2], Z_UP, atol=1e-12)
    np.testing.assert_allclose(obj.box_rotation.T @ obj.box_rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(obj.box_rotation) == pytest.approx(1.0)
    corners = (np.array([[x, y, z] for z in (-1, 1) for y in (-1, 1) for x in (-1, 1)]) * dims / 2) @ rot.T + offset
    got = obj.corners()
    assert got.shape == (8, 3)
    # same set of corners (the sign of the box x axis is a free choice)
    d = np.linalg.norm(got[:, None] - corners[None], axis=-1)
    assert d.min(axis=1).max() < 1e-4 and d.min(axis=0).max() < 1e-4
    np.testing.assert_allclose(obj.centroid, offset, atol=1e-3)  # a closed box surface is centred


def test_oriented_box_trims_stray_points_with_percentile():
    rng = np.random.default_rng(0)
    pts = rng.uniform([0, 0, 0], [2.0, 1.0, 1.0], size=(4000, 3))
    pts[0] = [9.0, 0.5, 0.5]  # one flying pixel
    basis = ground_basis(np.array(Z_UP))
    _, exact, _ = oriented_box(pts, basis, 0.0)
    _, robust, _ = oriented_box(pts, basis, 0.5)
    assert exact[0] > 8.0
    np.testing.assert_allclose(robust, [2.0, 1.0, 1.0], atol=0.03)


def test_distance_is_closest_points():
    a = box_surface([1.0, 1.0, 1.0], step=0.05)
    b = a + [1.5, 0.25, 0.0]
    c = a + [3.0, 3.0, 0.0]  # corner to corner: sqrt(2^2 + 2^2)
    pts = np.concatenate([a, b, c])
    ids = np.repeat(np.arange(3, dtype=np.int32), len(a))
    graph = build_scene_graph(points_scene(pts, ids), EXACT)
    oa, ob, oc = (graph.object(i) for i in range(3))
    assert graph.distance(oa, ob) == pytest.approx(0.5, abs=1e-6)
    assert graph.distance(ob, oa) == pytest.approx(0.5, abs=1e-6)
    assert graph.distance(oa, oc) == pytest.approx(np.sqrt(8.0), abs=1e-6)
    assert graph.distance(oa, oa) == 0.0


def test_labels_scores_and_lookup():
    a = box_surface([0.5, 0.5, 0.5], step=0.05)
    pts = np.concatenate([a, a + 2.0, a + 4.0])
    ids = np.repeat(np.array([3, 7, 9], np.int32), len(a))
    graph = build_scene_graph(points_scene(pts, ids, labels=["chair", "table", "chair"]), EXACT)
    assert [o.id for o in graph.objects] == [3, 7, 9]
    assert graph.labels() == ["chair", "table"]
    assert [o.id for o in graph.by_label("chair")] == [3, 9]
    assert graph.by_label("sofa") == []
    assert [o.score for o in graph.objects] == pytest.approx([0.5, 0.75, 1.0])
    with pytest.raises(Sem3RError, match="instance id 4"):
        graph.object(4)


def test_min_points_drops_small_objects():
    a = box_surface([0.5, 0.5, 0.5], step=0.05)
    pts = np.concatenate([a, [[5.0, 5.0, 5.0], [5.01, 5.0, 5.0]]])
    ids = np.r_[np.zeros(len(a), np.int32), [1, 1]].astype(np.int32)
    graph = build_scene_graph(points_scene(pts, ids), SceneGraphConfig(up=Z_UP, min_points=3))
    assert [o.id for o in graph.objects] == [0]


def test_camera_center_forward_and_object_depth():
    # camera at (0, -3, 1) looking along +y (world), x right = +x, y down = -z
    R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    center = np.array([0.0, -3.0, 1.0])
    pose = np.concatenate([R, (-R @ center)[:, None]], axis=1)
    a = box_surface([1.0, 1.0, 1.0], step=0.05)
    pts = a + [-0.5, 1.5, 0.0]  # centroid (0, 2, 0.5): 5 m in front of the camera
    graph = build_scene_graph(points_scene(pts, np.zeros(len(a), np.int32), cam_from_world=pose), EXACT)
    obj = graph.objects[0]
    np.testing.assert_allclose(graph.camera_center(0), center, atol=1e-12)
    np.testing.assert_allclose(graph.camera_forward(0), [0, 1, 0], atol=1e-12)
    assert graph.object_depth(obj, 0) == pytest.approx(5.0, abs=1e-3)
    # the median over the points of the closed cube surface is also at the cube's centre plane
    assert graph.object_depth(obj, 0, reduce="median") == pytest.approx(5.0, abs=0.03)
    with pytest.raises(Sem3RError, match="view 1"):
        graph.camera_center(1)
    with pytest.raises(Sem3RError, match="reduction"):
        graph.object_depth(obj, 0, reduce="mean")


def test_floor_area_follows_l_shaped_room():
    step = 0.02
    g = np.stack(np.meshgrid(np.arange(0, 4, step), np.arange(0, 4, step), indexing="ij"), -1).reshape(-1, 2) + step / 2
    g = g[~((g[:, 0] > 2) & (g[:, 1] > 2))]  # L shape: 16 - 4 = 12 m^2 (convex hull: 14 m^2)
    floor = np.concatenate([g, np.zeros((len(g), 1))], axis=1)
    area = floor_area(floor, ground_basis(np.array(Z_UP)), cell=0.1, closing=2)
    assert area == pytest.approx(12.0, rel=0.03)


def test_floor_area_and_height_on_synthetic_room(synth):
    graph = build_scene_graph(synth)
    lx, ly, _ = synth.metadata["room_size"]
    assert graph.floor_area == pytest.approx(lx * ly, rel=0.1)
    assert abs(graph.floor_height) < 0.01  # the floor is z = 0
    np.testing.assert_allclose(graph.up, Z_UP)


def test_synthetic_objects_labels_boxes(synth):
    graph = build_scene_graph(synth)
    table = synth.instances
    meta = {o["id"]: o for o in synth.metadata["objects"]}
    ids_in_masks = set(np.unique(synth.instance_masks[synth.instance_masks >= 0]).tolist())
    assert len(graph.objects) >= 15
    well = []
    for obj in graph.objects:
        row = table.row(obj.id)
        assert obj.id in ids_in_masks
        assert obj.label == table.labels[row] and obj.score == pytest.approx(float(table.scores[row]))
        assert obj.points.dtype == np.float32 and obj.points.shape[1] == 3 and len(obj.points) >= 20
        # depth is exact, so no box reaches above the object's mesh or below the floor
        top, bottom = obj.box_center[2] + obj.box_size[2] / 2, obj.box_center[2] - obj.box_size[2] / 2
        assert top <= table.box_max[row, 2] + 1e-3 and bottom >= table.box_min[row, 2] - 1e-3
        assert obj.box_size[0] >= obj.box_size[1]
        if len(obj.points) >= 300:
            true = np.array(meta[obj.id]["size"])
            size_err = np.abs(obj.box_size - np.r_[np.sort(true[:2])[::-1], true[2]]).max()
            center_err = np.linalg.norm(obj.box_center - (table.box_min[row] + table.box_max[row]) / 2)
            well.append((size_err, center_err))
    errs = np.array(well)
    assert len(errs) >= 10
    # partly seen objects (doors, windows cut by the image border) make boxes smaller, so look at most of them
    assert np.median(errs[:, 0]) < 0.04 and (errs[:, 0] < 0.05).mean() >= 0.5
    assert np.median(errs[:, 1]) < 0.03 and (errs[:, 1] < 0.05).mean() >= 0.75


def test_visibility_counts_match_masks(synth):
    graph = build_scene_graph(synth)
    masks = synth.instance_masks
    for obj in graph.objects:
        expected = (masks == obj.id).reshape(synth.num_views, -1).sum(axis=1)
        np.testing.assert_array_equal(obj.visible_pixels, expected)
        assert obj.visible_pixels.dtype == np.int64
        assert obj.first_view == int(np.flatnonzero(expected > 0)[0])


def test_rigid_motion_invariance(synth):
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    t = np.array([4.0, -2.0, 7.0])
    world_from_new = np.linalg.inv(np.vstack([np.concatenate([R, t[:, None]], 1), [0, 0, 0, 1]]))
    moved = Scene(images=synth.images, intrinsics=synth.intrinsics, cam_from_world=synth.cam_from_world @ world_from_new,
                  depth=synth.depth, instance_masks=synth.instance_masks, instances=synth.instances)
    up = R @ np.array(Z_UP)
    a = build_scene_graph(synth, SceneGraphConfig(up=Z_UP))
    b = build_scene_graph(moved, SceneGraphConfig(up=up))
    np.testing.assert_allclose(b.up, up, atol=1e-12)
    common = sorted({o.id for o in a.objects} & {o.id for o in b.objects})
    assert len(common) >= len(a.objects) - 2
    for i in common:
        oa, ob = a.object(i), b.object(i)
        np.testing.assert_allclose(ob.box_size, oa.box_size, atol=0.03)
        np.testing.assert_allclose(ob.box_center, R @ oa.box_center + t, atol=0.03)
        np.testing.assert_allclose(ob.centroid, R @ oa.centroid + t, atol=0.01)
        np.testing.assert_array_equal(ob.visible_pixels, oa.visible_pixels)
    for i, j in itertools.pairwise(common):
        assert b.distance(b.object(i), b.object(j)) == pytest.approx(a.distance(a.object(i), a.object(j)), abs=0.03)
    assert b.floor_area == pytest.approx(a.floor_area, rel=0.03)
    assert b.floor_height == pytest.approx(a.floor_height + t @ up, abs=0.01)
    for v in range(synth.num_views):
        np.testing.assert_allclose(b.camera_center(v), R @ a.camera_center(v) + t, atol=1e-9)
        np.testing.assert_allclose(b.camera_forward(v), R @ a.camera_forward(v), atol=1e-9)
        assert b.object_depth(b.object(common[0]), v) == pytest.approx(a.object_depth(a.object(common[0]), v), abs=0.01)


def test_scene_without_valid_points_gives_empty_graph(synth):
    empty = Scene(images=synth.images, intrinsics=synth.intrinsics, cam_from_world=synth.cam_from_world,
                  depth=np.zeros_like(synth.depth), instance_masks=synth.instance_masks, metadata=synth.metadata)
    graph = build_scene_graph(empty)
    assert graph.objects == [] and graph.floor_area == 0.0 and graph.labels() == []


def test_up_rule_and_ground_basis(synth):
    assert build_scene_graph(synth).up.tolist() == list(Z_UP)  # synthetic scenes are z-up
    plain = Scene(images=synth.images, intrinsics=synth.intrinsics, cam_from_world=synth.cam_from_world,
                  depth=synth.depth, instance_masks=synth.instance_masks)
    up = build_scene_graph(plain).up  # no metadata: the floor plane's normal, not the cameras' mean up
    np.testing.assert_allclose(up, [0.0, 0.0, 1.0], atol=1e-4)
    cameras = -synth.cam_from_world[:, 1, :3].mean(axis=0)
    assert np.degrees(np.arccos(cameras[2] / np.linalg.norm(cameras))) > 2  # the old rule was off
    assert up[2] > 0.9  # the synthetic cameras are nearly upright
    plain.metadata["up_axis"] = "-y"
    np.testing.assert_allclose(build_scene_graph(plain).up, [0, -1, 0])
    np.testing.assert_allclose(build_scene_graph(plain, SceneGraphConfig(up=[2.0, 0, 0])).up, [1, 0, 0])
    basis = ground_basis(np.array([0.3, -0.4, 0.5]))
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(basis[:, 2], np.array([0.3, -0.4, 0.5]) / np.linalg.norm([0.3, -0.4, 0.5]))
    assert np.linalg.det(basis) == pytest.approx(1.0)


def test_bad_input(synth):
    no_masks = Scene(images=synth.images, intrinsics=synth.intrinsics, cam_from_world=synth.cam_from_world, depth=synth.depth)
    with pytest.raises(Sem3RError, match="instance masks"):
        build_scene_graph(no_masks)
    no_geometry = Scene(images=synth.images, intrinsics=synth.intrinsics, cam_from_world=synth.cam_from_world,
                        instance_masks=synth.instance_masks)
    with pytest.raises(Sem3RError, match="no geometry"):
        build_scene_graph(no_geometry)
    with pytest.raises(Sem3RError, match="voxel_size"):
        build_scene_graph(synth, SceneGraphConfig(voxel_size=0.0))
    with pytest.raises(Sem3RError, match="up"):
        build_scene_graph(synth, SceneGraphConfig(up=[0.0, 0.0, 0.0]))
    with pytest.raises(Sem3RError, match="up axis"):
        build_scene_graph(synth, SceneGraphConfig(up="+w"))
    with pytest.raises(Sem3RError, match="box_percentile"):
        build_scene_graph(synth, SceneGraphConfig(box_percentile=60.0))
