"""Spatial-QA samples for G2VLM's joint-training stage, from the rooms of a ``sem3r synth`` dataset.

Each scene contributes its first ``num_views`` views and the questions
:func:`sem3r.reasoning.questions.generate_questions` asks about exactly those views (counts, distances,
sizes, room size, relative distance and direction, object depth, camera motion, appearance order),
with answers from the synthetic 3D ground truth. A sample is one question as a chat turn in G2VLM's
template (:mod:`sem3r.reasoning.g2vlm_chat`): the views for the geometry branch (DINO) and the semantic
branch (ViT rows), the system and user ids, and the reply ``start + answer + <|im_end|>`` with numbers
written as text with two decimals (:func:`~sem3r.reasoning.g2vlm_chat.format_answer`).

Questions are generated once per scene when the dataset is built (a few ms per scene); the order of
samples is a seeded shuffle per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from sem3r.data.synthetic.dataset import load_ground_truth
from sem3r.data.synthetic.generator import SyntheticScene
from sem3r.errors import Sem3RError
from sem3r.models.g2vlm.config import VisionConfig
from sem3r.models.g2vlm.preprocess import vit_pixel_values
from sem3r.reasoning.g2vlm_chat import (
    IM_END,
    chat_ids,
    encode,
    format_answer,
    special_id,
)
from sem3r.reasoning.questions import (
    GeneratedQuestion,
    QuestionConfig,
    generate_questions,
)
from sem3r.scene import Scene
from sem3r.training.dataset import scene_folders


@dataclass
class QAScene:
    """One scene's views and questions.

    Attributes:
        images: ``(S, H, W, 3)`` uint8 views, resized to the training size.
        pixel_values, grid_thw: the ViT rows ``(P, 3 T p^2)`` and grids ``(S, 3)`` of the views.
        questions: the generated questions.
    """

    images: np.ndarray
    pixel_values: torch.Tensor
    grid_thw: torch.Tensor
    questions: list[GeneratedQuestion]


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(S, H, W, 3)`` uint8 -> ``(S, h, w, 3)`` uint8 (bilinear, PIL)."""
    from PIL import Image

    h, w = size
    if images.shape[1:3] == (h, w):
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((w, h), Image.BILINEAR)) for im in images])


def load_qa_scene(folder: str | Path, num_views: int, image_size: tuple[int, int], vit_size: int,
                  vit_config: VisionConfig, questions: QuestionConfig) -> QAScene:
    """Read a scene folder of a ``sem3r synth`` dataset and ask its questions about the first ``num_views`` views."""
    scene = Scene.load(folder)
    if scene.num_views < num_views:
        raise Sem3RError(f"scene '{folder}' has {scene.num_views} views, fewer than num_views={num_views}")
    scene = scene.select_views(slice(0, num_views))
    truth = load_ground_truth(folder)
    syn = SyntheticScene(scene, truth.cloud, truth.normals, truth.mesh, None, None)
    qs = generate_questions(syn, questions)
    images = resize_images(scene.images, image_size)
    rows, grid = vit_pixel_values(images, vit_size, vit_config)
    return QAScene(images, rows, grid, qs)


class SpatialQADataset(Dataset):
    """Chat samples of the spatial questions of a synthetic dataset (see the module docstring).

    Args:
        root: dataset folder written by ``sem3r synth``.
        tokenizer: the model's tokenizer (transformers).
        num_views: views per scene shown to the model (the first ones).
        image_size: ``(H, W)`` of the geometry-branch views (multiples of 14).
        vit_size: square side of the semantic-branch images.
        vit_config: patching of the ViT.
        questions: question settings.
        families: keep only these families (``None``: all generated).
        progress: show a progress bar while reading the scenes.

    A sample is a dict: ``images (S, 3, H, W)`` float32 in [0, 1], ``pixel_values``, ``grid_thw``,
    ``system``, ``user``, ``reply`` int64 id vectors (``reply`` = start id, the answer's ids, ``<|im_end|>``),
    and ``scene`` / ``question`` indices.
    """

    def __init__(self, root: str | Path, tokenizer, num_views: int = 4, image_size: tuple[int, int] = (112, 112),
                 vit_size: int = 112, vit_config: VisionConfig | None = None, questions: QuestionConfig | None = None,
                 families: tuple[str, ...] | None = None, progress: bool = True) -> None:
        folders, _ = scene_folders(root, num_views)
        questions = questions or QuestionConfig(per_family=3, min_pixels=40)
        vit_config = vit_config or VisionConfig()
        self.tokenizer = tokenizer
        self.scenes = [load_qa_scene(f, num_views, tuple(image_size), vit_size, vit_config, questions)
                       for f in tqdm(folders, desc="QA scenes", unit="scene", disable=not progress)]
        self.items = [(s, q) for s, sc in enumerate(self.scenes) for q, gq in enumerate(sc.questions)
                      if families is None or gq.family in families]
        if not self.items:
            raise Sem3RError(f"the scenes of '{root}' give no spatial question")
        self.end_id = special_id(tokenizer, IM_END)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        s, q = self.items[index]
        scene, question = self.scenes[s], self.scenes[s].questions[q]
        ids = chat_ids(self.tokenizer, question.text)
        reply = [ids.start] + encode(self.tokenizer, format_answer(question.answer)) + [self.end_id]
        grid = scene.grid_thw
        return {
            "images": torch.from_numpy(scene.images).permute(0, 3, 1, 2).float() / 255.0,
            "pixel_values": scene.pixel_values,
            "grid_thw": grid,
            "system": torch.tensor(ids.system),
            "user": torch.tensor(ids.user),
            "reply": torch.tensor(reply),
            "scene": torch.tensor(s),
            "question": torch.tensor(q),
        }


def collate_samples(samples: list[dict]) -> dict:
    """A batch is ``{"samples": [sample, ...]}`` (sequences differ in length; the model pads them)."""
    return {"samples": list(samples)}


def shuffled_loader(dataset: Dataset, batch_size: int, seed: int) -> torch.utils.data.DataLoader:
    """A DataLoader with its own seeded generator (resumable order, see the trainer)."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator,
                                       collate_fn=collate_samples, drop_last=len(dataset) >= batch_size)
