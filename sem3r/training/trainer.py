"""A plain PyTorch trainer: AdamW, warmup + cosine schedule, clipping, AMP, atomic checkpoints, resume.

The trainer is generic: it runs ``loss_fn(model(batch[input_key]), batch)`` over a DataLoader, where
``loss_fn`` returns a dict with a differentiable ``"loss"`` and any detached scalars to log. It
counts optimiser steps; step ``k`` of the run always sees the same batch, because the data order is
a function of the step: epoch ``e = k // len(loader)`` and position ``k mod len(loader)``. A batch
sampler with ``set_epoch(epoch, start)`` (:class:`sem3r.training.dataset.GeometryBatchSampler`) is
told the epoch and where to start, so resuming touches no skipped data; otherwise the skipped
batches are drawn and discarded. Give the DataLoader its own ``generator``: otherwise starting each
pass over it draws from the global torch RNG, and a resumed run's model randomness (dropout)
differs from an uninterrupted run's.

Checkpoints (``out_dir/checkpoints/step_XXXXXXXX.pt``) hold the model, optimizer and scheduler
states, the step, the torch (CPU and CUDA), numpy and Python RNG states and the config as a dict;
they are written with ``torch.save`` to a temporary file that is renamed over the final name, so
an interrupted run leaves the previous checkpoints intact, and read with ``weights_only=True``.
``resume=True`` continues from the newest checkpoint; on CPU the result is bit-identical to an
uninterrupted run.

A step whose loss is not finite is skipped (no parameter update; it still counts as a step so the
data order and schedule stay aligned) and logged with ``"skipped": true``.
"""

from __future__ import annotations

import json
import math
import pickle
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sem3r.errors import Sem3RError
from sem3r.io import atomic_path, write_text_atomic

CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "log.jsonl"


@dataclass
class TrainConfig:
    """Settings of :class:`Trainer`.

    Attributes:
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear warmup from ``lr / warmup_steps`` to ``lr``.
        min_lr_ratio: the cosine decays from ``lr`` to ``min_lr_ratio * lr`` at ``steps``.
        steps: total optimiser steps.
        batch_size: samples per batch (read by whoever builds the DataLoader).
        grad_clip: max global gradient norm (``0`` disables clipping).
        amp: bf16 autocast on CUDA; always fp32 on CPU.
        log_every: steps between lines in ``out_dir/log.jsonl`` and progress-bar updates.
        ckpt_every: steps between checkpoints (a final one is always written).
        keep_checkpoints: newest checkpoints kept on disk.
        out_dir: run folder.
        seed: seeds torch (the model's own randomness, e.g. dropout), numpy and ``random``.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        num_workers: DataLoader worker processes (read by whoever builds the DataLoader).
        resume: continue from the newest checkpoint in ``out_dir`` if there is one.
        progress: show a tqdm progress bar.
    """

    lr: float = 2e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    steps: int = 10_000
    batch_size: int = 2
    grad_clip: float = 1.0
    amp: bool = True
    log_every: int = 10
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    out_dir: str = "runs/geometry"
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        self.out_dir = str(self.out_dir)

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.steps < 1 or self.batch_size < 1:
            raise Sem3RError(f"steps and batch_size must be positive, got {self.steps} and {self.batch_size}")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.grad_clip >= 0):
            raise Sem3RError("lr must be positive, weight_decay and grad_clip non-negative")
        if self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise Sem3RError("warmup_steps must be >= 0 and min_lr_ratio in [0, 1]")
        if self.log_every < 1 or self.ckpt_every < 1 or self.keep_checkpoints < 1:
            raise Sem3RError("log_every, ckpt_every and keep_checkpoints must be positive")

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict of the settings."""
        return json.loads(json.dumps(asdict(self)))


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Learning-rate multiplier for optimiser step ``step`` (0-based): linear warmup, then cosine.

    ``(step + 1) / warmup_steps`` during warmup, then
    ``min_lr_ratio + (1 - min_lr_ratio) (1 + cos(pi p)) / 2`` with ``p`` going from 0 to 1 over the
    remaining steps.

    Example:
        >>> [round(lr_factor(s, 2, 6, 0.0), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; anything else as ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch.to(device) if callable(getattr(batch, "to", None)) else batch


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["cached_gaussian"]))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _truncate_log(path: Path, step: int) -> None:
    """Drop the JSON lines of ``path`` whose ``step`` exceeds ``step`` (atomic rewrite)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(line + "\n" for line in kept))


def checkpoint_paths(out_dir: str | Path) -> list[Path]:
    """Checkpoints in ``out_dir/checkpoints``, oldest first."""
    folder = Path(out_dir) / CHECKPOINT_DIR
    return sorted(folder.glob("step_*.pt")) if folder.is_dir() else []


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :class:`Trainer` (``weights_only``, no arbitrary unpickling).

    Raises:
        Sem3RError: the file is missing or not a readable checkpoint.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise Sem3RError(f"cannot read checkpoint '{path}': {exc}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "step" not in ckpt:
        raise Sem3RError(f"'{path}' is not a Sem3R training checkpoint")
    return ckpt


class Trainer:
    """Train ``model`` on ``loss_fn`` over ``loader`` (see the module docstring).

    Args:
        model: any ``nn.Module``; called as ``model(batch[input_key])``, or as
            ``model(**batch[input_key])`` when that is a mapping of named inputs.
        loss_fn: ``(predictions, batch) -> {"loss": tensor, other: scalar tensor or float, ...}``.
        loader: a DataLoader (or any re-iterable of batches with ``len``).
        config: :class:`TrainConfig`.
        input_key: batch key of the model input.

    Attributes:
        step: optimiser steps done.
        history: one dict of floats per step run in this process (``step``, ``lr``, the loss terms,
            ``grad_norm``, ``skipped``).

    Example:
        >>> torch.manual_seed(0) and None
        >>> model = nn.Linear(2, 1)
        >>> data = [{"x": torch.ones(4, 2), "y": torch.zeros(4, 1)}]
        >>> cfg = TrainConfig(lr=0.1, steps=5, warmup_steps=0, out_dir="run", progress=False, ckpt_every=5)
        >>> trainer = Trainer(model, lambda out, b: {"loss": ((out - b["y"]) ** 2).mean()}, data, cfg, input_key="x")
        >>> trainer.fit().name, trainer.step, trainer.history[-1]["loss"] < trainer.history[0]["loss"]
        ('step_00000005.pt', 5, True)
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[Any, Any], Mapping[str, Any]], loader,
                 config: TrainConfig, input_key: str = "images"):
        config.validate()
        if len(loader) < 1:
            raise Sem3RError("the training data yields no batch")
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.loader = loader
        self.input_key = input_key
        self.out_dir = Path(config.out_dir)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, config.warmup_steps, config.steps, config.min_lr_ratio)
        )
        self.step = 0
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "rng": _rng_state(),
            "config": self.config.to_dict(),
        }

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step_XXXXXXXX.pt`` atomically, drop the oldest beyond ``keep_checkpoints``."""
        path = self.out_dir / CHECKPOINT_DIR / f"step_{self.step:08d}.pt"
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)
        for old in checkpoint_paths(self.out_dir)[: -self.config.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    def load_state_dict(self, ckpt: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (model, optimizer, scheduler, step, RNG states)."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step = int(ckpt["step"])
        _set_rng_state(ckpt["rng"])

    def resume(self) -> Path | None:
        """Load the newest readable checkpoint of ``out_dir``; returns its path (``None`` if none)."""
        for path in reversed(checkpoint_paths(self.out_dir)):
            try:
                ckpt = load_checkpoint(path)
            except Sem3RError:
                continue
            self.load_state_dict(ckpt)
            return path
        return None

    # ------------------------------------------------------------------ training
    def _batches(self) -> Iterator[Any]:
        epoch, start = divmod(self.step, len(self.loader))
        while True:
            sampler = getattr(self.loader, "batch_sampler", None)
            skip = start
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch, start)
                skip = 0
            for i, batch in enumerate(self.loader):
                if i >= skip:
                    yield batch
            epoch, start = epoch + 1, 0

    def _train_step(self, batch: Any) -> dict[str, float]:
        cfg = self.config
        batch = _to_device(batch, self.device)
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.amp and self.device.type == "cuda"):
            inputs = batch[self.input_key]
            predictions = self.model(**inputs) if isinstance(inputs, Mapping) else self.model(inputs)
        losses = self.loss_fn(predictions, batch)
        loss = losses["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        record = {"step": self.step + 1, "lr": self.scheduler.get_last_lr()[0]}
        record.update({k: float(torch.as_tensor(v).detach()) for k, v in losses.items()})
        skipped = not torch.isfinite(loss).item()
        if not skipped:
            loss.backward()
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
            skipped = not math.isfinite(grad_norm)
            record["grad_norm"] = grad_norm
            if skipped:
                self.optimizer.zero_grad(set_to_none=True)
            else:
                self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        record["skipped"] = float(skipped)
        return record

    def fit(self, stop_at: int | None = None) -> Path:
        """Train until ``config.steps`` (or until step ``stop_at``, for a run in stages).

        With ``config.resume`` the newest checkpoint is loaded first and log lines of later steps
        (written by the interrupted run) are dropped; a fresh run seeds torch, numpy and ``random``
        with ``config.seed``. Calling ``fit`` again on the same trainer continues where it stopped.
        A checkpoint is written every ``ckpt_every`` steps and at the last step.

        Returns:
            The path of the last checkpoint written (or loaded, when nothing was left to do).
        """
        cfg = self.config
        last = self.resume() if cfg.resume else None
        if last is not None:
            _truncate_log(self.out_dir / LOG_FILE, self.step)
        elif self.step == 0:
            torch.manual_seed(cfg.seed)
            np.random.seed(cfg.seed)
            random.seed(cfg.seed)
        end = cfg.steps if stop_at is None else min(int(stop_at), cfg.steps)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=end, initial=self.step, desc="train", unit="step", disable=not cfg.progress)
        batches = self._batches()
        with bar, open(self.out_dir / LOG_FILE, "a", encoding="utf-8") as log:
            while self.step < end:
                record = self._train_step(next(batches))
                self.history.append(record)
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == end:
                    bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
                    log.write(json.dumps({k: v if math.isfinite(v) else None for k, v in record.items()}) + "\n")
                    log.flush()
                if self.step % cfg.ckpt_every == 0 or self.step == end:
                    last = self.save_checkpoint()
        if last is None:
            last = self.save_checkpoint()
        return last
