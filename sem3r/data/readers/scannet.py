"""Read a ScanNet scene exported by its SensReader (``color/``, ``depth/``, ``pose/``, ``intrinsic/``)."""

from __future__ import annotations

import os
import warnings

import numpy as np

from sem3r.data.readers.common import (
    finite_poses,
    image_size,
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


def read_scannet(path: str | os.PathLike, stride: int = 1, max_frames: int | None = None) -> Scene:
    """Read an exported ScanNet scene.

    Layout: ``color/N.jpg`` (1296x968), ``depth/N.png`` (640x480, uint16 millimetres, 0 invalid),
    ``pose/N.txt`` (4x4 camera-to-world) and ``intrinsic/intrinsic_depth.txt`` (4x4, required;
    ``intrinsic_color.txt`` is kept in ``metadata['intrinsic_color']`` when present).

    Colour and depth differ in size. Following common practice for ScanNet (the exported depth is
    registered to the colour view), each colour image is resized to the depth resolution and the
    *depth* intrinsics describe the Scene, so depth is never interpolated.

    ScanNet marks frames where tracking was lost with ``-inf`` (or NaN) poses; those frames are
    skipped, counted in ``metadata['num_invalid_poses']`` and reported with a warning. Frames are
    selected by ``stride`` over all frames (frame numbers stay multiples of it), invalid ones are
    dropped, then ``max_frames`` cuts the rest.

    Args:
        path: the scene's export folder (holding ``color/``, ``depth/``, ``pose/``, ``intrinsic/``).
        stride: keep every ``stride``-th frame.
        max_frames: then keep at most the first ``max_frames``.

    Returns:
        A metric Scene at the depth resolution; ``image_names`` are the frame numbers.

    Raises:
        Sem3RError: missing folders or files, every pose invalid, an unparsable pose, or an
            unreadable image.

    Example:
        >>> scene = read_scannet("scans/scene0000_00/export", stride=20)  # doctest: +SKIP
    """
    root = require_dir(path, "ScanNet folder")
    color_dir, depth_dir, pose_dir = (require_dir(root / d, "ScanNet folder") for d in ("color", "depth", "pose"))
    files = {int(p.stem): p for p in color_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.stem.isdigit()}
    if not files:
        raise Sem3RError(f"no ScanNet colour frames (N.jpg) in '{color_dir}'")
    K_depth = read_matrix(root / "intrinsic" / "intrinsic_depth.txt", (4, 4), "intrinsics file")[:3, :3]
    color_file = root / "intrinsic" / "intrinsic_color.txt"
    K_color = read_matrix(color_file, (4, 4), "intrinsics file")[:3, :3] if color_file.exists() else None
    ids = sorted(files)
    ids = [ids[i] for i in select_frames(len(ids), stride, None)]
    pose_files = [pose_dir / f"{files[i].stem}.txt" for i in ids]
    poses = np.stack([read_matrix(f, (4, 4), "pose file") for f in pose_files])
    valid = finite_poses(poses)
    if not valid.any():
        raise Sem3RError(f"every selected pose in '{pose_dir}' is invalid (-inf/NaN: tracking lost)")
    num_invalid = int((~valid).sum())
    if num_invalid:
        warnings.warn(f"skipped {num_invalid} ScanNet frames with invalid (-inf/NaN) poses in '{pose_dir}'", stacklevel=2)
    keep = np.flatnonzero(valid)[select_frames(int(valid.sum()), 1, max_frames)]
    ids = [ids[i] for i in keep]
    world_from_cam = rigid_poses(poses[keep], [pose_files[i] for i in keep])
    color = [files[i] for i in ids]
    depth = [require_file(depth_dir / f"{files[i].stem}.png", "ScanNet depth map") for i in ids]
    depth_hw = image_size(depth[0])
    images, depth_m = load_frames(color, depth, depth_scale=1000.0, resize=depth_hw, desc="reading ScanNet")
    metadata = {
        "source": "scannet",
        "source_path": str(root),
        "metric": True,
        "intrinsics_known": True,
        "poses_known": True,
        "num_invalid_poses": num_invalid,
        "frame_ids": ids,
    }
    if K_color is not None:
        metadata["intrinsic_color"] = K_color.tolist()
    return Scene(
        images=images,
        intrinsics=tile(K_depth, len(ids)),
        cam_from_world=invert_pose(world_from_cam),
        depth=depth_m,
        image_names=[str(i) for i in ids],
        metadata=metadata,
    )
