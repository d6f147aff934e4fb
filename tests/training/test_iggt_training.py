"""IGGT training: the multi-task loss, the JSON config, train_iggt with the small IGGT (checkpoints,
exact resume, export, initialisation from a geometry model, frozen backbone) and learning on one scene."""

import json
from pathlib import Path

import pytest
import torch

from sem3r.data.synthetic import SynthConfig, write_dataset
from sem3r.errors import Sem3RError
from sem3r.models.iggt import IGGT
from sem3r.models.vggt import VGGT
from sem3r.reconstruct.feedforward import Sem3RGeometry
from sem3r.training import (
    GeometryLoss,
    IGGTLoss,
    IGGTLossConfig,
    IGGTTrainingConfig,
    SyntheticGeometryDataset,
    TrainConfig,
    Trainer,
    collate_geometry,
    geometry_dataloader,
    instance_contrastive_loss,
    load_backbone_weights,
    load_checkpoint,
    train_iggt,
)
from sem3r.training.geometry import build_model_config
from sem3r.training.iggt import build_iggt_config

NO_GEOMETRY = {"camera_weight": 0, "depth_weight": 0, "point_weight": 0}


def _doc(tmp_path, synth_root, **extra):
    doc = {
        "dataset_root": str(synth_root),
        "model": "small",
        "image_size": [28, 28],
        "min_views": 2,
        "max_views": 3,
        "loss": {"geometry": {"preset": "g2vlm"}, "contrastive": {"num_samples": 128}, "contrastive_weight": 0.5},
        "train": {"steps": 3, "batch_size": 1, "warmup_steps": 1, "ckpt_every": 2, "log_every": 1,
                  "out_dir": str(tmp_path / "run"), "device": "cpu", "progress": False},
    }
    doc.update(extra)
    return doc


def _write(tmp_path, doc):
    path = tmp_path / "iggt.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def one_scene(tmp_path_factory):
    """One scene of four 56 x 56 views."""
    root = tmp_path_factory.mktemp("one_scene")
    write_dataset(root, 1, SynthConfig(seed=5, num_views=4, height=56, width=56, num_points=200), progress=False)
    return root


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"dataset_root": "x", "epochs": 3}, "unknown IGGT training config keys"),
        ({"dataset_root": "x", "loss": {"contrastive_weigth": 1}}, "unknown IGGT loss config keys"),
        ({"dataset_root": "x", "loss": {"contrastive": {"margin": 3}}}, "margin"),
        ({"dataset_root": "x", "loss": {"contrastive": {"samples": 3}}}, "unknown contrastive loss config keys"),
        ({"dataset_root": "x", "loss": {"geometry": {"preset": "nope"}}}, "unknown geometry loss preset"),
        ({"dataset_root": "x", "loss": {"contrastive_weight": -1}}, "contrastive_weight must be non-negative"),
        ({"dataset_root": "x", "loss": {"contrastive_weight": "1"}}, "contrastive_weight must be a number"),
        ({"dataset_root": "x", "loss": {"geometry": NO_GEOMETRY, "contrastive_weight": 0}}, "nothing to train"),
        ({"dataset_root": "x", "freeze_backbone": "yes"}, "freeze_backbone must be true or false"),
        ({"dataset_root": "x", "model_overrides": [1]}, "model_overrides"),
        ([], "IGGT training config must be a JSON object"),
    ],
)
def test_config_errors(doc, message):
    """IGGT's own settings; the fields shared with geometry training are checked in test_geometry_entry.py."""
    with pytest.raises(Sem3RError, match=message):
        IGGTTrainingConfig.from_dict(doc)


def test_config_round_trip_and_errors_from_a_file(tmp_path, synth_root):
    doc = _doc(tmp_path, synth_root, init_checkpoint="ckpt", freeze_backbone=True, model_overrides={"window_size": 4})
    cfg = IGGTTrainingConfig.from_file(_write(tmp_path, doc))
    assert IGGTTrainingConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.loss.contrastive.num_samples == 128 and cfg.loss.geometry.loss_type == "g2vlm"
    assert build_iggt_config("small", cfg.model_overrides).window_size == 4
    with pytest.raises(Sem3RError, match="unknown IGGT model_overrides"):
        build_iggt_config("small", {"embed_dimm": 3})
    with pytest.raises(Sem3RError, match="unknown IGGT training config keys"):
        train_iggt(_write(tmp_path, {**doc, "lr": 1.0}))
    recipe = IGGTTrainingConfig.from_file(Path(__file__).parents[2] / "benchmarks" / "configs" / "iggt_small.json")
    assert recipe.model == "small" and recipe.loss.contrastive_weight > 0


def test_loss_is_geometry_plus_weighted_contrastive(synth_root, make_model):
    ds = SyntheticGeometryDataset(synth_root, 2, 3, seed=0)
    batch = collate_geometry([ds[(0, 0, 3)], ds[(0, 1, 3)]])
    assert batch["instance_ids"].shape == (2, 3, 56, 56) and (batch["instance_ids"] >= 0).any()
    predictions = make_model(0, instance_head=True)(batch["images"])
    cfg = IGGTLossConfig.from_dict({"geometry": {"preset": "vggt"}, "contrastive": {"num_samples": 200, "seed": 3},
                                    "contrastive_weight": 0.25})
    out = IGGTLoss(cfg)(predictions, batch)
    geometry = GeometryLoss(cfg.geometry)(predictions, batch)
    contrastive, stats = instance_contrastive_loss(predictions["instance_features"], batch["instance_ids"],
                                                   cfg.contrastive, torch.Generator().manual_seed(3))
    assert torch.allclose(out["contrastive"], contrastive) and torch.equal(out["pull"], stats["pull"])
    assert torch.allclose(out["loss"], geometry["loss"] + 0.25 * contrastive)
    assert {"camera", "depth", "point", "push", "instances"} <= set(out) and not out["push"].requires_grad
    only = IGGTLoss(IGGTLossConfig.from_dict({"geometry": NO_GEOMETRY}))(predictions, batch)
    assert "camera" not in only and torch.allclose(only["loss"], only["contrastive"])
    with pytest.raises(Sem3RError, match="instance_features"):
        IGGTLoss(cfg)({k: v for k, v in predictions.items() if k != "instance_features"}, batch)


def test_train_iggt_checkpoints_resumes_exactly_and_exports(tmp_path, synth_root):
    straight = tmp_path / "straight"
    straight.mkdir()
    doc = _doc(straight, synth_root)
    doc["train"].update(warmup_steps=0, min_lr_ratio=1.0)  # constant lr: the schedule does not depend on steps
    last = train_iggt(_write(straight, doc))
    assert last.name == "step_00000003.pt"
    ckpt = load_checkpoint(last)
    records = [json.loads(line) for line in (straight / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert {"contrastive", "pull", "push", "scaled_point", "normal"} <= set(records[0])
    assert all(r["skipped"] == 0.0 and r["instances"] >= 2 for r in records)

    staged = tmp_path / "staged"  # the same run stopped after step 2, then resumed
    cfg = IGGTTrainingConfig.from_dict(doc)
    cfg.train.out_dir, cfg.train.steps = str(staged / "run"), 2
    train_iggt(cfg)
    cfg.train.steps, cfg.train.resume = 3, True
    resumed = load_checkpoint(train_iggt(cfg))["model"]
    assert resumed.keys() == ckpt["model"].keys()
    assert all(torch.equal(resumed[k], ckpt["model"][k]) for k in resumed)

    exported = Sem3RGeometry.from_pretrained(straight / "run" / "model", device="cpu").model
    assert isinstance(exported, IGGT) and not exported.config.enable_track
    state = exported.state_dict()
    assert state.keys() == ckpt["model"].keys() and all(torch.equal(state[k], ckpt["model"][k]) for k in state)


def test_init_from_a_geometry_model_and_frozen_backbone(tmp_path, synth_root):
    torch.manual_seed(1)
    geometry = Sem3RGeometry(VGGT(build_model_config("small")), device="cpu")
    geometry.save_pretrained(tmp_path / "geo" / "model")  # laid out like a `sem3r train geometry` run folder
    vggt_state = geometry.model.state_dict()

    model = IGGT(build_iggt_config("small"))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    kept = load_backbone_weights(model, tmp_path / "geo")
    state = model.state_dict()
    assert kept and all(k.startswith("part_") for k in kept) and set(kept) == set(state) - set(vggt_state)
    assert all(torch.equal(state[k], vggt_state[k]) for k in vggt_state)
    assert all(torch.equal(state[k], fresh[k]) for k in kept)

    broken = {**vggt_state, "extra.weight": torch.zeros(1)}
    del broken["aggregator.camera_token"]
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(Sem3RError, match="does not match the model configuration: 1 missing keys .*1 unexpected keys"):
        load_backbone_weights(IGGT(build_iggt_config("small")), tmp_path / "broken.pt")

    doc = _doc(tmp_path, synth_root, init_checkpoint=str(tmp_path / "geo"), freeze_backbone=True)
    doc["train"]["steps"] = 2
    trained = load_checkpoint(train_iggt(IGGTTrainingConfig.from_dict(doc)))["model"]
    frozen = [k for k in trained if k.startswith("aggregator.") and trained[k].is_floating_point()]
    assert frozen and all(torch.equal(trained[k], vggt_state[k]) for k in frozen)
    assert not torch.equal(trained["point_head.scratch.output_conv2.2.weight"], vggt_state["point_head.scratch.output_conv2.2.weight"])
    assert any(not torch.equal(trained[k], state[k]) for k in kept)


def test_short_training_on_one_scene_lowers_the_contrastive_loss(tmp_path, one_scene):
    dataset = SyntheticGeometryDataset(one_scene, 2, 3, image_size=(28, 28), seed=0, samples_per_epoch=4)
    probe = collate_geometry([dataset[(0, 0, 3)]])
    measure = IGGTLossConfig.from_dict({"geometry": NO_GEOMETRY, "contrastive": {"num_samples": 256, "seed": 0}})

    def contrastive(model):
        model.eval()
        with torch.no_grad():
            return IGGTLoss(measure)(model(probe["images"]), probe)["contrastive"].item()

    torch.manual_seed(0)
    model = IGGT(build_iggt_config("small"))
    loss = IGGTLoss(IGGTLossConfig.from_dict({"geometry": {"preset": "g2vlm"}, "contrastive": {"num_samples": 256}}))
    train = TrainConfig(lr=3e-3, steps=12, warmup_steps=0, out_dir=str(tmp_path / "run"), progress=False,
                        device="cpu", ckpt_every=100)
    before = contrastive(model)
    Trainer(model, loss, geometry_dataloader(dataset, 1), train).fit()
    assert contrastive(model) < 0.85 * before
