"""The colmap backend on small textured synthetic scenes (6 views along the ``walk`` path, 256x256).

The walk path's consecutive views overlap strongly (about 10 degrees of rotation between
neighbours), so every view registers; one run takes about two seconds on two CPU cores. Tests that
need pycolmap skip without it.
"""

import sys

import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import MissingDependencyError, Sem3RError
from sem3r.eval.camera import camera_metrics
from sem3r.geometry.camera import camera_centers, project
from sem3r.geometry.transforms import umeyama
from sem3r.reconstruct import ColmapConfig, reconstruct, run_colmap

QUIET = {"progress": False}


@pytest.fixture(scope="module")
def pycolmap():
    return pytest.importorskip("pycolmap")


@pytest.fixture(scope="module")
def scene():
    scene = generate_scene(SynthConfig(seed=0, num_views=6, height=256, width=256, camera_path="walk", num_points=0)).scene
    scene.metadata["intrinsics_known"] = True  # the renderer's exact pinhole intrinsics
    return scene


@pytest.fixture(scope="module")
def result(pycolmap, scene):
    return reconstruct(scene, "colmap", **QUIET)


def registered(out) -> np.ndarray:
    return np.array(out.metadata["registered"])


def test_registers_the_views_with_accurate_cameras(result, scene):
    reg = registered(result)
    assert reg.sum() >= 5
    metrics = camera_metrics(result.cam_from_world[reg], scene.cam_from_world[reg])
    assert metrics["rra@15"] > 0.9 and metrics["rta@15"] > 0.9


def test_result_scene_layout(result, scene):
    assert result.num_views == scene.num_views and result.image_names == scene.image_names
    assert np.array_equal(result.images, scene.images) and np.array_equal(result.instance_masks, scene.instance_masks)
    assert result.depth is None and result.world_points is None and len(result.instances) == 0
    meta = result.metadata
    assert meta["geometry"] == "colmap" and meta["metric"] is False and meta["dense"] is False
    assert meta["sfm"]["intrinsics_given"] is True and meta["sfm"]["cameras"]["1"]["model"] == "PINHOLE"
    assert np.allclose(result.intrinsics, scene.intrinsics, rtol=0, atol=1e-9)  # known intrinsics stay fixed
    assert np.allclose(result.cam_from_world[~registered(result)], np.eye(3, 4))


def test_sparse_points_lie_on_the_true_surfaces(pycolmap, scene):
    out = run_colmap(scene.images, scene.intrinsics, ColmapConfig(**QUIET))
    reg = out.registered
    assert out.points_xyz.shape[0] > 100 and np.median(out.points_error) < 1.0
    to_truth = umeyama(camera_centers(out.cam_from_world[reg]), camera_centers(scene.cam_from_world[reg]))
    points = to_truth.apply(out.points_xyz)
    uv, z = project(points, scene.intrinsics[0], scene.cam_from_world[0])
    inside = (z > 0) & (uv[:, 0] > 0) & (uv[:, 1] > 0) & (uv[:, 0] < scene.width - 1) & (uv[:, 1] < scene.height - 1)
    col, row = np.rint(uv[inside]).astype(int).T
    truth = scene.depth[0][row, col]
    relative = np.abs(z[inside] - truth) / truth
    assert inside.sum() > 50 and np.median(relative) < 0.02


def test_runs_are_reproducible(pycolmap, scene):
    a = run_colmap(scene.images, scene.intrinsics, ColmapConfig(**QUIET))
    b = run_colmap(scene.images, scene.intrinsics, ColmapConfig(**QUIET))
    assert np.array_equal(a.cam_from_world, b.cam_from_world, equal_nan=True)
    assert np.array_equal(a.points_xyz, b.points_xyz)


def test_unknown_intrinsics_are_estimated(pycolmap, scene):
    uncalibrated = scene.select_views(slice(None))
    uncalibrated.metadata["intrinsics_known"] = False
    out = reconstruct(uncalibrated, "colmap", **QUIET)
    reg = registered(out)
    assert reg.sum() >= 5 and out.metadata["sfm"]["cameras"]["1"]["model"] == "SIMPLE_RADIAL"
    assert abs(out.intrinsics[0, 0, 0] / scene.intrinsics[0, 0, 0] - 1) < 0.05
    assert np.allclose(out.intrinsics[:, :2, 2], scene.intrinsics[:, :2, 2])  # principal point at the centre
    assert camera_metrics(out.cam_from_world[reg], scene.cam_from_world[reg])["rra@15"] > 0.9


def test_per_view_intrinsics_are_kept_per_view(pycolmap, scene):
    offsets = [(0, 0), (16, 4), (8, 16), (4, 8), (16, 16), (0, 12)]  # (dx, dy) of a 240x240 crop per view
    images = np.stack([scene.images[i, dy : dy + 240, dx : dx + 240] for i, (dx, dy) in enumerate(offsets)])
    K = scene.intrinsics.copy()
    K[:, 0, 2] -= [dx for dx, _ in offsets]
    K[:, 1, 2] -= [dy for _, dy in offsets]
    out = run_colmap(images, K, ColmapConfig(**QUIET))
    assert len({c.camera_id for c in out.cameras}) == 6 and np.allclose(out.intrinsics, K, rtol=0, atol=1e-9)
    reg = out.registered
    assert reg.sum() >= 5 and camera_metrics(out.cam_from_world[reg], scene.cam_from_world[reg])["rra@5"] > 0.9


def test_sequential_matcher_matches_neighbours_only(pycolmap, scene):
    out = reconstruct(scene, "colmap", matcher="sequential", sequential_overlap=2, **QUIET)
    assert out.metadata["sfm"]["num_verified_pairs"] <= 9 and registered(out).sum() >= 5


def test_one_view_is_refused(pycolmap, scene):
    with pytest.raises(Sem3RError, match="needs at least 2 views, got 1"):
        reconstruct(scene.select_views([0]), "colmap", **QUIET)


def test_views_without_texture_register_nothing(pycolmap, scene):
    blank = scene.select_views([0, 1, 2])
    blank.images[:] = 128
    with pytest.raises(Sem3RError, match="COLMAP registered 0 of 3 views .* 0 of 3 view pairs had verified matches"):
        reconstruct(blank, "colmap", **QUIET)


def test_bad_options_are_refused():
    with pytest.raises(Sem3RError, match="unknown matcher 'vocab_tree'"):
        ColmapConfig(matcher="vocab_tree").validate()
    with pytest.raises(Sem3RError, match="intrinsics must be one of auto, known, estimate, got 'guess'"):
        ColmapConfig(intrinsics="guess").validate()
    with pytest.raises(Sem3RError, match="unknown COLMAP camera model 'FISHEYE'"):
        ColmapConfig(camera_model="FISHEYE").validate()
    with pytest.raises(Sem3RError, match="min_registered must be at least 2"):
        ColmapConfig(min_registered=1).validate()


def test_missing_pycolmap_names_the_extra(scene, monkeypatch):
    monkeypatch.setitem(sys.modules, "pycolmap", None)
    message = r"the colmap backend needs the optional package 'pycolmap': pip install 'sem3r\[sfm\]'"
    with pytest.raises(MissingDependencyError, match=message):
        reconstruct(scene.select_views([0, 1]), "colmap", **QUIET)
