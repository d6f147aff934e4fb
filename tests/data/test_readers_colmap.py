"""COLMAP sparse models: text and binary round trips with hand-written values, and the Scene built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sem3r.data.readers import (
    CAMERA_MODELS,
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    read_colmap,
    read_colmap_model,
    read_scene,
    write_colmap_binary,
    write_colmap_text,
)
from sem3r.errors import Sem3RError

H, W = 24, 32
S = np.sqrt(0.5)

# camera id -> (model, params, expected OpenCV K as (fx, fy, cx, cy))
CAMERAS = {
    1: ("SIMPLE_PINHOLE", [30.0, 16.0, 12.0], (30.0, 30.0, 15.5, 11.5)),
    2: ("PINHOLE", [31.0, 32.5, 15.0, 11.0], (31.0, 32.5, 14.5, 10.5)),
    3: ("SIMPLE_RADIAL", [33.0, 16.5, 12.5, -0.01], (33.0, 33.0, 16.0, 12.0)),
    4: ("RADIAL", [34.0, 16.25, 12.25, 0.02, -0.003], (34.0, 34.0, 15.75, 11.75)),
    7: ("OPENCV", [35.0, 36.0, 16.1, 11.9, 0.1, -0.2, 0.001, 0.002], (35.0, 36.0, 15.6, 11.4)),
}


def one_line_error(info, *fragments: str) -> None:
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def make_model() -> ColmapModel:
    """Five images (one per camera model, one with no keypoints) and three 3D points."""
    cameras = {cid: ColmapCamera(cid, model, W, H, params) for cid, (model, params, _) in CAMERAS.items()}
    images = {
        10: ColmapImage(10, [1.0, 0, 0, 0], [0.1, 0.2, 0.3], 1, "img1.png", [[1.5, 2.5], [3.25, 4.0]], [100, -1]),
        11: ColmapImage(11, [S, 0, 0, S], [1.0, -2.0, 0.5], 2, "img2.png", [[5.0, 6.0]], [100]),
        12: ColmapImage(12, [S, S, 0, 0], [0.0, 0.0, 1.0], 3, "img10.png"),
        13: ColmapImage(13, [0.5, 0.5, 0.5, 0.5], [-1.0, 0.25, 2.0], 4, "sub dir/img3.png", [[7.0, 8.0], [9.0, 1.0]], [101, 102]),
        14: ColmapImage(14, [0.0, 0, 1.0, 0], [0.0, 0.0, 0.0], 7, "img4.png", [[0.5, 0.5]], [102]),
    }
    return ColmapModel(
        cameras=cameras,
        images=images,
        point_ids=[100, 101, 102],
        xyz=[[0.1, 0.2, 3.0], [-1.0, 0.5, 4.5], [2.0, -0.25, 6.125]],
        rgb=[[255, 0, 10], [1, 2, 3], [200, 100, 50]],
        errors=[0.5, 1.25, 0.125],
        track_lengths=[2, 1, 2],
        track_image_ids=[10, 11, 13, 13, 14],
        track_point2d_idx=[0, 0, 0, 1, 0],
    )


def write_images(model: ColmapModel, folder: Path) -> None:
    for k, im in enumerate(sorted(model.images.values(), key=lambda im: im.image_id)):
        cam = model.cameras[im.camera_id]
        path = folder / im.name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((cam.height, cam.width, 3), 20 * k, np.uint8)).save(path)


def assert_models_equal(a: ColmapModel, b: ColmapModel) -> None:
    assert a.cameras.keys() == b.cameras.keys() and a.images.keys() == b.images.keys()
    for cid in a.cameras:
        ca, cb = a.cameras[cid], b.cameras[cid]
        assert (ca.model, ca.width, ca.height) == (cb.model, cb.width, cb.height)
        np.testing.assert_array_equal(ca.params, cb.params)
    for iid in a.images:
        ia, ib = a.images[iid], b.images[iid]
        assert (ia.name, ia.camera_id) == (ib.name, ib.camera_id)
        for name in ("qvec", "tvec", "xys", "point3d_ids"):
            np.testing.assert_array_equal(getattr(ia, name), getattr(ib, name))
    for name in ("point_ids", "xyz", "rgb", "errors", "track_lengths", "track_image_ids", "track_point2d_idx"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype, name


@pytest.fixture
def project(tmp_path) -> tuple[Path, Path, ColmapModel]:
    """``project/images`` with ``sparse/0`` (binary) and ``sparse/txt`` (text) of the same model."""
    model = make_model()
    write_images(model, tmp_path / "images")
    write_colmap_binary(model, tmp_path / "sparse" / "0")
    write_colmap_text(model, tmp_path / "sparse" / "txt")
    return tmp_path / "sparse" / "0", tmp_path / "sparse" / "txt", model


def test_camera_models_table():
    assert CAMERA_MODELS["SIMPLE_PINHOLE"] == (0, 3) and CAMERA_MODELS["OPENCV"] == (4, 8)
    assert len({mid for mid, _ in CAMERA_MODELS.values()}) == len(CAMERA_MODELS)


@pytest.mark.parametrize("cid", sorted(CAMERAS))
def test_intrinsics_of_each_camera_model(cid):
    model, params, (fx, fy, cx, cy) = CAMERAS[cid]
    K = ColmapCamera(cid, model, W, H, params).intrinsics()
    np.testing.assert_allclose(K, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])


def test_text_and_binary_round_trip(project):
    bin_dir, txt_dir, model = project
    assert_models_equal(read_colmap_model(bin_dir), model)
    assert_models_equal(read_colmap_model(txt_dir), model)
    assert (txt_dir / "images.txt").read_text().count("\n\n") >= 1  # the keypoint-less image's empty line


def test_binary_preferred_when_both_formats_present(project, tmp_path):
    bin_dir, _, model = project
    other = make_model()
    other.images[10].tvec = np.array([9.0, 9.0, 9.0])
    write_colmap_text(other, bin_dir)
    np.testing.assert_array_equal(read_colmap_model(bin_dir).images[10].tvec, model.images[10].tvec)


def test_text_and_binary_give_identical_scenes(project, tmp_path):
    bin_dir, txt_dir, model = project
    a = read_colmap(bin_dir)
    b = read_colmap(txt_dir, images_dir=tmp_path / "images")
    assert a.image_names == b.image_names == ["img1.png", "img2.png", "img4.png", "img10.png", "sub dir/img3.png"]
    for name in ("images", "intrinsics", "cam_from_world"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata["colmap"]["cameras"] == b.metadata["colmap"]["cameras"]
    assert a.metadata["source"] == "colmap" and a.metadata["metric"] is False
    assert a.metadata["undistorted"] is False


def test_scene_poses_intrinsics_and_metadata(project):
    bin_dir, _, model = project
    scene = read_colmap(bin_dir)
    index = {name: k for k, name in enumerate(scene.image_names)}
    # 90 degrees about z: qw = qz = sqrt(1/2)
    np.testing.assert_allclose(scene.cam_from_world[index["img2.png"]], [[0, -1, 0, 1.0], [1, 0, 0, -2.0], [0, 0, 1, 0.5]], atol=1e-12)
    # 90 degrees about x
    np.testing.assert_allclose(scene.cam_from_world[index["img10.png"]], [[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 1.0]], atol=1e-12)
    # 120 degrees about (1,1,1): cyclic permutation x->y->z
    np.testing.assert_allclose(scene.cam_from_world[index["sub dir/img3.png"]][:, :3], [[0, 0, 1], [1, 0, 0], [0, 1, 0]], atol=1e-12)
    # 180 degrees about y
    np.testing.assert_allclose(scene.cam_from_world[index["img4.png"]][:, :3], np.diag([-1.0, 1, -1]), atol=1e-12)
    np.testing.assert_array_equal(scene.cam_from_world[index["img1.png"]], [[1, 0, 0, 0.1], [0, 1, 0, 0.2], [0, 0, 1, 0.3]])
    for name, k in index.items():
        im = next(i for i in model.images.values() if i.name == name)
        fx, fy, cx, cy = CAMERAS[im.camera_id][2]
        np.testing.assert_allclose(scene.intrinsics[k], [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    cams = scene.metadata["colmap"]["cameras"]
    assert cams["7"]["model"] == "OPENCV" and cams["7"]["params"][4:] == [0.1, -0.2, 0.001, 0.002]
    assert scene.metadata["colmap"]["image_ids"] == [10, 11, 14, 12, 13]
    assert scene.images.shape == (5, H, W, 3)
    np.testing.assert_array_equal(scene.images[index["img2.png"], 0, 0], (20, 20, 20))


def test_read_scene_finds_colmap_project(project, tmp_path):
    scene = read_scene(tmp_path)
    assert scene.metadata["source"] == "colmap" and scene.num_views == 5
    assert read_scene(tmp_path, layout="colmap").num_views == 5


def test_cameras_of_different_sizes_need_resize(tmp_path):
    model = make_model()
    model.cameras[2] = ColmapCamera(2, "PINHOLE", 2 * W, 2 * H, [62.0, 65.0, 32.0, 24.0])
    write_images(model, tmp_path / "images")
    write_colmap_text(model, tmp_path / "sparse")
    with pytest.raises(Sem3RError) as info:
        read_colmap(tmp_path / "sparse")
    one_line_error(info, "64x48", "resize")
    scene = read_colmap(tmp_path / "sparse", resize=(H, W))
    k = scene.image_names.index("img2.png")
    np.testing.assert_allclose(scene.intrinsics[k], [[31, 0, 15.5], [0, 32.5, 11.5], [0, 0, 1]])


def test_colmap_bad_input(project, tmp_path):
    bin_dir, txt_dir, model = project
    with pytest.raises(Sem3RError) as info:
        read_colmap_model(tmp_path / "images")
    one_line_error(info, "no COLMAP model")
    lonely = tmp_path / "a" / "b" / "model"  # no images/ beside it or its parent
    write_colmap_text(model, lonely)
    with pytest.raises(Sem3RError) as info:
        read_colmap(lonely)
    one_line_error(info, "images_dir")
    broken = tmp_path / "broken"
    write_colmap_binary(model, broken)
    (broken / "images.bin").write_bytes((broken / "images.bin").read_bytes()[:-7])
    with pytest.raises(Sem3RError) as info:
        read_colmap_model(broken)
    one_line_error(info, "images.bin")
    (broken / "points3D.bin").unlink()
    with pytest.raises(Sem3RError) as info:
        read_colmap_model(broken)
    one_line_error(info, "points3D.bin")
    garbled = tmp_path / "garbled"
    write_colmap_text(model, garbled)
    text = (garbled / "cameras.txt").read_text().replace(" PINHOLE 32", " FISHEYE_9000 32", 1)
    (garbled / "cameras.txt").write_text(text)
    with pytest.raises(Sem3RError) as info:
        read_colmap_model(garbled)
    one_line_error(info, "cameras.txt", "line 5", "FISHEYE_9000")
    (garbled / "cameras.txt").write_text("1 PINHOLE 32 24 30.0 30.0 16.0\n")
    with pytest.raises(Sem3RError) as info:
        read_colmap_model(garbled)
    one_line_error(info, "cameras.txt", "line 1", "3 parameters")
    write_colmap_text(model, garbled)
    (garbled / "points3D.txt").write_text("100 0.1 0.2 3.0 255 0 10 0.5 10\n")
    with pytest.raises(Sem3RError) as info:
        read_colmap_model(garbled)
    one_line_error(info, "points3D.txt", "line 1")
    (tmp_path / "images" / "img4.png").unlink()
    with pytest.raises(Sem3RError) as info:
        read_colmap(bin_dir)
    one_line_error(info, "img4.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "images" / "img4.png")
    with pytest.raises(Sem3RError) as info:
        read_colmap(bin_dir)
    one_line_error(info, "img4.png", "10x10", "32x24")
    empty = ColmapModel(cameras=model.cameras)
    write_colmap_binary(empty, tmp_path / "empty")
    with pytest.raises(Sem3RError) as info:
        read_colmap(tmp_path / "empty", images_dir=tmp_path / "images")
    one_line_error(info, "no registered images")


def test_points_binary_bytes_equal_the_record_by_record_layout():
    """The vectorised points3D.bin writer gives COLMAP's record layout byte for byte (empty tracks included)."""
    import struct

    from sem3r.data.readers.colmap import _points_binary

    rng = np.random.default_rng(0)
    n = 50
    lengths = rng.integers(0, 4, n)
    model = ColmapModel(cameras={}, images={}, point_ids=np.arange(1, n + 1), xyz=rng.normal(size=(n, 3)),
                        rgb=rng.integers(0, 256, (n, 3)), errors=rng.random(n), track_lengths=lengths,
                        track_image_ids=rng.integers(1, 9, lengths.sum()), track_point2d_idx=rng.integers(0, 999, lengths.sum()))
    expected, k = [struct.pack("<Q", n)], 0
    for i in range(n):
        expected.append(struct.pack("<Q3d3BdQ", i + 1, *model.xyz[i], *map(int, model.rgb[i]), model.errors[i], lengths[i]))
        for _ in range(lengths[i]):
            expected.append(struct.pack("<II", model.track_image_ids[k], model.track_point2d_idx[k]))
            k += 1
    assert _points_binary(model) == b"".join(expected)


@pytest.mark.parametrize("cut", [1, 9, 60])
def test_truncated_points3d_bin_is_one_line(tmp_path, cut):
    """A points3D.bin cut inside a track, inside a record head or after the count: one line naming it."""
    from sem3r.data.readers.colmap import read_colmap_model

    model = make_model()
    write_colmap_binary(model, tmp_path)
    data = (tmp_path / "points3D.bin").read_bytes()
    (tmp_path / "points3D.bin").write_bytes(data[:-cut] if cut < 60 else data[:12])
    with pytest.raises(Sem3RError, match="points3D.bin"):
        read_colmap_model(tmp_path)
