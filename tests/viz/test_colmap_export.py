"""COLMAP dataset export, read back by pycolmap (the reader the training tools build on)."""

import numpy as np
import pytest
from PIL import Image

from sem3r.data.readers.colmap import read_colmap
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.scene import Scene
from sem3r.viz import export_scene, read_ply
from sem3r.viz.colmap_export import ColmapExportConfig, export_colmap
from sem3r.viz.dataset_frames import frame_file_names

pycolmap = pytest.importorskip("pycolmap")


@pytest.fixture(scope="module")
def synth() -> Scene:
    return generate_scene(SynthConfig(seed=1, num_views=3, height=48, width=64)).scene


def sparse_only(scene: Scene, num_points: int = 50, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    return Scene(
        images=scene.images,
        intrinsics=scene.intrinsics,
        cam_from_world=scene.cam_from_world,
        image_names=list(scene.image_names),
        sparse_points=rng.normal(size=(num_points, 3)).astype(np.float32),
        sparse_colors=rng.integers(0, 256, (num_points, 3), dtype=np.uint8),
    )


def colmap_K(camera) -> np.ndarray:
    """OpenCV K of a pycolmap PINHOLE camera (principal point minus 0.5)."""
    fx, fy, cx, cy = camera.params[:4]
    return np.array([[fx, 0, cx - 0.5], [0, fy, cy - 0.5], [0, 0, 1]])


@pytest.mark.parametrize("model_dir", ["sparse/0", "sparse_text/0"])
def test_pycolmap_reads_cameras_poses_images_and_colours(tmp_path, synth, model_dir):
    scene = sparse_only(synth)
    result = export_colmap(scene, tmp_path, ColmapExportConfig(text=True))
    assert (result.num_views, result.num_skipped, result.num_points, result.points_from) == (3, 0, 50, "sparse")
    suffix = ".txt" if "text" in model_dir else ".bin"
    assert sorted(p.name for p in (tmp_path / model_dir).iterdir()) == [f"{n}{suffix}" for n in ("cameras", "images", "points3D")]
    rec = pycolmap.Reconstruction(tmp_path / model_dir)
    assert rec.num_images() == 3 and rec.num_cameras() == 1
    for image in rec.images.values():
        i = scene.image_names.index(image.name.removesuffix(".png"))
        camera = rec.cameras[image.camera_id]
        assert camera.model.name == "PINHOLE" and (camera.width, camera.height) == (64, 48)
        np.testing.assert_allclose(colmap_K(camera), scene.intrinsics[i], atol=1e-6)
        np.testing.assert_allclose(image.cam_from_world().matrix(), scene.cam_from_world[i], atol=1e-6)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "images" / image.name)), scene.images[i])
    ids = sorted(rec.points3D)
    xyz = np.array([rec.points3D[k].xyz for k in ids])
    rgb = np.array([rec.points3D[k].color for k in ids])
    np.testing.assert_allclose(xyz, scene.sparse_points, atol=1e-6)
    assert np.array_equal(rgb, scene.sparse_colors)
    assert all(rec.points3D[k].track.length() == 0 for k in ids)


def test_dense_scene_exports_the_fused_capped_cloud(tmp_path, synth):
    result = export_colmap(synth, tmp_path, ColmapExportConfig(voxel_size=0.05, max_points=300, seed=4))
    rec = pycolmap.Reconstruction(tmp_path / "sparse" / "0")
    cloud = synth.fused_point_cloud(voxel_size=0.05)
    assert len(cloud) > 300 and result.points_from == "dense" and rec.num_points3D() == 300
    keep = np.sort(np.random.default_rng(4).choice(len(cloud), 300, replace=False))
    ids = sorted(rec.points3D)
    np.testing.assert_allclose(np.array([rec.points3D[k].xyz for k in ids]), cloud.xyz[keep], atol=1e-6)
    assert np.array_equal(np.array([rec.points3D[k].color for k in ids]), cloud.rgb[keep])


def test_one_camera_per_distinct_intrinsics_and_unregistered_views_skipped(tmp_path, synth):
    K = synth.intrinsics.copy()
    K[2, 0, 0] *= 1.5
    scene = Scene(images=synth.images, intrinsics=K, cam_from_world=synth.cam_from_world, depth=synth.depth,
                  metadata={"registered": [True, True, True]})
    export_colmap(scene, tmp_path / "all")
    rec = pycolmap.Reconstruction(tmp_path / "all" / "sparse" / "0")
    assert rec.num_cameras() == 2
    for image in rec.images.values():
        i = int(image.name[5:9])
        np.testing.assert_allclose(colmap_K(rec.cameras[image.camera_id]), K[i], atol=1e-6)
    scene.metadata["registered"] = [True, False, True]
    lines = []
    paths = export_scene(scene, tmp_path / "reg", formats=("colmap",), report=lines.append)
    rec = pycolmap.Reconstruction(paths[0] / "sparse" / "0")
    assert sorted(im.name for im in rec.images.values()) == ["view_0000.png", "view_0002.png"]
    assert sorted(p.name for p in (paths[0] / "images").iterdir()) == ["view_0000.png", "view_0002.png"]
    assert len(lines) == 1 and "2 views (1 unregistered view skipped)" in lines[0]
    scene.metadata["registered"] = [False] * 3
    with pytest.raises(Sem3RError, match="no view"):
        export_colmap(scene, tmp_path / "none")


def test_sparse_only_scene_exports_ply_and_colmap(tmp_path, synth):
    scene = sparse_only(synth, 40, seed=2)
    with pytest.raises(Sem3RError, match="rgbd"):
        scene.fused_point_cloud()
    paths = export_scene(scene, tmp_path, formats=("ply", "glb", "html", "colmap"))
    assert [p.name for p in paths] == ["scene.ply", "scene.glb", "viewer.html", "colmap"]
    cloud = read_ply(tmp_path / "scene.ply")
    np.testing.assert_array_equal(cloud.xyz, scene.sparse_points)
    np.testing.assert_array_equal(cloud.rgb, scene.sparse_colors)
    assert pycolmap.Reconstruction(tmp_path / "colmap" / "sparse" / "0").num_points3D() == 40
    back = read_colmap(tmp_path / "colmap" / "sparse" / "0")
    np.testing.assert_allclose(back.cam_from_world, scene.cam_from_world, atol=1e-9)
    np.testing.assert_allclose(back.intrinsics, scene.intrinsics, atol=1e-9)
    np.testing.assert_allclose(back.sparse_points, scene.sparse_points, atol=1e-6)  # the reader keeps the points
    assert np.array_equal(back.sparse_colors, scene.sparse_colors)


def test_camera_model_of_a_colmap_scene_is_kept(tmp_path, synth):
    K = synth.intrinsics[0]
    params = [K[0, 0], K[0, 2] + 0.5, K[1, 2] + 0.5, -0.05]
    scene = Scene(images=synth.images, intrinsics=np.tile(K, (3, 1, 1)), cam_from_world=synth.cam_from_world,
                  metadata={"sfm": {"camera_ids": [7, 7, 7], "cameras": {"7": {"model": "SIMPLE_RADIAL", "width": 64,
                                                                                  "height": 48, "params": params}}}})
    export_colmap(scene, tmp_path / "kept")
    camera = next(iter(pycolmap.Reconstruction(tmp_path / "kept" / "sparse" / "0").cameras.values()))
    assert camera.model.name == "SIMPLE_RADIAL"
    np.testing.assert_allclose(camera.params, params, atol=1e-12)
    export_colmap(scene, tmp_path / "pinhole", ColmapExportConfig(keep_camera_models=False))
    camera = next(iter(pycolmap.Reconstruction(tmp_path / "pinhole" / "sparse" / "0").cameras.values()))
    assert camera.model.name == "PINHOLE"


def test_frame_file_names_are_unique_and_safe():
    assert frame_file_names(["a/rgb.jpg", "b/rgb.jpg"]) == ["00000_rgb.png", "00001_rgb.png"]
    assert frame_file_names(["frame 1.jpg", "x/frame2.png"]) == ["frame_1.png", "frame2.png"]
    names = frame_file_names(["a.jpg", "a.png", "b"])
    assert len(set(names)) == 3
    with pytest.raises(Sem3RError, match="max_points"):
        ColmapExportConfig(max_points=0).validate()
