"""train_geometry: JSON config, model selection, outputs; a smoke run with the real small VGGT."""

import json
import math
import sys
import types

import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.training import GeometryTrainingConfig, load_checkpoint, train_geometry


@pytest.fixture
def fake_vggt(monkeypatch, make_model):
    """Replace ``sem3r.models.vggt`` with the stand-in model; records the configs it was built with."""
    built = []

    class VGGTConfig:
        def __init__(self, size="default"):
            self.size = size

        @classmethod
        def small(cls):
            return cls("small")

    def VGGT(config):
        built.append(config.size)
        return make_model(0)

    module = types.ModuleType("sem3r.models.vggt")
    module.VGGT, module.VGGTConfig = VGGT, VGGTConfig
    monkeypatch.setitem(sys.modules, "sem3r.models.vggt", module)
    return built


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


def test_train_geometry_from_a_json_file(tmp_path, synth_root, fake_vggt):
    path = _write_config(tmp_path, synth_root)
    last = train_geometry(path)
    assert fake_vggt == ["small"] and last.name == "step_00000003.pt"
    ckpt = load_checkpoint(last)
    assert ckpt["step"] == 3 and ckpt["config"]["steps"] == 3
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert GeometryTrainingConfig.from_dict(saved) == GeometryTrainingConfig.from_file(path)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3] and "scaled_point" in records[0] and "normal" in records[0]


def test_train_geometry_builds_the_default_model_and_resumes(tmp_path, synth_root, fake_vggt):
    cfg = GeometryTrainingConfig.from_file(_write_config(tmp_path, synth_root, model="default"))
    train_geometry(cfg)
    cfg.train.steps, cfg.train.resume = 4, True
    assert train_geometry(cfg).name == "step_00000004.pt"
    assert fake_vggt == ["default", "default"]
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


def test_smoke_run_with_the_small_vggt(tmp_path, synth_root):
    vggt = pytest.importorskip("sem3r.models.vggt")
    assert hasattr(vggt.VGGTConfig, "small")
    cfg = GeometryTrainingConfig.from_file(_write_config(tmp_path, synth_root, loss={"preset": "vggt"}))
    cfg.train.steps = 2
    train_geometry(cfg)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(math.isfinite(r["loss"]) and r["skipped"] == 0.0 for r in records)
    assert torch.isfinite(torch.tensor([r["grad_norm"] for r in records])).all()
