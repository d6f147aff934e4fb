"""Files of a trained 3D instance segmenter: weights plus everything inference must repeat.

``sem3r train segmenter3d`` writes ``out_dir/model/`` with ``model.safetensors`` and ``config.json``
(the model's sizes, the point-preparation settings it was trained with, the text encoder and the
training vocabulary); :func:`load_segmenter` reads it back for ``sem3r segment3d --checkpoint``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file

from sem3r.errors import Sem3RError
from sem3r.io import atomic_path, read_json, write_json_atomic
from sem3r.models.segmenter3d import Segmenter3D, Segmenter3DConfig
from sem3r.semantics.point_inputs import PointInputsConfig

MODEL_FILE = "model.safetensors"
MODEL_CONFIG_FILE = "config.json"
CONFIG_KEYS = ("model", "inputs", "text_encoder", "text_dim", "vocabulary")
"""Keys of ``config.json`` besides ``model_type``, all required."""


def save_segmenter(directory: str | Path, model: Segmenter3D, inputs: PointInputsConfig, text_encoder: str,
                   text_dim: int, vocabulary: list[str]) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (model, inputs, text encoder, vocabulary)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / MODEL_FILE) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json_atomic(directory / MODEL_CONFIG_FILE, {
        "model_type": "segmenter3d",
        "model": model.config.to_dict(),
        "inputs": json.loads(json.dumps(asdict(inputs))),
        "text_encoder": text_encoder,
        "text_dim": text_dim,
        "vocabulary": list(vocabulary),
    })
    return directory


@dataclass
class TrainedSegmenter:
    """A trained segmenter with what it was trained with.

    Attributes:
        model: the module (eval mode).
        inputs: how its training scenes were prepared (use the same at inference).
        text_encoder: the text encoder's name or path.
        text_dim: size of the ``hash`` encoder's embeddings.
        vocabulary: the training vocabulary.
    """

    model: Segmenter3D
    inputs: PointInputsConfig
    text_encoder: str
    text_dim: int
    vocabulary: list[str]


def load_segmenter(directory: str | Path) -> TrainedSegmenter:
    """Load what :func:`save_segmenter` wrote (a run folder's ``model/`` or the run folder itself).

    Raises:
        Sem3RError: missing or foreign files.
    """
    directory = Path(directory)
    if (directory / "model" / MODEL_CONFIG_FILE).is_file():
        directory = directory / "model"
    if not (directory / MODEL_CONFIG_FILE).is_file() or not (directory / MODEL_FILE).is_file():
        raise Sem3RError(f"'{directory}' holds no trained segmenter (expected {MODEL_CONFIG_FILE} and {MODEL_FILE})")
    config_path = directory / MODEL_CONFIG_FILE
    doc = read_json(config_path)
    if not isinstance(doc, dict) or doc.get("model_type") != "segmenter3d":
        raise Sem3RError(f"'{config_path}' is not a segmenter3d config")
    unknown = sorted(set(doc) - set(CONFIG_KEYS) - {"model_type"})
    missing = [key for key in CONFIG_KEYS if key not in doc]
    if unknown or missing:
        what = [f"unknown keys {unknown}"] * bool(unknown) + [f"missing keys {missing}"] * bool(missing)
        raise Sem3RError(f"'{config_path}' is not a valid segmenter3d config: {'; '.join(what)}")
    try:
        model_config = Segmenter3DConfig.from_dict(doc["model"])
        inputs = PointInputsConfig.from_dict(doc["inputs"])
        text_encoder, text_dim = str(doc["text_encoder"]), int(doc["text_dim"])
        if not isinstance(doc["vocabulary"], list):
            raise Sem3RError(f"'vocabulary' must be a list, not {type(doc['vocabulary']).__name__}")
        vocabulary = [str(name) for name in doc["vocabulary"]]
    except Sem3RError as exc:
        raise Sem3RError(f"'{config_path}': {exc}") from None
    except (TypeError, ValueError) as exc:
        raise Sem3RError(f"'{config_path}' is not a valid segmenter3d config: {exc}") from None
    model = Segmenter3D(model_config)
    weights = directory / MODEL_FILE
    try:
        state = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 (truncated or foreign files: SafetensorError, OSError, ...)
        raise Sem3RError(f"cannot read the segmenter weights '{weights}' (truncated or not safetensors): "
                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, OSError) as exc:
        raise Sem3RError(f"the segmenter weights '{weights}' do not match '{config_path}': {str(exc).splitlines()[0]}") from None
    model.eval()
    return TrainedSegmenter(model, inputs, text_encoder, text_dim, vocabulary)
