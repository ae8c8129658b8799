"""The training loop: AdamW + warm-up/cosine, clipping, accumulation, early stopping, resume.

Determinism: the data order of an epoch is a function of (seed, epoch) and every RNG state
is checkpointed, so on CPU a run resumed from its last checkpoint ends with the same
weights as one that was never stopped. The BEST checkpoint is reloaded before the final
evaluation, so reported metrics never come from a later, worse epoch.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from finscale.training import data as batching
from finscale.training.checkpoint import (
    BEST_NAME,
    LAST_NAME,
    TrainingProgress,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
)
from finscale.training.compile import INDUCTOR, Backend, CompiledForward, compile_mode_for
from finscale.training.config import TrainingConfig
from finscale.training.device import DeviceChoice, resolve_device
from finscale.training.losses import build_loss
from finscale.training.metrics import (
    TaskCounts,
    describe_counts,
    evaluation_metrics,
    excluded_tasks,
    require_usable_tasks,
    task_counts,
)
from finscale.training.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

STOP_COMPLETED = "completed"
STOP_EARLY = "early_stopping"
STOP_INTERRUPTED = "interrupted"
FINISHED_REASONS = (STOP_COMPLETED, STOP_EARLY)

StepHook = Callable[[int], str | None]
# called with each epoch's metrics after its checkpoint; a returned reason stops the run
# (e.g. ``pruned`` from an HPO pruner: the trainer itself knows nothing of Optuna)
EpochHook = Callable[[dict[str, float]], str | None]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def accumulation_steps(batch_size: int, effective_batch_size: int | None) -> int:
    """Micro-batches per optimiser step so that batch * steps >= effective batch (at least 1)."""
    if effective_batch_size is None:
        return 1
    return max(1, math.ceil(effective_batch_size / batch_size))


def split_task_counts(
    data: Dataset[tuple[torch.Tensor, ...]] | batching.BatchSource,
    task_names: Sequence[str],
    batch_size: int,
) -> dict[str, TaskCounts]:
    """Positives/negatives per task of a split, from its labels."""
    return task_counts(batching.collect_labels(data, batch_size), task_names)


@dataclass
class FitResult:
    """How ``fit`` ended: reason, progress, checkpoints and the best model's val metrics."""

    stop_reason: str
    progress: TrainingProgress
    last_checkpoint: Path
    best_checkpoint: Path | None
    final_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.stop_reason in FINISHED_REASONS


@dataclass
class _EpochRun:
    """Running totals of one epoch (also stored mid-epoch for an exact thermal resume).

    ``loss_sum`` stays a detached tensor on the training device: reading it is a host sync,
    done once per epoch (and when a checkpoint is written), not once per micro-batch.
    """

    loss_sum: torch.Tensor
    samples: int = 0
    seconds: float = 0.0


class Trainer:
    """Trains ``model`` on (x, y) datasets under ``TrainingConfig``; see module docstring."""

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset[tuple[torch.Tensor, ...]] | batching.BatchSource,
        val_data: Dataset[tuple[torch.Tensor, ...]] | batching.BatchSource,
        cfg: TrainingConfig,
        *,
        checkpoint_dir: Path,
        config_yaml: str = "",
        task_names: Sequence[str] | None = None,
        device: DeviceChoice | None = None,
        batch_size: int | None = None,
        step_hooks: Sequence[StepHook] = (),
        epoch_hooks: Sequence[EpochHook] = (),
        temperature_fn: Callable[[], float | None] | None = None,
        checkpoint_extra: dict[str, str] | None = None,
        val_counts: Mapping[str, TaskCounts] | None = None,
        compile_backend: Backend = INDUCTOR,
    ) -> None:
        """``val_counts``: the val split's class counts when the caller has them already;
        ``compile_backend``: the ``torch.compile`` backend when ``cfg.compile`` compiles."""
        self.cfg = cfg
        self.device = (device or resolve_device(cfg.device)).with_cpu_autocast(cfg.cpu_autocast)
        self.model = model.to(self.device.device)
        self.train_source = batching.as_batch_source(train_data)
        self.val_source = batching.as_batch_source(val_data)
        self.batch_size = batch_size or cfg.batch_size or cfg.cpu_batch_size
        self.eval_batch_size = cfg.eval_batch_size or self.batch_size
        # a fixed batch that did not fit the device arrives as smaller micro-batches:
        # accumulation keeps the configured batch (or the explicit effective batch)
        self.accumulation = accumulation_steps(
            self.batch_size, cfg.effective_batch_size or cfg.batch_size
        )
        self.checkpoint_dir = checkpoint_dir
        self.config_yaml = config_yaml
        self.step_hooks = list(step_hooks)
        self.epoch_hooks = list(epoch_hooks)
        self.temperature_fn = temperature_fn
        self.checkpoint_extra = dict(checkpoint_extra or {})
        first_y = self.val_source.batch(torch.arange(1))[1]
        n_tasks = int(first_y.shape[-1])
        self.task_names = tuple(task_names or [f"task{j}" for j in range(n_tasks)])
        # fail before any training: a mean val AUC over noise tasks must not select a model
        self.val_counts = self._val_counts(val_data, val_counts)
        self.included_tasks = require_usable_tasks(self.val_counts, cfg.min_task_positives,
                                                   "val")
        self.excluded_tasks = excluded_tasks(self.val_counts, cfg.min_task_positives)
        log.info("val tasks (%s); mean val AUC over %s, excluded %s (< %d pos or neg)",
                 describe_counts(self.val_counts), list(self.included_tasks),
                 list(self.excluded_tasks), cfg.min_task_positives)
        self.loss_fn = self._build_loss()
        self.optimizer = build_optimizer(self.model, cfg)
        self.steps_per_epoch = math.ceil(
            math.ceil(len(self.train_source) / self.batch_size) / self.accumulation
        )
        self.scheduler = build_scheduler(
            self.optimizer, cfg, total_steps=self.steps_per_epoch * cfg.epochs
        )
        mode = compile_mode_for(cfg.compile, self.device.device.type)
        # training steps call this; self.model stays the plain module (checkpoints, eval)
        self.forward = CompiledForward(self.model, mode, batch_size=self.batch_size,
                                       backend=compile_backend)
        self.progress = TrainingProgress()
        # MPS has no float64; elsewhere the sum matches a python-float running sum exactly
        self._loss_dtype = torch.float32 if self.device.device.type == "mps" else torch.float64
        self._epoch_run = self._new_epoch_run()
        self._groups_done = 0

    def _val_counts(
        self,
        val_data: Dataset[tuple[torch.Tensor, ...]] | batching.BatchSource,
        given: Mapping[str, TaskCounts] | None,
    ) -> dict[str, TaskCounts]:
        """The given val counts (checked against the task names) or counted from the labels."""
        if given is None:
            return split_task_counts(val_data, self.task_names, self.eval_batch_size)
        if tuple(given) != self.task_names:
            raise ValueError(f"val_counts tasks {list(given)} do not match the trainer's tasks "
                             f"{list(self.task_names)}")
        return dict(given)

    def _new_epoch_run(self, loss_sum: float = 0.0, samples: int = 0,
                       seconds: float = 0.0) -> _EpochRun:
        return _EpochRun(torch.tensor(loss_sum, dtype=self._loss_dtype), samples, seconds)

    def _build_loss(self) -> nn.Module:
        """The configured loss; a balanced pos_weight counts TRAIN labels only."""
        positives, total = (
            batching.label_counts(self.train_source, self.eval_batch_size)
            if self.cfg.pos_weight == "balanced"
            else (None, 0)
        )
        return build_loss(self.cfg, positives, total).to(self.device.device)

    @property
    def last_path(self) -> Path:
        return self.checkpoint_dir / LAST_NAME

    @property
    def best_path(self) -> Path:
        return self.checkpoint_dir / BEST_NAME

    # ---------------------------------------------------------------- checkpoints
    def _save(self, path: Path) -> None:
        extra = {
            **self.checkpoint_extra,
            "groups_done": str(self._groups_done),
            "epoch_loss_sum": repr(float(self._epoch_run.loss_sum)),
            "epoch_samples": str(self._epoch_run.samples),
            "epoch_seconds": repr(self._epoch_run.seconds),
        }
        save_checkpoint(
            path,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            progress=self.progress,
            config_yaml=self.config_yaml,
            extra=extra,
        )

    def resume_from(self, path: Path) -> dict[str, str]:
        """Restore model, optimiser, scheduler, RNG and progress; returns the checkpoint extras."""
        payload = load_checkpoint(path, map_location=self.device.device)
        load_model_state(self.model, payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.progress = TrainingProgress.from_dict(payload["progress"])
        extra: dict[str, str] = payload["extra"]
        self._groups_done = int(extra.get("groups_done", "0"))
        self._epoch_run = self._new_epoch_run(
            loss_sum=float(extra.get("epoch_loss_sum", "0.0")),
            samples=int(extra.get("epoch_samples", "0")),
            seconds=float(extra.get("epoch_seconds", "0.0")),
        )
        restore_rng_state(payload["rng"])
        log.info("resumed from %s at epoch %d step %d", path, self.progress.epoch,
                 self.progress.step)
        return extra

    def load_best(self) -> None:
        """Load the best checkpoint's weights into the model (before any final evaluation)."""
        payload = load_checkpoint(self.best_path, map_location=self.device.device)
        load_model_state(self.model, payload["model"])

    # ---------------------------------------------------------------- steps
    def _optimizer_step(self, group: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        total = sum(int(x.shape[0]) for x, _ in group)
        for x, y in group:
            x = x.to(self.device.device, non_blocking=True)
            y = y.to(self.device.device, non_blocking=True)
            with self.device.autocast():
                logits = self.forward(x)  # (B, n_tasks); compiled for full batches
            loss = self.loss_fn(logits.float(), y)
            (loss * (x.shape[0] / total)).backward()
            # no float(): that would wait for the device on every micro-batch
            run = self._epoch_run
            run.loss_sum = run.loss_sum + loss.detach().to(self._loss_dtype) * int(x.shape[0])
            self._epoch_run.samples += int(x.shape[0])
        if self.cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1

    def _run_hooks(self) -> str | None:
        for hook in self.step_hooks:
            reason = hook(self.progress.step)
            if reason:
                return reason
        return None

    def _train_epoch(self, epoch: int) -> str | None:
        """One epoch (from ``_groups_done`` on); returns a stop reason from a step hook."""
        self.model.train()
        order = batching.epoch_order(len(self.train_source), self.cfg.seed, epoch)
        groups = batching.group_batches(
            batching.split_batches(order, self.batch_size), self.accumulation
        )
        remaining = groups[self._groups_done :]
        # one iterator (one DataLoader and its workers) for the rest of the epoch, same order
        batches = batching.iterate(self.train_source, [b for g in remaining for b in g],
                                   self.cfg.num_workers)
        try:
            for group_index in range(self._groups_done, len(groups)):
                started = time.perf_counter()
                fetched = list(itertools.islice(batches, len(groups[group_index])))
                self._optimizer_step(fetched)
                self._epoch_run.seconds += time.perf_counter() - started
                self._groups_done = group_index + 1
                reason = self._run_hooks()
                if reason:
                    return reason
        finally:
            batches.close()  # a stop mid-epoch shuts the workers down now, not at GC
        return None

    # ---------------------------------------------------------------- evaluation
    @torch.no_grad()
    def predict(
        self, data: Dataset[tuple[torch.Tensor, ...]] | batching.BatchSource
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels of every sample of ``data``, in order (model in eval mode)."""
        source = batching.as_batch_source(data)
        self.model.eval()
        logits, labels = [], []
        order = torch.arange(len(source))
        for x, y in batching.iterate(
            source, batching.split_batches(order, self.eval_batch_size), 0
        ):
            with self.device.autocast():
                out = self.model(x.to(self.device.device))
            logits.append(out.float().cpu())
            labels.append(y.float())
        return torch.cat(logits), torch.cat(labels)

    def evaluate(
        self, data: Dataset[tuple[torch.Tensor, ...]] | batching.BatchSource, prefix: str = "val_"
    ) -> dict[str, float]:
        """Loss (the training loss), AUC and prediction spread of ``data``; the mean AUC
        leaves out tasks with fewer than ``min_task_positives`` positives or negatives."""
        logits, labels = self.predict(data)
        with torch.no_grad():
            device = self.device.device
            loss = float(self.loss_fn(logits.to(device), labels.to(device)))
        # the VALIDATION selection for every split: a test mean over other tasks than the
        # val mean would compare different averages
        return evaluation_metrics(logits, labels, loss, self.task_names, prefix,
                                  self.included_tasks)

    # ---------------------------------------------------------------- early stopping
    def _is_better(self, value: float) -> bool:
        best = self.progress.best_metric
        if best is None or math.isnan(best):
            return True
        if math.isnan(value):
            return False
        if self.cfg.early_stopping_metric == "val_loss":
            return value < best
        return value > best

    def _end_epoch(self, epoch: int) -> dict[str, float]:
        """Validate, update early stopping, write checkpoints; returns the epoch's metrics."""
        run = self._epoch_run
        metrics = {
            "epoch": float(epoch + 1),
            "train_loss": float(run.loss_sum) / max(1, run.samples),
            "samples_per_s": run.samples / run.seconds if run.seconds > 0 else math.nan,
            "lr": float(self.scheduler.get_last_lr()[0]),
            **self.evaluate(self.val_source, "val_"),
        }
        temperature = self.temperature_fn() if self.temperature_fn else None
        if temperature is not None:
            metrics["temperature_c"] = temperature
        value = metrics[self.cfg.early_stopping_metric]
        improved = self._is_better(value)
        self.progress.epoch = epoch + 1
        if improved:
            self.progress.best_metric = value
            self.progress.best_epoch = epoch + 1
            self.progress.epochs_without_improvement = 0
        else:
            self.progress.epochs_without_improvement += 1
        self.progress.history.append(metrics)
        self._epoch_run = self._new_epoch_run()
        self._groups_done = 0
        if improved:
            self._save(self.best_path)
        self._save(self.last_path)
        log.info("epoch %d/%d train_loss %.4f val_loss %.4f val_auc %.4f pred_std %.4f "
                 "%.0f samples/s%s", epoch + 1, self.cfg.epochs, metrics["train_loss"],
                 metrics["val_loss"], metrics["val_auc"], metrics["val_pred_std"],
                 metrics["samples_per_s"], " (best)" if improved else "")
        return metrics

    # ---------------------------------------------------------------- fit
    def fit(self, *, resume: bool = False, stop_after_epoch: int | None = None) -> FitResult:
        """Train until done, early-stopped or stopped by a hook; ``resume`` continues last.pt.

        ``stop_after_epoch`` ends the run after that many completed epochs as if the process
        had been killed right after its checkpoint (used to test resume).
        """
        if resume and self.last_path.is_file():
            self.resume_from(self.last_path)
        else:
            seed_everything(self.cfg.seed)
        self._prepare_compile()
        reason = self._loop(stop_after_epoch)
        if reason not in FINISHED_REASONS:
            return FitResult(reason, self.progress, self.last_path, self._best_or_none())
        self.load_best()
        final = self.evaluate(self.val_source, "val_")
        return FitResult(reason, self.progress, self.last_path, self.best_path, final)

    def _prepare_compile(self) -> None:
        """Compile now (state-neutral; a failure warns once and leaves the run eager)."""
        if self.forward.mode is None:
            return
        sample_shape = tuple(self.train_source.batch(torch.arange(1))[0].shape[1:])
        self.forward.prepare(sample_shape, self.device.device, self.device.autocast)

    def _loop(self, stop_after_epoch: int | None) -> str:
        if self.progress.epochs_without_improvement >= self.cfg.patience:
            return STOP_EARLY
        for epoch in range(self.progress.epoch, self.cfg.epochs):
            hook_reason = self._train_epoch(epoch)
            if hook_reason:
                self._save(self.last_path)
                log.warning("training stopped at step %d: %s", self.progress.step, hook_reason)
                return hook_reason
            metrics = self._end_epoch(epoch)
            hook_reason = self._run_epoch_hooks(metrics)
            if hook_reason:
                log.info("training stopped after epoch %d: %s", epoch + 1, hook_reason)
                return hook_reason
            if self.progress.epochs_without_improvement >= self.cfg.patience:
                log.info("early stopping after epoch %d (best epoch %d)", epoch + 1,
                         self.progress.best_epoch)
                return STOP_EARLY
            if stop_after_epoch is not None and self.progress.epoch >= stop_after_epoch:
                return STOP_INTERRUPTED
        return STOP_COMPLETED

    def _run_epoch_hooks(self, metrics: dict[str, float]) -> str | None:
        """Every epoch hook sees the metrics; the first stop reason returned wins."""
        reasons = [hook(metrics) for hook in self.epoch_hooks]
        return next((reason for reason in reasons if reason), None)

    def _best_or_none(self) -> Path | None:
        return self.best_path if self.best_path.is_file() else None
