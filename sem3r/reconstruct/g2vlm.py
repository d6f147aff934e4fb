"""The ``g2vlm`` backend: cameras, depth and points from G2VLM's geometry expert, and G2VLM checkpoint loading.

Loading (:func:`load_g2vlm`), shared by this backend, the G2VLM LMM
(:mod:`sem3r.reasoning.g2vlm_lmm`) and training:

* a checkpoint is a **folder** (or a hub id such as ``InternRobotics/G2VLM-2B-MoT``, downloaded with
  ``huggingface_hub``, the ``[hub]`` extra) holding ``text_config.json``, ``vit_config.json``,
  ``dino_config.json`` (optionally ``sem3r_config.json``), the weights and usually the tokenizer;
* weights (:func:`read_g2vlm_weights`): ``model.safetensors``, shards listed by
  ``model.safetensors.index.json``, other ``*.safetensors``, or ``pytorch_model.bin`` / ``*.pt`` read
  with ``torch.load(weights_only=True)``; nothing is ever unpickled;
* the model is built on the ``meta`` device (no memory, no random init) and the weights are assigned
  to it; the names a real checkpoint may carry that the model does not use
  (:data:`EXTRA_OFFICIAL_KEYS`, :data:`EXTRA_OFFICIAL_PREFIXES`) are dropped, every other name must
  match (one line naming the first mismatched keys otherwise);
* precision: fp32 on CPU; on CUDA the weights are stored in bf16 (9 GB instead of 18 GB for the 2B
  model) except the three geometry heads, which stay fp32 as on the official path, and inference
  runs under bf16 autocast (:func:`g2vlm_inference`), like the official GPU path (G2VLM facts,
  section 12).

Reconstruction (:func:`reconstruct_g2vlm`): the Scene's images go through the official geometry-branch
resize (width :attr:`G2VLMReconstructConfig.width`, height scaled and rounded to a multiple of 14),
the reconstruction prompt ``<|im_start|>Reconstruct the 3D scene.`` and one joint pass over all views.
The model's outputs become Scene fields at the **Scene's own image size**:

* ``cam_from_world (N, 3, 4)``: the inverse of the predicted camera-to-world poses (OpenCV axes, as the
  local point maps are: x right, y down, z forward); the world frame is the first camera's
  (``world_frame="first_camera"``, Sem3R's convention for feed-forward models) or the model's own
  (``"model"``);
* ``intrinsics (N, 3, 3)``: fitted to the local point maps, per view, by least squares on
  ``u = fx x/z + cx``, ``v = fy y/z + cy`` (:func:`estimate_intrinsics`); by default the principal
  point is fixed at the image centre ``((W-1)/2, (H-1)/2)`` and only the focal lengths are fitted
  (the model's rays are trained that way, and it keeps an untrained or noisy prediction sane);
  ``principal_point="fit"`` fits it too;
* ``depth (N, H, W)``: the z of the local points, resized to the Scene's size (bilinear, antialiased
  when shrinking; ``resample="nearest"`` avoids blending across depth edges);
* ``world_points (N, H, W, 3)``: the resized local points moved by the predicted poses
  (``metadata['point_source'] = "points"``);
* G2VLM has no confidence output: ``depth_conf`` and ``point_conf`` are ``None``; the scale is
  arbitrary (``metadata['metric'] = False``, ``metadata['scale'] = "arbitrary"``).

Example:
    >>> from sem3r.reconstruct import BACKENDS
    >>> "g2vlm" in BACKENDS
    True
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.reconstruct.checkpoint import load_state_dict_strict, read_state_dict
from sem3r.scene import Scene

DEFAULT_CHECKPOINT = "InternRobotics/G2VLM-2B-MoT"
"""The official G2VLM checkpoint on the Hugging Face hub."""

HUB_PATTERNS = ("*.json", "*.safetensors", "*.bin", "*.pt", "*.txt", "*.model", "*.tiktoken", "tokenizer*", "vocab*",
                "merges*")
"""Files fetched from a hub repository: configs, weights, tokenizer files (never the whole repository)."""

EXTRA_OFFICIAL_KEYS = ("latent_pos_embed.pos_embed", "vit_pos_embed.pos_embed")
"""Names a real checkpoint may hold that the model does not use (Bagel-era position tables); dropped."""

EXTRA_OFFICIAL_PREFIXES = ("conf_decoder.", "conf_head.", "Pi3Loss.")
"""Prefixes of training-only modules a real checkpoint may hold (confidence decoder / head, loss); dropped."""

FP32_PREFIXES = ("point_head.", "global_point_head.", "camera_head.")
"""Modules kept in fp32 whatever the load dtype: the official path runs the geometry heads in fp32."""

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
"""Any of these in a folder means it carries a tokenizer."""

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


# ---------------------------------------------------------------------------------------------- loading
def resolve_g2vlm_folder(path_or_hub_id: str | os.PathLike) -> Path:
    """A local G2VLM checkpoint folder for a folder path or a hub id.

    A hub id (``owner/name``) is fetched with ``huggingface_hub.snapshot_download`` (configs, weights,
    tokenizer files only, see :data:`HUB_PATTERNS`). With ``HF_HUB_OFFLINE=1`` only the local hub cache
    is used; without network access the client fails at once (no retries) and the error says so in
    one line.

    Raises:
        Sem3RError: a path that is not a folder, a hub id that cannot be fetched (offline and not
            cached, unknown repository), or ``huggingface_hub`` missing (names the ``[hub]`` extra).

    Example:
        >>> import tempfile
        >>> resolve_g2vlm_folder(tempfile.gettempdir()).is_dir()
        True
    """
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        return path
    text = str(path_or_hub_id)
    if path.is_file():
        raise Sem3RError(f"G2VLM checkpoint '{text}' is a file; pass its folder (it holds the three config files)")
    looks_local = text.startswith((".", "/", "~")) or "\\" in text
    if looks_local or text.count("/") != 1 or not all(text.split("/")):
        raise Sem3RError(f"G2VLM checkpoint folder '{text}' does not exist")
    from sem3r.hub import hub_snapshot

    return hub_snapshot(text, list(HUB_PATTERNS), what="the G2VLM checkpoint", use="pass a local checkpoint folder")


def g2vlm_weight_files(folder: str | os.PathLike) -> list[Path]:
    """The weight files of a checkpoint folder, in the order they are read.

    Looked for, first match wins: ``model.safetensors.index.json`` (its shards), ``model.safetensors``,
    any ``*.safetensors``, ``pytorch_model.bin.index.json`` (its shards), ``pytorch_model.bin``, any
    ``*.pt`` / ``*.pth`` / ``*.bin``.

    Raises:
        Sem3RError: no weights, or an index naming a shard that is missing.
    """
    folder = Path(folder)
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                names = sorted(set(weight_map.values()))
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
                raise Sem3RError(f"'{index}' is not a valid index (a JSON object with a 'weight_map')") from None
            missing = [n for n in names if not (folder / n).is_file()]
            if missing:
                raise Sem3RError(f"'{index}' names {len(missing)} missing shard(s), e.g. '{missing[0]}'")
            return [folder / n for n in names]
        single = folder / index_name.replace(".index.json", "")
        if single.is_file():
            return [single]
        found = sorted(folder.glob("*.safetensors")) if index_name.startswith("model") else sorted(
            p for ext in ("*.pt", "*.pth", "*.bin") for p in folder.glob(ext))
        if found:
            return found
    raise Sem3RError(f"no G2VLM weights in '{folder}' (looked for model.safetensors, sharded *.safetensors with "
                     "model.safetensors.index.json, pytorch_model.bin, *.pt)")


def read_g2vlm_weights(folder: str | os.PathLike) -> dict:
    """All weights of a checkpoint folder, merged into one state dict (read without unpickling).

    Returns:
        name -> tensor (as stored; any ``module.`` prefix removed).

    Raises:
        Sem3RError: no weights, an unreadable file, or a key stored in two files.
    """
    from tqdm import tqdm

    files = g2vlm_weight_files(folder)
    state: dict = {}
    for path in tqdm(files, desc="reading G2VLM weights", unit="file", disable=len(files) < 2, leave=False):
        part = read_state_dict(path)
        twice = state.keys() & part.keys()
        if twice:
            raise Sem3RError(f"'{min(twice)}' is stored in two weight files of '{folder}' (one is '{path.name}')")
        state.update(part)
    return state


def drop_extra_official_keys(state: dict) -> tuple[dict, list[str]]:
    """Remove the names a real checkpoint may carry that the model does not have.

    Returns:
        The filtered state dict and the dropped names.

    Example:
        >>> kept, dropped = drop_extra_official_keys({"a.weight": 0, "vit_pos_embed.pos_embed": 0, "conf_head.w": 0})
        >>> list(kept), dropped
        (['a.weight'], ['vit_pos_embed.pos_embed', 'conf_head.w'])
    """
    dropped = [k for k in state if k in EXTRA_OFFICIAL_KEYS or k.startswith(EXTRA_OFFICIAL_PREFIXES)]
    return {k: v for k, v in state.items() if k not in set(dropped)}, dropped


def resolve_device(device: str = "auto"):
    """``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a ``torch.device``.

    Raises:
        Sem3RError: an unknown device, or CUDA asked for but unavailable.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise Sem3RError(f"unknown device '{device}' (expected auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise Sem3RError(f"device '{device}' asked for, but CUDA is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise Sem3RError(f"unsupported device '{device}' (expected auto, cpu, cuda or cuda:N)")
    return dev


def resolve_dtype(dtype, device) -> Any:
    """The load dtype: ``None`` gives bf16 on CUDA and fp32 on CPU; names (``"bfloat16"``, ``"fp32"``, ...) or a ``torch.dtype``.

    Raises:
        Sem3RError: an unknown name.
    """
    import torch

    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise Sem3RError(f"unsupported G2VLM dtype {dtype} (expected float32, bfloat16 or float16)")
        return dtype
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise Sem3RError(f"unknown dtype '{dtype}' (expected float32, bfloat16 or float16)")
    return getattr(torch, name)


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Build modules with their parameters on the ``meta`` device and their buffers on the CPU.

    Parameters are replaced by the checkpoint's tensors afterwards; buffers (rotary frequency tables,
    the image mean / std) are computed at construction and never stored in a checkpoint, so they must
    be real.
    """
    from torch import nn

    original = nn.Module.register_parameter

    def register(module, name, param):
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            module._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def has_tokenizer(folder: str | os.PathLike) -> bool:
    """Whether a checkpoint folder carries tokenizer files (:data:`TOKENIZER_FILES`)."""
    return any((Path(folder) / name).is_file() for name in TOKENIZER_FILES)


def load_g2vlm(path_or_hub_id: str | os.PathLike, device: str = "auto", dtype=None,
               dino_windows: str | None = None):
    """Load a G2VLM checkpoint folder (or hub id) for inference.

    Args:
        path_or_hub_id: a folder with the three config files, the weights and (usually) the tokenizer,
            or a hub id such as ``InternRobotics/G2VLM-2B-MoT``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: weight dtype; ``None`` = bf16 on CUDA (geometry heads fp32) and fp32 on CPU.
        dino_windows: override the config's DINO attention windows (``"official"`` / ``"per_image"``).

    Returns:
        ``(model, tokenizer)``: the :class:`~sem3r.models.g2vlm.G2VLM` in eval mode on ``device`` and
        the folder's tokenizer (``None`` when the folder has no tokenizer files).

    Raises:
        Sem3RError: a missing or invalid config file (named), no weights, weights that do not match
            the configs (names the first mismatched keys), an unusable tokenizer, a bad device or dtype.
    """
    import torch

    from sem3r.models.g2vlm.config import G2VLMConfig
    from sem3r.models.g2vlm.model import G2VLM

    folder = resolve_g2vlm_folder(path_or_hub_id)
    config = G2VLMConfig.from_folder(folder, **({} if dino_windows is None else {"dino_windows": dino_windows}))
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    tokenizer = None
    if has_tokenizer(folder):
        from sem3r.reasoning.g2vlm_chat import load_tokenizer

        tokenizer = load_tokenizer(folder)
    state, _ = drop_extra_official_keys(read_g2vlm_weights(folder))
    with _parameters_on_meta():
        model = G2VLM(config)
    state = {k: v.to(device=dev, dtype=torch.float32 if k.startswith(FP32_PREFIXES) else dt) if v.is_floating_point()
             else v.to(dev) for k, v in state.items()}
    load_state_dict_strict(model, state, source=f"G2VLM checkpoint '{folder}'", assign=True)
    model.to(dev)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
    if left:  # a module created a parameter outside register_parameter: a bug, not bad input
        raise RuntimeError(f"G2VLM tensors left on the meta device after loading: {left[:3]}")
    return model.eval(), tokenizer


def g2vlm_inference(model) -> contextlib.ExitStack:
    """The context G2VLM inference runs in: ``torch.inference_mode`` plus autocast to the model's
    weight dtype when that is bf16 / fp16 (the official GPU path), nothing more in fp32.

    Example:
        >>> from sem3r.models.g2vlm import G2VLM, G2VLMConfig
        >>> with g2vlm_inference(G2VLM(G2VLMConfig.small())):
        ...     pass
    """
    import torch

    weight = model.language_model.lm_head.weight
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if weight.dtype != torch.float32:
        stack.enter_context(torch.autocast(weight.device.type, dtype=weight.dtype))
    return stack


# ---------------------------------------------------------------------------------------------- geometry
def estimate_intrinsics(local_points: np.ndarray, image_size: tuple[int, int] | None = None,
                        principal_point: Literal["center", "fit"] = "center",
                        min_depth: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole intrinsics of camera-frame point maps, by least squares per view.

    Pixel ``(i, j)`` of an ``h x w`` point map is taken at ``u = (j + 0.5) W / w - 0.5``,
    ``v = (i + 0.5) H / h - 0.5`` in an ``H x W`` image (pixel centres at integers, the map covering
    the image), and ``u = fx x / z + cx``, ``v = fy y / z + cy`` is solved over the pixels with finite
    points and ``z > min_depth``: for ``fx`` (and ``cx`` with ``principal_point="fit"``) from the
    ``x / z`` column, likewise ``fy``, ``cy``. ``"center"`` fixes the principal point at
    ``((W - 1) / 2, (H - 1) / 2)``. A view whose fit is degenerate (fewer than 2 valid pixels, no
    spread in ``x / z``, a non-positive or non-finite focal length) gets the default guess
    ``1.2 max(H, W)`` at the centre.

    Args:
        local_points: ``(S, h, w, 3)`` points in each camera's OpenCV frame.
        image_size: ``(H, W)`` of the image the intrinsics are for (default ``(h, w)``).
        principal_point: ``"center"`` or ``"fit"``.
        min_depth: smallest ``z`` used.

    Returns:
        ``intrinsics (S, 3, 3) float64`` and ``fitted (S,) bool`` (False where the guess was used).

    Example:
        >>> v, u = np.mgrid[0:4, 0:6].astype(float)
        >>> z = np.full((4, 6), 2.0)
        >>> pts = np.stack([(u - 2.0) / 50 * z, (v - 1.0) / 40 * z, z], -1)[None]
        >>> K, ok = estimate_intrinsics(pts, principal_point="fit")
        >>> np.round(K[0], 6).tolist(), ok.tolist()
        ([[50.0, 0.0, 2.0], [0.0, 40.0, 1.0], [0.0, 0.0, 1.0]], [True])
    """
    from sem3r.data.readers.common import DEFAULT_FOCAL_FACTOR

    if principal_point not in ("center", "fit"):
        raise Sem3RError(f"principal_point must be 'center' or 'fit', got '{principal_point}'")
    pts = np.asarray(local_points, np.float64)
    if pts.ndim != 4 or pts.shape[-1] != 3:
        raise Sem3RError(f"local points must be (S, h, w, 3), got {pts.shape}")
    S, h, w, _ = pts.shape
    H, W = (h, w) if image_size is None else (int(image_size[0]), int(image_size[1]))
    z = pts[..., 2]
    valid = np.isfinite(pts).all(axis=-1) & (z > min_depth)
    safe_z = np.where(valid, z, 1.0)
    rays = [np.where(valid, pts[..., k] / safe_z, 0.0) for k in (0, 1)]  # x/z, y/z: (S, h, w)
    u = np.broadcast_to(((np.arange(w) + 0.5) * W / w - 0.5)[None, None, :], (S, h, w))
    v = np.broadcast_to(((np.arange(h) + 0.5) * H / h - 0.5)[None, :, None], (S, h, w))
    m = valid.astype(np.float64)
    n = m.sum(axis=(1, 2))
    K = np.tile(np.eye(3), (S, 1, 1))
    ok = n >= 2
    default_f = DEFAULT_FOCAL_FACTOR * max(H, W)
    for axis, (ray, pix, centre) in enumerate(((rays[0], u, (W - 1) / 2.0), (rays[1], v, (H - 1) / 2.0))):
        with np.errstate(divide="ignore", invalid="ignore"):
            if principal_point == "center":
                f = (m * ray * (pix - centre)).sum(axis=(1, 2)) / (m * ray * ray).sum(axis=(1, 2))
                c = np.full(S, centre)
            else:
                mean_r = (m * ray).sum(axis=(1, 2)) / n
                mean_p = (m * pix).sum(axis=(1, 2)) / n
                dr = ray - mean_r[:, None, None]
                f = (m * dr * (pix - mean_p[:, None, None])).sum(axis=(1, 2)) / (m * dr * dr).sum(axis=(1, 2))
                c = mean_p - f * mean_r
        good = np.isfinite(f) & np.isfinite(c) & (f > 0)
        ok &= good
        K[:, axis, axis] = f
        K[:, axis, 2] = c
    K[~ok] = np.array([[default_f, 0.0, (W - 1) / 2.0], [0.0, default_f, (H - 1) / 2.0], [0.0, 0.0, 1.0]])
    return K, ok


def resize_maps(maps: np.ndarray, size: tuple[int, int], mode: Literal["bilinear", "nearest"] = "bilinear") -> np.ndarray:
    """Resize per-view maps ``(S, h, w, C)`` to ``(S, H, W, C)`` (bilinear, antialiased when shrinking, or nearest).

    Example:
        >>> resize_maps(np.ones((2, 3, 4, 3), np.float32), (6, 8)).shape
        (2, 6, 8, 3)
    """
    import torch
    import torch.nn.functional as F

    maps = np.asarray(maps, np.float32)
    if maps.shape[1:3] == tuple(size):
        return maps.copy()
    x = torch.from_numpy(maps).permute(0, 3, 1, 2)
    if mode == "nearest":
        y = F.interpolate(x, size=tuple(size), mode="nearest-exact")
    else:
        shrink = size[0] < maps.shape[1] or size[1] < maps.shape[2]
        y = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)
    return y.permute(0, 2, 3, 1).numpy()


@dataclass
class G2VLMReconstructConfig:
    """Options of the ``g2vlm`` backend.

    Attributes:
        checkpoint: G2VLM checkpoint folder or hub id.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: weight dtype name (``"float32"``, ``"bfloat16"``, ``"float16"``); ``None`` = bf16 on
            CUDA, fp32 on CPU.
        width: geometry-branch image width, a multiple of 14; ``None`` = the model config's
            ``image_width`` (518 for the official model).
        dino_windows: ``None`` (the checkpoint's), ``"official"`` or ``"per_image"``.
        max_frames: most views reconstructed in one joint pass (memory grows with the square of the
            token count); a Scene with more views is an error naming the count.
        principal_point: ``"center"`` or ``"fit"`` (see :func:`estimate_intrinsics`).
        world_frame: ``"first_camera"`` (Sem3R's convention) or ``"model"`` (the model's own frame).
        resample: resizing of the point maps to the Scene's size, ``"bilinear"`` or ``"nearest"``.
    """

    checkpoint: str = DEFAULT_CHECKPOINT
    device: str = "auto"
    dtype: str | None = None
    width: int | None = None
    dino_windows: str | None = None
    max_frames: int = 64
    principal_point: Literal["center", "fit"] = "center"
    world_frame: Literal["model", "first_camera"] = "first_camera"
    resample: Literal["bilinear", "nearest"] = "bilinear"

    def validate(self) -> None:
        """Raise :class:`Sem3RError` for a value out of range."""
        if self.width is not None and (self.width < 14 or self.width % 14):
            raise Sem3RError(f"G2VLM width must be a positive multiple of 14, got {self.width}")
        if self.max_frames < 1:
            raise Sem3RError(f"max_frames must be at least 1, got {self.max_frames}")
        for name, allowed in (("principal_point", ("center", "fit")), ("world_frame", ("model", "first_camera")),
                              ("resample", ("bilinear", "nearest")), ("dino_windows", (None, "official", "per_image"))):
            if getattr(self, name) not in allowed:
                raise Sem3RError(f"{name} must be one of {', '.join(map(str, allowed))}, got '{getattr(self, name)}'")
        if self.dtype is not None and str(self.dtype).lower() not in _DTYPES:
            raise Sem3RError(f"unknown dtype '{self.dtype}' (expected float32, bfloat16 or float16)")


class G2VLMGeometry:
    """A loaded G2VLM ready to reconstruct image sets.

    Args:
        model: a :class:`~sem3r.models.g2vlm.G2VLM` with a geometry expert.
        tokenizer: its tokenizer (gives the reconstruction prompt's ids).
        source: where the model came from (for metadata and messages).
    """

    def __init__(self, model, tokenizer, source: str = "model") -> None:
        if not model.config.geometry_expert:
            raise Sem3RError(f"the G2VLM '{source}' has no geometry expert (geometry_expert=False); it cannot reconstruct")
        if tokenizer is None:
            raise Sem3RError(f"the G2VLM checkpoint '{source}' has no tokenizer files ({', '.join(TOKENIZER_FILES)}); "
                             "the reconstruction prompt needs them")
        from sem3r.reasoning.g2vlm_chat import recon_ids

        self.model, self.tokenizer, self.source = model, tokenizer, source
        self.prompt_ids = recon_ids(tokenizer)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | os.PathLike, device: str = "auto", dtype=None,
                        dino_windows: str | None = None) -> G2VLMGeometry:
        """:func:`load_g2vlm` then wrap."""
        model, tokenizer = load_g2vlm(path_or_hub_id, device, dtype, dino_windows)
        return cls(model, tokenizer, str(path_or_hub_id))

    @property
    def default_width(self) -> int:
        """The model config's geometry-branch width (518 for the official model)."""
        return int(getattr(self.model.config, "image_width", 518))

    def predict(self, images: np.ndarray, width: int | None = None) -> dict[str, np.ndarray]:
        """One joint reconstruction pass over all views.

        Args:
            images: ``(S, H, W, 3)`` uint8 RGB.
            width: geometry-branch width (multiple of 14); default :attr:`default_width`.

        Returns:
            At model resolution ``(h, w) = dino_size(H, W, width)``: ``local_points``, ``points``,
            ``global_points`` ``(S, h, w, 3)`` float32 and ``camera_poses`` ``(S, 4, 4)`` float64
            camera-to-world.
        """
        import torch

        from sem3r.models.g2vlm.preprocess import dino_images

        frames = dino_images(images, width or self.default_width, self.model.config.dino.patch_size)
        device = self.model.language_model.lm_head.weight.device
        with g2vlm_inference(self.model):
            out = self.model.reconstruct(frames.to(device), torch.tensor(self.prompt_ids, device=device))
        result = {k: v.float().cpu().numpy() for k, v in out.items()}
        result["camera_poses"] = result["camera_poses"].astype(np.float64)
        return result


def reconstruct_g2vlm(scene: Scene, config: G2VLMReconstructConfig, geometry: G2VLMGeometry | None = None) -> Scene:
    """Backend function: G2VLM's geometry expert on the Scene's images (see the module docstring).

    Args:
        scene: input views ``(N, H, W, 3)``; only the images are used. Not modified.
        config: backend options.
        geometry: an already loaded model (default: load ``config.checkpoint``).

    Returns:
        A new Scene at the input's size: ``intrinsics (N, 3, 3)``, ``cam_from_world (N, 3, 4)``,
        ``depth (N, H, W)``, ``world_points (N, H, W, 3)``; other fields of the input (masks, names,
        metadata) are kept, its old confidences dropped.

    Raises:
        Sem3RError: more views than ``config.max_frames``, an unusable checkpoint, a non-finite pose.
    """
    from sem3r.geometry.camera import invert_pose
    from sem3r.reconstruct.common import derive_scene

    config.validate()
    if scene.num_views > config.max_frames:
        raise Sem3RError(f"the scene has {scene.num_views} views, more than G2VLM's max_frames={config.max_frames} "
                         "(one joint pass over all views); select fewer views (CLI: --max-frames) or raise max_frames")
    geometry = geometry or G2VLMGeometry.from_pretrained(config.checkpoint, config.device, config.dtype, config.dino_windows)
    width = config.width or geometry.default_width
    out = geometry.predict(scene.images, width)
    poses = out["camera_poses"]
    bad = ~np.isfinite(poses).reshape(len(poses), -1).all(axis=1)
    if bad.any():
        raise Sem3RError(f"G2VLM predicted a non-finite camera for view '{scene.image_names[int(np.argmax(bad))]}'")
    if config.world_frame == "first_camera":
        poses = invert_pose(poses[0])[None] @ poses
    H, W = scene.height, scene.width
    local = resize_maps(out["local_points"], (H, W), config.resample)
    world = np.einsum("sij,shwj->shwi", poses[:, :3, :3], local.astype(np.float64)) + poses[:, None, None, :3, 3]
    depth = local[..., 2]
    valid = np.isfinite(local).all(axis=-1) & np.isfinite(world).all(axis=-1) & (depth > 0)
    intrinsics, fitted = estimate_intrinsics(out["local_points"], (H, W), config.principal_point)
    model_h, model_w = out["local_points"].shape[1:3]
    metadata = {
        "geometry": "g2vlm",
        "metric": False,
        "scale": "arbitrary",
        "point_source": "points",
        "world_frame": config.world_frame,
        "checkpoint": str(config.checkpoint),
        "g2vlm": {"model_size": [int(model_h), int(model_w)], "principal_point": config.principal_point,
                  "intrinsics_guessed_views": [scene.image_names[i] for i in np.flatnonzero(~fitted)]},
    }
    return derive_scene(
        scene, metadata,
        intrinsics=intrinsics,
        cam_from_world=invert_pose(poses)[:, :3],
        depth=np.where(valid, depth, 0.0).astype(np.float32),
        depth_conf=None,
        world_points=np.where(valid[..., None], world, np.nan).astype(np.float32),
        point_conf=None,
    )


__all__ = [
    "DEFAULT_CHECKPOINT",
    "G2VLMGeometry",
    "G2VLMReconstructConfig",
    "drop_extra_official_keys",
    "estimate_intrinsics",
    "g2vlm_inference",
    "g2vlm_weight_files",
    "load_g2vlm",
    "read_g2vlm_weights",
    "reconstruct_g2vlm",
    "resolve_g2vlm_folder",
]
