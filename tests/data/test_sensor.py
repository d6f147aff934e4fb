"""Sensor-realistic synthetic scenes: depth noise and quantisation, holes, colour, world frame."""

from dataclasses import replace

import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene, load_ground_truth, write_dataset
from sem3r.data.synthetic.categories import CLASS_NAMES
from sem3r.data.synthetic.sensor import (
    HOLE_CAUSES,
    HOLE_RANGE,
    SENSOR_PRESETS,
    SensorConfig,
    degrade_views,
    depth_edges,
    projector_shadow,
    resolve_sensor,
)
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import camera_centers, project
from sem3r.scene import Scene

SMALL = dict(seed=1, num_views=3, height=96, width=128, num_points=20_000, camera_path="walk")
FLOOR = CLASS_NAMES.index("floor")


@pytest.fixture(scope="module")
def plain():
    return generate_scene(SynthConfig(**SMALL))


@pytest.fixture(scope="module")
def kinect():
    return generate_scene(SynthConfig(**SMALL, sensor="kinect"))


def _plane(z: float, n: int = 4, h: int = 64, w: int = 64):
    depth = np.full((n, h, w), z, np.float32)
    images = np.full((n, h, w, 3), 128, np.uint8)
    K = np.tile(np.array([[60.0, 0, w / 2], [0, 60.0, h / 2], [0, 0, 1]]), (n, 1, 1))
    return images, depth, K


# --------------------------------------------------------------------------------- config
def test_presets_and_config_round_trip():
    assert set(SENSOR_PRESETS) == {"none", "kinect"}
    assert SensorConfig().is_identity and SensorConfig.from_preset("none").is_identity
    kin = SensorConfig.from_preset("kinect", far=4.0)
    assert kin.name == "kinect" and kin.far == 4.0 and not kin.is_identity
    assert resolve_sensor(kin.to_dict()) == kin
    with pytest.raises(Sem3RError):
        resolve_sensor("lidar")
    with pytest.raises(Sem3RError):
        SensorConfig.from_preset("kinect", bogus=1)
    with pytest.raises(Sem3RError):
        SynthConfig(sensor="lidar").validate()
    with pytest.raises(Sem3RError):
        SensorConfig(material_dropout={"unobtainium": 0.5}).validate()
    cfg = SynthConfig(sensor=SensorConfig.from_preset("kinect", speckle=0.01))
    again = SynthConfig(**cfg.to_dict())
    assert again.sensor == cfg.sensor
    assert "sensor" not in SynthConfig().to_dict() and SynthConfig(sensor="kinect").to_dict()["sensor"] == "kinect"


def test_none_leaves_the_scene_unchanged(plain, kinect):
    assert plain.clean is None and plain.holes is None
    assert plain.scene.metadata["up_axis"] == "+z" and "sensor" not in plain.scene.metadata
    # the clean render kept by the sensor run is exactly the sensor-free render
    for name in ("images", "depth", "instance_masks", "semantic_masks"):
        np.testing.assert_array_equal(getattr(kinect.clean, name), getattr(plain.scene, name))
    np.testing.assert_array_equal(kinect.face_ids, plain.face_ids)
    images, depth, K = _plane(2.0)
    out = degrade_views(images, depth, K, "none", seed=3)
    np.testing.assert_array_equal(out.images, images)
    np.testing.assert_array_equal(out.depth, depth)
    assert not out.holes.any()


def test_determinism(kinect):
    again = generate_scene(SynthConfig(**SMALL, sensor="kinect"))
    for name in ("images", "depth", "cam_from_world"):
        np.testing.assert_array_equal(getattr(again.scene, name), getattr(kinect.scene, name))
    np.testing.assert_array_equal(again.cloud.xyz, kinect.cloud.xyz)
    other = generate_scene(SynthConfig(**{**SMALL, "seed": 2}, sensor="kinect"))
    assert not np.array_equal(other.scene.depth, kinect.scene.depth)


# --------------------------------------------------------------------------- depth noise
@pytest.mark.parametrize("z", [1.0, 3.0])
def test_axial_noise_matches_sigma_on_a_flat_wall(z):
    images, depth, K = _plane(z)
    cfg = SensorConfig(axial_noise=1.4e-3, noise_correlation=0.5, noise_correlation_px=3.0)
    out = degrade_views(images, depth, K, cfg, seed=0)
    err = out.depth.astype(np.float64) - z
    sigma = 1.4e-3 * z**2
    assert abs(err.std() / sigma - 1) < 0.1
    assert abs(err.mean()) < 0.1 * sigma


def test_noise_grows_with_depth_on_floor_and_walls():
    syn = generate_scene(SynthConfig(**SMALL, sensor=SensorConfig.from_preset("kinect", lateral_noise_px=0.0)))
    cfg = syn.scene.metadata["sensor_config"]
    flat = np.isin(syn.clean.semantic_masks, [FLOOR, CLASS_NAMES.index("wall")]) & (syn.scene.depth > 0)
    stds = []
    for lo, hi in ((2.0, 2.8), (4.0, 4.8)):
        sel = flat & (syn.clean.depth >= lo) & (syn.clean.depth < hi)
        assert sel.sum() > 200
        c = syn.clean.depth[sel].astype(np.float64)
        err = syn.scene.depth[sel] - c
        # expected: axial noise plus the quantisation's uniform error (step^2 / 12) and mm rounding
        expected = np.sqrt(np.mean((cfg["axial_noise"] * c**2) ** 2 + (cfg["inverse_depth_step"] * c**2) ** 2 / 12 + 1e-6 / 12))
        robust = 1.4826 * np.median(np.abs(err - np.median(err)))
        assert 0.75 < robust / expected < 1.3, (lo, robust, expected)
        stds.append(robust)
    assert stds[1] > 2 * stds[0]


def test_quantisation_in_disparity():
    n, h, w = 1, 2, 8000
    ramp = np.broadcast_to(np.linspace(0.8, 4.5, w, dtype=np.float32), (n, h, w)).copy()
    images, _, K = _plane(1.0, n, h, w)
    step = 3.0e-3
    out = degrade_views(images, ramp, K, SensorConfig(inverse_depth_step=step), seed=0)
    q = 1.0 / (out.depth.astype(np.float64) * step)
    np.testing.assert_allclose(q, np.rint(q), atol=2e-3)
    values = np.unique(out.depth)
    for z in (1.0, 4.0):
        gaps = np.diff(values)[np.abs(values[:-1] - z) < 0.1 * z]
        np.testing.assert_allclose(np.median(gaps), step * z**2, rtol=0.06)
    mm = degrade_views(images, ramp, K, "kinect", seed=0).depth
    v = mm[mm > 0].astype(np.float64) * 1000
    np.testing.assert_allclose(v, np.rint(v), atol=1e-3)


# --------------------------------------------------------------------------------- holes
def test_invalid_fraction_and_range(kinect):
    cfg = SensorConfig.from_preset("kinect")
    d, c = kinect.scene.depth, kinect.clean.depth
    valid = d > 0
    assert 0.03 < 1 - valid.mean() < 0.3
    assert kinect.scene.metadata["depth_invalid_fraction"] == pytest.approx(1 - valid.mean())
    assert d[valid].min() >= cfg.near and d[valid].max() <= cfg.far
    assert not valid[c > cfg.far * 1.1].any()
    np.testing.assert_array_equal(valid, kinect.holes == 0)
    assert kinect.holes.dtype == np.uint16 and kinect.holes.max() < 2 ** len(HOLE_CAUSES)
    # near range, on a wall in front of the camera
    images, depth, K = _plane(0.3)
    out = degrade_views(images, depth, K, "kinect", seed=0)
    assert (out.depth == 0).all() and ((out.holes & HOLE_RANGE) > 0).all()


def test_holes_concentrate_at_depth_discontinuities(kinect):
    from scipy import ndimage

    near_side, far_side = depth_edges(kinect.clean.depth, 0.1)
    edge = np.stack([ndimage.binary_dilation(e, iterations=2) for e in near_side | far_side])
    holes = (kinect.holes & ~np.uint16(HOLE_RANGE)) > 0
    assert edge.mean() > 0.01
    assert holes[edge].mean() > 4 * holes[~edge].mean()


def test_projector_shadow_width_and_side():
    """A box 1 m away in front of a wall 3 m away: a shadow on the wall left of the box,
    f * b * (1/1 - 1/3) pixels wide, none on its right."""
    h, w, f, b = 8, 200, 150.0, 0.075
    depth = np.full((1, h, w), 3.0)
    depth[:, :, 100:140] = 1.0
    shadow = projector_shadow(depth, np.array([f]), b)
    width = f * b * (1 / 1.0 - 1 / 3.0)  # 7.5 px
    cols = np.flatnonzero(shadow[0, 0])
    assert cols.max() == 99 and len(cols) == int(np.floor(width))
    assert not shadow[0, :, 100:].any()
    mirrored = projector_shadow(depth, np.array([f]), -b)
    assert np.flatnonzero(mirrored[0, 0]).min() == 140


def test_specular_and_dark_materials_lose_depth(kinect):
    holes = kinect.holes
    bits = {k: ((holes & v) > 0).mean() for k, v in HOLE_CAUSES.items()}
    assert bits["shadow"] > 0 and bits["no_hit"] == 0
    images, depth, K = _plane(2.0)
    dark = degrade_views(images, depth, K, "kinect", seed=0, albedo_map=np.full(depth.shape, 0.05))
    bright = degrade_views(images, depth, K, "kinect", seed=0, albedo_map=np.full(depth.shape, 0.8))
    glass = degrade_views(images, depth, K, "kinect", seed=0, albedo_map=np.full(depth.shape, 0.8),
                          material_kind=np.full(depth.shape, 11))  # MATERIAL_KINDS[11] == "glass"
    assert (dark.depth == 0).mean() > 0.95
    assert (bright.depth == 0).mean() < 0.05
    assert 0.8 < (glass.depth == 0).mean() < 0.99


# --------------------------------------------------------------------------------- colour
def test_colour_noise_is_mild_and_labels_exact(kinect):
    diff = np.abs(kinect.scene.images.astype(np.int16) - kinect.clean.images.astype(np.int16))
    assert 1.0 < diff.mean() < 20.0
    np.testing.assert_array_equal(kinect.scene.instance_masks, kinect.clean.instance_masks)
    np.testing.assert_array_equal(kinect.scene.semantic_masks, kinect.clean.semantic_masks)


# ---------------------------------------------------------------------------- world frame
def _check_frame(syn):
    meta = syn.scene.metadata
    assert "up" not in meta and "up_axis" not in meta
    up = np.asarray(meta["gt_up"])
    assert up.shape == (3,) and np.linalg.norm(up) == pytest.approx(1.0)
    T = np.asarray(meta["world_from_synthetic"])
    np.testing.assert_allclose(T[:3, :3] @ [0, 0, 1], up, atol=1e-12)
    floor = syn.cloud.xyz[syn.cloud.semantic_ids == FLOOR].astype(np.float64)
    h = floor @ up
    assert h.std() < 1e-3
    heights = camera_centers(syn.scene.cam_from_world) @ up - h.mean()
    assert (heights > 1.0).all() and (heights < 2.0).all()
    return up


def test_first_camera_world_frame(kinect):
    meta = kinect.scene.metadata
    assert meta["sensor"] == "kinect" and meta["world_frame"] == "first_camera" and meta["source"] == "synthetic"
    np.testing.assert_allclose(kinect.scene.cam_from_world[0], np.eye(3, 4), atol=1e-9)
    up = _check_frame(kinect)
    assert abs(up[2]) < 0.9  # not the synthetic +z any more
    assert up[1] < -0.5  # the camera is roughly upright: up is along -y


def test_random_world_frame():
    syn = generate_scene(SynthConfig(**SMALL, sensor=SensorConfig.from_preset("kinect", world_frame="random")))
    assert syn.scene.metadata["world_frame"] == "random"
    _check_frame(syn)


def test_ground_truth_consistent_after_transform(kinect):
    """GT cloud points reproject (new poses) to the clean depth of the view, and visible points
    land next to a pixel of their own instance."""
    s = kinect.scene
    h, w = s.height, s.width
    agree, total = 0, 0
    for i in range(s.num_views):
        uv, z = project(kinect.cloud.xyz, s.intrinsics[i], s.cam_from_world[i])
        inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
        uv, z, ids = uv[inside], z[inside], kinect.cloud.instance_ids[inside]
        # inverse depth is affine on a plane: bilinear interpolation of it is exact off edges
        u0, v0 = np.minimum(uv[:, 0].astype(int), w - 2), np.minimum(uv[:, 1].astype(int), h - 2)
        fu, fv = uv[:, 0] - u0, uv[:, 1] - v0
        inv = 1.0 / kinect.clean.depth[i].astype(np.float64)
        inv_z = (inv[v0, u0] * (1 - fu) * (1 - fv) + inv[v0, u0 + 1] * fu * (1 - fv)
                 + inv[v0 + 1, u0] * (1 - fu) * fv + inv[v0 + 1, u0 + 1] * fu * fv)
        visible = np.abs(1.0 / inv_z - z) < 1e-4 * z
        assert visible.sum() > 0.3 * len(z)
        near = np.rint(uv[visible]).astype(int)
        padded = np.pad(s.instance_masks[i], 1, mode="edge")
        found = np.zeros(visible.sum(), bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                found |= padded[near[:, 1] + 1 + dy, near[:, 0] + 1 + dx] == ids[visible]
        agree += found.sum()
        total += visible.sum()
    assert agree / total > 0.995
    # instance boxes are in the new frame: they hold their instance's cloud points
    table = s.instances
    for row, k in enumerate(table.ids[:5]):
        pts = kinect.cloud.xyz[kinect.cloud.instance_ids == k]
        if len(pts):
            assert (pts >= table.box_min[row] - 1e-4).all() and (pts <= table.box_max[row] + 1e-4).all()


def test_write_dataset_carries_the_sensor(tmp_path):
    config = SynthConfig(**{**SMALL, "height": 40, "width": 48, "num_points": 3000, "num_views": 2}, sensor="kinect")
    manifest = write_dataset(tmp_path, 1, config, progress=False)
    write_dataset(tmp_path, 1, config, progress=False)  # resumes with the same config
    scene = Scene.load(tmp_path / "scene_0000")
    assert scene.metadata["sensor"] == "kinect" and (scene.depth == 0).any()
    gt = load_ground_truth(tmp_path / "scene_0000")
    up = np.asarray(scene.metadata["gt_up"])
    assert (gt.cloud.xyz[gt.cloud.semantic_ids == FLOOR] @ up).std() < 1e-3
    assert manifest.is_file()


def test_cli_synth_sensor(tmp_path):
    from sem3r.cli import synth

    synth(tmp_path / "d", scenes=1, views=2, height=32, width=40, sensor="kinect")
    assert Scene.load(tmp_path / "d" / "scene_0000").metadata["sensor"] == "kinect"


def test_override_keeps_other_terms():
    """Switching one term off leaves the other terms' random draws unchanged."""
    images, depth, K = _plane(2.0)
    full = degrade_views(images, depth, K, "kinect", seed=5)
    no_speckle = degrade_views(images, depth, K, replace(SensorConfig.from_preset("kinect"), speckle=0.0), seed=5)
    np.testing.assert_array_equal(full.images, no_speckle.images)
    both = (full.depth > 0) & (no_speckle.depth > 0)
    np.testing.assert_array_equal(full.depth[both], no_speckle.depth[both])
