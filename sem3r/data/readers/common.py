"""Helpers shared by the dataset readers: file checks, image and depth loading, poses, intrinsics.

Every failure caused by the user's files raises :class:`~sem3r.errors.Sem3RError` with a one-line
message that names the file. Images are loaded with Pillow in a small thread pool (decoding releases
the GIL) straight into preallocated arrays, with a progress bar for long sequences.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from sem3r.errors import Sem3RError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
"""File extensions (lower case) read as images."""

DEFAULT_FOCAL_FACTOR = 1.2
"""Focal length guess in pixels, as a multiple of ``max(H, W)``, when a camera is unknown.

``1.2 * max(H, W)`` is a horizontal field of view of about 45 degrees on the long side: the usual
initial guess of structure-from-motion tools, between a phone's main camera (~65 degrees) and a
short telephoto, and a start that feed-forward and bundle-adjustment backends refine anyway.
"""

PROGRESS_MIN_FRAMES = 32
"""Show a progress bar when reading at least this many frames."""

_INVALID_DEPTH_RAW = 65535
_DIAGONAL_35MM = float(np.hypot(36.0, 24.0))
_EXIF_IFD = 0x8769
_EXIF_FOCAL_35MM = 0xA405
_EXIF_ORIENTATION = 0x0112
_PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)

T = TypeVar("T")
R = TypeVar("R")


def one_line(text: object) -> str:
    """Collapse whitespace (newlines included) so an error message stays on one line."""
    return " ".join(str(text).split())


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: ``img2 < img10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name))


def require_dir(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a :class:`Path`; raise when it is not an existing directory."""
    path = Path(path)
    if not path.exists():
        raise Sem3RError(f"{what} '{path}' does not exist")
    if not path.is_dir():
        raise Sem3RError(f"{what} '{path}' is not a directory")
    return path


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a :class:`Path`; raise when it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        raise Sem3RError(f"{what} '{path}' does not exist" if not path.exists() else f"{what} '{path}' is not a file")
    return path


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` in natural order.

    Hidden files and depth maps named like an RGB-D sequence's (``*.depth.png``, e.g. 7-Scenes) are skipped.
    """
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
             and not p.name.startswith(".") and not p.stem.lower().endswith(".depth")]
    return sorted(files, key=lambda p: natural_key(p.name))


def even_indices(n: int, k: int | None) -> np.ndarray:
    """``min(k, n)`` indices spread evenly over ``range(n)``, first and last included (all when ``k`` is None)."""
    if k is None or k >= n:
        return np.arange(n)
    if k < 1:
        raise Sem3RError(f"the number of frames to keep must be at least 1, got {k}")
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


def select_frames(n: int, stride: int, max_frames: int | None) -> np.ndarray:
    """Indices ``0, stride, 2*stride, ...`` of ``n`` frames, cut to the first ``max_frames``."""
    if stride < 1:
        raise Sem3RError(f"stride must be at least 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise Sem3RError(f"max_frames must be at least 1, got {max_frames}")
    return np.arange(0, n, stride)[:max_frames]


def parallel_map(fn: Callable[[T], R], items: Sequence[T], desc: str) -> Iterator[R]:
    """Yield ``fn(item)`` for every item, in order, computed by a thread pool.

    A progress bar labelled ``desc`` is shown for at least :data:`PROGRESS_MIN_FRAMES` items. The
    first exception is re-raised and the work not yet started is cancelled.
    """
    workers = max(1, min(8, os.cpu_count() or 1, len(items)))
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(fn, item) for item in items]
        try:
            for future in tqdm(futures, desc=desc, unit="frame", leave=False, disable=len(items) < PROGRESS_MIN_FRAMES):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _open_image(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except _PIL_ERRORS as exc:
        raise Sem3RError(f"cannot read image '{path}': {one_line(exc)}") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image as displayed (EXIF orientation applied), read from its header only."""
    path = Path(path)
    with _open_image(path) as img:
        w, h = img.size
        try:
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        except _PIL_ERRORS:
            orientation = 1
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def exif_focal_35mm(path: str | os.PathLike) -> float | None:
    """The EXIF ``FocalLengthIn35mmFilm`` tag of an image in millimetres, or ``None`` when absent."""
    with _open_image(Path(path)) as img:
        try:
            value = img.getexif().get_ifd(_EXIF_IFD).get(_EXIF_FOCAL_35MM)
        except _PIL_ERRORS:
            return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def load_rgb(path: str | os.PathLike, resize: tuple[int, int] | None = None) -> np.ndarray:
    """Load an image as RGB.

    EXIF orientation is applied, images with transparency are composited onto white, and palette,
    greyscale, CMYK or 16-bit images are converted to 8-bit RGB.

    Args:
        path: image file.
        resize: ``(H, W)`` to resize to (bicubic, antialiased when shrinking), or ``None``.

    Returns:
        ``(H, W, 3) uint8``.
    """
    path = Path(path)
    with _open_image(path) as img:
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
            has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
            if has_alpha:
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
            elif img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                img = Image.fromarray(_to_uint8(np.asarray(img))).convert("RGB")
            else:
                img = img.convert("RGB")
            if resize is not None and img.size != (resize[1], resize[0]):
                img = img.resize((resize[1], resize[0]), Image.Resampling.BICUBIC)
            return np.asarray(img, dtype=np.uint8)
        except _PIL_ERRORS as exc:
            raise Sem3RError(f"cannot decode image '{path}': {one_line(exc)}") from None


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale a 16-bit or float greyscale image to ``uint8`` by its dtype's range (float: ``[0, 1]``)."""
    if values.dtype.kind == "f":
        return np.clip(np.nan_to_num(values) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return (np.clip(values, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)


def load_depth(path: str | os.PathLike, scale: float, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Load a 16-bit depth PNG as metres.

    Args:
        path: single-channel 16-bit image; raw value ``d`` means ``d / scale`` metres.
        scale: raw units per metre (1000 for millimetres, 5000 for TUM).
        shape: expected ``(H, W)`` (the colour resolution); a different size raises.

    Returns:
        ``(H, W) float32`` metres; raw 0 and 65535 (sensor "no reading" / saturation) become 0.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            raw = np.asarray(img)
    except _PIL_ERRORS as exc:
        raise Sem3RError(f"cannot read depth map '{path}': {one_line(exc)}") from None
    if raw.ndim != 2 or raw.dtype.kind not in "ui" or raw.dtype.itemsize < 2:
        raise Sem3RError(f"depth map '{path}' is not a single-channel 16-bit image (PIL mode {mode})")
    if shape is not None and raw.shape != tuple(shape):
        raise Sem3RError(
            f"depth map '{path}' is {raw.shape[1]}x{raw.shape[0]} but its colour image is {shape[1]}x{shape[0]} (WxH)"
        )
    depth = raw.astype(np.float32) / np.float32(scale)
    depth[(raw <= 0) | (raw == _INVALID_DEPTH_RAW)] = 0.0
    return depth


def load_frames(
    color_paths: Sequence[Path],
    depth_paths: Sequence[Path] | None = None,
    depth_scale: float = 1000.0,
    resize: tuple[int, int] | None = None,
    desc: str = "reading frames",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load colour images (and depth maps) of one size into preallocated arrays.

    Args:
        color_paths: ``N`` image files.
        depth_paths: ``N`` depth PNGs matching ``color_paths``, or ``None``.
        depth_scale: raw depth units per metre.
        resize: ``(H, W)`` every colour image is resized to; ``None`` keeps the size of the first
            image and raises for any image of another size.
        desc: progress bar label.

    Returns:
        ``images (N, H, W, 3) uint8`` and ``depth (N, H, W) float32`` (``None`` without depth paths).
    """
    h, w = resize if resize is not None else image_size(color_paths[0])
    images = np.empty((len(color_paths), h, w, 3), np.uint8)
    depth = None if depth_paths is None else np.empty((len(color_paths), h, w), np.float32)

    def load(i: int) -> tuple[np.ndarray, np.ndarray | None]:
        rgb = load_rgb(color_paths[i], resize)
        if rgb.shape[:2] != (h, w):
            raise Sem3RError(
                f"image '{color_paths[i]}' is {rgb.shape[1]}x{rgb.shape[0]} but '{color_paths[0].name}' is {w}x{h} "
                "(WxH); all frames must have one size"
            )
        return rgb, None if depth_paths is None else load_depth(depth_paths[i], depth_scale, (h, w))

    for i, (rgb, d) in enumerate(parallel_map(load, range(len(color_paths)), desc)):
        images[i] = rgb
        if depth is not None:
            depth[i] = d
    return images, depth


def read_matrix(path: str | os.PathLike, shape: tuple[int, int], what: str) -> np.ndarray:
    """Read a whitespace-separated text matrix with ``prod(shape)`` numbers.

    Args:
        path: text file (``#`` comment lines allowed).
        shape: expected ``(rows, cols)``.
        what: description for error messages, e.g. ``"pose file"``.

    Returns:
        ``shape`` float64 (may contain NaN or inf; the caller decides).
    """
    path = require_file(path, what)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Sem3RError(f"cannot read {what} '{path}': {one_line(exc)}") from None
    tokens = [tok for line in text.splitlines() if not line.lstrip().startswith("#") for tok in line.replace(",", " ").split()]
    try:
        values = np.array([float(tok) for tok in tokens], np.float64)
    except ValueError:
        raise Sem3RError(f"{what} '{path}' is not a {shape[0]}x{shape[1]} matrix of numbers") from None
    if values.size != shape[0] * shape[1]:
        raise Sem3RError(f"{what} '{path}' has {values.size} numbers, expected {shape[0] * shape[1]} ({shape[0]}x{shape[1]})")
    return values.reshape(shape)


def finite_poses(poses: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: the ``(N, 4, 4)`` (or ``(N, 3, 4)``) poses without NaN or inf."""
    poses = np.asarray(poses, np.float64)
    return np.isfinite(poses.reshape(len(poses), -1)).all(axis=1)


def rigid_poses(poses: np.ndarray, names: Sequence[str | Path], tol: float = 1e-2) -> np.ndarray:
    """Check and orthonormalise rigid transforms.

    Args:
        poses: ``(N, 4, 4)`` or ``(N, 3, 4)`` ``[R | t]`` transforms.
        names: ``N`` file names used in error messages.
        tol: accepted deviation of the singular values of ``R`` from 1 (and of the bottom row from
            ``[0, 0, 0, 1]``); datasets store rotations rounded to a few digits.

    Returns:
        ``(N, 3, 4)`` float64 with ``R`` replaced by its nearest rotation (SVD), so that inverting
        by transposition is exact.
    """
    poses = np.asarray(poses, np.float64)
    bad = ~finite_poses(poses)
    if bad.any():
        raise Sem3RError(f"pose file '{names[int(np.argmax(bad))]}' contains NaN or inf")
    if poses.shape[-2] == 4:
        bottom = np.abs(poses[:, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1) > tol
        if bottom.any():
            raise Sem3RError(f"pose file '{names[int(np.argmax(bottom))]}' does not end with the row 0 0 0 1")
    U, S, Vt = np.linalg.svd(poses[:, :3, :3])
    rot = U @ Vt
    bad = (np.abs(S - 1.0).max(axis=1) > tol) | (np.linalg.det(rot) < 0)
    if bad.any():
        raise Sem3RError(f"pose file '{names[int(np.argmax(bad))]}' is not a rigid transform (its rotation is not orthonormal)")
    return np.concatenate([rot, poses[:, :3, 3:4]], axis=2)


def default_intrinsics(height: int, width: int, focal: float | None = None) -> np.ndarray:
    """A pinhole guess: principal point at the image centre, ``fx = fy = focal``.

    Args:
        height, width: image size in pixels.
        focal: focal length in pixels; default ``DEFAULT_FOCAL_FACTOR * max(H, W)``.

    Returns:
        ``(3, 3)`` float64 (OpenCV convention: the centre is ``((W - 1) / 2, (H - 1) / 2)``).
    """
    f = DEFAULT_FOCAL_FACTOR * max(height, width) if focal is None else float(focal)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def focal_from_35mm(focal_35mm: float, height: int, width: int) -> float:
    """Focal length in pixels from a 35 mm-equivalent focal length (matched on the diagonal)."""
    return float(focal_35mm) * float(np.hypot(height, width)) / _DIAGONAL_35MM


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """``(3, 3)`` float64 ``K`` from focal lengths and principal point (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float64)


def tile(matrix: np.ndarray, n: int) -> np.ndarray:
    """Repeat a ``(r, c)`` matrix into ``(n, r, c)``."""
    return np.repeat(np.asarray(matrix, np.float64)[None], n, axis=0)


def identity_poses(n: int) -> np.ndarray:
    """``(n, 3, 4)`` identity ``cam_from_world``."""
    return tile(np.eye(3, 4), n)
