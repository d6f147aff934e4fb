"""Atomic file writing: a file is either the old version or the complete new one, never partial."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic. On any
    exception the temporary file is removed and ``path`` is left untouched.

    Example:
        >>> with atomic_path("out.bin") as tmp:  # doctest: +SKIP
        ...     tmp.write_bytes(b"data")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def _strict_json(obj: Any) -> Any:
    """``obj`` with NaN and infinite floats replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_json(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strict JSON to ``path`` atomically and return the path.

    NaN and infinite floats (e.g. a metric with nothing to average) are written as ``null``.

    Example:
        >>> import tempfile, os
        >>> p = write_json_atomic(os.path.join(tempfile.mkdtemp(), "m.json"), {"ap_tail": float("nan")})
        >>> json.loads(p.read_text())
        {'ap_tail': None}
    """
    return write_text_atomic(path, json.dumps(_strict_json(obj), indent=2, allow_nan=False) + "\n")


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray], compress: bool = False) -> Path:
    """Write a dict of arrays to an ``.npz`` file atomically (object arrays are refused).

    Args:
        path: destination, should end with ``.npz``.
        arrays: name -> array; every array must have a numeric or bool dtype.
        compress: use zip deflate (smaller, slower).
    """
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array '{name}' has dtype object; npz files are written without pickle")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        (np.savez_compressed if compress else np.savez)(f, **arrays)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing, undecodable or invalid file raises a one-line ``Sem3RError``."""
    from sem3r.errors import Sem3RError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Sem3RError(f"'{path}' does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Sem3RError(f"'{path}' is not valid JSON: {exc}") from None


def _probe_writable(directory: Path, target: Path, what: str) -> None:
    """Create and remove one temporary file in the existing folder ``directory`` (the place ``target`` goes)."""
    from sem3r.errors import Sem3RError

    try:
        fd, name = tempfile.mkstemp(prefix=".sem3r-probe-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise Sem3RError(f"cannot write {what} '{target}': '{directory}' is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def check_writable_dir(path: str | os.PathLike, what: str = "the folder") -> Path:
    """Check that ``path`` is, or can be created as, a folder this process can write files into.

    Nothing permanent is created: a missing folder is not made, only its nearest existing ancestor is
    probed with one temporary file that is removed at once. Commands call this before any long work
    so that a bad ``--out`` fails in a second and leaves every existing file untouched.

    Args:
        path: the folder a command will write into.
        what: how the message names it, e.g. ``"the Scene folder"``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        Sem3RError: ``path`` (or a folder above it) is a file, or the place is not writable.

    Example:
        >>> import tempfile
        >>> check_writable_dir(os.path.join(tempfile.mkdtemp(), "new", "folder")).name
        'folder'
    """
    from sem3r.errors import Sem3RError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise Sem3RError(f"cannot write {what} '{path}': it is a file, not a folder")
    _check_folder(path, path, what)
    return path


def _check_folder(folder: Path, target: Path, what: str) -> None:
    """``folder`` (where ``target`` goes) exists and is writable, or can be created under a writable folder."""
    from sem3r.errors import Sem3RError

    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise Sem3RError(f"cannot write {what} '{target}': '{existing}' is a file, not a folder")
    _probe_writable(existing, target, what)


def check_writable_file(path: str | os.PathLike, what: str = "the file") -> Path:
    """Check that the file ``path`` can be written (atomically, see :func:`atomic_path`) without creating it.

    Raises:
        Sem3RError: ``path`` is a folder, a folder above it is a file, or the place is not writable.

    Example:
        >>> import tempfile
        >>> check_writable_file(os.path.join(tempfile.mkdtemp(), "metrics.json")).name
        'metrics.json'
    """
    from sem3r.errors import Sem3RError

    path = Path(path)
    if path.is_dir():
        raise Sem3RError(f"cannot write {what} '{path}': it is a folder, not a file")
    _check_folder(path.parent, path, what)
    return path
