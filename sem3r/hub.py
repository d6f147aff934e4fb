"""Hugging Face hub access in one place: downloads that fail in seconds, in one line, without network.

Every hub id Sem3R resolves (geometry checkpoints, G2VLM / ROSS3D folders, CLIP / SigLIP / SAM models
read by ``transformers``) goes through this module. Before the hub client is called, one TCP connect
to the hub's endpoint (``HF_ENDPOINT``, default ``https://huggingface.co``, or the HTTPS proxy when one
is set) is tried with a :data:`HUB_TIMEOUT_S` timeout; ``HF_HUB_OFFLINE=1`` skips it. Without network
only the local hub cache is consulted (``local_files_only``), so the client's retries (tens of
seconds) never run, and a model that is not cached fails with a message naming the local-path
alternative. ``huggingface_hub`` itself is the ``[hub]`` extra.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from sem3r.errors import Sem3RError, require

HUB_TIMEOUT_S = 1.5
"""Seconds the reachability probe waits for the hub (DNS and TCP connect together)."""

_TRUE = ("1", "ON", "YES", "TRUE")


def hub_offline() -> bool:
    """``True`` when ``HF_HUB_OFFLINE`` is set (environment or ``huggingface_hub.constants``)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def hub_endpoint() -> str:
    """The hub's base URL: ``HF_ENDPOINT`` or ``https://huggingface.co``."""
    return os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"


def _probe_address() -> tuple[str, int]:
    """Host and port the probe connects to: the HTTPS proxy when one is set, else the endpoint."""
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        if os.environ.get(key):
            url = urlsplit(os.environ[key] if "://" in os.environ[key] else "http://" + os.environ[key])
            return url.hostname or "", url.port or 80
    url = urlsplit(hub_endpoint())
    return url.hostname or "", url.port or (80 if url.scheme == "http" else 443)


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether one TCP connection to the hub (or the proxy) opens within ``timeout`` seconds.

    Name resolution runs in a daemon thread, so a resolver that hangs cannot stretch the wait.
    """
    host, port = _probe_address()
    if not host:
        return False
    result = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def looks_like_hub_id(text: str) -> bool:
    """``owner/name`` with no path-like start (``.``, ``/``, ``~``) or backslash.

    Example:
        >>> looks_like_hub_id("facebook/VGGT-1B"), looks_like_hub_id("./runs/model"), looks_like_hub_id("a/b/c")
        (True, False, False)
    """
    text = str(text)
    return (not text.startswith((".", "/", "~")) and "\\" not in text and text.count("/") == 1
            and all(text.split("/")))


@contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """Silence the client's per-retry warnings; our error says it once."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _unreachable(repo_id: str, use: str, why: str) -> Sem3RError:
    return Sem3RError(f"cannot reach the Hugging Face hub to download '{repo_id}': offline ({why}) and it is not in the "
                      f"local hub cache; {use} (or set HF_ENDPOINT)")


def hub_fetch(repo_id: str, fetch: Callable, *, what: str = "the model",
              use: str = "pass a local path instead") -> Path:
    """Run ``fetch(hub_module, local_files_only)`` for ``repo_id`` with the fast offline check first.

    Args:
        repo_id: ``owner/name``.
        fetch: calls the client, e.g. ``lambda hub, local: hub.snapshot_download(repo_id, local_files_only=local)``.
        what: names the model in messages, e.g. ``"the G2VLM checkpoint"``.
        use: the local-path alternative, e.g. ``"pass a local path with --checkpoint"``.

    Returns:
        The local path ``fetch`` returned.

    Raises:
        MissingDependencyError: ``huggingface_hub`` is not installed (names the ``[hub]`` extra).
        Sem3RError: offline and not cached, or a hub error (unknown repository, authentication), one line.
    """
    hub = require("huggingface_hub", "hub", f"downloading {what} '{repo_id}'")
    why = "HF_HUB_OFFLINE is set" if hub_offline() else None
    if why is None and not hub_reachable():
        why = f"no connection to {_probe_address()[0]} within {HUB_TIMEOUT_S:g} s"
    with _quiet_hub_logs():
        try:
            return Path(fetch(hub, why is not None))
        except Sem3RError:
            raise
        except Exception as exc:  # noqa: BLE001 (network, authentication, missing-repository errors of the client)
            kind = type(exc).__name__
            if why is not None or kind == "LocalEntryNotFoundError":
                raise _unreachable(repo_id, use, why or "no network") from None
            detail = " ".join(str(exc).split())[:160]
            raise Sem3RError(f"cannot download {what} '{repo_id}' from the hub: {kind}: {detail}") from None


def hub_file(repo_id: str, filenames: tuple[str, ...], *, what: str = "the checkpoint",
             use: str = "pass a local path instead") -> Path:
    """The first of ``filenames`` that exists in the hub repository ``repo_id``, downloaded (or from the cache).

    Raises:
        Sem3RError: as :func:`hub_fetch`, or none of ``filenames`` is in the repository.
    """

    def fetch(hub, local_only: bool) -> str:
        errors = []
        for name in filenames:
            try:
                return hub.hf_hub_download(repo_id=repo_id, filename=name, local_files_only=local_only, etag_timeout=5)
            except Exception as exc:
                if type(exc).__name__ == "LocalEntryNotFoundError" and local_only:
                    errors.append(exc)
                    continue
                if type(exc).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
                    errors.append(exc)
                    continue
                raise
        if local_only:
            raise errors[-1]
        raise Sem3RError(f"the hub repository '{repo_id}' has none of {', '.join(filenames)}")

    return hub_fetch(repo_id, fetch, what=what, use=use)


def hub_snapshot(repo_id: str, allow_patterns: list[str] | None = None, *, what: str = "the model",
                 use: str = "pass a local folder instead") -> Path:
    """A local folder with the files of ``repo_id`` matching ``allow_patterns`` (downloaded or cached)."""
    return hub_fetch(repo_id, lambda hub, local: hub.snapshot_download(
        repo_id=repo_id, allow_patterns=allow_patterns, local_files_only=local, etag_timeout=5), what=what, use=use)


def resolve_pretrained(name: str, *, what: str = "the model", use: str = "pass a local folder instead") -> str:
    """What to hand ``transformers``' ``from_pretrained`` for a local folder or hub id ``name``.

    A local folder (or anything that is not ``owner/name``) is returned unchanged. A hub id is
    returned unchanged when the hub is reachable (``transformers`` downloads it); without network it
    becomes its folder in the local hub cache, or fails at once in one line.
    """
    text = str(name)
    if Path(text).expanduser().exists() or not looks_like_hub_id(text):
        return text
    if not hub_offline() and hub_reachable():
        return text
    return str(hub_snapshot(text, what=what, use=use))
