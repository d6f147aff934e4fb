"""Model checkpoints: resolve a local path or hub id, read ``.pt`` / ``.safetensors`` safely, load strictly.

Files are read without unpickling arbitrary objects (``torch.load(weights_only=True)`` or
safetensors). A state dict wrapped by ``DistributedDataParallel`` (keys prefixed ``module.``) or
saved as ``{"model": state_dict}`` is unwrapped. Loading is strict, and a mismatch raises one line
that counts and names the first missing, unexpected and wrongly shaped keys.
"""

from __future__ import annotations

import os
from pathlib import Path

from sem3r.errors import Sem3RError

CHECKPOINT_FILES = ("model.safetensors", "model.pt", "pytorch_model.bin")
"""File names looked for inside a checkpoint folder or hub repository, in this order."""


def resolve_checkpoint(path_or_hub_id: str | os.PathLike) -> Path:
    """Return a local checkpoint file for a file path, a folder, or a hub id such as ``facebook/VGGT-1B``.

    Hub ids are downloaded with ``huggingface_hub`` when it is installed and the network is
    reachable; otherwise the error says to pass a local path.
    """
    path = Path(path_or_hub_id)
    if path.is_file():
        return path
    if path.is_dir():
        for name in CHECKPOINT_FILES:
            if (path / name).is_file():
                return path / name
        raise Sem3RError(f"no checkpoint in '{path}' (looked for {', '.join(CHECKPOINT_FILES)})")
    hub_id = str(path_or_hub_id)
    from sem3r.hub import hub_file, looks_like_hub_id

    if path.suffix in (".pt", ".pth", ".safetensors", ".bin") or not looks_like_hub_id(hub_id):
        raise Sem3RError(f"checkpoint '{hub_id}' does not exist")
    return hub_file(hub_id, CHECKPOINT_FILES, what="the checkpoint", use="pass a local checkpoint path with --checkpoint")


def read_json_object(path: str | os.PathLike, label: str = "model config") -> dict:
    """Parse the JSON file ``path`` that must hold one object (e.g. a checkpoint's ``config.json``).

    Raises:
        Sem3RError: missing file, invalid JSON or not an object, naming ``path``.
    """
    from sem3r.io import read_json

    doc = read_json(path)
    if not isinstance(doc, dict):
        raise Sem3RError(f"'{path}' must hold a JSON object ({label}), not {type(doc).__name__}")
    return doc


def config_from_dict(config_class: type, doc: dict, source: str | os.PathLike, label: str = "model config"):
    """Build the dataclass ``config_class`` from the JSON object ``doc`` read from ``source``.

    JSON lists become tuples (the model configs' sequence fields are tuples). Keys that are not
    fields of ``config_class`` are an error, as is a value the class rejects.

    Raises:
        Sem3RError: unknown keys or rejected values, naming ``source``.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class C:
        ...     depth: int = 2
        ...     sizes: tuple = (1, 2)
        >>> config_from_dict(C, {"depth": 3, "sizes": [4]}, "config.json")
        C(depth=3, sizes=(4,))
    """
    from dataclasses import fields

    known = sorted(f.name for f in fields(config_class) if f.init)
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise Sem3RError(f"'{source}' has unknown {label} keys {unknown} (known: {', '.join(known)})")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()}
    try:
        return config_class(**kwargs)
    except (TypeError, ValueError, AttributeError) as exc:
        raise Sem3RError(f"'{source}' is not a valid {label}: {' '.join(str(exc).split())[:200]}") from None


def read_state_dict(path: str | os.PathLike) -> dict:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``), unwrapped.

    Returns:
        name -> tensor, with any ``module.`` prefix removed.
    """
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except ImportError:
        raise Sem3RError(f"reading '{path.name}' needs safetensors: pip install safetensors") from None
    except Exception as exc:  # noqa: BLE001 (corrupt or foreign files raise many different types)
        raise Sem3RError(f"cannot read checkpoint '{path}': {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise Sem3RError(f"'{path}' does not hold a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_state_dict_strict(model, state: dict, source: str = "checkpoint", assign: bool = False) -> None:
    """``model.load_state_dict(state, strict=True)`` with a one-line report of every mismatch.

    ``assign=True`` makes the model's parameters the tensors of ``state`` (no copy), as needed for a
    model built on the ``meta`` device.

    Raises:
        Sem3RError: missing keys, unexpected keys or shape mismatches (counts and the first few names).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{len(items)} {what} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
            for what, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
            if items
        ]
        raise Sem3RError(f"{source} does not match the model configuration: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True, assign=assign)
