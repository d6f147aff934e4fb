"""train_geometry with the real small VGGT: JSON config, checkpoints, resume, exported model."""

import json
import math

import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.reconstruct.feedforward import Sem3RGeometry
from sem3r.training import GeometryTrainingConfig, load_checkpoint, train_geometry
from sem3r.training.geometry import build_model_config


def _write_config(tmp_path, synth_root, **extra):
    doc = {
        "dataset_root": str(synth_root),
        "model": "small",
        "image_size": [28, 28],
        "min_views": 2,
        "max_views": 3,
        "loss": {"preset": "g2vlm"},
        "train": {"steps": 3, "batch_size": 2, "warmup_steps": 1, "ckpt_every": 2, "log_every": 1,
                  "out_dir": str(tmp_path / "run"), "device": "cpu", "progress": False},
    }
    doc.update(extra)
    path = tmp_path / "geometry.json"
    path.write_text(json.dumps(doc))
    return path


def test_train_geometry_from_a_json_file_exports_a_loadable_model(tmp_path, synth_root):
    path = _write_config(tmp_path, synth_root)
    last = train_geometry(path)
    assert last.name == "step_00000003.pt"
    ckpt = load_checkpoint(last)
    assert ckpt["step"] == 3 and ckpt["config"]["steps"] == 3
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert GeometryTrainingConfig.from_dict(saved) == GeometryTrainingConfig.from_file(path)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3] and "scaled_point" in records[0] and "normal" in records[0]
    exported = Sem3RGeometry.from_pretrained(tmp_path / "run" / "model", device="cpu").model.state_dict()
    assert exported.keys() == ckpt["model"].keys()
    assert all(torch.equal(exported[k], ckpt["model"][k]) for k in exported)
    assert build_model_config("small").enable_track is False


def test_train_geometry_resumes(tmp_path, synth_root):
    cfg = GeometryTrainingConfig.from_file(_write_config(tmp_path, synth_root))
    train_geometry(cfg)
    cfg.train.steps, cfg.train.resume = 4, True
    assert train_geometry(cfg).name == "step_00000004.pt"
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "doc, message",
    [
        ({}, "dataset_root"),
        ({"dataset_root": "x", "epochs": 3}, "unknown geometry training config keys"),
        ({"dataset_root": "x", "model": "huge"}, "model must be one of"),
        ({"dataset_root": "x", "train": {"step": 3}}, "unknown train config keys"),
        ({"dataset_root": "x", "loss": {"preset": "nope"}}, "unknown geometry loss preset"),
        ({"dataset_root": "x", "train": {"steps": 0}}, "steps and batch_size"),
        ([], "JSON object"),
    ],
)
def test_config_errors(doc, message):
    with pytest.raises(Sem3RError, match=message):
        GeometryTrainingConfig.from_dict(doc)


def test_vggt_preset_trains_the_small_vggt_with_finite_losses(tmp_path, synth_root):
    cfg = GeometryTrainingConfig.from_file(_write_config(tmp_path, synth_root, loss={"preset": "vggt"}))
    cfg.train.steps = 2
    train_geometry(cfg)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(math.isfinite(r["loss"]) and r["skipped"] == 0.0 for r in records)
    assert torch.isfinite(torch.tensor([r["grad_norm"] for r in records])).all()
