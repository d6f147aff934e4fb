"""The Scene's optional sparse point cloud: validation, persistence, and the dense-geometry message."""

import json

import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.instances.clustering import ClusteringConfig, cluster_scene
from sem3r.reasoning.bev import render_bev
from sem3r.reasoning.scene_graph import build_scene_graph
from sem3r.reconstruct.common import derive_scene
from sem3r.scene import DENSE_GEOMETRY_HINT, FORMAT_VERSION, Scene


def views(n=2, h=4, w=5) -> dict:
    return {"images": np.zeros((n, h, w, 3), np.uint8), "intrinsics": np.tile(np.eye(3), (n, 1, 1)),
            "cam_from_world": np.tile(np.eye(3, 4), (n, 1, 1))}


def sparse_scene(p=20) -> Scene:
    rng = np.random.default_rng(0)
    return Scene(**views(), sparse_points=rng.normal(size=(p, 3)), sparse_colors=rng.integers(0, 256, (p, 3), dtype=np.uint8))


def test_save_and_load_keep_the_sparse_points(tmp_path):
    scene = sparse_scene()
    assert scene.sparse_points.dtype == np.float32 and scene.sparse_colors.dtype == np.uint8
    scene.save(tmp_path / "s")
    doc = json.loads((tmp_path / "s" / "scene.json").read_text())
    assert doc["format_version"] == FORMAT_VERSION == 1
    back = Scene.load(tmp_path / "s")
    assert np.array_equal(back.sparse_points, scene.sparse_points)
    assert np.array_equal(back.sparse_colors, scene.sparse_colors)
    assert "sparse points: 20" in back.describe()
    assert back.select_views([1]).sparse_points.shape == (20, 3)


def test_a_folder_without_sparse_points_loads(tmp_path):
    Scene(**views(), depth=np.ones((2, 4, 5), np.float32)).save(tmp_path / "old")
    back = Scene.load(tmp_path / "old")
    assert back.sparse_points is None and back.sparse_colors is None
    grey = Scene(**views(), sparse_points=np.zeros((3, 3)))
    assert np.array_equal(grey.sparse_colors, np.full((3, 3), 128, np.uint8))


def test_invalid_sparse_points_raise():
    with pytest.raises(Sem3RError, match=r"sparse_points must have shape \(P, 3\)"):
        Scene(**views(), sparse_points=np.zeros((4, 2)))
    with pytest.raises(Sem3RError, match="sparse_colors must have shape"):
        Scene(**views(), sparse_points=np.zeros((4, 3)), sparse_colors=np.zeros((3, 3)))
    with pytest.raises(Sem3RError, match="without sparse_points"):
        Scene(**views(), sparse_colors=np.zeros((3, 3)))
    with pytest.raises(Sem3RError, match="NaN"):
        Scene(**views(), sparse_points=np.full((1, 3), np.nan))


def test_stages_needing_dense_geometry_name_the_dense_backends():
    scene = sparse_scene()
    scene.instance_masks = np.zeros((2, 4, 5), np.int32)
    scene.instance_features = np.zeros((2, 4, 5, 8), np.float16)
    assert "feedforward" in DENSE_GEOMETRY_HINT and "g2vlm" in DENSE_GEOMETRY_HINT and "rgbd" in DENSE_GEOMETRY_HINT
    expected = r"only 20 sparse points .* reconstruct it with rgbd \(with sensor depth\), feedforward or g2vlm"
    for stage in (
        lambda: scene.points(),
        lambda: scene.points("depth"),
        lambda: scene.fused_point_cloud(),
        lambda: render_bev(scene),
        lambda: build_scene_graph(scene),
        lambda: cluster_scene(scene, ClusteringConfig()),
    ):
        with pytest.raises(Sem3RError, match=expected) as info:
            stage()
        assert "\n" not in str(info.value)
    plain = Scene(**views())
    with pytest.raises(Sem3RError, match="reconstruct it first") as info:
        build_scene_graph(Scene(**views(), instance_masks=np.zeros((2, 4, 5), np.int32)))
    assert "sparse" not in str(info.value)
    with pytest.raises(Sem3RError, match="no world points"):
        plain.points()


def test_backends_that_move_the_cameras_drop_the_sparse_points():
    scene = sparse_scene()
    same = derive_scene(scene, {}, depth=np.ones((2, 4, 5), np.float32))
    assert np.array_equal(same.sparse_points, scene.sparse_points)
    poses = scene.cam_from_world.copy()
    poses[:, 0, 3] = 1.0
    moved = derive_scene(scene, {}, cam_from_world=poses)
    assert moved.sparse_points is None and moved.sparse_colors is None
    given = derive_scene(scene, {}, cam_from_world=poses, sparse_points=np.ones((2, 3)), sparse_colors=np.zeros((2, 3)))
    assert given.sparse_points.shape == (2, 3)


def test_the_colmap_backend_keeps_its_sparse_points():
    pytest.importorskip("pycolmap")
    from sem3r.data.synthetic import SynthConfig, generate_scene
    from sem3r.reconstruct import reconstruct

    scene = generate_scene(SynthConfig(seed=0, num_views=6, height=256, width=256, camera_path="walk", num_points=0)).scene
    scene.metadata["intrinsics_known"] = True
    out = reconstruct(scene, "colmap", progress=False)
    assert out.depth is None and out.sparse_points is not None
    assert out.sparse_points.shape == (out.metadata["sfm"]["num_points"], 3) and len(out.sparse_points) > 100
    assert out.sparse_colors.shape == out.sparse_points.shape and out.sparse_colors.std() > 0
    with pytest.raises(Sem3RError, match="feedforward"):
        out.points()
