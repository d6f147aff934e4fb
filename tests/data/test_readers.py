"""Readers: image folder, 7-Scenes, ScanNet, TUM RGB-D and the read_scene dispatcher.

Every fixture is written into ``tmp_path`` with known values (images with PIL, depth as uint16
PNG, poses from seeded random rotations); the 7-Scenes sample in ``../shared`` adds a real-data
consistency check and is skipped when absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sem3r.data.readers import (
    LAYOUTS,
    SEVEN_SCENES_INTRINSICS,
    TUM_INTRINSICS,
    associate,
    detect_layout,
    interpolate_poses,
    read_7scenes,
    read_image_folder,
    read_scannet,
    read_scene,
    read_tum,
)
from sem3r.data.readers.common import natural_key
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import project, scale_intrinsics, unproject_depth
from sem3r.geometry.transforms import quat_from_matrix, random_rotation
from sem3r.scene import Scene

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEVEN_SCENES_SAMPLE = SHARED / "data" / "7scenes-sample"


# ---------------------------------------------------------------------------------------------- helpers
def raises_naming(fragment: str, *more: str):
    """Context manager: a one-line Sem3RError whose message contains every fragment."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(Sem3RError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            message = str(self.info.value)
            assert "\n" not in message, message
            for text in (fragment, *more):
                assert text in message, f"{text!r} not in {message!r}"
            return handled

    return _Check()


def solid(h: int, w: int, value) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.uint8), (h, w, 3)).copy()


def write_rgb(path: Path, array: np.ndarray, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save)
    return path


def write_depth_mm(path: Path, raw: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(raw, np.uint16)).save(path)
    return path


def random_c2w(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 4, 4)`` camera-to-world transforms with random rotations and translations."""
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, :3, :3] = random_rotation(rng, n)
    T[:, :3, 3] = rng.uniform(-2, 2, (n, 3))
    return T


def write_matrix(path: Path, M: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" ".join(f"{v:.17g}" for v in row) for row in np.atleast_2d(M)) + "\n")
    return path


def hand_inverse(T: np.ndarray) -> np.ndarray:
    """``cam_from_world (3, 4)`` of a camera-to-world 4x4, written out: ``[R^T | -R^T t]``."""
    R, t = T[:3, :3], T[:3, 3]
    return np.concatenate([R.T, (-R.T @ t)[:, None]], axis=1)


# ---------------------------------------------------------------------------------------------- image folder
def test_natural_key_orders_numbers_by_value():
    names = ["img10.png", "img2.png", "IMG1.png", "img2b.png"]
    assert sorted(names, key=natural_key) == ["IMG1.png", "img2.png", "img2b.png", "img10.png"]


def test_image_folder_natural_order_default_intrinsics_and_flags(tmp_path):
    for i in (10, 2, 1):
        write_rgb(tmp_path / f"img{i}.png", solid(24, 32, (i, 2 * i, 3 * i)))
    (tmp_path / "notes.txt").write_text("not an image")
    scene = read_image_folder(tmp_path)
    assert scene.image_names == ["img1.png", "img2.png", "img10.png"]
    assert scene.images.shape == (3, 24, 32, 3) and scene.images.dtype == np.uint8
    np.testing.assert_array_equal(scene.images[2, 0, 0], (10, 20, 30))
    f = 1.2 * 32
    np.testing.assert_allclose(scene.intrinsics[0], [[f, 0, 15.5], [0, f, 11.5], [0, 0, 1]])
    np.testing.assert_array_equal(scene.cam_from_world, np.tile(np.eye(3, 4), (3, 1, 1)))
    assert scene.metadata["source"] == "image_folder"
    assert scene.metadata["metric"] is False
    assert scene.metadata["intrinsics_known"] is False and scene.metadata["poses_known"] is False
    assert scene.depth is None


def test_image_folder_formats_and_modes(tmp_path):
    write_rgb(tmp_path / "a.jpg", solid(16, 16, (200, 10, 10)), quality=100)
    write_rgb(tmp_path / "b.webp", solid(16, 16, (10, 200, 10)), lossless=True)
    write_rgb(tmp_path / "c.bmp", solid(16, 16, (10, 10, 200)))
    write_rgb(tmp_path / "d.tif", solid(16, 16, (50, 60, 70)))
    Image.fromarray(np.full((16, 16), 128, np.uint8), "L").save(tmp_path / "e.png")
    Image.fromarray(np.full((16, 16), 128, np.uint8), "L").convert("P").save(tmp_path / "f.gif.png")
    Image.fromarray(np.full((16, 16), 65535, np.uint16)).save(tmp_path / "g16.png")
    scene = read_image_folder(tmp_path)
    assert scene.num_views == 7
    np.testing.assert_allclose(scene.images[0].reshape(-1, 3).mean(0), (200, 10, 10), atol=3)
    np.testing.assert_array_equal(scene.images[1, 0, 0], (10, 200, 10))
    np.testing.assert_array_equal(scene.images[3, 0, 0], (50, 60, 70))
    np.testing.assert_array_equal(scene.images[4, 0, 0], (128, 128, 128))
    np.testing.assert_array_equal(scene.images[5, 0, 0], (128, 128, 128))
    np.testing.assert_array_equal(scene.images[6, 0, 0], (255, 255, 255))


def test_image_folder_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)
    rgba[:, 4:6] = (0, 0, 255, 0)
    rgba[:, 6:] = (0, 0, 0, 128)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "x.png")
    img = read_image_folder(tmp_path).images[0]
    np.testing.assert_array_equal(img[0, 0], (255, 0, 0))
    np.testing.assert_array_equal(img[0, 4], (255, 255, 255))
    np.testing.assert_allclose(img[0, 7], (127, 127, 127), atol=1)


def test_image_folder_applies_exif_orientation(tmp_path):
    stored = solid(20, 40, (0, 0, 0))
    stored[:10, :10] = 255  # top-left block as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    write_rgb(tmp_path / "rot.jpg", stored, exif=exif, quality=100)
    scene = read_image_folder(tmp_path)
    assert scene.images.shape == (1, 40, 20, 3)
    img = scene.images[0, ..., 0].astype(int)
    assert img[:10, -10:].mean() > 200 and img[:10, :10].mean() < 50  # now top-right
    np.testing.assert_allclose(scene.intrinsics[0, :2, 2], (9.5, 19.5))


def test_image_folder_focal_from_exif_35mm(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 26
    write_rgb(tmp_path / "phone.jpg", solid(30, 40, (9, 9, 9)), exif=exif)
    scene = read_image_folder(tmp_path)
    expected = 26 * np.hypot(30, 40) / np.hypot(36, 24)
    np.testing.assert_allclose(scene.intrinsics[0, 0, 0], expected)
    np.testing.assert_allclose(scene.intrinsics[0, 1, 1], expected)
    assert scene.metadata["intrinsics_from_exif"] == 1 and scene.metadata["intrinsics_known"] is False


def test_image_folder_max_images_spread_evenly(tmp_path):
    for i in range(10):
        write_rgb(tmp_path / f"{i:03d}.png", solid(8, 8, (i, i, i)))
    scene = read_image_folder(tmp_path, max_images=4)
    assert scene.image_names == ["000.png", "003.png", "006.png", "009.png"]


def test_image_folder_mixed_sizes_need_resize(tmp_path):
    write_rgb(tmp_path / "a.png", solid(24, 32, (1, 1, 1)))
    write_rgb(tmp_path / "b.png", solid(48, 48, (2, 2, 2)))
    with raises_naming("a.png", "b.png", "32x24", "48x48", "resize"):
        read_image_folder(tmp_path)
    scene = read_image_folder(tmp_path, resize=(12, 16))
    assert scene.images.shape == (2, 12, 16, 3)
    for k, (h, w) in enumerate([(24, 32), (48, 48)]):
        f = 1.2 * max(h, w)
        guess = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
        np.testing.assert_allclose(scene.intrinsics[k], scale_intrinsics(guess, 16 / w, 12 / h))
    np.testing.assert_allclose(scene.intrinsics[1, :2, 2], (7.5, 5.5))


def test_image_folder_bad_input(tmp_path):
    with raises_naming("nowhere"):
        read_image_folder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with raises_naming("empty", "no images"):
        read_image_folder(empty)
    garbage = tmp_path / "garbage"
    write_rgb(garbage / "good.png", solid(8, 8, (1, 2, 3)))
    (garbage / "broken.jpg").write_bytes(b"this is not a jpeg at all")
    with raises_naming("broken.jpg"):
        read_image_folder(garbage)
    truncated = tmp_path / "truncated"
    write_rgb(truncated / "a.png", solid(64, 64, (1, 2, 3)))
    full = write_rgb(truncated / "b.jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    full.write_bytes(full.read_bytes()[:400])
    with raises_naming("b.jpg"):
        read_image_folder(truncated)


# ---------------------------------------------------------------------------------------------- 7-Scenes
def make_7scenes(root: Path, n: int = 4, h: int = 24, w: int = 32, intrinsics: bool = True, seed: int = 0) -> np.ndarray:
    """Write an ``n``-frame 7-Scenes folder; returns the camera-to-world poses ``(n, 4, 4)``."""
    rng = np.random.default_rng(seed)
    c2w = random_c2w(rng, n)
    for i in range(n):
        stem = root / f"frame-{i:06d}"
        write_rgb(Path(f"{stem}.color.png"), solid(h, w, (10 * i, 20, 30)))
        raw = np.full((h, w), 1000 + 111 * i, np.uint16)
        raw[0, 0], raw[0, 1] = 0, 65535
        write_depth_mm(Path(f"{stem}.depth.png"), raw)
        write_matrix(Path(f"{stem}.pose.txt"), c2w[i])
    if intrinsics:
        write_matrix(root / "camera-intrinsics.txt", [[40.0, 0, 16], [0, 41.0, 12], [0, 0, 1]])
    return c2w


def test_7scenes_poses_depth_and_intrinsics(tmp_path):
    c2w = make_7scenes(tmp_path)
    scene = read_7scenes(tmp_path)
    assert scene.image_names == [f"frame-{i:06d}" for i in range(4)]
    for i in range(4):
        np.testing.assert_allclose(scene.cam_from_world[i], hand_inverse(c2w[i]), atol=1e-12)
    np.testing.assert_allclose(scene.depth[2, 5, 5], 1.222, rtol=1e-6)  # 1222 mm
    assert scene.depth[0, 0, 0] == 0 and scene.depth[0, 0, 1] == 0  # 0 and 65535 are invalid
    assert scene.depth.dtype == np.float32
    np.testing.assert_allclose(scene.intrinsics[0], [[40, 0, 16], [0, 41, 12], [0, 0, 1]])
    np.testing.assert_array_equal(scene.images[3, 0, 0], (30, 20, 30))
    assert scene.metadata["source"] == "7scenes" and scene.metadata["metric"] is True


def test_7scenes_default_intrinsics_stride_and_max_frames(tmp_path):
    make_7scenes(tmp_path, n=6, intrinsics=False)
    scene = read_7scenes(tmp_path, stride=2, max_frames=2)
    assert scene.image_names == ["frame-000000", "frame-000002"]
    np.testing.assert_array_equal(scene.intrinsics[0], SEVEN_SCENES_INTRINSICS)
    np.testing.assert_allclose(SEVEN_SCENES_INTRINSICS[:2], [[585, 0, 320], [0, 585, 240]])


def test_7scenes_bad_input(tmp_path):
    with raises_naming("missing"):
        read_7scenes(tmp_path / "missing")
    (tmp_path / "seq-01").mkdir()
    with raises_naming("no 7-Scenes frames", "seq-01"):
        read_7scenes(tmp_path)

    def fresh(name: str) -> Path:
        root = tmp_path / name
        make_7scenes(root, n=2)
        return root

    root = fresh("nan")
    (root / "frame-000001.pose.txt").write_text("nan 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    with raises_naming("frame-000001.pose.txt", "NaN"):
        read_7scenes(root)
    root = fresh("garbled")
    (root / "frame-000000.pose.txt").write_text("1 0 0 zero\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    with raises_naming("frame-000000.pose.txt"):
        read_7scenes(root)
    root = fresh("short")
    (root / "frame-000000.pose.txt").write_text("1 0 0 0\n0 1 0 0\n")
    with raises_naming("frame-000000.pose.txt", "8 numbers"):
        read_7scenes(root)
    root = fresh("sheared")
    write_matrix(root / "frame-000001.pose.txt", [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    with raises_naming("frame-000001.pose.txt", "rigid"):
        read_7scenes(root)
    root = fresh("nopose")
    (root / "frame-000001.pose.txt").unlink()
    with raises_naming("frame-000001.pose.txt"):
        read_7scenes(root)
    root = fresh("nodepth")
    (root / "frame-000001.depth.png").unlink()
    with raises_naming("frame-000001.depth.png"):
        read_7scenes(root)
    root = fresh("depthsize")
    write_depth_mm(root / "frame-000001.depth.png", np.ones((12, 16), np.uint16))
    with raises_naming("frame-000001.depth.png", "16x12", "32x24"):
        read_7scenes(root)
    root = fresh("depth8bit")
    Image.fromarray(np.ones((24, 32), np.uint8)).save(root / "frame-000000.depth.png")
    with raises_naming("frame-000000.depth.png", "16-bit"):
        read_7scenes(root)
    root = fresh("badcolor")
    (root / "frame-000001.color.png").write_bytes(b"\x89PNG broken")
    with raises_naming("frame-000001.color.png"):
        read_7scenes(root)
    root = fresh("colorsize")
    write_rgb(root / "frame-000001.color.png", solid(10, 10, (0, 0, 0)))
    with raises_naming("frame-000001.color.png", "10x10", "32x24"):
        read_7scenes(root)
    root = fresh("badintr")
    (root / "camera-intrinsics.txt").write_text("585 0 320\n0 585 240\n")
    with raises_naming("camera-intrinsics.txt"):
        read_7scenes(root)


@pytest.fixture
def seven_scenes_sample() -> Path:
    if not (SEVEN_SCENES_SAMPLE / "frame-000000.color.jpg").is_file():
        pytest.skip(f"7-Scenes sample not found at {SEVEN_SCENES_SAMPLE}")
    return SEVEN_SCENES_SAMPLE


def test_7scenes_real_sample_depth_reprojects_consistently(seven_scenes_sample):
    scene = read_7scenes(seven_scenes_sample)
    assert scene.num_views == 20 and (scene.height, scene.width) == (480, 640)
    assert scene.image_names[10] == "frame-000100"
    assert 0.3 < float(np.median(scene.depth[0][scene.depth[0] > 0])) < 5.0
    src, dst = 0, 10
    valid = scene.depth[src] > 0
    pts = unproject_depth(scene.depth[src], scene.intrinsics[src], scene.cam_from_world[src])[valid]
    uv, z = project(pts, scene.intrinsics[dst], scene.cam_from_world[dst])
    inside = np.isfinite(uv).all(axis=1)
    uv, z = np.round(uv[inside]).astype(np.int64), z[inside]
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < scene.width) & (uv[:, 1] >= 0) & (uv[:, 1] < scene.height)
    observed = scene.depth[dst][uv[inside, 1], uv[inside, 0]]
    hit = observed > 0
    assert hit.sum() > 20000
    error = np.abs(observed[hit] - z[inside][hit])
    assert np.median(error) < 0.05
    assert (error < 0.05).mean() > 0.7


# ---------------------------------------------------------------------------------------------- ScanNet
def make_scannet(root: Path, n: int = 4, bad: tuple[int, ...] = (), seed: int = 1) -> np.ndarray:
    """Write an ``n``-frame ScanNet export: colour 40x30, depth 20x15; returns camera-to-world poses."""
    rng = np.random.default_rng(seed)
    c2w = random_c2w(rng, n)
    for i in range(n):
        write_rgb(root / "color" / f"{i}.jpg", solid(30, 40, (20 * i, 100, 200)), quality=100)
        write_depth_mm(root / "depth" / f"{i}.png", np.full((15, 20), 2000 + i, np.uint16))
        pose = np.full((4, 4), -np.inf) if i in bad else c2w[i]
        write_matrix(root / "pose" / f"{i}.txt", pose)
    write_matrix(root / "intrinsic" / "intrinsic_color.txt", [[36, 0, 20, 0], [0, 36, 15, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    write_matrix(root / "intrinsic" / "intrinsic_depth.txt", [[18, 0, 10, 0], [0, 18.5, 7, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    return c2w


def test_scannet_resizes_colour_to_depth_and_uses_depth_intrinsics(tmp_path):
    c2w = make_scannet(tmp_path)
    scene = read_scannet(tmp_path)
    assert scene.images.shape == (4, 15, 20, 3) and scene.depth.shape == (4, 15, 20)
    np.testing.assert_allclose(scene.images[2].reshape(-1, 3).mean(0), (40, 100, 200), atol=3)
    np.testing.assert_allclose(scene.intrinsics[1], [[18, 0, 10], [0, 18.5, 7], [0, 0, 1]])
    np.testing.assert_allclose(scene.depth[3], 2.003, rtol=1e-6)
    for i in range(4):
        np.testing.assert_allclose(scene.cam_from_world[i], hand_inverse(c2w[i]), atol=1e-12)
    assert scene.image_names == ["0", "1", "2", "3"]
    assert scene.metadata["num_invalid_poses"] == 0 and scene.metadata["source"] == "scannet"
    np.testing.assert_allclose(scene.metadata["intrinsic_color"], [[36, 0, 20], [0, 36, 15], [0, 0, 1]])


def test_scannet_frames_sorted_numerically_with_stride(tmp_path):
    make_scannet(tmp_path, n=12)
    scene = read_scannet(tmp_path, stride=5)
    assert scene.image_names == ["0", "5", "10"]
    assert read_scannet(tmp_path, stride=5, max_frames=2).image_names == ["0", "5"]


def test_scannet_skips_lost_tracking(tmp_path):
    c2w = make_scannet(tmp_path, n=5, bad=(1, 3))
    with pytest.warns(UserWarning, match="skipped 2"):
        scene = read_scannet(tmp_path)
    assert scene.image_names == ["0", "2", "4"]
    assert scene.metadata["num_invalid_poses"] == 2
    np.testing.assert_allclose(scene.cam_from_world[1], hand_inverse(c2w[2]), atol=1e-12)


def test_scannet_bad_input(tmp_path):
    root = tmp_path / "allbad"
    make_scannet(root, n=2, bad=(0, 1))
    with raises_naming("pose", "invalid"):
        read_scannet(root)
    root = tmp_path / "nointr"
    make_scannet(root, n=2)
    (root / "intrinsic" / "intrinsic_depth.txt").unlink()
    with raises_naming("intrinsic_depth.txt"):
        read_scannet(root)
    root = tmp_path / "nopose"
    make_scannet(root, n=2)
    (root / "pose" / "1.txt").unlink()
    with raises_naming("1.txt"):
        read_scannet(root)
    root = tmp_path / "nodepthdir"
    make_scannet(root, n=1)
    for f in (root / "depth").iterdir():
        f.unlink()
    (root / "depth").rmdir()
    with raises_naming("depth"):
        read_scannet(root)
    root = tmp_path / "depthsize"
    make_scannet(root, n=2)
    write_depth_mm(root / "depth" / "1.png", np.ones((10, 10), np.uint16))
    with raises_naming("1.png", "10x10", "20x15"):
        read_scannet(root)


# ---------------------------------------------------------------------------------------------- TUM RGB-D
def tum_pose(t: np.ndarray) -> np.ndarray:
    """Ground-truth motion: translation linear in time, rotation about a fixed axis at constant rate."""
    t = np.atleast_1d(t)
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    angle = 0.8 * t
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    R = np.eye(3) + np.sin(angle)[:, None, None] * K + (1 - np.cos(angle))[:, None, None] * (K @ K)
    T = np.tile(np.eye(4), (len(t), 1, 1))
    T[:, :3, :3] = R
    T[:, :3, 3] = np.stack([0.5 * t, -0.2 * t, 1.0 + 0.1 * t], axis=1)
    return T


def make_tum(root: Path, rgb_t, depth_t, gt_t=None, h: int = 12, w: int = 16) -> None:
    root.mkdir(parents=True, exist_ok=True)
    rgb_lines = ["# color images", "# timestamp filename"]
    for i, t in enumerate(rgb_t):
        write_rgb(root / "rgb" / f"{t:.6f}.png", solid(h, w, (i, 50, 60)))
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
    depth_lines = ["# depth maps"]
    for i, t in enumerate(depth_t):
        write_depth_mm(root / "depth" / f"{t:.6f}.png", np.full((h, w), 5000 + 1000 * i, np.uint16))
        depth_lines.append(f"{t:.6f} depth/{t:.6f}.png")
    (root / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (root / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    if gt_t is not None:
        T = tum_pose(np.asarray(gt_t))
        q = quat_from_matrix(T[:, :3, :3])  # x y z w
        lines = ["# ground truth trajectory", "# timestamp tx ty tz qx qy qz qw"]
        lines += [f"{t:.6f} " + " ".join(f"{v:.12f}" for v in np.r_[T[k, :3, 3], q[k]]) for k, t in enumerate(gt_t)]
        (root / "groundtruth.txt").write_text("\n".join(lines) + "\n")


def test_associate_picks_nearest_within_max_dt():
    rgb = np.array([1.000, 1.033, 1.066, 1.100, 1.500, 0.900])
    depth = np.array([1.040, 0.995, 1.030, 1.070, 1.300])  # unsorted on purpose
    np.testing.assert_array_equal(associate(rgb, depth, 0.02), [1, 2, 3, -1, -1, -1])
    np.testing.assert_array_equal(associate(rgb, depth, 0.25), [1, 2, 3, 3, 4, 1])
    np.testing.assert_array_equal(associate(np.array([1.0]), np.array([1.0]), 0.0), [0])


def test_interpolate_poses_linear_and_slerp():
    times = np.array([0.0, 0.01, 0.02, 0.05])
    T = tum_pose(times)
    q = quat_from_matrix(T[:, :3, :3])
    gt = np.concatenate([T[:, :3, 3], q], axis=1)
    query = np.array([0.005, 0.02, -0.001, 0.035, 0.0137])
    poses, valid = interpolate_poses(query, times, gt, max_dt=0.012)
    np.testing.assert_array_equal(valid, [True, True, False, False, True])
    expected = tum_pose(query)
    for k in np.flatnonzero(valid):
        np.testing.assert_allclose(poses[k], expected[k, :3], atol=1e-9)
    poses, valid = interpolate_poses(np.array([0.035]), times, gt, max_dt=0.016)  # both neighbours 0.015 away
    assert valid.tolist() == [True]
    np.testing.assert_allclose(poses[0], tum_pose(0.035)[0, :3], atol=1e-9)


def test_tum_reader_association_poses_depth_scale(tmp_path):
    root = tmp_path / "rgbd_dataset_freiburg2_desk"
    rgb_t = [1.000, 1.033, 1.066, 1.100, 1.500]
    depth_t = [0.995, 1.030, 1.040, 1.070, 1.300]
    gt_t = np.round(np.arange(0.9, 1.2, 0.01), 6)
    make_tum(root, rgb_t, depth_t, gt_t)
    scene = read_tum(root)
    assert scene.image_names == ["1.000000", "1.033000", "1.066000"]
    assert scene.metadata["num_unassociated"] == 2 and scene.metadata["sensor"] == "freiburg2"
    np.testing.assert_allclose(scene.metadata["timestamps"], rgb_t[:3])
    np.testing.assert_allclose(scene.depth[:, 0, 0], [1.0, 6000 / 5000, 8000 / 5000])  # depth 0, 1, 3
    np.testing.assert_array_equal(scene.images[:, 0, 0, 0], [0, 1, 2])
    np.testing.assert_allclose(scene.intrinsics[0], TUM_INTRINSICS["freiburg2"])
    np.testing.assert_allclose(TUM_INTRINSICS["freiburg2"][:2], [[520.9, 0, 325.1], [0, 521.0, 249.7]])
    expected = tum_pose(np.array(rgb_t[:3]))
    for k in range(3):
        np.testing.assert_allclose(scene.cam_from_world[k], hand_inverse(expected[k]), atol=1e-8)
    assert read_tum(root, stride=2).image_names == ["1.000000", "1.066000"]
    assert read_tum(root, max_frames=1).image_names == ["1.000000"]


def test_tum_intrinsics_detection_override_and_no_groundtruth(tmp_path):
    for name, key in [("rgbd_dataset_freiburg1_xyz", "freiburg1"), ("fr3_office", "freiburg3"), ("my_kinect", "default")]:
        make_tum(tmp_path / name, [1.0], [1.0])
        scene = read_tum(tmp_path / name)
        np.testing.assert_array_equal(scene.intrinsics[0], TUM_INTRINSICS[key])
        assert scene.metadata["poses_known"] is False
        np.testing.assert_array_equal(scene.cam_from_world[0], np.eye(3, 4))
    np.testing.assert_allclose(TUM_INTRINSICS["default"][:2], [[525, 0, 319.5], [0, 525, 239.5]])
    scene = read_tum(tmp_path / "my_kinect", intrinsics=(500.0, 501.0, 8.0, 6.0))
    np.testing.assert_allclose(scene.intrinsics[0], [[500, 0, 8], [0, 501, 6], [0, 0, 1]])
    scene = read_tum(tmp_path / "my_kinect", intrinsics=np.array([[1.0, 0, 2], [0, 3, 4], [0, 0, 1]]))
    np.testing.assert_allclose(scene.intrinsics[0, 1, 2], 4)


def test_tum_bad_input(tmp_path):
    root = tmp_path / "far"
    make_tum(root, [1.0, 2.0], [5.0])
    with raises_naming("rgb.txt", "max_dt"):
        read_tum(root)
    root = tmp_path / "nogt"
    make_tum(root, [1.0, 2.0], [1.0, 2.0], gt_t=[10.0, 10.01])
    with raises_naming("groundtruth.txt", "max_dt"):
        read_tum(root)
    root = tmp_path / "malformed"
    make_tum(root, [1.0], [1.0])
    (root / "depth.txt").write_text("# ok\n1.0 depth/x.png extra\n")
    with raises_naming("depth.txt", "line 2"):
        read_tum(root)
    (root / "depth.txt").write_text("one depth/x.png\n")
    with raises_naming("depth.txt", "timestamp"):
        read_tum(root)
    (root / "depth.txt").write_text("# only comments\n")
    with raises_naming("depth.txt", "no entries"):
        read_tum(root)
    root = tmp_path / "gtbad"
    make_tum(root, [1.0], [1.0], gt_t=[1.0])
    (root / "groundtruth.txt").write_text("1.0 0 0 0 0 0 0 nan\n")
    with raises_naming("groundtruth.txt"):
        read_tum(root)
    root = tmp_path / "norgb"
    make_tum(root, [1.0], [1.0])
    (root / "rgb.txt").unlink()
    with raises_naming("rgb.txt"):
        read_tum(root)
    with raises_naming("intrinsics"):
        read_tum(tmp_path / "gtbad", intrinsics=(1.0, 2.0))


# ---------------------------------------------------------------------------------------------- read_scene
def test_read_scene_detects_every_folder_layout(tmp_path):
    make_7scenes(tmp_path / "seven", n=2)
    make_scannet(tmp_path / "scannet", n=2)
    make_tum(tmp_path / "tum", [1.0], [1.0])
    write_rgb(tmp_path / "photos" / "a.png", solid(8, 8, (1, 2, 3)))
    saved = read_scene(tmp_path / "photos").save(tmp_path / "saved")
    expected = {"seven": "7scenes", "scannet": "scannet", "tum": "tum", "photos": "image_folder", "saved": "image_folder"}
    for folder, source in expected.items():
        scene = read_scene(tmp_path / folder)
        assert scene.metadata["source"] == source, folder
    assert detect_layout(saved) == ("sem3r", saved)
    assert isinstance(read_scene(saved, layout="sem3r"), Scene)


def test_read_scene_options_and_errors(tmp_path):
    make_7scenes(tmp_path / "seven", n=4)
    assert read_scene(tmp_path / "seven", stride=2).num_views == 2
    assert read_scene(tmp_path / "seven", layout="7scenes", max_frames=1).num_views == 1
    with pytest.raises(Sem3RError) as info:
        read_scene(tmp_path / "seven", layout="nerf")
    message = str(info.value)
    assert "nerf" in message and all(name in message for name in LAYOUTS) and "\n" not in message
    with raises_naming("num_frames", "7scenes", "stride"):
        read_scene(tmp_path / "seven", num_frames=3)
    with raises_naming("nothing-here"):
        read_scene(tmp_path / "nothing-here")
    (tmp_path / "notes.txt").write_text("x")
    with raises_naming("notes.txt", "video"):
        read_scene(tmp_path / "notes.txt")
    (tmp_path / "blank").mkdir()
    with raises_naming("blank", "layout"):
        read_scene(tmp_path / "blank")


def test_layout_names_are_unique_and_known():
    assert len(set(LAYOUTS)) == len(LAYOUTS)
    assert all(re.fullmatch(r"[a-z0-9_]+", name) for name in LAYOUTS)


def test_colour_only_7scenes_names_are_an_image_folder(tmp_path):
    """Frames named ``frame-*.color.*`` without depth maps are read as plain images, not as 7-Scenes."""
    make_7scenes(tmp_path, n=3)
    for depth in tmp_path.glob("*.depth.png"):
        depth.unlink()
    assert detect_layout(tmp_path)[0] == "image_folder"
    scene = read_scene(tmp_path)
    assert scene.num_views == 3 and scene.depth is None


def test_image_folder_layout_skips_depth_maps(tmp_path):
    """``layout='image_folder'`` on an RGB-D sequence reads the colour frames only."""
    make_7scenes(tmp_path, n=3)
    assert detect_layout(tmp_path)[0] == "7scenes"
    scene = read_scene(tmp_path, layout="image_folder")
    assert scene.num_views == 3
    assert all(".color." in name for name in scene.image_names)
