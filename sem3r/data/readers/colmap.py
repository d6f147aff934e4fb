"""COLMAP sparse models: read and write the text and binary formats; build a Scene from a model.

Written from COLMAP's documented output format:

* ``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]``.
* ``images.txt``: two lines per registered image, ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME``
  (the pose is ``cam_from_world``) and ``POINTS2D[]`` as ``X Y POINT3D_ID`` triplets (``-1`` when
  the keypoint has no 3D point; the line is empty for an image without keypoints).
* ``points3D.txt``: ``POINT3D_ID X Y Z R G B ERROR TRACK[]`` with ``IMAGE_ID POINT2D_IDX`` pairs.
* The ``.bin`` files hold the same records, little endian: counts are ``uint64``, camera and image
  ids ``uint32``, the model id ``int32``, sizes ``uint64``, reals ``float64``, point ids
  ``uint64`` (``2**64 - 1`` for none), colours ``uint8`` and names NUL-terminated.

COLMAP puts the centre of the top-left pixel at ``(0.5, 0.5)``; Sem3R (OpenCV) puts it at
``(0, 0)``. :class:`ColmapModel` keeps COLMAP's values untouched, and
:meth:`ColmapCamera.intrinsics` / :func:`read_colmap` shift the principal point by ``-0.5``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from sem3r.data.readers.common import (
    image_size,
    load_frames,
    natural_key,
    one_line,
    parallel_map,
    require_dir,
    require_file,
)
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import scale_intrinsics
from sem3r.geometry.transforms import matrix_from_quat
from sem3r.io import write_bytes_atomic, write_text_atomic
from sem3r.scene import Scene

CAMERA_MODELS: dict[str, tuple[int, int]] = {
    "SIMPLE_PINHOLE": (0, 3),
    "PINHOLE": (1, 4),
    "SIMPLE_RADIAL": (2, 4),
    "RADIAL": (3, 5),
    "OPENCV": (4, 8),
    "OPENCV_FISHEYE": (5, 8),
    "FULL_OPENCV": (6, 12),
    "FOV": (7, 5),
    "SIMPLE_RADIAL_FISHEYE": (8, 4),
    "RADIAL_FISHEYE": (9, 5),
    "THIN_PRISM_FISHEYE": (10, 12),
}
"""COLMAP camera model name -> (model id, number of parameters)."""

_MODEL_BY_ID = {model_id: name for name, (model_id, _) in CAMERA_MODELS.items()}
_ONE_FOCAL = {"SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"}
_NO_DISTORTION = {"SIMPLE_PINHOLE", "PINHOLE"}
_POINT2D = np.dtype([("xy", "<f8", (2,)), ("point3d_id", "<i8")])
_TRACK = np.dtype([("image_id", "<u4"), ("point2d_idx", "<u4")])
_CAMERA_HEAD = struct.Struct("<IiQQ")
_IMAGE_HEAD = struct.Struct("<I4d3dI")
_POINT_HEAD = struct.Struct("<Q3d3BdQ")
_POINT_HEAD_RECORD = np.dtype([("point_id", "<u8"), ("xyz", "<f8", (3,)), ("rgb", "u1", (3,)), ("error", "<f8"),
                               ("track_length", "<u8")])  # the same bytes as _POINT_HEAD, as a packed record
assert _POINT_HEAD_RECORD.itemsize == _POINT_HEAD.size
_COUNT = struct.Struct("<Q")


@dataclass
class ColmapCamera:
    """One COLMAP camera.

    Attributes:
        camera_id: COLMAP id.
        model: model name, a key of :data:`CAMERA_MODELS`.
        width, height: image size in pixels.
        params: ``(P,) float64`` parameters in COLMAP order and pixel convention.
    """

    camera_id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def __post_init__(self) -> None:
        self.params = np.asarray(self.params, np.float64).reshape(-1)
        if self.model not in CAMERA_MODELS:
            raise Sem3RError(f"unknown COLMAP camera model '{self.model}' (known: {', '.join(CAMERA_MODELS)})")
        expected = CAMERA_MODELS[self.model][1]
        if len(self.params) != expected:
            raise Sem3RError(f"COLMAP camera {self.camera_id} ({self.model}) has {len(self.params)} parameters, expected {expected}")

    @property
    def distortion(self) -> np.ndarray:
        """``(D,) float64`` the parameters after focal length(s) and principal point (empty for pinholes)."""
        return self.params[3:] if self.model in _ONE_FOCAL else self.params[4:]

    @property
    def is_pinhole(self) -> bool:
        """True when the model has no distortion parameters, or all of them are zero."""
        return self.model in _NO_DISTORTION or not np.any(self.distortion)

    def intrinsics(self) -> np.ndarray:
        """``(3, 3) float64`` pinhole ``K`` in Sem3R's (OpenCV) convention: principal point minus 0.5.

        Example:
            >>> ColmapCamera(1, "SIMPLE_PINHOLE", 640, 480, [500.0, 320.0, 240.0]).intrinsics().tolist()
            [[500.0, 0.0, 319.5], [0.0, 500.0, 239.5], [0.0, 0.0, 1.0]]
        """
        p = self.params
        fx, fy, cx, cy = (p[0], p[0], p[1], p[2]) if self.model in _ONE_FOCAL else (p[0], p[1], p[2], p[3])
        return np.array([[fx, 0.0, cx - 0.5], [0.0, fy, cy - 0.5], [0.0, 0.0, 1.0]])


@dataclass
class ColmapImage:
    """One registered COLMAP image.

    Attributes:
        image_id: COLMAP id.
        qvec: ``(4,) float64`` rotation quaternion ``w x y z`` of ``cam_from_world``.
        tvec: ``(3,) float64`` translation of ``cam_from_world``.
        camera_id: id of its :class:`ColmapCamera`.
        name: file name relative to the images folder.
        xys: ``(K, 2) float64`` keypoints, COLMAP pixel convention.
        point3d_ids: ``(K,) int64`` 3D point of each keypoint, ``-1`` for none.
    """

    image_id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str
    xys: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point3d_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        self.qvec = np.asarray(self.qvec, np.float64).reshape(4)
        self.tvec = np.asarray(self.tvec, np.float64).reshape(3)
        self.xys = np.asarray(self.xys, np.float64).reshape(-1, 2)
        self.point3d_ids = np.asarray(self.point3d_ids, np.int64).reshape(-1)
        if len(self.xys) != len(self.point3d_ids):
            raise Sem3RError(f"COLMAP image '{self.name}' has {len(self.xys)} keypoints but {len(self.point3d_ids)} point ids")

    def cam_from_world(self) -> np.ndarray:
        """``(3, 4) float64`` world -> camera pose (quaternion normalised)."""
        norm = np.linalg.norm(self.qvec)
        if not np.isfinite(norm) or norm == 0:
            raise Sem3RError(f"COLMAP image '{self.name}' has an invalid quaternion {self.qvec.tolist()}")
        R = matrix_from_quat(np.r_[self.qvec[1:], self.qvec[0]] / norm)
        return np.concatenate([R, self.tvec[:, None]], axis=1)


@dataclass
class ColmapModel:
    """A COLMAP sparse model: cameras, registered images and 3D points with their tracks.

    Attributes:
        cameras: camera id -> :class:`ColmapCamera`.
        images: image id -> :class:`ColmapImage`.
        point_ids: ``(P,) int64`` 3D point ids.
        xyz: ``(P, 3) float64`` world coordinates.
        rgb: ``(P, 3) uint8`` colours.
        errors: ``(P,) float64`` mean reprojection errors (pixels).
        track_lengths: ``(P,) int64`` observations per point.
        track_image_ids: ``(T,) int64`` image id of every observation, points' tracks concatenated
            (``T = track_lengths.sum()``).
        track_point2d_idx: ``(T,) int64`` keypoint index of every observation in its image.
    """

    cameras: dict[int, ColmapCamera] = field(default_factory=dict)
    images: dict[int, ColmapImage] = field(default_factory=dict)
    point_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    xyz: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    track_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    track_image_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    track_point2d_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        self.point_ids = np.asarray(self.point_ids, np.int64).reshape(-1)
        p = len(self.point_ids)
        self.xyz = np.asarray(self.xyz, np.float64).reshape(-1, 3)
        self.rgb = np.asarray(self.rgb, np.uint8).reshape(-1, 3)
        self.errors = np.asarray(self.errors, np.float64).reshape(-1)
        self.track_lengths = np.asarray(self.track_lengths, np.int64).reshape(-1)
        self.track_image_ids = np.asarray(self.track_image_ids, np.int64).reshape(-1)
        self.track_point2d_idx = np.asarray(self.track_point2d_idx, np.int64).reshape(-1)
        for name in ("xyz", "rgb", "errors", "track_lengths"):
            if len(getattr(self, name)) != p:
                raise Sem3RError(f"COLMAP model column '{name}' has {len(getattr(self, name))} rows for {p} points")
        t = int(self.track_lengths.sum())
        if len(self.track_image_ids) != t or len(self.track_point2d_idx) != t:
            raise Sem3RError(f"COLMAP model tracks hold {len(self.track_image_ids)} observations, expected {t}")

    @property
    def num_points(self) -> int:
        return len(self.point_ids)


# ---------------------------------------------------------------------------------------------- text
def _data_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of a COLMAP text file without comment lines (blank lines kept)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Sem3RError(f"cannot read COLMAP file '{path}': {one_line(exc)}") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if not line.lstrip().startswith("#")]


def _bad_line(path: Path, number: int, what: str) -> Sem3RError:
    return Sem3RError(f"line {number} of COLMAP file '{path}' is not a valid {what}")


def _read_cameras_text(path: Path) -> dict[int, ColmapCamera]:
    cameras = {}
    for number, line in _data_lines(path):
        if not line:
            continue
        parts = line.split()
        try:
            camera = ColmapCamera(int(parts[0]), parts[1], int(parts[2]), int(parts[3]), [float(x) for x in parts[4:]])
        except (IndexError, ValueError) as exc:
            raise _bad_line(path, number, f"camera ({one_line(exc)})") from None
        cameras[camera.camera_id] = camera
    return cameras


def _read_images_text(path: Path) -> dict[int, ColmapImage]:
    lines = _data_lines(path)
    images = {}
    i = 0
    while i < len(lines):
        number, head = lines[i]
        if not head:
            i += 1
            continue
        points = lines[i + 1][1] if i + 1 < len(lines) else ""
        i += 2
        parts = head.split()
        try:
            values = np.array(points.split(), np.float64).reshape(-1, 3)
            image = ColmapImage(
                image_id=int(parts[0]),
                qvec=[float(x) for x in parts[1:5]],
                tvec=[float(x) for x in parts[5:8]],
                camera_id=int(parts[8]),
                name=" ".join(parts[9:]),
                xys=values[:, :2],
                point3d_ids=values[:, 2].astype(np.int64),
            )
        except (IndexError, ValueError) as exc:
            raise _bad_line(path, number, f"image record ({one_line(exc)})") from None
        if not image.name:
            raise _bad_line(path, number, "image record (no name)")
        images[image.image_id] = image
    return images


def _read_points_text(path: Path) -> dict[str, np.ndarray]:
    ids, xyz, rgb, errors, lengths, tracks = [], [], [], [], [], []
    for number, line in _data_lines(path):
        if not line:
            continue
        parts = line.split()
        try:
            if len(parts) < 8 or (len(parts) - 8) % 2:
                raise ValueError(f"{len(parts)} fields")
            ids.append(int(parts[0]))
            xyz.append([float(x) for x in parts[1:4]])
            rgb.append([int(x) for x in parts[4:7]])
            errors.append(float(parts[7]))
            tracks.append(np.array(parts[8:], np.int64))
            lengths.append((len(parts) - 8) // 2)
        except ValueError as exc:
            raise _bad_line(path, number, f"3D point ({one_line(exc)})") from None
    track = np.concatenate(tracks).reshape(-1, 2) if tracks else np.zeros((0, 2), np.int64)
    return {
        "point_ids": np.array(ids, np.int64),
        "xyz": np.array(xyz, np.float64).reshape(-1, 3),
        "rgb": np.array(rgb, np.int64).reshape(-1, 3),
        "errors": np.array(errors, np.float64),
        "track_lengths": np.array(lengths, np.int64),
        "track_image_ids": track[:, 0],
        "track_point2d_idx": track[:, 1],
    }


def _floats(values) -> str:
    """Shortest round-trip text for floats (``repr``)."""
    return " ".join(repr(float(v)) for v in np.asarray(values).reshape(-1))


def write_colmap_text(model: ColmapModel, directory: str | os.PathLike) -> Path:
    """Write ``cameras.txt``, ``images.txt`` and ``points3D.txt`` (atomically) into ``directory``.

    Floats are written with the shortest text that reads back exactly, so a text round trip is
    lossless.

    Returns:
        The directory.
    """
    directory = Path(directory)
    cams = [f"{c.camera_id} {c.model} {c.width} {c.height} {_floats(c.params)}" for _, c in sorted(model.cameras.items())]
    write_text_atomic(
        directory / "cameras.txt",
        "# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
        f"# Number of cameras: {len(cams)}\n" + "".join(line + "\n" for line in cams),
    )
    lines = []
    for _, im in sorted(model.images.items()):
        lines.append(f"{im.image_id} {_floats(im.qvec)} {_floats(im.tvec)} {im.camera_id} {im.name}")
        lines.append(" ".join(f"{x!r} {y!r} {int(p)}" for (x, y), p in zip(im.xys.tolist(), im.point3d_ids)))
    write_text_atomic(
        directory / "images.txt",
        "# Image list with two lines of data per image:\n"
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
        "#   POINTS2D[] as (X, Y, POINT3D_ID)\n"
        f"# Number of images: {len(model.images)}\n" + "".join(line + "\n" for line in lines),
    )
    starts = np.concatenate([[0], np.cumsum(model.track_lengths)])
    track = np.stack([model.track_image_ids, model.track_point2d_idx], axis=1)
    points = [
        f"{pid} {_floats(model.xyz[i])} {' '.join(str(int(c)) for c in model.rgb[i])} {float(model.errors[i])!r}"
        + "".join(f" {a} {b}" for a, b in track[starts[i] : starts[i + 1]].tolist())
        for i, pid in enumerate(model.point_ids.tolist())
    ]
    write_text_atomic(
        directory / "points3D.txt",
        "# 3D point list with one line of data per point:\n"
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
        f"# Number of points: {model.num_points}\n" + "".join(line + "\n" for line in points),
    )
    return directory


# ---------------------------------------------------------------------------------------------- binary
class _Cursor:
    """Sequential reader over the bytes of one binary file."""

    def __init__(self, path: Path):
        try:
            self.data = path.read_bytes()
        except OSError as exc:
            raise Sem3RError(f"cannot read COLMAP file '{path}': {one_line(exc)}") from None
        self.pos = 0

    def unpack(self, fmt: struct.Struct) -> tuple:
        values = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return values

    def array(self, dtype: np.dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += dtype.itemsize * count
        return out

    def cstring(self) -> str:
        end = self.data.index(b"\0", self.pos)
        text = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text

    def count(self) -> int:
        return self.unpack(_COUNT)[0]


def _read_cameras_binary(cur: _Cursor) -> dict[int, ColmapCamera]:
    cameras = {}
    for _ in range(cur.count()):
        camera_id, model_id, width, height = cur.unpack(_CAMERA_HEAD)
        if model_id not in _MODEL_BY_ID:
            raise ValueError(f"unknown camera model id {model_id}")
        name = _MODEL_BY_ID[model_id]
        params = cur.array(np.dtype("<f8"), CAMERA_MODELS[name][1])
        cameras[camera_id] = ColmapCamera(camera_id, name, width, height, params.copy())
    return cameras


def _read_images_binary(cur: _Cursor) -> dict[int, ColmapImage]:
    images = {}
    for _ in range(cur.count()):
        image_id, qw, qx, qy, qz, tx, ty, tz, camera_id = cur.unpack(_IMAGE_HEAD)
        name = cur.cstring()
        points = cur.array(_POINT2D, cur.count())
        images[image_id] = ColmapImage(image_id, [qw, qx, qy, qz], [tx, ty, tz], camera_id, name, points["xy"], points["point3d_id"])
    return images


@njit(cache=True)
def _walk_records(raw: np.ndarray, first: int, n: int, head_size: int, length_at: int, track_size: int) -> np.ndarray:
    """Byte offsets ``(<=n,) int64`` of points3D.bin records from ``first``; a record's size depends on its
    track length, read from the record itself, so the walk is sequential. Stops early at a truncated head."""
    starts = np.empty(n, np.int64)
    pos = first
    for i in range(n):
        if pos + head_size > raw.size:
            return starts[:i]
        starts[i] = pos
        length = np.int64(0)
        for b in range(8):
            length |= np.int64(raw[pos + length_at + b]) << (8 * b)
        pos += head_size + track_size * length
    return starts


def _read_points_binary(cur: _Cursor) -> dict[str, np.ndarray]:
    n = cur.count()
    raw = np.frombuffer(cur.data, np.uint8)
    starts = _walk_records(raw, cur.pos, n, _POINT_HEAD_RECORD.itemsize,
                           _POINT_HEAD_RECORD.fields["track_length"][1], _TRACK.itemsize)
    if len(starts) < n:
        raise ValueError("point records run past the end of the file")
    heads = raw[starts[:, None] + np.arange(_POINT_HEAD_RECORD.itemsize)].copy().view(_POINT_HEAD_RECORD).reshape(-1)
    lengths = heads["track_length"].astype(np.int64)
    first = starts + _POINT_HEAD_RECORD.itemsize
    cur.pos = int(first[-1] + _TRACK.itemsize * lengths[-1]) if n else cur.pos
    if cur.pos > len(cur.data):
        raise ValueError("track data runs past the end of the file")
    total = int(lengths.sum())
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    offsets = np.repeat(first, lengths) + _TRACK.itemsize * within
    track = raw[offsets[:, None] + np.arange(_TRACK.itemsize)].copy().view(_TRACK).reshape(-1)
    return {
        "point_ids": heads["point_id"].astype(np.int64),
        "xyz": heads["xyz"].astype(np.float64),
        "rgb": heads["rgb"].astype(np.uint8),
        "errors": heads["error"].astype(np.float64),
        "track_lengths": lengths,
        "track_image_ids": track["image_id"].astype(np.int64),
        "track_point2d_idx": track["point2d_idx"].astype(np.int64),
    }


def write_colmap_binary(model: ColmapModel, directory: str | os.PathLike) -> Path:
    """Write ``cameras.bin``, ``images.bin`` and ``points3D.bin`` (atomically) into ``directory``.

    Returns:
        The directory.
    """
    directory = Path(directory)
    parts = [_COUNT.pack(len(model.cameras))]
    for _, c in sorted(model.cameras.items()):
        parts += [_CAMERA_HEAD.pack(c.camera_id, CAMERA_MODELS[c.model][0], c.width, c.height), c.params.astype("<f8").tobytes()]
    write_bytes_atomic(directory / "cameras.bin", b"".join(parts))
    parts = [_COUNT.pack(len(model.images))]
    for _, im in sorted(model.images.items()):
        points = np.zeros(len(im.xys), _POINT2D)
        points["xy"], points["point3d_id"] = im.xys, im.point3d_ids
        parts += [
            _IMAGE_HEAD.pack(im.image_id, *im.qvec.tolist(), *im.tvec.tolist(), im.camera_id),
            im.name.encode("utf-8") + b"\0",
            _COUNT.pack(len(points)),
            points.tobytes(),
        ]
    write_bytes_atomic(directory / "images.bin", b"".join(parts))
    write_bytes_atomic(directory / "points3D.bin", _points_binary(model))
    return directory


def _points_binary(model: ColmapModel) -> bytes:
    """``points3D.bin`` bytes: the count, then per point its packed head and its track, scattered in one pass."""
    n, lengths = model.num_points, np.asarray(model.track_lengths, np.int64)
    head = np.zeros(n, _POINT_HEAD_RECORD)
    head["point_id"], head["xyz"], head["rgb"] = model.point_ids, model.xyz, model.rgb
    head["error"], head["track_length"] = model.errors, lengths
    track = np.zeros(len(model.track_image_ids), _TRACK)
    track["image_id"], track["point2d_idx"] = model.track_image_ids, model.track_point2d_idx
    sizes = _POINT_HEAD_RECORD.itemsize + _TRACK.itemsize * lengths
    starts = _COUNT.size + np.cumsum(sizes) - sizes  # byte offset of every point's record
    out = np.empty(_COUNT.size + int(sizes.sum()), np.uint8)
    out[: _COUNT.size] = np.frombuffer(_COUNT.pack(n), np.uint8)
    out[starts[:, None] + np.arange(_POINT_HEAD_RECORD.itemsize)] = head.view(np.uint8).reshape(n, _POINT_HEAD_RECORD.itemsize)
    first_track = np.repeat(starts + _POINT_HEAD_RECORD.itemsize, lengths)
    within = np.arange(len(track)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    track_at = first_track + _TRACK.itemsize * within
    out[track_at[:, None] + np.arange(_TRACK.itemsize)] = track.view(np.uint8).reshape(len(track), _TRACK.itemsize)
    return out.tobytes()


# ---------------------------------------------------------------------------------------------- model
def read_colmap_model(model_dir: str | os.PathLike) -> ColmapModel:
    """Read a COLMAP sparse model folder (binary preferred when both formats are present, as COLMAP does).

    Args:
        model_dir: folder with ``cameras``, ``images`` and ``points3D`` (``.bin`` or ``.txt``).

    Returns:
        The :class:`ColmapModel`, in COLMAP's own conventions.

    Raises:
        Sem3RError: missing files, or a malformed, truncated or corrupt file (named).

    Example:
        >>> model = read_colmap_model("project/sparse/0")  # doctest: +SKIP
        >>> model.xyz.shape  # doctest: +SKIP
        (48211, 3)
    """
    folder = require_dir(model_dir, "COLMAP model folder")
    names = ("cameras", "images", "points3D")
    complete = [e for e in ("bin", "txt") if all((folder / f"{n}.{e}").is_file() for n in names)]
    partial = [e for e in ("bin", "txt") if any((folder / f"{n}.{e}").exists() for n in names)]
    if not partial:
        raise Sem3RError(f"no COLMAP model in '{folder}' (expected cameras, images and points3D as .bin or .txt)")
    ext = (complete or partial)[0]
    binary = ext == "bin"
    paths = [require_file(folder / f"{n}.{ext}", "COLMAP file") for n in names]
    if binary:
        readers = (_read_cameras_binary, _read_images_binary, _read_points_binary)
        parsed = []
        for path, reader in zip(paths, readers):
            cur = _Cursor(path)
            try:
                parsed.append(reader(cur))
            except (struct.error, ValueError, UnicodeDecodeError) as exc:
                raise Sem3RError(f"COLMAP file '{path}' is truncated or corrupt ({one_line(exc)})") from None
            if cur.pos != len(cur.data):
                raise Sem3RError(f"COLMAP file '{path}' has {len(cur.data) - cur.pos} unexpected trailing bytes")
        cameras, images, points = parsed
    else:
        cameras, images, points = _read_cameras_text(paths[0]), _read_images_text(paths[1]), _read_points_text(paths[2])
    try:
        return ColmapModel(cameras, images, **points)
    except Sem3RError as exc:
        raise Sem3RError(f"COLMAP model '{folder}': {exc}") from None


def _images_dir(model_dir: Path, images_dir: str | os.PathLike | None) -> Path:
    if images_dir is not None:
        return require_dir(images_dir, "images folder")
    model_dir = model_dir.resolve()
    candidates = [model_dir.parent / "images", model_dir.parent.parent / "images"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise Sem3RError(
        f"no images folder for COLMAP model '{model_dir}' (looked in {', '.join(str(c) for c in candidates)}); pass images_dir="
    )


def read_colmap(
    model_dir: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    resize: tuple[int, int] | None = None,
) -> Scene:
    """Build a Scene from a COLMAP sparse model and its images.

    Views are the registered images in natural name order. ``cam_from_world`` comes from the
    image poses; ``intrinsics`` from each camera's focal length(s) and principal point, shifted to
    the OpenCV pixel convention (see the module docstring). Distortion is *not* applied: when a
    camera has non-zero distortion the images are the distorted originals and
    ``metadata['undistorted']`` is ``False`` (run COLMAP's ``image_undistorter`` and read its
    output for exact pinhole geometry). Camera models, sizes and parameters are kept in
    ``metadata['colmap']``. The model's 3D points become the Scene's ``sparse_points (P, 3)`` and
    ``sparse_colors (P, 3)`` (their tracks and errors stay in the model: :func:`read_colmap_model`,
    ``metadata['colmap']['model_dir']``). COLMAP's scale is arbitrary, so ``metadata['metric']`` is
    ``False``.

    Args:
        model_dir: the sparse model folder (e.g. ``project/sparse/0``).
        images_dir: folder the image names are relative to; default: ``images/`` beside the model
            folder or beside its parent (``project/images`` for ``project/sparse/0``).
        resize: ``(H, W)`` to resize every image to (intrinsics scaled); required when the cameras
            differ in size.

    Returns:
        A Scene with ``images (N, H, W, 3)``, ``intrinsics (N, 3, 3)`` and ``cam_from_world (N, 3, 4)``.

    Raises:
        Sem3RError: bad model files, no registered image, no images folder, a missing or unreadable
            image, or an image whose size differs from its camera's.

    Example:
        >>> scene = read_colmap("project/sparse/0")  # doctest: +SKIP
    """
    folder = require_dir(model_dir, "COLMAP model folder")
    model = read_colmap_model(folder)
    if not model.images:
        raise Sem3RError(f"COLMAP model '{folder}' has no registered images")
    views = sorted(model.images.values(), key=lambda im: natural_key(im.name))
    missing = [im for im in views if im.camera_id not in model.cameras]
    if missing:
        raise Sem3RError(
            f"COLMAP model '{folder}': image '{missing[0].name}' uses camera {missing[0].camera_id}, which is not in the model"
        )
    root = _images_dir(folder, images_dir)
    paths = [require_file(root / im.name, "image") for im in views]
    cams = [model.cameras[im.camera_id] for im in views]
    sizes = list(parallel_map(image_size, paths, "reading image headers"))
    for path, cam, (h, w) in zip(paths, cams, sizes):
        if (h, w) != (cam.height, cam.width):
            raise Sem3RError(
                f"image '{path}' is {w}x{h} but its COLMAP camera {cam.camera_id} is {cam.width}x{cam.height} (WxH); "
                "pass the images the model was made from"
            )
    if resize is None:
        other = [c for c in cams if (c.height, c.width) != (cams[0].height, cams[0].width)]
        if other:
            raise Sem3RError(
                f"COLMAP model '{folder}' has cameras of different sizes ({cams[0].width}x{cams[0].height} and "
                f"{other[0].width}x{other[0].height}); pass resize=(H, W) (CLI: --resize H W)"
            )
        out_h, out_w = cams[0].height, cams[0].width
    else:
        out_h, out_w = int(resize[0]), int(resize[1])
    intrinsics = np.stack([scale_intrinsics(c.intrinsics(), out_w / c.width, out_h / c.height) for c in cams])
    images, _ = load_frames(paths, resize=None if resize is None else (out_h, out_w), desc="reading COLMAP images")
    used = sorted({c.camera_id for c in cams})
    return Scene(
        images=images,
        intrinsics=intrinsics,
        cam_from_world=np.stack([im.cam_from_world() for im in views]),
        image_names=[im.name for im in views],
        sparse_points=model.xyz if model.num_points else None,
        sparse_colors=model.rgb if model.num_points else None,
        metadata={
            "source": "colmap",
            "source_path": str(folder),
            "metric": False,
            "intrinsics_known": True,
            "poses_known": True,
            "undistorted": all(c.is_pinhole for c in cams),
            "colmap": {
                "model_dir": str(folder.resolve()),
                "images_dir": str(root),
                "image_ids": [im.image_id for im in views],
                "camera_ids": [im.camera_id for im in views],
                "cameras": {
                    str(i): {
                        "model": model.cameras[i].model,
                        "width": model.cameras[i].width,
                        "height": model.cameras[i].height,
                        "params": model.cameras[i].params.tolist(),
                    }
                    for i in used
                },
            },
        },
    )
