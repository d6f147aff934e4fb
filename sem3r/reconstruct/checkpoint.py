"""Model checkpoints: resolve a local path or hub id, read ``.pt`` / ``.safetensors`` safely, load strictly.

Files are read without unpickling arbitrary objects (``torch.load(weights_only=True)`` or
safetensors). A state dict wrapped by ``DistributedDataParallel`` (keys prefixed ``module.``) or
saved as ``{"model": state_dict}`` is unwrapped. Loading is strict, and a mismatch raises one line
that counts and names the first missing, unexpected and wrongly shaped keys.
"""

from __future__ import annotations

import logging
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
    if path.suffix in (".pt", ".pth", ".safetensors", ".bin") or hub_id.count("/") != 1:
        raise Sem3RError(f"checkpoint '{hub_id}' does not exist")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise Sem3RError(
            f"'{hub_id}' is not a local file and huggingface_hub is not installed; pass a local checkpoint path"
        ) from None
    errors = []
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)  # the client logs every failed retry; our error says it once
    try:
        for name in CHECKPOINT_FILES:
            try:
                return Path(hf_hub_download(repo_id=hub_id, filename=name, etag_timeout=5))
            except Exception as exc:  # network, authentication or missing-file errors of the hub client
                errors.append(f"{name}: {type(exc).__name__}")
                if type(exc).__name__ == "LocalEntryNotFoundError":  # offline and not cached: other names fail alike
                    break
    finally:
        hub_logger.setLevel(level)
    raise Sem3RError(
        f"could not download '{hub_id}' from the hub ({'; '.join(errors)}); without network access pass a local checkpoint path"
    )


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
    except Exception as exc:  # corrupt or foreign files raise many different types
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
