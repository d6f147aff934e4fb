"""Multi-view geometry training samples from a ``sem3r synth`` dataset folder.

A sample is ``S`` views of one scene in the frame of its first view, normalised as VGGT does:

1. Views: ``S`` distinct views drawn at random (the first drawn is the reference view).
2. Frame: ``cam_from_world_i <- cam_from_world_i o cam_from_world_0^{-1}``, so view 0 has the
   identity pose and the "world" is the reference camera's OpenCV frame.
3. Points: the ground-truth depth of every view is unprojected with its intrinsics and the
   relative pose into that frame (so ``world_points`` is exactly what the depth, intrinsics and
   poses imply).
4. Scale: ``m = mean_j |X_j|`` over the valid pixels ``j`` of all ``S`` views (the mean distance of
   the valid points to the reference camera centre); translations, depths and points are divided
   by ``m``, so the normalised points have mean distance 1. Intrinsics and rotations are unchanged;
   ``scale = m`` (metres per unit) is returned to undo it.

With ``image_size`` different from the stored size, images are resized bilinearly (antialiased),
depth and instance ids by nearest neighbour (pixel centres mapped as ``(v + 0.5) * H0 / H - 0.5``) and the
intrinsics scaled per axis (:func:`sem3r.geometry.camera.scale_intrinsics`); a change of aspect
ratio gives non-square pixels (``fx != fy``), which the pose encoding represents exactly.

Randomness: sample ``(epoch, index)`` draws from ``numpy.random.default_rng((seed, epoch, index))``,
so it does not depend on worker processes or on which samples came before. Index ``i`` uses scene
``i mod num_scenes``; :class:`GeometryBatchSampler` shuffles indices per epoch and draws one view
count ``S`` per batch so samples stack (:func:`collate_geometry`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from sem3r.errors import Sem3RError
from sem3r.geometry.camera import invert_pose, scale_intrinsics, unproject_depth
from sem3r.geometry.pose_encoding import extri_intri_to_pose_encoding
from sem3r.geometry.transforms import compose
from sem3r.io import read_json
from sem3r.scene import Scene

SampleKey = tuple[int, int, int]
"""``(epoch, index, num_views)``: what :class:`GeometryBatchSampler` yields per sample."""


def _resize_views(images: np.ndarray, depth: np.ndarray, instance_ids: np.ndarray, intrinsics: np.ndarray,
                  size: tuple[int, int]):
    """Resize ``images (S, H0, W0, 3) uint8``, ``depth`` and ``instance_ids`` ``(S, H0, W0)`` and
    ``intrinsics (S, 3, 3)`` to ``size`` (depth and ids by the same nearest-neighbour lookup)."""
    H0, W0 = depth.shape[-2:]
    H, W = size
    img = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    if (H, W) == (H0, W0):
        return img, depth, instance_ids, intrinsics
    img = F.interpolate(img, size=(H, W), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    rows = np.minimum(((np.arange(H) + 0.5) * H0 / H).astype(np.int64), H0 - 1)
    cols = np.minimum(((np.arange(W) + 0.5) * W0 / W).astype(np.int64), W0 - 1)
    return (img, depth[:, rows][:, :, cols], instance_ids[:, rows][:, :, cols],
            scale_intrinsics(intrinsics, W / W0, H / H0))


def scene_folders(root: str | Path, min_views: int = 1) -> tuple[list[Path], list[int]]:
    """The complete scenes of a dataset written by ``sem3r synth`` that have at least ``min_views`` views.

    Args:
        root: dataset folder with ``manifest.json`` and ``scene_XXXX/`` folders.
        min_views: skip scenes with fewer views.

    Returns:
        The scene folders in manifest order and their numbers of views.

    Raises:
        Sem3RError: no manifest, not a Sem3R dataset, or no scene qualifies.
    """
    root = Path(root)
    manifest = read_json(root / "manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format") != "sem3r.synthetic_dataset":
        raise Sem3RError(f"'{root}' is not a Sem3R synthetic dataset (bad manifest.json)")
    entries = [e for e in manifest.get("scenes", [])
               if e.get("complete") and int(e.get("num_views", 0)) >= min_views]
    if not entries:
        raise Sem3RError(f"'{root}' has no complete scene with at least {min_views} views")
    return [root / str(e["folder"]) for e in entries], [int(e["num_views"]) for e in entries]


class SyntheticGeometryDataset(Dataset):
    """Random multi-view samples of the scenes of a ``sem3r synth`` dataset.

    Args:
        root: dataset folder with ``manifest.json`` and ``scene_XXXX/`` folders.
        min_views: fewest views per sample; scenes with fewer views are skipped.
        max_views: most views per sample (capped by the smallest scene's view count).
        image_size: ``(H, W)`` of the returned views; ``None`` keeps the stored size.
        seed: seeds every random choice.
        samples_per_epoch: length of the dataset; ``None`` is the number of scenes.

    Indexing with an ``int`` gives sample ``(epoch 0, index)`` with a random view count; with a
    :data:`SampleKey` ``(epoch, index, num_views)`` the epoch and view count are given.

    A sample is a dict of tensors (``S`` views, normalised as the module docstring describes):

    - ``images``: ``(S, 3, H, W)`` float32 RGB in ``[0, 1]``.
    - ``depth``: ``(S, H, W)`` float32 z-depth, 0 = invalid.
    - ``valid_mask``: ``(S, H, W)`` bool, ``depth > 0``.
    - ``cam_from_world``: ``(S, 3, 4)`` float32, first view identity.
    - ``intrinsics``: ``(S, 3, 3)`` float32.
    - ``world_points``: ``(S, H, W, 3)`` float32 in the first camera's frame (0 where invalid).
    - ``pose_enc``: ``(S, 9)`` float32 ``absT_quaR_FoV`` of the cameras.
    - ``scale``: ``()`` float32, metres per normalised unit.
    - ``scene_index``: ``()`` int64; ``view_indices``: ``(S,)`` int64 views of that scene.
    - ``instance_ids``: ``(S, H, W)`` int64 3D-consistent instance ids (the scene's
      ``instance_masks``, resized like ``depth``), ``-1`` = unlabelled (all of it when the scene has
      no instance masks).

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, write_dataset
        >>> _ = write_dataset("ds", 1, SynthConfig(num_views=3, height=28, width=28, num_points=100), progress=False)
        >>> sample = SyntheticGeometryDataset("ds", max_views=3, seed=0)[(0, 0, 3)]
        >>> sample["images"].shape, sample["cam_from_world"][0].tolist() == torch.eye(3, 4).tolist()
        (torch.Size([3, 3, 28, 28]), True)
    """

    def __init__(self, root: str | Path, min_views: int = 2, max_views: int = 8,
                 image_size: Sequence[int] | None = None, seed: int = 0, samples_per_epoch: int | None = None):
        self.root = Path(root)
        if not 1 <= min_views <= max_views:
            raise Sem3RError(f"need 1 <= min_views <= max_views, got {min_views} and {max_views}")
        self.folders, counts = scene_folders(self.root, min_views)
        self.min_views = int(min_views)
        self.max_views = int(min(max_views, min(counts)))
        if image_size is not None:
            image_size = tuple(int(v) for v in image_size)
            if len(image_size) != 2 or min(image_size) < 1:
                raise Sem3RError(f"image_size must be (height, width), got {image_size}")
        self.image_size = image_size
        self.seed = int(seed)
        self.samples_per_epoch = len(self.folders) if samples_per_epoch is None else int(samples_per_epoch)
        if self.samples_per_epoch < 1:
            raise Sem3RError(f"samples_per_epoch must be positive, got {samples_per_epoch}")

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor]:
        if isinstance(key, (tuple, list)):
            epoch, index, num_views = (int(v) for v in key)
            return self.sample(index, epoch, num_views)
        return self.sample(int(key))

    def sample(self, index: int, epoch: int = 0, num_views: int | None = None) -> dict[str, torch.Tensor]:
        """Sample ``index`` of ``epoch`` with ``num_views`` views (``None``: drawn at random)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} out of range for {len(self)} samples")
        rng = np.random.default_rng((self.seed, int(epoch), int(index)))
        if num_views is None:
            num_views = int(rng.integers(self.min_views, self.max_views + 1))
        if not self.min_views <= num_views <= self.max_views:
            raise Sem3RError(f"num_views must be in [{self.min_views}, {self.max_views}], got {num_views}")
        scene_index = index % len(self.folders)
        scene = Scene.load(self.folders[scene_index])
        if scene.depth is None:
            raise Sem3RError(f"scene '{self.folders[scene_index]}' has no depth")
        views = rng.choice(scene.num_views, size=num_views, replace=False)
        size = self.image_size or (scene.height, scene.width)
        masks = scene.instance_masks[views] if scene.instance_masks is not None else np.full(
            (num_views, scene.height, scene.width), -1, np.int32)
        images, depth, masks, K = _resize_views(scene.images[views], scene.depth[views], masks,
                                                scene.intrinsics[views], size)
        poses = compose(scene.cam_from_world[views], invert_pose(scene.cam_from_world[views[0]]))
        poses[0] = np.eye(3, 4)
        valid = depth > 0
        points = unproject_depth(depth, K, poses).astype(np.float64)
        m = float(np.linalg.norm(points[valid], axis=-1).mean()) if valid.any() else 1.0
        poses[:, :, 3] /= m
        depth = np.where(valid, depth / m, 0.0)
        points = np.where(valid[..., None], points / m, 0.0)
        cams = torch.from_numpy(poses).float()
        K = torch.from_numpy(K).float()
        return {
            "images": images,
            "depth": torch.from_numpy(depth).float(),
            "valid_mask": torch.from_numpy(valid),
            "cam_from_world": cams,
            "intrinsics": K,
            "world_points": torch.from_numpy(points).float(),
            "pose_enc": extri_intri_to_pose_encoding(cams, K, size),
            "scale": torch.tensor(m, dtype=torch.float32),
            "scene_index": torch.tensor(scene_index, dtype=torch.int64),
            "view_indices": torch.from_numpy(views.astype(np.int64)),
            "instance_ids": torch.from_numpy(masks.astype(np.int64)),
        }


class GeometryBatchSampler(Sampler[list[SampleKey]]):
    """Batches of :data:`SampleKey` with one view count per batch, so samples stack.

    Epoch ``e`` shuffles the ``num_samples`` indices with ``default_rng((seed, e))`` and draws each
    batch's view count uniformly from ``[min_views, max_views]`` from the same generator; the last
    batch may be smaller. :meth:`set_epoch` selects the epoch and the first batch to yield (to
    resume mid-epoch without touching the data).

    Example:
        >>> sampler = GeometryBatchSampler(5, batch_size=2, min_views=2, max_views=4, seed=0)
        >>> batches = list(sampler)
        >>> len(batches), [len(b) for b in batches], len({key[2] for key in batches[0]})
        (3, [2, 2, 1], 1)
    """

    def __init__(self, num_samples: int, batch_size: int, min_views: int, max_views: int, seed: int = 0):
        if num_samples < 1 or batch_size < 1:
            raise Sem3RError(f"num_samples and batch_size must be positive, got {num_samples} and {batch_size}")
        if not 1 <= min_views <= max_views:
            raise Sem3RError(f"need 1 <= min_views <= max_views, got {min_views} and {max_views}")
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.min_views, self.max_views, self.seed = int(min_views), int(max_views), int(seed)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch ``epoch`` and skip its first ``start`` batches on the next iteration."""
        self.epoch, self.start = int(epoch), int(start)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(self.num_samples)
        counts = rng.integers(self.min_views, self.max_views + 1, size=len(self))
        for b in range(self.start, len(self)):
            chunk = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(self.epoch, int(i), int(counts[b])) for i in chunk]


def collate_geometry(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack samples with the same number of views into a batch (``(B, S, ...)`` per key).

    Raises:
        Sem3RError: the samples have different view counts (draw batches with
            :class:`GeometryBatchSampler`).
    """
    counts = {int(s["images"].shape[0]) for s in samples}
    if len(counts) != 1:
        raise Sem3RError(f"cannot stack samples with different view counts {sorted(counts)}; use GeometryBatchSampler")
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def geometry_dataloader(dataset: SyntheticGeometryDataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """A DataLoader over ``dataset`` with a :class:`GeometryBatchSampler` seeded by ``dataset.seed``.

    The loader has its own ``torch.Generator`` (seeded likewise), so starting an iteration does not
    draw from the global torch RNG: a resumed run's model randomness matches an uninterrupted one.
    """
    sampler = GeometryBatchSampler(len(dataset), batch_size, dataset.min_views, dataset.max_views, dataset.seed)
    generator = torch.Generator().manual_seed(dataset.seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_geometry, num_workers=num_workers,
                      generator=generator)
