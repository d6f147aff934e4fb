import json

import numpy as np
import pytest

import sem3r.scene as scene_mod
from sem3r.errors import FormatVersionError, Sem3RError
from sem3r.geometry.camera import invert_pose, transform_points
from sem3r.scene import InstanceTable, Scene


def make_scene(n=2, h=6, w=8, seed=0):
    rng = np.random.default_rng(seed)
    K = np.array([[10.0, 0, (w - 1) / 2], [0, 10.0, (h - 1) / 2], [0, 0, 1]])
    poses = np.tile(np.eye(3, 4), (n, 1, 1))
    poses[:, :, 3] = rng.normal(size=(n, 3))
    inst = rng.integers(-1, 3, size=(n, h, w)).astype(np.int32)
    return Scene(
        images=rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8),
        intrinsics=np.tile(K, (n, 1, 1)),
        cam_from_world=poses,
        depth=rng.uniform(1, 3, size=(n, h, w)).astype(np.float32),
        depth_conf=rng.uniform(0, 1, size=(n, h, w)).astype(np.float32),
        instance_masks=inst,
        semantic_masks=np.where(inst >= 0, inst + 10, -1),
        instance_features=rng.normal(size=(n, h, w, 8)),
        metadata={"class_names": [f"c{i}" for i in range(13)], "source": "test"},
    )


def assert_scenes_equal(a: Scene, b: Scene):
    for name in ("images", "intrinsics", "cam_from_world", "depth", "depth_conf", "world_points",
                 "point_conf", "instance_masks", "semantic_masks", "instance_features"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.image_names == b.image_names
    assert a.metadata == b.metadata
    assert a.instances.labels == b.instances.labels
    for key, value in a.instances.to_arrays().items():
        assert np.array_equal(value, getattr(b.instances, key)), key


def test_save_load_round_trip(tmp_path):
    scene = make_scene()
    scene.update_instances(voxel_size=None)
    scene.save(tmp_path / "s")
    loaded = Scene.load(tmp_path / "s")
    assert_scenes_equal(scene, loaded)
    assert loaded.instances.labels == ["c10", "c11", "c12"]
    doc = json.loads((tmp_path / "s" / "scene.json").read_text())
    assert doc["format_version"] == scene_mod.FORMAT_VERSION


def test_resave_removes_stale_arrays_and_interrupted_save_keeps_old(tmp_path, monkeypatch):
    old = make_scene(seed=1)
    old.save(tmp_path)
    new = make_scene(seed=2)
    new.save(tmp_path)
    assert len(list(tmp_path.glob("views-*.npz"))) == 1
    assert_scenes_equal(new, Scene.load(tmp_path))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(scene_mod, "write_json_atomic", crash)
    with pytest.raises(OSError):
        make_scene(seed=3).save(tmp_path)
    assert_scenes_equal(new, Scene.load(tmp_path))


@pytest.mark.parametrize("version,needle", [(99, "version 99"), (0, "version 0")])
def test_unreadable_format_versions_name_the_version(tmp_path, version, needle):
    make_scene().save(tmp_path)
    doc = json.loads((tmp_path / "scene.json").read_text())
    doc["format_version"] = version
    (tmp_path / "scene.json").write_text(json.dumps(doc))
    with pytest.raises(FormatVersionError, match=needle) as info:
        Scene.load(tmp_path)
    assert f"version {scene_mod.FORMAT_VERSION}" in str(info.value)
    assert "\n" not in str(info.value)


def test_older_version_is_migrated(tmp_path, monkeypatch):
    make_scene().save(tmp_path)
    doc = json.loads((tmp_path / "scene.json").read_text())
    doc["format_version"] = 0
    doc["metadata"] = {"legacy": True}
    (tmp_path / "scene.json").write_text(json.dumps(doc))

    def upgrade(d, arrays):
        d["metadata"]["upgraded"] = True
        return d, arrays

    monkeypatch.setitem(scene_mod._MIGRATIONS, 0, upgrade)
    assert Scene.load(tmp_path).metadata == {"legacy": True, "upgraded": True}


def test_load_errors(tmp_path):
    with pytest.raises(Sem3RError, match="no scene.json"):
        Scene.load(tmp_path)
    make_scene().save(tmp_path)
    next(tmp_path.glob("views-*.npz")).unlink()
    with pytest.raises(Sem3RError, match="incomplete"):
        Scene.load(tmp_path)
    (tmp_path / "scene.json").write_text("{not json")
    with pytest.raises(Sem3RError, match="not valid JSON"):
        Scene.load(tmp_path)


def test_validation_names_the_problem():
    s = make_scene()
    with pytest.raises(Sem3RError, match="depth must have shape"):
        Scene(images=s.images, intrinsics=s.intrinsics, cam_from_world=s.cam_from_world, depth=s.depth[:, :-1])
    bad = s.cam_from_world.copy()
    bad[1, 0, 0] = np.nan
    with pytest.raises(Sem3RError, match="view_0001"):
        Scene(images=s.images, intrinsics=s.intrinsics, cam_from_world=bad)
    with pytest.raises(Sem3RError, match="at least one view"):
        Scene(images=np.zeros((0, 4, 4, 3), np.uint8), intrinsics=np.zeros((0, 3, 3)), cam_from_world=np.zeros((0, 3, 4)))
    nan_depth = s.depth.copy()
    nan_depth[0, 0, 0] = np.nan
    with pytest.raises(Sem3RError, match="NaN"):
        Scene(images=s.images, intrinsics=s.intrinsics, cam_from_world=s.cam_from_world, depth=nan_depth)
    with pytest.raises(Sem3RError, match="instance_features must have shape"):
        Scene(images=s.images, intrinsics=s.intrinsics, cam_from_world=s.cam_from_world,
              instance_features=s.instance_features[:, 1:])
    nan_features = s.instance_features.copy()
    nan_features[1, 2, 3, 4] = np.nan
    with pytest.raises(Sem3RError, match="instance_features contains NaN"):
        Scene(images=s.images, intrinsics=s.intrinsics, cam_from_world=s.cam_from_world, instance_features=nan_features)


def test_fused_point_cloud_hand_computed():
    K = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]])
    pose = np.eye(3, 4)
    pose[:, 3] = [0, 0, -1]  # camera centre at z=+1 in the world
    depth = np.array([[[2.0, 2.0], [4.0, 0.0]]], np.float32)
    conf = np.array([[[1.0, 0.2, 0.9], [0.0, 0.0, 0.0]]], np.float32)[:, :, :2]
    scene = Scene(images=np.full((1, 2, 2, 3), 7, np.uint8), intrinsics=K[None], cam_from_world=pose[None],
                  depth=depth, depth_conf=conf)
    cloud = scene.fused_point_cloud()
    # pixel (u=0, v=0): x = (0-0.5)/2*2 = -0.5, y = -0.5, z = 2 -> world z = 2 + 1
    expected = np.array([[-0.5, -0.5, 3.0], [0.5, -0.5, 3.0], [-1.0, 1.0, 5.0]])
    assert np.allclose(cloud.xyz, expected)
    assert np.array_equal(cloud.instance_ids, [-1, -1, -1])
    kept = scene.fused_point_cloud(conf_threshold=0.5)
    assert np.allclose(kept.xyz, expected[[0]])


def test_fused_cloud_voxel_majority_and_mean():
    K = np.array([[1000.0, 0, 1.5], [0, 1000.0, 0.5], [0, 0, 1]])
    depth = np.full((1, 2, 4), 1.0, np.float32)
    inst = np.array([[[4, 4, 5, -1], [4, 5, 5, 5]]], np.int32)
    pose = np.eye(3, 4)
    pose[:, 3] = [-5, -5, 0]  # keeps every point inside the voxel [0, 10)^3
    scene = Scene(images=np.zeros((1, 2, 4, 3), np.uint8), intrinsics=K[None], cam_from_world=pose[None],
                  depth=depth, instance_masks=inst)
    cloud = scene.fused_point_cloud(voxel_size=10.0)  # everything in one voxel
    assert len(cloud) == 1
    assert cloud.instance_ids[0] == 5  # 4 votes for 5, 3 for 4, -1 ignored
    assert np.allclose(cloud.xyz[0], scene.fused_point_cloud().xyz.mean(axis=0), atol=1e-6)


def test_rigid_motion_of_cameras_moves_the_cloud():
    scene = make_scene(seed=4)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    T = np.concatenate([q, rng.normal(size=(3, 1))], axis=1)  # new_world_from_old_world
    T4 = np.vstack([T, [0, 0, 0, 1]])
    moved_poses = np.einsum("nij,jk->nik", np.concatenate([scene.cam_from_world, np.tile([[[0, 0, 0, 1]]], (2, 1, 1))], 1), invert_pose(T4))[:, :3]
    moved = Scene(images=scene.images, intrinsics=scene.intrinsics, cam_from_world=moved_poses, depth=scene.depth)
    assert np.allclose(moved.fused_point_cloud().xyz, transform_points(T, scene.fused_point_cloud().xyz), atol=1e-4)


def test_instance_table_from_points_hand_computed():
    pts = np.array([[0, 0, 0], [2, 0, 0], [0, 4, 0], [9, 9, 9], [1, 1, 1]], float)
    ids = np.array([3, 3, 3, -1, 7])
    sem = np.array([1, 1, 0, 0, 2])
    table = InstanceTable.from_points(pts, ids, sem, ["a", "b", "c"], scores={7: 0.25})
    assert table.ids.tolist() == [3, 7]
    assert table.labels == ["b", "c"]
    assert np.allclose(table.box_min[0], [0, 0, 0]) and np.allclose(table.box_max[0], [2, 4, 0])
    assert np.allclose(table.centroids[0], [2 / 3, 4 / 3, 0])
    assert table.point_counts.tolist() == [3, 1]
    assert np.allclose(table.scores, [1.0, 0.25])
    with pytest.raises(Sem3RError, match="duplicate"):
        InstanceTable(ids=[1, 1])


def test_select_views():
    scene = make_scene(n=3)
    sub = scene.select_views([2, 0])
    assert sub.num_views == 2 and sub.image_names == ["view_0002", "view_0000"]
    assert np.array_equal(sub.depth[0], scene.depth[2])
    assert np.array_equal(sub.cam_from_world[1], scene.cam_from_world[0])


def test_auto_point_source_follows_the_backend_choice():
    scene = make_scene(n=1)
    pts, _ = scene.points("depth")
    scene.world_points = pts + 10.0
    assert np.allclose(scene.fused_point_cloud().xyz, pts.reshape(-1, 3))
    scene.metadata["point_source"] = "points"
    assert np.allclose(scene.fused_point_cloud().xyz, pts.reshape(-1, 3) + 10.0)
