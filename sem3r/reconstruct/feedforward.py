"""The ``feedforward`` backend: cameras, depth and points from the unified geometry transformer.

:class:`Sem3RGeometry` wraps a :class:`~sem3r.models.vggt.VGGT` or an
:class:`~sem3r.models.iggt.IGGT` (any checkpoint with the official layout, or a small model trained
by ``sem3r train``) with loading, preprocessing and conversion of its outputs into a
:class:`~sem3r.scene.Scene`:

* images are preprocessed as the reference model expects (:mod:`sem3r.reconstruct.preprocess`);
  the Scene holds the model-resolution images;
* inference runs under ``torch.inference_mode``: fp32 on CPU, bf16 autocast on GPUs that support it
  (fp16 otherwise); the DPT heads process ``frames_chunk_size`` frames at a time so memory grows
  linearly with the number of frames;
* ``cam_from_world`` and ``intrinsics`` come from the pose encoding (``absT_quaR_FoV``, fields of
  view clamped to :data:`MIN_FOV`); the world frame is the first camera and the scale is the
  model's (``metadata['metric'] = False``);
* ``depth``/``depth_conf`` come from the depth head and ``world_points``/``point_conf`` from the
  point head, or from unprojecting the depth with the predicted cameras (``points_from="depth"``);
* ``conf_percentile`` marks the lowest-confidence pixels invalid (depth 0, points NaN);
* an IGGT also fills ``Scene.instance_features`` (unit-length per-pixel features, float16), and
  :meth:`Sem3RGeometry.instance_features` computes them for a Scene reconstructed by any backend,
  at that Scene's resolution.

A folder written by :meth:`Sem3RGeometry.save_pretrained` holds ``model.safetensors`` and
``config.json``: the model config's fields plus ``"model_type"`` (``"vggt"`` or ``"iggt"``; a
missing entry means ``"vggt"``, so older folders keep loading).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.geometry.camera import unproject_depth
from sem3r.io import atomic_path, write_json_atomic
from sem3r.reconstruct.checkpoint import (
    config_from_dict,
    load_state_dict_strict,
    read_json_object,
    read_state_dict,
    resolve_checkpoint,
)
from sem3r.reconstruct.preprocess import PreprocessConfig, preprocess_images
from sem3r.scene import Scene

MIN_FOV = 1e-2
"""Predicted fields of view are clamped to ``[MIN_FOV, pi - MIN_FOV]`` radians so that an untrained
or degenerate prediction (the FoV activation is a ReLU and can give 0) still yields finite focal
lengths."""

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MODEL_TYPES = ("vggt", "iggt")
"""Values of ``model_type`` in ``config.json`` and of :meth:`Sem3RGeometry.from_pretrained`'s argument."""


@dataclass
class FeedforwardConfig:
    """Options of the ``feedforward`` backend.

    Attributes:
        checkpoint: local file or folder, or hub id (e.g. ``facebook/VGGT-1B``).
        preprocess: resolution and crop/pad mode.
        frames_chunk_size: frames per DPT-head chunk (memory only).
        points_from: ``"points"`` (point head) or ``"depth"`` (depth unprojected with the predicted cameras).
        conf_percentile: mark the lowest P percent of pixels (by confidence) invalid; ``None`` keeps all.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    """

    checkpoint: str = "facebook/VGGT-1B"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    frames_chunk_size: int = 8
    points_from: Literal["points", "depth"] = "points"
    conf_percentile: float | None = None
    device: str = "auto"


class Sem3RGeometry:
    """A geometry transformer ready for inference.

    Example:
        >>> from sem3r.models.vggt import VGGT, VGGTConfig
        >>> geo = Sem3RGeometry(VGGT(VGGTConfig.small(enable_track=False)))
        >>> scene = geo.predict([np.zeros((120, 160, 3), np.uint8)] * 2, PreprocessConfig(target_size=112))
        >>> scene.depth.shape, scene.cam_from_world.shape
        ((2, 84, 112), (2, 3, 4))
    """

    def __init__(self, model, device: str = "auto") -> None:
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike,
        device: str = "auto",
        model_config=None,
        model_type: Literal["vggt", "iggt"] | None = None,
    ) -> Sem3RGeometry:
        """Load a checkpoint (``.pt`` or ``.safetensors``, strict, ``weights_only``).

        Args:
            path_or_hub_id: a file, a folder written by :meth:`save_pretrained`, or a hub id.
            device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
            model_config: a :class:`~sem3r.models.vggt.VGGTConfig` or
                :class:`~sem3r.models.iggt.IGGTConfig` (its class picks the model); default: the
                folder's ``config.json`` when present, else the official size.
            model_type: ``"vggt"`` or ``"iggt"``; default: ``config.json``'s ``model_type`` (missing
                = ``"vggt"``), or for a bare weights file ``"iggt"`` when it has ``part_head.`` keys.

        Raises:
            Sem3RError: missing file, unreadable file, an unknown or contradictory model type, or a
                state dict that does not match the configuration (the message lists missing /
                unexpected / wrongly shaped keys).
        """
        from sem3r.models.iggt import IGGT, IGGTConfig
        from sem3r.models.vggt import VGGT, VGGTConfig

        if model_type is not None and model_type not in MODEL_TYPES:
            raise Sem3RError(f"unknown model_type '{model_type}' (expected one of {', '.join(MODEL_TYPES)})")
        path = resolve_checkpoint(path_or_hub_id)
        config_file = path.parent / CONFIG_FILE
        if model_config is None and config_file.is_file():  # the small config is checked before the weights are read
            fields = read_json_object(config_file)
            saved_type = fields.pop("model_type", "vggt")
            if saved_type not in MODEL_TYPES or model_type not in (None, saved_type):
                raise Sem3RError(
                    f"'{config_file}' has model_type '{saved_type}'"
                    + (f", not '{model_type}'" if saved_type in MODEL_TYPES else " (unknown)")
                )
            model_type = saved_type
            model_config = config_from_dict(IGGTConfig if model_type == "iggt" else VGGTConfig, fields, config_file)
        state = read_state_dict(path)
        if model_config is None:
            model_type = model_type or checkpoint_model_type(state)
            model_config = IGGTConfig() if model_type == "iggt" else VGGTConfig()
        config_type = "iggt" if isinstance(model_config, IGGTConfig) else "vggt"
        if model_type is not None and model_type != config_type:
            raise Sem3RError(f"model_type '{model_type}' contradicts the {type(model_config).__name__} given")
        if not model_config.enable_track:
            state = {k: v for k, v in state.items() if not k.startswith("track_head.")}
        model = IGGT(model_config) if config_type == "iggt" else VGGT(model_config)
        load_state_dict_strict(model, state, source=f"checkpoint '{path.name}'")
        return cls(model, device)

    @property
    def model_type(self) -> str:
        """``"iggt"`` when the model has an instance head, else ``"vggt"``."""
        from sem3r.models.iggt import IGGT

        return "iggt" if isinstance(self.model, IGGT) else "vggt"

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (atomically)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp))
        write_json_atomic(directory / CONFIG_FILE, {**asdict(self.model.config), "model_type": self.model_type})
        return directory

    def _run(self, function, images, **kwargs):
        """``function(images[None], **kwargs)`` for ``images (S, 3, H, W)`` on the model's device,
        without gradients, with bf16 (fp16 where unsupported) autocast on CUDA."""
        import torch

        amp = self.device.type == "cuda"
        dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype, enabled=amp):
            return function(images.to(self.device)[None], **kwargs)

    def instance_features(
        self, scene: Scene, preprocess: PreprocessConfig | None = None, frames_chunk_size: int = 8
    ) -> np.ndarray:
        """IGGT instance features of a Scene's images, at the Scene's own resolution.

        The images are preprocessed as for :meth:`predict`; the model's features are mapped back
        through the preprocessing's affine pixel map (``u_model = sx * (u + 0.5) - 0.5 + ox``, likewise
        ``v``) by bilinear sampling (pixels cropped away take the nearest border feature) and
        re-normalised to unit length.

        Args:
            scene: any Scene with ``images (N, H, W, 3) uint8`` (e.g. from the RGB-D or COLMAP backend).
            preprocess: the model's resolution and crop/pad mode.
            frames_chunk_size: frames the point head and the instance branch process at once.

        Returns:
            ``(N, H, W, C) float32`` unit-length features.

        Raises:
            Sem3RError: the model has no instance head (a VGGT).
        """
        import torch
        import torch.nn.functional as F

        if self.model_type != "iggt":
            raise Sem3RError("the loaded geometry model has no instance head; load an IGGT checkpoint for instance features")
        batch = preprocess_images(list(scene.images), preprocess)
        features = self._run(self.model.instance_features, batch.to_tensor(), frames_chunk_size=frames_chunk_size)[0]
        features = features.float().permute(0, 3, 1, 2)  # (N, C, H_m, W_m)
        model_h, model_w = features.shape[-2:]
        height, width = scene.images.shape[1:3]
        scale = torch.as_tensor(batch.scale, dtype=torch.float32, device=features.device)[:, None, None, :]
        offset = torch.as_tensor(batch.offset, dtype=torch.float32, device=features.device)[:, None, None, :]
        v, u = torch.meshgrid(
            torch.arange(height, dtype=torch.float32, device=features.device),
            torch.arange(width, dtype=torch.float32, device=features.device),
            indexing="ij",
        )
        model_uv = scale * (torch.stack((u, v), dim=-1)[None] + 0.5) - 0.5 + offset  # (N, H, W, 2)
        size = torch.tensor([model_w - 1, model_h - 1], dtype=torch.float32, device=features.device).clamp(min=1)
        grid = model_uv / size * 2 - 1
        sampled = F.grid_sample(features, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return F.normalize(sampled, dim=1).permute(0, 2, 3, 1).cpu().numpy()

    def predict(
        self,
        images: Sequence[np.ndarray],
        preprocess: PreprocessConfig | None = None,
        names: Sequence[str] | None = None,
        frames_chunk_size: int = 8,
        points_from: Literal["points", "depth"] = "points",
        conf_percentile: float | None = None,
    ) -> Scene:
        """Reconstruct ``S`` images of any sizes.

        Args:
            images: ``S`` arrays ``(H_i, W_i, 3) uint8``; the first is the reference view.
            preprocess: resolution and crop/pad mode.
            names: image names (default ``view_XXXX``).
            frames_chunk_size: frames per DPT-head chunk.
            points_from: ``"points"`` or ``"depth"`` (see :class:`FeedforwardConfig`).
            conf_percentile: mark the lowest P percent of pixels invalid.

        Returns:
            A Scene at model resolution ``(S, H, W)`` with cameras, depth, confidences and world
            points, and for an IGGT ``instance_features (S, H, W, C) float16``.
        """

        from sem3r.geometry.pose_encoding import pose_encoding_to_extri_intri

        if points_from not in ("points", "depth"):
            raise Sem3RError(f"points_from must be 'points' or 'depth', got '{points_from}'")
        batch = preprocess_images(images, preprocess, names)
        height, width = batch.images.shape[1:3]
        out = self._run(self.model, batch.to_tensor(), frames_chunk_size=frames_chunk_size)
        pose_enc = out["pose_enc"][0].float().clone()
        pose_enc[:, 7:] = pose_enc[:, 7:].clamp(MIN_FOV, np.pi - MIN_FOV)
        extrinsics, intrinsics = pose_encoding_to_extri_intri(pose_enc, (height, width))
        depth = out["depth"][0, ..., 0].float().cpu().numpy()
        depth_conf = out["depth_conf"][0].float().cpu().numpy()
        cam_from_world = extrinsics.cpu().numpy().astype(np.float64)
        K = intrinsics.cpu().numpy().astype(np.float64)
        if points_from == "points":
            points = out["world_points"][0].float().cpu().numpy()
            point_conf = out["world_points_conf"][0].float().cpu().numpy()
        else:
            points, point_conf = unproject_depth(depth, K, cam_from_world), depth_conf.copy()
        instance_features = None
        if "instance_features" in out:
            instance_features = out["instance_features"][0].float().cpu().numpy().astype(np.float16)
        if conf_percentile is not None:
            depth = np.where(depth_conf >= np.percentile(depth_conf, conf_percentile), depth, 0.0)
            points = np.where((point_conf >= np.percentile(point_conf, conf_percentile))[..., None], points, np.nan)
        return Scene(
            images=batch.images,
            intrinsics=K,
            cam_from_world=cam_from_world,
            depth=depth,
            depth_conf=depth_conf,
            world_points=points,
            point_conf=point_conf,
            instance_features=instance_features,
            image_names=list(names) if names is not None else [],
            metadata={
                "geometry": "feedforward",
                "metric": False,
                "point_source": "points" if points_from == "points" else "depth",
                "preprocess": {
                    "mode": (preprocess or PreprocessConfig()).mode,
                    "original_sizes": batch.original_sizes.tolist(),
                    "scale": batch.scale.tolist(),
                    "offset": batch.offset.tolist(),
                },
            },
        )


def reconstruct_image_files(paths: Sequence[str | os.PathLike], config: FeedforwardConfig, geometry: Sem3RGeometry | None = None) -> Scene:
    """Run the geometry transformer on image files of any (mixed) sizes.

    Unlike reading the files into a Scene first, which needs one common size, every image is
    preprocessed on its own (see :mod:`sem3r.reconstruct.preprocess`).

    Args:
        paths: ``S`` image files; the first is the reference view.
        config: backend options.
        geometry: an already loaded model (default: load ``config.checkpoint``).

    Returns:
        A Scene at model resolution whose ``image_names`` are the file names.
    """
    from sem3r.data.readers.common import load_rgb, parallel_map

    paths = [Path(p) for p in paths]
    images = list(parallel_map(load_rgb, paths, "reading images"))
    geometry = geometry or Sem3RGeometry.from_pretrained(config.checkpoint, config.device)
    scene = geometry.predict(
        images, config.preprocess, [p.name for p in paths], config.frames_chunk_size, config.points_from, config.conf_percentile
    )
    scene.metadata.update({"source": "image_folder", "source_path": str(paths[0].parent), "checkpoint": str(config.checkpoint)})
    return scene


def checkpoint_model_type(state: dict) -> str:
    """``"iggt"`` for a state dict with instance-head (``part_head.``) keys, else ``"vggt"``.

    Example:
        >>> checkpoint_model_type({"aggregator.camera_token": 0, "part_head.norm.weight": 0})
        'iggt'
    """
    return "iggt" if any(k.startswith("part_head.") for k in state) else "vggt"


def reconstruct_feedforward(scene: Scene, config: FeedforwardConfig, geometry: Sem3RGeometry | None = None) -> Scene:
    """Backend function: run the geometry transformer on the Scene's images.

    Args:
        scene: input views (only ``images`` and ``image_names`` are used).
        config: backend options.
        geometry: an already loaded model (default: load ``config.checkpoint``).

    Returns:
        A new Scene at model resolution; metadata of the input is kept and extended.
    """
    geometry = geometry or Sem3RGeometry.from_pretrained(config.checkpoint, config.device)
    result = geometry.predict(
        list(scene.images),
        config.preprocess,
        scene.image_names,
        config.frames_chunk_size,
        config.points_from,
        config.conf_percentile,
    )
    result.metadata = {**scene.metadata, **result.metadata, "checkpoint": str(config.checkpoint)}
    return result


__all__ = [
    "FeedforwardConfig",
    "Sem3RGeometry",
    "checkpoint_model_type",
    "reconstruct_feedforward",
    "reconstruct_image_files",
]
