"""Read a TUM RGB-D sequence (``rgb.txt``, ``depth.txt``, ``groundtruth.txt``) into a Scene."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from sem3r.data.readers.common import (
    intrinsics_matrix,
    load_frames,
    one_line,
    require_dir,
    require_file,
    select_frames,
    tile,
)
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import invert_pose
from sem3r.geometry.transforms import matrix_from_quat
from sem3r.scene import Scene

TUM_INTRINSICS = {
    "freiburg1": intrinsics_matrix(517.3, 516.5, 318.6, 255.3),
    "freiburg2": intrinsics_matrix(520.9, 521.0, 325.1, 249.7),
    "freiburg3": intrinsics_matrix(535.4, 539.2, 320.1, 247.6),
    "default": intrinsics_matrix(525.0, 525.0, 319.5, 239.5),
}
"""Colour-camera intrinsics published for the TUM RGB-D sensors, and the ROS default for others."""

TUM_DEPTH_SCALE = 5000.0
"""Raw TUM depth units per metre."""

_SENSOR = re.compile(r"(?:^|[^a-z0-9])(?:freiburg|fr)([123])(?![0-9])")


def tum_sensor(path: str | os.PathLike) -> str:
    """``"freiburg1"``, ``"freiburg2"``, ``"freiburg3"`` from a sequence folder name, else ``"default"``.

    Example:
        >>> tum_sensor("data/rgbd_dataset_freiburg3_long_office_household")
        'freiburg3'
    """
    match = _SENSOR.search(Path(path).resolve().name.lower())
    return f"freiburg{match.group(1)}" if match else "default"


def read_tum_list(path: str | os.PathLike, num_values: int | None = None) -> tuple[np.ndarray, list[list[str]]]:
    """Parse a TUM list file: ``timestamp value...`` per line, ``#`` comments and blank lines skipped.

    Args:
        path: ``rgb.txt``, ``depth.txt`` or ``groundtruth.txt``.
        num_values: required number of values after the timestamp (``None``: at least one).

    Returns:
        ``timestamps (M,) float64`` and the ``M`` rows as strings (the timestamp as written, then
        the values).
    """
    path = require_file(path, "TUM list file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise Sem3RError(f"cannot read TUM list file '{path}': {one_line(exc)}") from None
    stamps, rows = [], []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if (num_values is None and len(parts) < 2) or (num_values is not None and len(parts) != num_values + 1):
            expected = "at least 2" if num_values is None else str(num_values + 1)
            raise Sem3RError(f"line {number} of '{path}' has {len(parts)} fields, expected {expected}")
        try:
            stamps.append(float(parts[0]))
        except ValueError:
            raise Sem3RError(f"line {number} of '{path}' does not start with a timestamp: '{parts[0]}'") from None
        rows.append(parts)
    if not stamps:
        raise Sem3RError(f"TUM list file '{path}' has no entries")
    return np.asarray(stamps, np.float64), rows


def associate(query: np.ndarray, reference: np.ndarray, max_dt: float) -> np.ndarray:
    """Nearest reference timestamp for every query timestamp.

    Args:
        query: ``(Q,)`` timestamps (seconds).
        reference: ``(M,)`` timestamps, any order.
        max_dt: largest accepted ``|query - reference|``.

    Returns:
        ``(Q,) int64`` index into ``reference`` of the nearest timestamp, ``-1`` where the nearest
        is farther than ``max_dt``. Several queries may share one reference (no one-to-one matching).

    Example:
        >>> associate(np.array([0.9, 2.0, 5.0]), np.array([1.0, 2.04, 3.0]), 0.05).tolist()
        [-1, 1, -1]
    """
    query = np.asarray(query, np.float64)
    order = np.argsort(reference, kind="stable")
    ref = np.asarray(reference, np.float64)[order]
    right = np.clip(np.searchsorted(ref, query), 0, len(ref) - 1)
    left = np.clip(right - 1, 0, len(ref) - 1)
    nearest = np.where(np.abs(ref[right] - query) < np.abs(query - ref[left]), right, left)
    return np.where(np.abs(ref[nearest] - query) <= max_dt, order[nearest], -1)


def _slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit quaternions ``(Q, 4)`` by weights ``(Q,)`` (shortest arc)."""
    dot = np.einsum("qi,qi->q", q0, q1)
    q1 = np.where(dot[:, None] < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    small = sin < 1e-9
    safe = np.where(small, 1.0, sin)
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / safe)
    b = np.where(small, w, np.sin(w * theta) / safe)
    q = a[:, None] * q0 + b[:, None] * q1
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def interpolate_poses(query: np.ndarray, times: np.ndarray, poses: np.ndarray, max_dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth poses at query times, interpolated between the two bracketing samples.

    Translation is interpolated linearly and rotation by slerp between the last sample at or
    before the query and the first one after it; both must lie within ``max_dt`` of the query
    (a sample exactly at the query time is used alone). This is more accurate than the nearest
    sample for a 30 Hz camera against 100 Hz motion capture, and refuses to bridge tracking gaps.

    Args:
        query: ``(Q,)`` timestamps.
        times: ``(G,)`` ground-truth timestamps, any order.
        poses: ``(G, 7)`` ``tx ty tz qx qy qz qw`` (TUM order, world_from_cam).
        max_dt: largest accepted distance to each bracketing sample.

    Returns:
        ``world_from_cam (Q, 3, 4) float64`` and ``valid (Q,) bool``; invalid rows are identity.
    """
    order = np.argsort(times, kind="stable")
    t = np.asarray(times, np.float64)[order]
    pose = np.asarray(poses, np.float64)[order]
    query = np.asarray(query, np.float64)
    j = np.searchsorted(t, query, side="right")
    i0 = np.clip(j - 1, 0, len(t) - 1)
    i1 = np.clip(j, 0, len(t) - 1)
    t0, t1 = t[i0], t[i1]
    exact = t0 == query
    valid = (j >= 1) & (query - t0 <= max_dt) & (exact | ((t1 > query) & (t1 - query <= max_dt)))
    w = np.where(exact | (t1 <= t0), 0.0, (query - t0) / np.where(t1 > t0, t1 - t0, 1.0))
    q0 = pose[i0, 3:] / np.linalg.norm(pose[i0, 3:], axis=1, keepdims=True)
    q1 = pose[i1, 3:] / np.linalg.norm(pose[i1, 3:], axis=1, keepdims=True)
    out = np.tile(np.eye(3, 4), (len(query), 1, 1))
    if valid.any():
        out[valid, :, :3] = matrix_from_quat(_slerp(q0[valid], q1[valid], w[valid]))
        out[valid, :, 3] = (1.0 - w[valid, None]) * pose[i0[valid], :3] + w[valid, None] * pose[i1[valid], :3]
    return out, valid


def _resolve_intrinsics(
    intrinsics: tuple[float, float, float, float] | np.ndarray | None, folder: Path
) -> tuple[np.ndarray, str]:
    if intrinsics is None:
        sensor = tum_sensor(folder)
        return TUM_INTRINSICS[sensor], sensor
    K = np.asarray(intrinsics, np.float64)
    if K.shape == (4,):
        K = intrinsics_matrix(*K)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise Sem3RError(f"intrinsics must be (fx, fy, cx, cy) or a 3x3 matrix with positive focal lengths, got shape {K.shape}")
    return K, "user"


def read_tum(
    path: str | os.PathLike,
    max_dt: float = 0.02,
    stride: int = 1,
    max_frames: int | None = None,
    intrinsics: tuple[float, float, float, float] | np.ndarray | None = None,
) -> Scene:
    """Read a TUM RGB-D sequence folder.

    Every ``rgb.txt`` entry is paired with the nearest ``depth.txt`` entry and with the
    ground-truth pose interpolated at its timestamp (:func:`interpolate_poses`), each within
    ``max_dt`` seconds; entries that cannot be paired are dropped and counted in
    ``metadata['num_unassociated']``. ``groundtruth.txt`` lines are
    ``timestamp tx ty tz qx qy qz qw`` (camera-to-world), inverted here to ``cam_from_world``;
    without ``groundtruth.txt`` (the benchmark's hidden sequences) poses are identity and
    ``metadata['poses_known']`` is ``False``. Depth PNGs hold ``metres * 5000``.

    Intrinsics default to the published values of the sensor named in the folder name
    (``freiburg1``/``fr1``, ``freiburg2``, ``freiburg3``; :data:`TUM_INTRINSICS`), else the ROS
    default ``525, 525, 319.5, 239.5``. The lens distortion of freiburg1/2 is not modelled.

    Args:
        path: the sequence folder (e.g. ``rgbd_dataset_freiburg1_xyz``).
        max_dt: association tolerance in seconds.
        stride: keep every ``stride``-th associated frame.
        max_frames: then keep at most the first ``max_frames``.
        intrinsics: ``(fx, fy, cx, cy)`` or a ``(3, 3)`` matrix overriding the defaults.

    Returns:
        A metric Scene; ``image_names`` are the rgb timestamps as written in ``rgb.txt``;
        ``metadata['timestamps']`` holds them as floats.

    Raises:
        Sem3RError: missing folder or list files, malformed lines, no frame that can be associated,
            an unreadable image or a depth map of another size.

    Example:
        >>> scene = read_tum("rgbd_dataset_freiburg1_desk", stride=5)  # doctest: +SKIP
    """
    folder = require_dir(path, "TUM folder")
    if max_dt < 0:
        raise Sem3RError(f"max_dt must be >= 0, got {max_dt}")
    K, sensor = _resolve_intrinsics(intrinsics, folder)
    rgb_t, rgb_rows = read_tum_list(folder / "rgb.txt", 1)
    depth_t, depth_rows = read_tum_list(folder / "depth.txt", 1)
    depth_idx = associate(rgb_t, depth_t, max_dt)
    valid = depth_idx >= 0
    if not valid.any():
        raise Sem3RError(f"no entry of '{folder / 'rgb.txt'}' has a depth.txt timestamp within max_dt={max_dt} s")
    gt_file = folder / "groundtruth.txt"
    poses_known = gt_file.exists()
    world_from_cam = np.tile(np.eye(3, 4), (len(rgb_t), 1, 1))
    if poses_known:
        gt_t, gt_rows = read_tum_list(gt_file, 7)
        try:
            gt = np.array([row[1:] for row in gt_rows], np.float64)
        except ValueError:
            raise Sem3RError(f"'{gt_file}' has a non-numeric pose value") from None
        if not np.isfinite(gt).all() or (np.linalg.norm(gt[:, 3:], axis=1) == 0).any():
            raise Sem3RError(f"'{gt_file}' has a NaN/inf value or a zero quaternion")
        world_from_cam, has_pose = interpolate_poses(rgb_t, gt_t, gt, max_dt)
        valid &= has_pose
        if not valid.any():
            raise Sem3RError(f"no entry of '{folder / 'rgb.txt'}' has depth and ground truth in '{gt_file}' within max_dt={max_dt} s")
    frames = np.flatnonzero(valid)[select_frames(int(valid.sum()), stride, max_frames)]
    color = [folder / rgb_rows[i][1] for i in frames]
    depth = [folder / depth_rows[depth_idx[i]][1] for i in frames]
    images, depth_m = load_frames(color, depth, depth_scale=TUM_DEPTH_SCALE, desc="reading TUM RGB-D")
    return Scene(
        images=images,
        intrinsics=tile(K, len(frames)),
        cam_from_world=invert_pose(world_from_cam[frames]),
        depth=depth_m,
        image_names=[rgb_rows[i][0] for i in frames],
        metadata={
            "source": "tum",
            "source_path": str(folder),
            "metric": True,
            "intrinsics_known": True,
            "poses_known": poses_known,
            "sensor": sensor,
            "num_unassociated": int((~valid).sum()),
            "timestamps": rgb_t[frames].tolist(),
        },
    )
