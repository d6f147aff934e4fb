"""Read a folder of photos (no cameras known) into a Scene."""

from __future__ import annotations

import os

import numpy as np

from sem3r.data.readers.common import (
    IMAGE_EXTENSIONS,
    default_intrinsics,
    even_indices,
    exif_focal_35mm,
    focal_from_35mm,
    identity_poses,
    image_size,
    list_images,
    load_frames,
    parallel_map,
    require_dir,
)
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import scale_intrinsics
from sem3r.scene import Scene


def _probe(path) -> tuple[int, int, float | None]:
    h, w = image_size(path)
    return h, w, exif_focal_35mm(path)


def read_image_folder(
    path: str | os.PathLike,
    max_images: int | None = None,
    resize: tuple[int, int] | None = None,
) -> Scene:
    """Read the images of a folder (jpg, png, webp, bmp, tif) into a Scene without geometry.

    Files are taken in natural order (``img2`` before ``img10``); EXIF orientation is applied and
    transparent pixels are composited onto white. Intrinsics are a guess: when the EXIF tag
    ``FocalLengthIn35mmFilm`` is present the focal length is converted from it (matching the 35 mm
    frame's diagonal), otherwise ``focal = 1.2 * max(H, W)`` (see
    :data:`~sem3r.data.readers.common.DEFAULT_FOCAL_FACTOR`); the principal point is the image
    centre. Poses are identity. ``metadata['intrinsics_known']`` and ``metadata['poses_known']`` are
    ``False`` so a reconstruction backend knows to estimate both.

    Args:
        path: folder with the images (sub-folders are ignored).
        max_images: keep at most this many images, spread evenly over the sorted list (first and
            last included).
        resize: ``(H, W)`` to resize every image to. Required when the images differ in size; each
            image's intrinsics guess is made at its own size and then scaled to ``(H, W)``.

    Returns:
        A Scene with ``images (N, H, W, 3) uint8``, ``intrinsics (N, 3, 3)`` and identity
        ``cam_from_world (N, 3, 4)``; ``image_names`` are the file names.

    Raises:
        Sem3RError: missing or empty folder, an unreadable image (named), or images of different
            sizes without ``resize``.

    Example:
        >>> scene = read_image_folder("photos/", max_images=24)  # doctest: +SKIP
        >>> scene.images.shape  # doctest: +SKIP
        (24, 768, 1024, 3)
    """
    folder = require_dir(path, "image folder")
    files = list_images(folder)
    if not files:
        raise Sem3RError(f"no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) in '{folder}'")
    files = [files[i] for i in even_indices(len(files), max_images)]
    probes = list(parallel_map(_probe, files, "reading image headers"))
    sizes = np.array([p[:2] for p in probes], np.int64)
    if resize is None:
        other = np.flatnonzero((sizes != sizes[0]).any(axis=1))
        if len(other):
            j = int(other[0])
            raise Sem3RError(
                f"images in '{folder}' differ in size: '{files[0].name}' is {sizes[0, 1]}x{sizes[0, 0]} but "
                f"'{files[j].name}' is {sizes[j, 1]}x{sizes[j, 0]} (WxH); pass resize=(H, W) (CLI: --resize H W)"
            )
        out_h, out_w = int(sizes[0, 0]), int(sizes[0, 1])
    else:
        out_h, out_w = int(resize[0]), int(resize[1])
        if out_h < 1 or out_w < 1:
            raise Sem3RError(f"resize must be (H, W) with positive sizes, got {tuple(resize)}")
    intrinsics = np.stack(
        [
            scale_intrinsics(
                default_intrinsics(h, w, None if f35 is None else focal_from_35mm(f35, h, w)), out_w / w, out_h / h
            )
            for h, w, f35 in probes
        ]
    )
    images, _ = load_frames(files, resize=None if resize is None else (out_h, out_w), desc="reading images")
    return Scene(
        images=images,
        intrinsics=intrinsics,
        cam_from_world=identity_poses(len(files)),
        image_names=[f.name for f in files],
        metadata={
            "source": "image_folder",
            "source_path": str(folder),
            "metric": False,
            "intrinsics_known": False,
            "poses_known": False,
            "intrinsics_from_exif": sum(p[2] is not None for p in probes),
        },
    )
