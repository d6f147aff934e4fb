"""Trainer: learning, exact resume, interruption safety, checkpoints, schedule, skipped steps."""

import json

import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.training import (
    GeometryLoss,
    SyntheticGeometryDataset,
    TrainConfig,
    Trainer,
    checkpoint_paths,
    collate_geometry,
    geometry_dataloader,
    load_checkpoint,
    lr_factor,
)


def _config(out_dir, **kw):
    base = dict(lr=3e-3, warmup_steps=2, steps=6, batch_size=2, log_every=1, ckpt_every=2, out_dir=str(out_dir),
                seed=0, device="cpu", progress=False)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def loader(synth_root):
    ds = SyntheticGeometryDataset(synth_root, min_views=2, max_views=3, image_size=(28, 28), seed=5,
                                  samples_per_epoch=3)
    return geometry_dataloader(ds, batch_size=2)  # 2 batches per epoch: 6 steps cross epochs


def _logged_steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def _same_parameters(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_loss_decreases_on_a_fixed_batch(synth_root, tmp_path, make_model):
    ds = SyntheticGeometryDataset(synth_root, min_views=2, max_views=2, image_size=(28, 28), seed=0)
    batch = collate_geometry([ds[(0, 0, 2)], ds[(0, 1, 2)]])
    trainer = Trainer(make_model(0), GeometryLoss(), [batch], _config(tmp_path, lr=1e-2, warmup_steps=0, steps=30,
                                                                    ckpt_every=100, log_every=10))
    trainer.fit()
    losses = [r["loss"] for r in trainer.history]
    assert len(losses) == 30 and all(r["skipped"] == 0.0 for r in trainer.history)
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20, 30]


def test_resume_reproduces_an_uninterrupted_run(loader, tmp_path, make_model):
    straight = Trainer(make_model(0), GeometryLoss(), loader, _config(tmp_path / "a"))
    straight.fit()
    first = Trainer(make_model(0), GeometryLoss(), loader, _config(tmp_path / "b"))
    assert first.fit(stop_at=3).name == "step_00000003.pt"
    staged = Trainer(make_model(0), GeometryLoss(), loader, _config(tmp_path / "c"))
    staged.fit(stop_at=2)
    staged.fit()
    assert _same_parameters(straight.model, staged.model)
    resumed = Trainer(make_model(123), GeometryLoss(), loader, _config(tmp_path / "b", resume=True))
    assert resumed.fit().name == "step_00000006.pt"
    assert resumed.step == straight.step == 6
    assert _same_parameters(straight.model, resumed.model)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history[3:]]
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]


class _FailingLoss:
    """GeometryLoss that raises on its ``fail_at``-th call."""

    def __init__(self, fail_at):
        self.inner, self.calls, self.fail_at = GeometryLoss(), 0, fail_at

    def __call__(self, predictions, batch):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated crash")
        return self.inner(predictions, batch)


def test_interrupted_run_leaves_a_readable_checkpoint_and_resumes_exactly(loader, tmp_path, make_model):
    crashing = Trainer(make_model(0), _FailingLoss(fail_at=6), loader, _config(tmp_path / "run", ckpt_every=2))
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit()
    files = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert files == ["step_00000002.pt", "step_00000004.pt"]  # no temporary file left behind
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000004.pt")
    assert ckpt["step"] == 4 and ckpt["config"]["ckpt_every"] == 2
    assert {"model", "optimizer", "scheduler", "rng"} <= set(ckpt)
    assert _logged_steps(tmp_path / "run") == [1, 2, 3, 4, 5]
    resumed = Trainer(make_model(9), GeometryLoss(), loader, _config(tmp_path / "run", resume=True))
    resumed.fit()
    assert _logged_steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]  # step 5 of the crashed run is replaced by the resumed one
    straight = Trainer(make_model(0), GeometryLoss(), loader, _config(tmp_path / "straight"))
    straight.fit()
    assert _same_parameters(straight.model, resumed.model)


def test_resume_skips_an_unreadable_checkpoint_and_prunes_old_ones(loader, tmp_path, make_model):
    cfg = _config(tmp_path, ckpt_every=1, keep_checkpoints=2, steps=4)
    trainer = Trainer(make_model(0), GeometryLoss(), loader, cfg)
    trainer.fit()
    assert [p.name for p in checkpoint_paths(tmp_path)] == ["step_00000003.pt", "step_00000004.pt"]
    (tmp_path / "checkpoints" / "step_00000004.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Sem3RError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "checkpoints" / "step_00000004.pt")
    again = Trainer(make_model(1), GeometryLoss(), loader, _config(tmp_path, resume=True, steps=4))
    assert again.resume().name == "step_00000003.pt" and again.step == 3


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_non_finite_loss_skips_the_update(loader, tmp_path, make_model):
    model = make_model(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def nan_loss(predictions, batch):
        return {"loss": predictions["depth"].sum() * float("nan")}

    trainer = Trainer(model, nan_loss, loader, _config(tmp_path, steps=2))
    trainer.fit()
    assert trainer.step == 2 and all(r["skipped"] == 1.0 for r in trainer.history)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])["loss"] is None


def test_schedule_and_config_validation(tmp_path, make_model):
    assert lr_factor(0, 4, 10, 0.1) == pytest.approx(0.25)
    assert lr_factor(3, 4, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(4, 4, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 4, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(7, 4, 10, 0.0) == pytest.approx(0.5)
    for bad in ({"steps": 0}, {"lr": 0.0}, {"min_lr_ratio": 2.0}, {"ckpt_every": 0}):
        with pytest.raises(Sem3RError):
            Trainer(make_model(0), GeometryLoss(), [None], _config(tmp_path, **bad))
    with pytest.raises(Sem3RError, match="no batch"):
        Trainer(make_model(0), GeometryLoss(), [], _config(tmp_path))
