"""Structure planes and gravity on hand-built clouds: a tilted room gives the tilted up."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sem3r.errors import Sem3RError
from sem3r.geometry.planes import PlaneDetectionConfig, detect_planes, fit_plane
from sem3r.instances.structure import CEILING, FLOOR, WALL, StructureConfig, detect_structure, parse_up


def _grid(u, v, origin, a, b, step=0.04):
    """Points of the parallelogram origin + s*a + t*b, s in [0, u], t in [0, v], on a grid."""
    s, t = np.meshgrid(np.arange(0, u + 1e-9, step), np.arange(0, v + 1e-9, step))
    return origin + s.reshape(-1, 1) * a + t.reshape(-1, 1) * b


def room(with_floor=True, with_ceiling=True):
    """A 4 x 3 x 2.5 m room (+z up) with a box on the floor; points, outward normals, labels (-1 box)."""
    x, y, z = np.eye(3)
    parts = []
    if with_floor:
        parts.append((_grid(4, 3, np.zeros(3), x, y), z, FLOOR))
    if with_ceiling:
        parts.append((_grid(4, 3, np.array([0, 0, 2.5]), x, y), -z, CEILING))
    parts += [(_grid(4, 2.5, np.zeros(3), x, z), y, WALL), (_grid(4, 2.5, np.array([0, 3, 0]), x, z), -y, WALL),
              (_grid(3, 2.5, np.zeros(3), y, z), x, WALL), (_grid(3, 2.5, np.array([4, 0, 0]), y, z), -x, WALL)]
    parts += [(_grid(0.6, 0.6, np.array([1.5, 1.2, 0.7]), x, y, 0.02), z, -1),
              (_grid(0.6, 0.7, np.array([1.5, 1.2, 0.0]), x, z, 0.02), -y, -1)]
    pts = np.concatenate([p for p, _, _ in parts])
    nrm = np.concatenate([np.tile(n, (len(p), 1)) for p, n, _ in parts])
    lab = np.concatenate([np.full(len(p), k) for p, _, k in parts])
    return pts, nrm, lab


def cameras(rotation, pitch_deg=25.0, count=6):
    """Cameras 1.5 m high along a line, looking +y and pitched down by ``pitch_deg``, in the rotated frame."""
    out = []
    for i in range(count):
        centre = np.array([1.0 + 0.4 * i, 0.5, 1.5])
        p = np.deg2rad(pitch_deg)
        forward = np.array([0, np.cos(p), -np.sin(p)])
        right = np.array([1.0, 0, 0])
        down = np.cross(forward, right)
        r_wc = np.stack([right, down, forward])  # rows: camera axes in the room frame
        r = r_wc @ rotation.T
        out.append(np.c_[r, -r @ (rotation @ centre)])
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tilted_room_gives_the_tilted_up_within_a_degree(seed):
    rot = Rotation.random(random_state=seed).as_matrix()
    pts, nrm, lab = room()
    cams = cameras(rot)
    s = detect_structure(pts @ rot.T, nrm @ rot.T, cams)
    true_up = rot @ np.array([0.0, 0, 1])
    assert s.up_source == "floor" and s.note == ""
    assert np.degrees(np.arccos(np.clip(s.up @ true_up, -1, 1))) < 1.0
    assert 20 < s.camera_up_error < 30  # the cameras' mean up is off by their pitch
    assert s.floor_height == pytest.approx(0.0, abs=0.02)
    # structure labels: floor, walls, ceiling found; the box is not structure
    assert (s.labels[lab == -1] == -1).mean() > 0.95
    for cls in (FLOOR, WALL, CEILING):
        assert (s.labels[lab == cls] == cls).mean() > 0.95


def test_box_top_is_a_horizontal_plane_not_floor():
    pts, nrm, lab = room()
    s = detect_structure(pts, nrm, cameras(np.eye(3)))
    assert "horizontal" in s.kinds  # the box top has the floor behind it: not a boundary
    assert sorted(k for k in s.kinds if k != "horizontal" and k != "vertical") == ["ceiling", "floor"] + ["wall"] * 4


def test_no_floor_falls_back_to_ceiling_then_cameras():
    pts, nrm, _ = room(with_floor=False)
    s = detect_structure(pts, nrm, cameras(np.eye(3)))
    assert s.up_source == "ceiling" and "ceiling" in s.note
    assert s.up @ np.array([0, 0, 1.0]) > np.cos(np.deg2rad(1))
    pts, nrm, _ = room(with_floor=False, with_ceiling=False)
    s = detect_structure(pts, nrm, cameras(np.eye(3)))
    assert s.up_source == "cameras" and "--up" in s.note
    assert s.camera_up_error == pytest.approx(0.0, abs=1e-6)


def test_given_up_overrides_the_estimate():
    pts, nrm, _ = room()
    s = detect_structure(pts, nrm, cameras(np.eye(3)), StructureConfig(up=(0, 1, 0)))
    assert s.up_source == "given" and s.up.tolist() == [0.0, 1.0, 0.0]


def test_bad_input():
    pts, nrm, _ = room()
    bad = pts.copy()
    bad[0, 0] = np.nan
    with pytest.raises(Sem3RError, match="NaN"):
        detect_structure(bad, nrm, cameras(np.eye(3)))
    with pytest.raises(Sem3RError, match="at least 3"):
        detect_structure(np.zeros((0, 3)), np.zeros((0, 3)), cameras(np.eye(3)))
    with pytest.raises(Sem3RError, match="unknown up axis"):
        parse_up("up")
    with pytest.raises(Sem3RError, match="non-zero"):
        parse_up("0,0,0")


def test_planes_found_with_noise_adapted_band():
    rng = np.random.default_rng(0)
    floor = np.c_[rng.uniform(0, 3, (4000, 2)), rng.normal(0, 0.01, 4000)]  # 1 cm noise
    n, d = fit_plane(floor)
    assert abs(abs(n[2]) - 1) < 1e-3
    planes = detect_planes(floor, np.tile([0, 0, 1.0], (4000, 1)), PlaneDetectionConfig(seed=1))
    assert len(planes) == 1 and len(planes[0].inliers) > 0.98 * 4000
    assert 0.02 < planes[0].band(None) <= 0.04  # about 3 sigma, not the 1 cm of exact data
    # with ranges, the band grows as the square of the range (depth-sensor noise)
    ranges = np.where(floor[:, 0] < 1.5, 1.0, 2.0)
    noisy = np.c_[floor[:, :2], rng.normal(0, 0.01, 4000) * ranges**2]
    plane = detect_planes(noisy, np.tile([0, 0, 1.0], (4000, 1)), PlaneDetectionConfig(seed=1), ranges)[0]
    assert len(plane.inliers) > 0.97 * 4000
    assert plane.band(np.array([2.0])) == pytest.approx(4 * plane.band(np.array([1.0])), rel=1e-6)


def test_gravity_aligned_plane_is_plumb_and_through_its_inliers():
    from sem3r.geometry.planes import Plane
    from sem3r.instances.structure import _gravity_aligned

    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(0, 4, 500), 3 + rng.normal(0, 0.03, 500), rng.uniform(0, 2.5, 500)]  # noisy plumb wall y = 3
    tilted = np.array([0.0, -1.0, -0.1]) / np.linalg.norm([0.0, -1.0, -0.1])  # a fit 6 degrees off plumb
    plane = Plane(tilted, float(-np.median(pts @ tilted)), np.arange(500), 0.01)
    out = _gravity_aligned(plane, pts, np.array([0.0, 0, 1]), StructureConfig())
    assert abs(out.normal @ [0, 0, 1]) < 1e-12 and out.normal[1] == pytest.approx(-1.0)
    assert -out.offset / out.normal[1] == pytest.approx(3.0, abs=0.01)
    oblique = Plane(np.array([0.0, -0.8, -0.6]), 1.0, np.arange(500), 0.01)  # 37 degrees: not a wall, left alone
    assert _gravity_aligned(oblique, pts, np.array([0.0, 0, 1]), StructureConfig()) is oblique


@pytest.mark.parametrize("tilt", [3, 9])
def test_a_wall_that_really_leans_keeps_its_fit(tilt):
    # made plumb, a wall leaning 9 degrees would have its lower half behind the plane and stop being a wall
    pts, nrm, lab = room()
    back = (np.abs(pts[:, 1] - 3) < 1e-9) & (lab == WALL)
    t = np.tan(np.deg2rad(tilt))
    pts[back, 1] -= pts[back, 2] * t
    nrm[back] = np.array([0, -1.0, -t]) / np.hypot(1, t)
    s = detect_structure(pts, nrm, cameras(np.eye(3)))
    assert (s.labels[back] == WALL).mean() > 0.95
    assert sorted(k for k in s.kinds if k in ("floor", "wall", "ceiling")) == ["ceiling", "floor"] + ["wall"] * 4
