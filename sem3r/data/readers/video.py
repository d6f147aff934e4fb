"""Read frames sampled evenly from a video file into a Scene (PyAV, the ``video`` extra)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sem3r.data.readers.common import (
    PROGRESS_MIN_FRAMES,
    default_intrinsics,
    even_indices,
    identity_poses,
    one_line,
    require_file,
    tile,
)
from sem3r.errors import Sem3RError, require
from sem3r.scene import Scene

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts")
"""File extensions (lower case) recognised as videos by :func:`sem3r.data.readers.read_scene`."""


def _count_frames(av, path: Path) -> int:
    """Number of video frames: the container's count, else the number of video packets."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)


def _decode(av, path: Path, wanted: np.ndarray) -> tuple[dict[int, np.ndarray], int, float | None]:
    """Decode up to the last wanted frame index.

    Returns:
        ``{index: (H, W, 3) uint8}`` for the wanted indices reached (display rotation applied), the
        number of frames decoded, and the average frame rate (``None`` when unknown).
    """
    keep = set(wanted.tolist())
    last = int(wanted[-1])
    frames: dict[int, np.ndarray] = {}
    decoded = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate) if stream.average_rate else None
        bar = tqdm(total=last + 1, desc="decoding video", unit="frame", leave=False, disable=last + 1 < PROGRESS_MIN_FRAMES)
        with bar:
            for index, frame in enumerate(container.decode(stream)):
                decoded = index + 1
                bar.update(1)
                if index in keep:
                    rgb = frame.to_ndarray(format="rgb24")
                    turns = int(round((frame.rotation or 0) / 90.0)) % 4
                    frames[index] = np.ascontiguousarray(np.rot90(rgb, turns))
                if index >= last:
                    break
    return frames, decoded, fps


def read_video(path: str | os.PathLike, num_frames: int = 16) -> Scene:
    """Read ``num_frames`` frames spread evenly over a whole video.

    Frame indices are ``round(linspace(0, F - 1, num_frames))`` for a video of ``F`` frames (the
    container's frame count, or the number of video packets when the container does not store
    one); a video shorter than ``num_frames`` gives all its frames. The display rotation of phone
    videos is applied. Cameras are unknown: intrinsics are the default guess of
    :func:`~sem3r.data.readers.common.default_intrinsics` and poses identity.

    Args:
        path: video file (anything FFmpeg decodes: mp4, mov, mkv, avi, webm ...).
        num_frames: number of frames to keep.

    Returns:
        A Scene with ``images (N, H, W, 3) uint8``; ``image_names`` are ``frame_000123`` (the
        frame's index in the video); ``metadata['frame_indices']`` and ``metadata['fps']``.

    Raises:
        MissingDependencyError: PyAV is not installed (``pip install 'sem3r[video]'``).
        Sem3RError: missing file, no video stream, or a file FFmpeg cannot decode.

    Example:
        >>> scene = read_video("walkthrough.mp4", num_frames=24)  # doctest: +SKIP
    """
    av = require("av", "video", "reading videos")
    path = require_file(path, "video")
    if num_frames < 1:
        raise Sem3RError(f"num_frames must be at least 1, got {num_frames}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise Sem3RError(f"video '{path}' has no video stream")
        total = _count_frames(av, path)
        if total == 0:
            raise Sem3RError(f"video '{path}' has no frames")
        wanted = even_indices(total, num_frames)
        frames, decoded, fps = _decode(av, path, wanted)
        if decoded < total and len(frames) < len(wanted):
            if decoded == 0:
                raise Sem3RError(f"video '{path}' has no decodable frames")
            wanted = even_indices(decoded, num_frames)
            frames, decoded, fps = _decode(av, path, wanted)
    except av.FFmpegError as exc:
        raise Sem3RError(f"cannot decode video '{path}': {one_line(exc)}") from None
    indices = sorted(frames)
    h, w = frames[indices[0]].shape[:2]
    for i in indices:
        if frames[i].shape[:2] != (h, w):
            raise Sem3RError(f"video '{path}' changes frame size from {w}x{h} to {frames[i].shape[1]}x{frames[i].shape[0]} at frame {i}")
    images = np.stack([frames[i] for i in indices])
    return Scene(
        images=images,
        intrinsics=tile(default_intrinsics(h, w), len(indices)),
        cam_from_world=identity_poses(len(indices)),
        image_names=[f"frame_{i:06d}" for i in indices],
        metadata={
            "source": "video",
            "source_path": str(path),
            "metric": False,
            "intrinsics_known": False,
            "poses_known": False,
            "frame_indices": indices,
            "fps": fps,
        },
    )
