"""Readers that turn data on disk into a :class:`~sem3r.scene.Scene`.

One module per layout; :func:`read_scene` picks the reader by name or detects it:

============  ==============================================================  ==============================
layout        what is on disk                                                 reader
============  ==============================================================  ==============================
sem3r         ``scene.json`` written by :meth:`Scene.save`                     :meth:`Scene.load`
7scenes       ``frame-XXXXXX.color.png|jpg``, ``.depth.png``, ``.pose.txt``    :func:`read_7scenes`
scannet       ``color/``, ``depth/``, ``pose/``, ``intrinsic/`` (SensReader)   :func:`read_scannet`
tum           ``rgb.txt``, ``depth.txt``, ``groundtruth.txt``                  :func:`read_tum`
colmap        ``cameras``/``images``/``points3D`` ``.bin|.txt`` (or sparse/0)  :func:`read_colmap`
video         a video file (mp4, mov, mkv, ...)                               :func:`read_video`
image_folder  a folder of jpg/png/webp/bmp/tif images                         :func:`read_image_folder`
============  ==============================================================  ==============================

Every reader returns images ``uint8 (N, H, W, 3)``, metric depth ``float32 (N, H, W)`` in metres
(0 = invalid) where the layout has depth, OpenCV ``cam_from_world`` and intrinsics, and sets
``metadata['source']`` (the layout name) and ``metadata['metric']``. Bad input raises
:class:`~sem3r.errors.Sem3RError` with a one-line message naming the file.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Callable

from sem3r.data.readers.colmap import (
    CAMERA_MODELS,
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    read_colmap,
    read_colmap_model,
    write_colmap_binary,
    write_colmap_text,
)
from sem3r.data.readers.common import IMAGE_EXTENSIONS, list_images
from sem3r.data.readers.image_folder import read_image_folder
from sem3r.data.readers.scannet import read_scannet
from sem3r.data.readers.sevenscenes import SEVEN_SCENES_INTRINSICS, read_7scenes
from sem3r.data.readers.tum import TUM_INTRINSICS, associate, interpolate_poses, read_tum
from sem3r.data.readers.video import VIDEO_EXTENSIONS, read_video
from sem3r.errors import Sem3RError
from sem3r.scene import Scene

LAYOUTS = ("sem3r", "7scenes", "scannet", "tum", "colmap", "video", "image_folder")
"""Names accepted by :func:`read_scene` (besides ``"auto"``), in detection order."""

_READERS: dict[str, Callable[..., Scene]] = {
    "sem3r": Scene.load,
    "7scenes": read_7scenes,
    "scannet": read_scannet,
    "tum": read_tum,
    "colmap": read_colmap,
    "video": read_video,
    "image_folder": read_image_folder,
}

_COLMAP_FILES = ("cameras.bin", "cameras.txt")


def _colmap_model_dir(folder: Path) -> Path | None:
    """The COLMAP model folder at ``folder``, ``folder/sparse/0`` or ``folder/sparse``, if any."""
    for candidate in (folder, folder / "sparse" / "0", folder / "sparse"):
        if any((candidate / name).is_file() for name in _COLMAP_FILES):
            return candidate
    return None


def detect_layout(path: str | os.PathLike) -> tuple[str, Path]:
    """Guess the layout of ``path``.

    Returns:
        ``(layout, path_for_the_reader)``: the reader's path differs from ``path`` only for a
        COLMAP project folder, where it is the model folder (``sparse/0`` or ``sparse``).

    Raises:
        Sem3RError: the path does not exist or matches no layout.

    Example:
        >>> detect_layout("rgbd_dataset_freiburg1_xyz")  # doctest: +SKIP
        ('tum', PosixPath('rgbd_dataset_freiburg1_xyz'))
    """
    path = Path(path)
    if not path.exists():
        raise Sem3RError(f"'{path}' does not exist")
    if path.is_file():
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            return "video", path
        raise Sem3RError(f"cannot read '{path}': not a folder and not a video ({', '.join(e[1:] for e in VIDEO_EXTENSIONS)})")
    if (path / "scene.json").is_file():
        return "sem3r", path
    if any(path.glob("frame-*.depth.*")) and any(path.glob("frame-*.color.*")):
        return "7scenes", path  # colour-only frames named like 7-Scenes are an image folder
    if (path / "color").is_dir() and (path / "pose").is_dir():
        return "scannet", path
    if (path / "rgb.txt").is_file() and (path / "depth.txt").is_file():
        return "tum", path
    model = _colmap_model_dir(path)
    if model is not None:
        return "colmap", model
    if list_images(path):
        return "image_folder", path
    raise Sem3RError(
        f"cannot tell the layout of '{path}' (no scene.json, 7-Scenes frames, ScanNet color/ and pose/, TUM rgb.txt, "
        f"COLMAP model or images {', '.join(e[1:] for e in IMAGE_EXTENSIONS)}); pass layout= one of {', '.join(LAYOUTS)}"
    )


def frame_options(layout: str, stride: int = 1, max_frames: int | None = None) -> dict:
    """Reader keyword options that keep every ``stride``-th frame and at most ``max_frames`` frames.

    Sequences (7-Scenes, ScanNet, TUM) take ``stride`` and ``max_frames``; an image folder spreads
    ``max_images`` evenly; a video samples ``num_frames`` evenly (16 by default); COLMAP models and
    Scene folders take neither.

    Raises:
        Sem3RError: ``stride`` other than 1 for a layout without frame order.

    Example:
        >>> frame_options("image_folder", max_frames=8), frame_options("tum", 2, 8)
        ({'max_images': 8}, {'stride': 2, 'max_frames': 8})
    """
    if layout in ("7scenes", "scannet", "tum"):
        return {"stride": stride, "max_frames": max_frames}
    if stride != 1:
        raise Sem3RError(f"stride applies to frame sequences, not to layout '{layout}'")
    key = {"image_folder": "max_images", "video": "num_frames"}.get(layout)
    return {key: max_frames} if key is not None and max_frames is not None else {}


def read_scene(path: str | os.PathLike, layout: str = "auto", **kwargs) -> Scene:
    """Read any supported layout into a Scene.

    Args:
        path: a folder or a video file.
        layout: ``"auto"`` (detect, see :func:`detect_layout`) or one of :data:`LAYOUTS`.
        **kwargs: options of the chosen reader (e.g. ``stride``, ``max_frames``, ``num_frames``,
            ``resize``, ``images_dir``).

    Returns:
        The Scene; ``metadata['source']`` names the layout.

    Raises:
        Sem3RError: unknown layout (the message lists the known ones), an option the reader does
            not take, or any reader error.

    Example:
        >>> scene = read_scene("data/7scenes/chess/seq-01", stride=10)  # doctest: +SKIP
        >>> scene.metadata["source"]  # doctest: +SKIP
        '7scenes'
    """
    if layout == "auto":
        layout, path = detect_layout(path)
    elif layout not in _READERS:
        raise Sem3RError(f"unknown layout '{layout}'; known layouts: auto, {', '.join(LAYOUTS)}")
    elif layout == "colmap":
        path = _colmap_model_dir(Path(path)) or Path(path)
    reader = _READERS[layout]
    accepted = [name for name in inspect.signature(reader).parameters if name not in ("path", "model_dir", "directory")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise Sem3RError(
            f"option(s) {', '.join(unknown)} do not apply to layout '{layout}' (it takes: {', '.join(accepted) or 'no options'})"
        )
    return reader(path, **kwargs)


__all__ = [
    "CAMERA_MODELS",
    "ColmapCamera",
    "ColmapImage",
    "ColmapModel",
    "LAYOUTS",
    "SEVEN_SCENES_INTRINSICS",
    "TUM_INTRINSICS",
    "associate",
    "detect_layout",
    "frame_options",
    "interpolate_poses",
    "read_7scenes",
    "read_colmap",
    "read_colmap_model",
    "read_image_folder",
    "read_scannet",
    "read_scene",
    "read_tum",
    "read_video",
    "write_colmap_binary",
    "write_colmap_text",
]
