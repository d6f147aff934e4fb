"""Read a 7-Scenes sequence (also the layout of 3D-Match / tsdf-fusion samples) into a Scene."""

from __future__ import annotations

import os
import re

import numpy as np

from sem3r.data.readers.common import (
    intrinsics_matrix,
    load_frames,
    read_matrix,
    require_dir,
    require_file,
    rigid_poses,
    select_frames,
    tile,
)
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import invert_pose
from sem3r.scene import Scene

SEVEN_SCENES_INTRINSICS = intrinsics_matrix(585.0, 585.0, 320.0, 240.0)
"""Intrinsics the 7-Scenes authors give for their 640x480 Kinect frames (used without an intrinsics file)."""

_FRAME = re.compile(r"^frame-(\d+)\.color\.(png|jpg|jpeg)$", re.IGNORECASE)


def read_7scenes(path: str | os.PathLike, stride: int = 1, max_frames: int | None = None) -> Scene:
    """Read a 7-Scenes / tsdf-fusion sequence folder.

    Layout: ``frame-XXXXXX.color.{png,jpg}``, ``frame-XXXXXX.depth.png`` (uint16 millimetres;
    0 and 65535 are invalid) and ``frame-XXXXXX.pose.txt`` (4x4 camera-to-world, inverted here to
    ``cam_from_world``), plus an optional ``camera-intrinsics.txt`` (3x3); without it the 7-Scenes
    values ``fx = fy = 585, cx = 320, cy = 240`` are used. Depth is taken at the colour resolution
    as the dataset ships it (the sensor's depth is not re-registered to the colour camera).

    Args:
        path: the sequence folder (e.g. ``chess/seq-01``).
        stride: keep every ``stride``-th frame.
        max_frames: then keep at most the first ``max_frames``.

    Returns:
        A metric Scene with ``images (N, H, W, 3)``, ``depth (N, H, W)`` metres and
        ``cam_from_world (N, 3, 4)``; ``image_names`` like ``frame-000010``.

    Raises:
        Sem3RError: missing folder, no frames, a missing depth or pose file, a pose with NaN/inf or
            not rigid, an unreadable image, or a depth map of another size than its colour image.

    Example:
        >>> scene = read_7scenes("7scenes/chess/seq-01", stride=10)  # doctest: +SKIP
    """
    folder = require_dir(path, "7-Scenes folder")
    frames = sorted(
        ((int(m.group(1)), p) for p in folder.iterdir() if (m := _FRAME.match(p.name)) and p.is_file()),
        key=lambda item: item[0],
    )
    if not frames:
        hint = "; pass one sequence folder such as 'seq-01'" if any(folder.glob("seq-*")) else ""
        raise Sem3RError(f"no 7-Scenes frames (frame-XXXXXX.color.png/jpg) in '{folder}'{hint}")
    frames = [frames[i] for i in select_frames(len(frames), stride, max_frames)]
    stems = [p.name.split(".")[0] for _, p in frames]
    color = [p for _, p in frames]
    depth = [require_file(folder / f"{s}.depth.png", "7-Scenes depth map") for s in stems]
    pose_files = [folder / f"{s}.pose.txt" for s in stems]
    world_from_cam = rigid_poses(np.stack([read_matrix(f, (4, 4), "pose file") for f in pose_files]), pose_files)
    intr_file = folder / "camera-intrinsics.txt"
    K = read_matrix(intr_file, (3, 3), "intrinsics file") if intr_file.exists() else SEVEN_SCENES_INTRINSICS
    if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise Sem3RError(f"intrinsics file '{intr_file}' does not hold a valid 3x3 camera matrix")
    images, depth_m = load_frames(color, depth, depth_scale=1000.0, desc="reading 7-Scenes")
    return Scene(
        images=images,
        intrinsics=tile(K, len(color)),
        cam_from_world=invert_pose(world_from_cam),
        depth=depth_m,
        image_names=stems,
        metadata={
            "source": "7scenes",
            "source_path": str(folder),
            "metric": True,
            "intrinsics_known": True,
            "poses_known": True,
            "frame_ids": [i for i, _ in frames],
        },
    )
