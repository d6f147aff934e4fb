"""G2VLM training: the stage-1 geometry loss, the QA samples, and what each stage trains."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from sem3r.data.synthetic import SynthConfig, write_dataset
from sem3r.errors import Sem3RError
from sem3r.reasoning.g2vlm_chat import format_answer
from sem3r.training.dataset import SyntheticGeometryDataset, collate_geometry
from sem3r.training.g2vlm import (
    G2VLMLossConfig,
    G2VLMTrainingConfig,
    camera_frame_points,
    is_geometry_parameter,
    new_small_model,
    train_g2vlm,
    visual_geometry_loss,
)
from sem3r.training.g2vlm_data import SpatialQADataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("g2vlm_data")
    write_dataset(root, 2, SynthConfig(seed=3, num_views=4, height=56, width=56, num_points=5000, camera_path="walk"),
                  progress=False)
    return root


def test_camera_frame_points_by_hand():
    K = torch.tensor([[2.0, 0, 1], [0, 4.0, 0.5], [0, 0, 1]])
    pts = camera_frame_points(torch.full((2, 3), 2.0), K)
    assert pts[1, 2].tolist() == [(2 - 1) / 2 * 2, (1 - 0.5) / 4 * 2, 2.0]


def test_geometry_loss_zero_for_ground_truth(dataset):
    ds = SyntheticGeometryDataset(dataset, 3, 3, None, seed=0)
    batch = collate_geometry([ds[(0, 0, 3)]])
    gt_local = camera_frame_points(batch["depth"], batch["intrinsics"])
    c2w = torch.linalg.inv(torch.cat([batch["cam_from_world"], torch.tensor([[[[0, 0, 0, 1.0]]]]).expand(1, 3, 1, 4)], 2))
    pred = {"local_points": 2.5 * gt_local, "global_points": 2.5 * batch["world_points"],
            "camera_poses": torch.cat([c2w[..., :3, :3], 2.5 * c2w[..., :3, 3:]], -1)}
    pred["camera_poses"] = torch.cat([pred["camera_poses"], c2w[..., 3:, :]], -2)
    out = visual_geometry_loss(pred, batch, G2VLMLossConfig())
    assert float(out["loss"]) < 1e-4 and float(out["rot"]) < 1e-3
    pred["local_points"] = pred["local_points"].flip(-2)
    assert float(visual_geometry_loss(pred, batch, G2VLMLossConfig())["loss"]) > 0.05


def test_qa_samples_are_the_chat_template(dataset, tmp_path):
    model, tok = new_small_model(tmp_path / "tok")
    ds = SpatialQADataset(dataset, tok, num_views=4, image_size=(56, 56), vit_size=56, vit_config=model.config.vit,
                          progress=False)
    s = ds[0]
    scene, q = ds.scenes[int(s["scene"])], ds.scenes[int(s["scene"])].questions[int(s["question"])]
    assert tok.decode(s["user"].tolist()) == q.text + "<|im_end|>\n<|im_start|>assistant"
    assert tok.decode(s["reply"].tolist()) == "\n" + format_answer(q.answer) + "<|im_end|>"
    assert s["images"].shape == (4, 3, 56, 56) and s["grid_thw"].tolist() == [[1, 4, 4]] * 4
    assert len(scene.questions) >= 5


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("stage", ["geometry", "joint"])
def test_each_stage_trains_its_expert_only(dataset, tmp_path, stage, monkeypatch):
    """Stage 1 changes only geometry parameters, stage 2 ("CE loss only") only semantic ones."""
    import sem3r.training.g2vlm as mod

    seen = {}
    original = mod.export_model

    def spy(model, tokenizer_dir, folder):
        seen["after"] = _params(model)
        return original(model, tokenizer_dir, folder)

    made = {}
    real_new = mod.new_small_model

    def new(*args, **kwargs):
        model, tok = real_new(*args, **kwargs)
        made["before"] = _params(model)
        return model, tok

    monkeypatch.setattr(mod, "export_model", spy)
    monkeypatch.setattr(mod, "new_small_model", new)
    cfg = G2VLMTrainingConfig.from_dict({
        "dataset_root": str(dataset), "stage": stage, "image_size": [56, 56], "vit_size": 56, "max_views": 3,
        "train": {"steps": 2, "batch_size": 2, "lr": 1e-2, "warmup_steps": 1, "out_dir": str(tmp_path / stage),
                  "progress": False, "device": "cpu"}})
    folder = train_g2vlm(cfg)
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    changed = {k for k in made["before"] if not torch.equal(made["before"][k], seen["after"][k])}
    assert changed, "nothing trained"
    geometric = {k for k in changed if is_geometry_parameter(k)}
    if stage == "geometry":
        assert geometric == changed
    else:
        assert not geometric


def test_config_errors(dataset):
    with pytest.raises(Sem3RError, match="multiples of 14"):
        G2VLMTrainingConfig.from_dict({"dataset_root": str(dataset), "image_size": [50, 56]})
    with pytest.raises(Sem3RError, match="geometry stage needs"):
        G2VLMTrainingConfig.from_dict({"dataset_root": str(dataset), "geometry_expert": False})
    with pytest.raises(Sem3RError, match="unknown g2vlm training config keys"):
        G2VLMTrainingConfig.from_dict({"dataset_root": str(dataset), "steps": 3})
    with pytest.raises(Sem3RError, match="per_famly"):
        G2VLMTrainingConfig.from_dict({"dataset_root": str(dataset), "questions": {"per_famly": 2}})
    assert np.isfinite(G2VLMLossConfig().trans_weight)


def test_cli_train_g2vlm_bad_input(tmp_path, capsys):
    from sem3r.cli import main

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"dataset_root": str(tmp_path / "missing"), "stage": "joint",
                               "train": {"out_dir": str(tmp_path / "run")}}))
    assert main(["train", "g2vlm", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # nothing written before the dataset was checked
