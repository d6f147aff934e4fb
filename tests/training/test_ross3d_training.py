"""ROSS3D training at small scale: samples, the switches of the reconstructive objectives, export, config errors."""

import json

import pytest
import torch

pytest.importorskip("transformers")

from sem3r.data.synthetic import SynthConfig, write_dataset
from sem3r.errors import Sem3RError
from sem3r.models.ross3d.prompt import IMAGE_TOKEN_INDEX
from sem3r.reasoning.g2vlm_chat import format_answer
from sem3r.training.ross3d import (
    Ross3DObjective,
    Ross3DQADataset,
    Ross3DTrainingConfig,
    new_small_model,
    ross3d_loss,
    train_ross3d,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ross3d_data")
    write_dataset(root, 2, SynthConfig(seed=3, num_views=4, height=56, width=56, num_points=5000, camera_path="walk"),
                  progress=False)
    return root


@pytest.fixture(scope="module")
def small(dataset, tmp_path_factory):
    cfg = Ross3DTrainingConfig(dataset_root=str(dataset), view_mask_every=1)
    model, tok = new_small_model(tmp_path_factory.mktemp("tok"), cfg)
    ds = Ross3DQADataset(dataset, tok, 4, model.config.vision.image_size, cfg.question_config(), cfg.bev_resolution,
                         progress=False)
    return cfg, model, tok, ds


def test_samples_hold_the_answer_and_aligned_geometry(small):
    _, model, tok, ds = small
    s = ds[0]
    ids = s["input_ids"].tolist()
    assert ids.count(IMAGE_TOKEN_INDEX) == 1
    q = ds.questions[int(s["scene"])][int(s["question"])]
    a = int(s["answer_start"])
    assert tok.decode(ids[a:]).startswith(format_answer(q.answer))
    S = 4
    size = model.config.vision.image_size
    assert s["pixel_values"].shape == (S, 3, size, size) and s["world_points"].shape == (S, size, size, 3)
    assert torch.isfinite(s["world_points"]).all() and float(s["world_points"].abs().max()) > 0.5
    assert s["bev01"].shape[0] == 3 and float(s["bev01"].max()) > 0 and float(s["bev01"].min()) == 0.0


def _gsum(p):
    return 0.0 if p.grad is None else float(p.grad.abs().sum())


def _grads(model, cfg, samples):
    model.zero_grad()
    obj = Ross3DObjective(model, cfg, seed=0).train()
    out = ross3d_loss(cfg)(obj(samples), {})
    out["loss"].backward()
    den = [p.grad for p in model.model.mm_inv_projector.parameters()]
    return out, den


def test_switches_reach_the_denoiser(small):
    from dataclasses import replace

    cfg, model, _, ds = small
    samples = [ds[0]]
    out, den = _grads(model, replace(cfg, cross_view=False, bev=False), samples)
    assert all(g is None or float(g.abs().sum()) == 0 for g in den)
    assert float(out["cross_view"]) == 0 and float(out["bev"]) == 0 and float(out["masked"]) == 0
    assert model.lm_head.weight.grad is not None
    out, den = _grads(model, replace(cfg, cross_view=True, bev=False), samples)
    assert float(out["bev"]) == 0 and float(out["cross_view"]) > 0 and float(out["masked"]) == 1
    assert _gsum(model.model.mm_inv_projector.net.x_embedder_bev.proj.weight) == 0
    assert _gsum(model.model.mm_inv_projector.net.x_embedder_view.proj.weight) > 0
    out, den = _grads(model, replace(cfg, cross_view=False, bev=True), samples)
    assert float(out["bev"]) > 0 and float(out["cross_view"]) == 0
    assert _gsum(model.model.mm_inv_projector.net.x_embedder_bev.proj.weight) > 0


@pytest.mark.parametrize("cross_view,bev", [(False, False), (True, False), (False, True), (True, True)])
def test_two_step_runs_export(dataset, tmp_path, cross_view, bev):
    from sem3r.reasoning.ross3d_loading import load_ross3d

    out = tmp_path / "run"
    cfg = Ross3DTrainingConfig.from_dict({
        "dataset_root": str(dataset), "cross_view": cross_view, "bev": bev, "view_mask_every": 1,
        "train": {"steps": 2, "out_dir": str(out), "progress": False, "device": "cpu", "warmup_steps": 1,
                  "lr": 1e-3}})
    folder = train_ross3d(cfg)
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert not any(k.startswith("model.mm_inv_projector.") for k in f.keys())  # noqa: SIM118
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2
    loaded = load_ross3d(folder, device="cpu")
    model = loaded[0] if isinstance(loaded, tuple) else loaded.model
    assert model.config.bev_grid == cfg.bev_grid


@pytest.mark.parametrize("doc,match", [
    ({"dataset_root": "x", "bogus": 1}, "unknown ross3d training config keys"),
    ({"dataset_root": "x", "targets": "vae"}, "targets must be"),
    ({"dataset_root": "x", "view_mask_ratio": 1.5}, "view_mask_ratio"),
    ({"dataset_root": "x", "train": {"nope": 1}}, "unknown train config keys"),
    ({"cross_view": True}, "needs 'dataset_root'"),
    ({"dataset_root": "x", "image_size": 50}, "multiple of 14"),
])
def test_config_errors_are_one_line(doc, match):
    with pytest.raises(Sem3RError, match=match) as err:
        Ross3DTrainingConfig.from_dict(doc)
    assert "\n" not in str(err.value)


def test_missing_dataset_is_one_line(tmp_path):
    cfg = Ross3DTrainingConfig.from_dict({"dataset_root": str(tmp_path / "none"), "train": {"out_dir": str(tmp_path / "o")}})
    with pytest.raises(Sem3RError) as err:
        train_ross3d(cfg)
    assert "\n" not in str(err.value)
