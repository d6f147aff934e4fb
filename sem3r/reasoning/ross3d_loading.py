"""Loading a ROSS3D checkpoint for inference (ROSS3D facts, sections 1, 7 and 12).

:func:`load_ross3d` reads a checkpoint **folder** (or a hub id such as
``HaochenWang/llava-video-qwen2-7b-ross3d``, downloaded with ``huggingface_hub``, the ``[hub]`` extra):

* ``config.json``, HF style (:meth:`~sem3r.models.ross3d.config.Ross3DConfig.from_json`; a missing file is one line);
* the weights, read without unpickling, as for G2VLM (``model.safetensors``, shards listed by
  ``model.safetensors.index.json``, other ``*.safetensors``, ``pytorch_model.bin`` / ``*.pt``:
  :func:`~sem3r.reconstruct.g2vlm.read_g2vlm_weights`);
* the vocabulary rows come from the tensors (:func:`~sem3r.models.ross3d.config.config_for_state_dict`: the
  official embedding has 152064 rows, ``lm_head`` 151649, whatever ``config.json`` says);
* the training-only modules a released file may carry (:data:`~sem3r.models.ross3d.model.TRAINING_ONLY_PREFIXES`:
  the denoiser ``model.mm_inv_projector`` and the VAE ``model.mm_pixel_decoder``) are skipped; every other name
  must match the model, else one line names the first mismatched keys (a checkpoint without the SigLIP tower
  names ``model.vision_tower...`` keys);
* the model is built on the ``meta`` device and the weights are assigned to it (no random init, no copy);
* precision: fp32 on CPU; float16 on CUDA (the official evaluation's precision, facts section 12), or ``dtype``;
* the tokenizer is the folder's, through transformers' ``AutoTokenizer`` (the ``[vlm]`` extra); its
  ``<|im_start|>`` / ``<|im_end|>`` ids must be the config's ``im_start_id`` / ``im_end_id``.

Example:
    >>> load_ross3d("/nonexistent/ross3d")
    Traceback (most recent call last):
    ...
    sem3r.errors.Sem3RError: ROSS3D checkpoint folder '/nonexistent/ross3d' does not exist
"""

from __future__ import annotations

import os
from pathlib import Path

from sem3r.errors import Sem3RError

DEFAULT_CHECKPOINT = "HaochenWang/llava-video-qwen2-7b-ross3d"
"""The official Ross3D-7B checkpoint on the Hugging Face hub."""


def _as_ross3d(exc: Sem3RError) -> Sem3RError:
    """A shared (G2VLM-worded) loading error, worded for ROSS3D."""
    return Sem3RError(str(exc).replace("G2VLM", "ROSS3D").replace(" (it holds the three config files)", ""))


def resolve_ross3d_folder(path_or_hub_id: str | os.PathLike) -> Path:
    """A local ROSS3D checkpoint folder for a folder path or a hub id (fetched with ``huggingface_hub``;
    with ``HF_HUB_OFFLINE=1`` or without network only the local hub cache is used, and the failure is one line).

    Raises:
        Sem3RError: a path that is a file or does not exist, or a hub id that cannot be fetched.
    """
    from sem3r.reconstruct.g2vlm import resolve_g2vlm_folder

    if Path(path_or_hub_id).expanduser().is_file():
        raise Sem3RError(f"ROSS3D checkpoint '{path_or_hub_id}' is a file; pass its folder (config.json and the weights)")
    try:
        return resolve_g2vlm_folder(path_or_hub_id)
    except Sem3RError as exc:
        raise _as_ross3d(exc) from None


def read_ross3d_weights(folder: str | os.PathLike) -> dict:
    """All weight files of a checkpoint folder merged into one state dict (see the module docstring)."""
    from sem3r.reconstruct.g2vlm import read_g2vlm_weights

    try:
        return read_g2vlm_weights(folder)
    except Sem3RError as exc:
        raise _as_ross3d(exc) from None


def load_ross3d_tokenizer(folder: str | os.PathLike, config=None):
    """The folder's tokenizer (``AutoTokenizer``); with ``config``, its chat ids are checked against it.

    Raises:
        Sem3RError: no tokenizer files, an unusable tokenizer, or ``<|im_start|>`` / ``<|im_end|>`` ids that
            differ from the config's.
    """
    from sem3r.reasoning.g2vlm_chat import load_tokenizer
    from sem3r.reconstruct.g2vlm import TOKENIZER_FILES, has_tokenizer

    if not has_tokenizer(folder):
        raise Sem3RError(f"the ROSS3D checkpoint '{folder}' has no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    tokenizer = load_tokenizer(folder)
    if config is not None:
        for token, want in (("<|im_start|>", config.im_start_id), ("<|im_end|>", config.im_end_id)):
            got = tokenizer.convert_tokens_to_ids(token)
            if got != want:
                raise Sem3RError(f"the tokenizer of '{folder}' gives {token} the id {got}, the config {want}")
    return tokenizer


def load_ross3d(path_or_hub_id: str | os.PathLike, device: str = "auto", dtype=None):
    """Load a ROSS3D checkpoint folder (or hub id) for inference.

    Args:
        path_or_hub_id: checkpoint folder or hub id (``HaochenWang/llava-video-qwen2-7b-ross3d``).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: ``None`` (float16 on CUDA as the official evaluation, fp32 on CPU), a name (``"bfloat16"``,
            ``"fp32"``, ...) or a ``torch.dtype``.

    Returns:
        ``(model, tokenizer)``: a :class:`~sem3r.models.ross3d.model.Ross3D` in eval mode on ``device`` and the
        folder's tokenizer.

    Raises:
        Sem3RError: a missing folder / ``config.json`` / weights / tokenizer, or weights that do not match the
            config (one line naming the first mismatched keys).
    """
    import torch

    from sem3r.models.ross3d import (
        Ross3D,
        Ross3DConfig,
        config_for_state_dict,
        split_training_only,
    )
    from sem3r.reconstruct.checkpoint import load_state_dict_strict
    from sem3r.reconstruct.g2vlm import (
        _parameters_on_meta,
        resolve_device,
        resolve_dtype,
    )

    folder = resolve_ross3d_folder(path_or_hub_id)
    config = Ross3DConfig.from_json(folder)
    dev = resolve_device(device)
    dt = resolve_dtype(torch.float16 if dtype is None and dev.type == "cuda" else dtype, dev)
    state, _ = split_training_only(read_ross3d_weights(folder))
    config = config_for_state_dict(config, state)
    tokenizer = load_ross3d_tokenizer(folder, config)
    with _parameters_on_meta():
        model = Ross3D(config)
    state = {k: v.to(device=dev, dtype=dt) if v.is_floating_point() else v.to(dev) for k, v in state.items()}
    load_state_dict_strict(model, state, source=f"ROSS3D checkpoint '{folder}'", assign=True)
    model.to(dev)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
    if left:  # a module created a parameter outside register_parameter: a bug, not bad input
        raise RuntimeError(f"ROSS3D tensors left on the meta device after loading: {left[:3]}")
    return model.eval(), tokenizer


__all__ = ["DEFAULT_CHECKPOINT", "load_ross3d", "load_ross3d_tokenizer", "read_ross3d_weights", "resolve_ross3d_folder"]
