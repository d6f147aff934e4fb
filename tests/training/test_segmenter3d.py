"""OVSeg3R training: run config, samples, a small end-to-end run that learns, export and reload."""

import json

import numpy as np
import pytest
import torch

from sem3r.data.synthetic import SynthConfig, write_dataset
from sem3r.errors import Sem3RError
from sem3r.semantics.checkpoint import load_segmenter
from sem3r.training.segmenter3d import (
    Segmenter3DTrainingConfig,
    SegmenterSceneDataset,
    prepare_training_scenes,
    rotate_about_z,
    train_segmenter3d,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, 2, SynthConfig(seed=0, num_views=3, height=48, width=64, num_points=0,
                                       camera_path="random_large"), progress=False)
    return root


def _config(root, out, steps=40, **extra):
    doc = {
        "dataset_root": str(root),
        "inputs": {"correspondence": {"voxel_size": 0.08}},
        "model": {"dim": 32, "heads": 2, "encoder_layers": 1, "decoder_layers": 2},
        "text_dim": 16,
        "num_queries": 24,
        "train": {"steps": steps, "lr": 0.002, "warmup_steps": 2, "out_dir": str(out), "progress": False,
                  "ckpt_every": 20, "log_every": 1, "batch_size": 1},
    }
    doc.update(extra)
    return Segmenter3DTrainingConfig.from_dict(doc)


def test_config_parsing_and_errors(tmp_path):
    cfg = _config(tmp_path, tmp_path / "run", loss={"vip": False})
    assert cfg.loss.vip is False and cfg.inputs.correspondence.voxel_size == 0.08 and cfg.model.dim == 32
    assert Segmenter3DTrainingConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).to_dict() == cfg.to_dict()
    with pytest.raises(Sem3RError, match="unknown segmenter3d training config keys"):
        Segmenter3DTrainingConfig.from_dict({"dataset_root": "x", "epochs": 3})
    with pytest.raises(Sem3RError, match="unknown .*keys"):
        Segmenter3DTrainingConfig.from_dict({"dataset_root": "x", "inputs": {"ibsb": True}})
    with pytest.raises(Sem3RError, match="batch_size 1"):
        _config(tmp_path, tmp_path / "run", train={"batch_size": 2})
    with pytest.raises(Sem3RError, match="needs 'dataset_root'"):
        Segmenter3DTrainingConfig.from_dict({})
    with pytest.raises(Sem3RError, match="duplicate"):
        _config(tmp_path, tmp_path / "run", vocabulary=["chair", "Chair"])


def test_rotate_about_z_is_a_rotation():
    pts = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, -1.0]])
    out = rotate_about_z(pts, np.pi / 2)
    assert torch.allclose(out, torch.tensor([[0.0, 1.0, 2.0], [-3.0, 0.0, -1.0]]), atol=1e-6)


def test_samples_are_a_function_of_the_index(dataset, tmp_path):
    from sem3r.data.synthetic import CLASS_NAMES
    from sem3r.semantics.text import HashTextEncoder

    cfg = _config(dataset, tmp_path / "run")
    text = HashTextEncoder(dim=16).encode(list(CLASS_NAMES))
    scenes = prepare_training_scenes(cfg, text, list(CLASS_NAMES), progress=False)
    ds = SegmenterSceneDataset(scenes, text, num_queries=24, length=10, seed=3)
    a, b, c = ds[4], ds[4], ds[5]
    assert torch.equal(a["inputs"]["query_superpoints"], b["inputs"]["query_superpoints"])
    assert torch.equal(a["inputs"]["xyz"], b["inputs"]["xyz"])
    assert not torch.equal(a["inputs"]["query_superpoints"], ds[6]["inputs"]["query_superpoints"])
    assert c["targets"].num_superpoints == scenes[1].num_superpoints
    # the augmentation is a rotation about z: heights and distances are kept
    xyz = torch.from_numpy(scenes[0].correspondence.points)
    assert torch.allclose(a["inputs"]["xyz"][:, 2], xyz[:, 2])
    assert torch.allclose(a["inputs"]["xyz"].norm(dim=1)[:100], xyz.norm(dim=1)[:100], atol=1e-4)
    # a point subset: the queries are seeded at superpoints that still have points
    small = SegmenterSceneDataset(scenes, text, num_queries=500, length=4, seed=0, max_points=60, augment=False)
    item = small[1]["inputs"]
    assert len(item["xyz"]) == 60 and len(item["superpoints"]) == 60
    assert set(item["query_superpoints"].tolist()) == set(item["superpoints"].tolist())
    # the cache is reused: a second preparation reads the files
    again = prepare_training_scenes(cfg, text, list(CLASS_NAMES), progress=False)
    assert np.array_equal(again[0].superpoints, scenes[0].superpoints)


def test_training_learns_and_exports(dataset, tmp_path):
    out = tmp_path / "run"
    model_dir = train_segmenter3d(_config(dataset, out, steps=60))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    first = np.mean([r["loss"] for r in log[:10]])
    last = np.mean([r["loss"] for r in log[-10:]])
    assert last < 0.8 * first
    trained = load_segmenter(model_dir)
    assert trained.text_encoder == "hash" and trained.text_dim == 16 and trained.model.config.dim == 32
    assert trained.inputs.correspondence.voxel_size == 0.08
    assert load_segmenter(out).vocabulary == trained.vocabulary                   # the run folder works too
    with pytest.raises(Sem3RError, match="no trained segmenter"):
        load_segmenter(tmp_path)
