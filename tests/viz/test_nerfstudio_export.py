"""nerfstudio dataset export, read back with the documented convention applied independently."""

import json

import numpy as np
import pytest
from PIL import Image

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.scene import Scene
from sem3r.viz import export_scene, read_ply
from sem3r.viz.nerfstudio_export import NerfstudioExportConfig, export_nerfstudio


@pytest.fixture(scope="module")
def synth() -> Scene:
    return generate_scene(SynthConfig(seed=2, num_views=3, height=48, width=64)).scene


def sem3r_pixel(scene: Scene, i: int, X: np.ndarray) -> np.ndarray:
    cam = scene.cam_from_world[i, :, :3] @ X + scene.cam_from_world[i, :, 3]
    uvw = scene.intrinsics[i] @ cam
    return uvw[:2] / uvw[2]


def nerfstudio_pixel(doc: dict, frame: dict, X: np.ndarray) -> np.ndarray:
    """Pixel index of X from transforms.json: OpenGL camera-to-world, pixel centres at +0.5."""
    cam = {**doc, **frame}
    c2w = np.array(frame["transform_matrix"])
    p = np.linalg.inv(c2w) @ np.r_[X, 1.0]
    x, y, z = p[:3]  # x right, y up, z backward: visible points have z < 0
    assert z < 0
    u = cam["fl_x"] * x / -z + cam["cx"]
    v = cam["fl_y"] * -y / -z + cam["cy"]
    return np.array([u, v]) - 0.5


def world_point_in_view(scene: Scene, i: int) -> np.ndarray:
    R, t = scene.cam_from_world[i, :, :3], scene.cam_from_world[i, :, 3]
    return R.T @ (np.array([0.3, -0.2, 2.0]) - t)


def test_projection_matches_the_scene_camera(tmp_path, synth):
    K = synth.intrinsics.copy()
    K[1, 0, 2] += 3.0
    scene = Scene(images=synth.images, intrinsics=K, cam_from_world=synth.cam_from_world, depth=synth.depth)
    for shared_scene, per_frame in ((synth, False), (scene, True)):
        out = tmp_path / str(per_frame)
        export_nerfstudio(shared_scene, out)
        doc = json.loads((out / "transforms.json").read_text())
        assert doc["camera_model"] == "OPENCV" and ("fl_x" in doc) is not per_frame
        assert [k in doc["frames"][0] for k in ("fl_x", "cx", "w", "h")] == [per_frame] * 4
        assert (doc.get("w"), doc.get("h")) == ((None, None) if per_frame else (64, 48))
        for i, frame in enumerate(doc["frames"]):
            assert frame["file_path"] == f"images/view_{i:04d}.png"
            assert np.array_equal(np.asarray(Image.open(out / frame["file_path"])), shared_scene.images[i])
            assert np.array(frame["transform_matrix"]).shape == (4, 4)
            X = world_point_in_view(shared_scene, i)
            np.testing.assert_allclose(nerfstudio_pixel(doc, frame, X), sem3r_pixel(shared_scene, i, X), atol=1e-6)


def test_depth_png_holds_millimetres(tmp_path, synth):
    depth = synth.depth.copy()
    depth[0, :2] = 0.0
    depth[1, 0, 0] = 70.0  # beyond 65.535 m: invalid in 16 bits
    scene = Scene(images=synth.images, intrinsics=synth.intrinsics, cam_from_world=synth.cam_from_world, depth=depth)
    export_nerfstudio(scene, tmp_path)
    doc = json.loads((tmp_path / "transforms.json").read_text())
    assert doc["depth_unit_scale_factor"] == 0.001
    for i, frame in enumerate(doc["frames"]):
        assert frame["depth_file_path"] == f"depths/view_{i:04d}.png"
        png = Image.open(tmp_path / frame["depth_file_path"])
        mm = np.asarray(png).astype(np.int64)
        assert mm.shape == (48, 64) and mm.max() > 255  # really 16 bits
        valid = (depth[i] > 0) & (depth[i] < 65.5)
        assert np.all(mm[~valid] == 0)
        assert np.abs(mm[valid] * doc["depth_unit_scale_factor"] - depth[i][valid]).max() <= 0.0005 + 1e-7
    assert doc["ply_file_path"] == "sparse_pc.ply"
    assert len(read_ply(tmp_path / "sparse_pc.ply")) == len(scene.fused_point_cloud(voxel_size=0.01))


def test_sparse_only_scene_and_unregistered_views(tmp_path, synth):
    rng = np.random.default_rng(0)
    scene = Scene(images=synth.images, intrinsics=synth.intrinsics, cam_from_world=synth.cam_from_world,
                  sparse_points=rng.normal(size=(30, 3)), sparse_colors=rng.integers(0, 256, (30, 3), dtype=np.uint8),
                  metadata={"registered": [True, True, False]})
    lines = []
    export_scene(scene, tmp_path, formats=("nerfstudio",), report=lines.append)
    doc = json.loads((tmp_path / "nerfstudio" / "transforms.json").read_text())
    assert [f["file_path"] for f in doc["frames"]] == ["images/view_0000.png", "images/view_0001.png"]
    assert "depth_unit_scale_factor" not in doc and "depth_file_path" not in doc["frames"][0]
    cloud = read_ply(tmp_path / "nerfstudio" / doc["ply_file_path"])
    np.testing.assert_allclose(cloud.xyz, scene.sparse_points)
    assert np.array_equal(cloud.rgb, scene.sparse_colors)
    assert "1 unregistered view skipped" in lines[0] and "30 sparse points" in lines[0]


def test_distortion_from_a_colmap_camera(tmp_path, synth):
    K = synth.intrinsics[0]
    cams = {"3": {"model": "OPENCV", "width": 64, "height": 48,
                  "params": [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, 0.1, -0.02, 0.001, 0.002]}}
    scene = Scene(images=synth.images, intrinsics=np.tile(K, (3, 1, 1)), cam_from_world=synth.cam_from_world,
                  metadata={"colmap": {"camera_ids": [3, 3, 3], "cameras": cams}})
    export_nerfstudio(scene, tmp_path / "a")
    doc = json.loads((tmp_path / "a" / "transforms.json").read_text())
    assert [doc[k] for k in ("k1", "k2", "p1", "p2")] == [0.1, -0.02, 0.001, 0.002]
    export_nerfstudio(scene, tmp_path / "b", NerfstudioExportConfig(keep_distortion=False))
    doc = json.loads((tmp_path / "b" / "transforms.json").read_text())
    assert [doc[k] for k in ("k1", "k2", "p1", "p2")] == [0.0] * 4
    cams["3"] = {"model": "OPENCV_FISHEYE", "width": 64, "height": 48, "params": cams["3"]["params"]}
    with pytest.raises(Sem3RError, match="undistort"):
        export_nerfstudio(scene, tmp_path / "c")
