"""The trainer applies every hyperparameter, stops early on the configured metric, reloads
the BEST checkpoint before the final evaluation, and resumes bit-for-bit on CPU."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from finscale.models.budget import resolve_architecture
from finscale.models.config import ModelConfig
from finscale.models.patchtst import PatchTST
from finscale.training import data as batching
from finscale.training.checkpoint import load_checkpoint
from finscale.training.metrics import TaskCounts
from finscale.training.trainer import (
    STOP_COMPLETED,
    STOP_EARLY,
    STOP_INTERRUPTED,
    Trainer,
    accumulation_steps,
)


def _trainer(tiny_net, train_data, val_data, cfg, tmp_path: Path, **kwargs) -> Trainer:
    return Trainer(tiny_net(seed=cfg.seed), train_data, val_data, cfg,
                   checkpoint_dir=tmp_path / "ckpt", config_yaml="training: {}", **kwargs)


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_epochs_and_metrics_per_epoch(tiny_net, train_data, val_data, make_cfg, tmp_path):
    seen: list[dict[str, float]] = []
    trainer = _trainer(tiny_net, train_data, val_data, make_cfg(epochs=4), tmp_path,
                       epoch_hooks=[seen.append], temperature_fn=lambda: 55.0)
    result = trainer.fit()
    assert result.stop_reason == STOP_COMPLETED
    assert [m["epoch"] for m in seen] == [1.0, 2.0, 3.0, 4.0]
    for key in ("train_loss", "val_loss", "val_auc", "val_pred_std", "val_pred_min",
                "val_pred_max", "samples_per_s", "temperature_c", "lr"):
        assert key in seen[-1]
    assert 0.0 <= seen[-1]["val_pred_min"] <= seen[-1]["val_pred_max"] <= 1.0
    assert seen[-1]["val_auc"] > 0.6  # it learned the synthetic signal
    assert trainer.progress.step == 4 * trainer.steps_per_epoch


def test_effective_batch_size_sets_accumulation_steps(
    tiny_net, train_data, val_data, make_cfg, tmp_path
):
    assert accumulation_steps(16, None) == 1
    assert accumulation_steps(16, 64) == 4
    plain = _trainer(tiny_net, train_data, val_data, make_cfg(epochs=1), tmp_path / "a")
    accum = _trainer(tiny_net, train_data, val_data,
                     make_cfg(epochs=1, effective_batch_size=48), tmp_path / "b")
    assert accum.accumulation == 3
    plain.fit()
    accum.fit()
    assert plain.progress.step == 6  # 96 samples / 16
    assert accum.progress.step == 2  # 6 micro-batches / 3 per step


def test_accumulated_gradient_equals_one_big_batch(tiny_net, train_data, val_data, make_cfg,
                                                   tmp_path):
    big = _trainer(tiny_net, train_data, val_data,
                   make_cfg(epochs=1, batch_size=48, grad_clip=None), tmp_path / "a")
    small = _trainer(tiny_net, train_data, val_data,
                     make_cfg(epochs=1, batch_size=16, effective_batch_size=48, grad_clip=None),
                     tmp_path / "b")
    big.model.eval()
    small.model.eval()  # no dropout: the two gradients must agree
    big.model.train = lambda mode=True: big.model  # keep eval mode inside fit
    small.model.train = lambda mode=True: small.model
    big.fit()
    small.fit()
    for (name, a), b in zip(big.model.state_dict().items(), small.model.state_dict().values(),
                            strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_grad_clip_clips_the_norm(tiny_net, train_data, val_data, make_cfg, tmp_path):
    norms: dict[str, list[float]] = {}
    for label, clip in (("clipped", 0.01), ("free", None)):
        trainer = _trainer(tiny_net, train_data, val_data, make_cfg(epochs=1, grad_clip=clip),
                           tmp_path / label)
        original = trainer.optimizer.step
        seen: list[float] = []

        def recording_step(*args, _original=original, _seen=seen, _model=trainer.model, **kw):
            grads = [p.grad for p in _model.parameters() if p.grad is not None]
            _seen.append(float(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads]))))
            return _original(*args, **kw)

        trainer.optimizer.step = recording_step
        trainer.fit()
        norms[label] = seen
    assert max(norms["clipped"]) <= 0.01 + 1e-6
    assert max(norms["free"]) > 0.01


def test_seed_makes_runs_identical_and_different_seeds_differ(
    tiny_net, train_data, val_data, make_cfg, tmp_path
):
    runs = {}
    for label, seed in (("a", 3), ("b", 3), ("c", 4)):
        trainer = _trainer(tiny_net, train_data, val_data, make_cfg(seed=seed, epochs=2),
                           tmp_path / label)
        trainer.fit()
        runs[label] = _weights(trainer.model)
    assert _equal(runs["a"], runs["b"])
    assert not _equal(runs["a"], runs["c"])


def _scripted(trainer: Trainer, values: list[float], metric: str) -> list[dict[str, float]]:
    """Replace validation by a scripted metric sequence; record weights at each epoch."""
    calls = iter(values)
    snapshots: list[dict[str, float]] = []
    real_evaluate = trainer.evaluate

    def evaluate(data, prefix="val_"):
        metrics = real_evaluate(data, prefix)
        value = next(calls, None)
        if value is not None:
            metrics[metric] = value
        snapshots.append(_weights(trainer.model))
        return metrics

    trainer.evaluate = evaluate
    return snapshots


@pytest.mark.parametrize(
    ("metric", "values", "best_epoch"),
    [("val_auc", [0.6, 0.7, 0.65, 0.64, 0.9], 2), ("val_loss", [0.6, 0.7, 0.5, 0.55, 0.56], 3)],
)
def test_patience_and_metric_drive_early_stopping_and_best_is_reloaded(
    tiny_net, train_data, val_data, make_cfg, tmp_path, metric, values, best_epoch
):
    cfg = make_cfg(epochs=5, patience=2, early_stopping_metric=metric)
    trainer = _trainer(tiny_net, train_data, val_data, cfg, tmp_path)
    snapshots = _scripted(trainer, values, metric)
    result = trainer.fit()
    assert result.stop_reason == STOP_EARLY
    assert trainer.progress.best_epoch == best_epoch
    assert trainer.progress.epoch == best_epoch + 2  # patience epochs without improvement
    last_trained = snapshots[trainer.progress.epoch - 1]
    assert not _equal(snapshots[best_epoch - 1], last_trained)
    assert _equal(_weights(trainer.model), snapshots[best_epoch - 1])  # BEST reloaded
    assert len(snapshots) == trainer.progress.epoch + 1  # the final evaluation saw...
    assert _equal(snapshots[-1], snapshots[best_epoch - 1])  # ...the best weights
    best = load_checkpoint(result.best_checkpoint)
    assert best["progress"]["best_epoch"] == best_epoch
    assert result.final_metrics["val_loss"] == pytest.approx(trainer.evaluate(val_data)["val_loss"])


def test_larger_patience_trains_longer(tiny_net, train_data, val_data, make_cfg, tmp_path):
    trainer = _trainer(tiny_net, train_data, val_data,
                       make_cfg(epochs=5, patience=4, early_stopping_metric="val_auc"), tmp_path)
    _scripted(trainer, [0.6, 0.7, 0.65, 0.64, 0.63], "val_auc")
    assert trainer.fit().stop_reason == STOP_COMPLETED
    assert trainer.progress.epoch == 5


def test_resume_after_kill_ends_with_identical_weights(
    tiny_net, train_data, val_data, make_cfg, tmp_path
):
    cfg = make_cfg(epochs=4, effective_batch_size=32)
    straight = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "straight")
    straight.fit()
    killed = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "resumed")
    assert killed.fit(stop_after_epoch=2).stop_reason == STOP_INTERRUPTED
    del killed
    torch.manual_seed(12345)  # the fresh process's RNG is whatever: resume must restore it
    resumed = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "resumed")
    result = resumed.fit(resume=True)
    assert result.stop_reason == STOP_COMPLETED
    assert resumed.progress.step == straight.progress.step
    last_straight = load_checkpoint(straight.last_path)["model"]
    last_resumed = load_checkpoint(resumed.last_path)["model"]
    assert _equal(last_straight, last_resumed)
    assert _equal(_weights(straight.model), _weights(resumed.model))  # best reloaded, same
    assert [h["val_loss"] for h in straight.progress.history] == [
        h["val_loss"] for h in resumed.progress.history
    ]


def test_resume_after_mid_epoch_stop_is_exact(tiny_net, train_data, val_data, make_cfg,
                                              tmp_path):
    cfg = make_cfg(epochs=2)
    straight = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "a")
    straight.fit()
    stopper = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "b",
                       step_hooks=[lambda step: "thermal" if step == 4 else None])
    assert stopper.fit().stop_reason == "thermal"
    resumed = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "b")
    resumed.fit(resume=True)
    assert _equal(load_checkpoint(straight.last_path)["model"],
                  load_checkpoint(resumed.last_path)["model"])


def test_num_workers_prefetch_gives_the_same_result(tiny_net, train_data, val_data, make_cfg,
                                                    tmp_path):
    a = _trainer(tiny_net, train_data, val_data, make_cfg(epochs=1), tmp_path / "a")
    b = _trainer(tiny_net, train_data, val_data, make_cfg(epochs=1, num_workers=1),
                 tmp_path / "b")
    a.fit()
    b.fit()
    assert _equal(_weights(a.model), _weights(b.model))


@pytest.fixture()
def loaders_made(monkeypatch):
    """Micro-batches per DataLoader the trainer builds (one entry per loader)."""
    made: list[int] = []
    real_loader = batching.DataLoader

    def counting_loader(*args, **kwargs):
        made.append(len(kwargs["sampler"]))
        return real_loader(*args, **kwargs)

    monkeypatch.setattr(batching, "DataLoader", counting_loader)
    return made


def test_one_dataloader_per_epoch_with_workers(tiny_net, train_data, val_data, make_cfg,
                                               tmp_path, loaders_made):
    trainer = _trainer(tiny_net, train_data, val_data,
                       make_cfg(epochs=2, num_workers=1, effective_batch_size=32), tmp_path)
    trainer.fit()
    assert trainer.steps_per_epoch == 3  # several optimiser steps per epoch ...
    assert loaders_made == [6, 6]  # ... but one loader per epoch over all its 6 micro-batches


def test_mid_epoch_resume_with_workers_fetches_only_the_rest(
    tiny_net, train_data, val_data, make_cfg, tmp_path, loaders_made
):
    cfg = make_cfg(epochs=1, num_workers=1, effective_batch_size=32)
    straight = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "a")
    straight.fit()
    stopper = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "b",
                       step_hooks=[lambda step: "thermal" if step == 1 else None])
    assert stopper.fit().stop_reason == "thermal"
    resumed = _trainer(tiny_net, train_data, val_data, cfg, tmp_path / "b")
    loaders_made.clear()  # count only the resumed run's loaders
    resumed.fit(resume=True)
    assert loaders_made == [4]  # the two groups left, 2 micro-batches each
    assert _equal(load_checkpoint(straight.last_path)["model"],
                  load_checkpoint(resumed.last_path)["model"])


class _LabelsOnly(torch.utils.data.Dataset):
    """A dataset with ``label_array``: counting must never gather its input windows."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise AssertionError("label counting gathered input windows")

    def label_array(self):
        return self.labels.numpy()


def test_label_counts_read_label_array_and_match_the_batch_loop(train_data) -> None:
    labels = train_data.tensors[1]
    from_batches = batching.label_counts(batching.as_batch_source(train_data), 10)
    from_array = batching.label_counts(_LabelsOnly(labels), 10)
    assert torch.equal(from_batches[0], labels.double().sum(dim=0)) and from_batches[1] == 96
    assert torch.equal(from_array[0], from_batches[0]) and from_array[1] == from_batches[1]
    assert torch.equal(batching.collect_labels(_LabelsOnly(labels), 7), labels)
    assert torch.equal(batching.collect_labels(train_data, 7), labels)
    with pytest.raises(ValueError, match="empty"):
        batching.label_counts(_LabelsOnly(labels[:0]), 10)


def test_trainer_uses_given_val_counts_and_checks_their_tasks(
    tiny_net, train_data, val_data, make_cfg, tmp_path
):
    counted = _trainer(tiny_net, train_data, val_data, make_cfg(), tmp_path / "a")
    given = {"task0": TaskCounts(30, 30), "task1": TaskCounts(1, 59)}
    trainer = _trainer(tiny_net, train_data, val_data, make_cfg(), tmp_path / "b",
                       val_counts=given)
    assert counted.val_counts != given and trainer.val_counts == given
    assert trainer.excluded_tasks == ("task1",)  # the floor applies to the given counts
    with pytest.raises(ValueError, match="val_counts tasks"):
        _trainer(tiny_net, train_data, val_data, make_cfg(), tmp_path / "c",
                 val_counts={"other": TaskCounts(30, 30)})


def test_lr_is_logged_from_the_schedule(tiny_net, train_data, val_data, make_cfg, tmp_path):
    seen: list[dict[str, float]] = []
    trainer = _trainer(tiny_net, train_data, val_data,
                       make_cfg(epochs=2, lr=0.05, warmup_steps=100), tmp_path,
                       epoch_hooks=[seen.append])
    trainer.fit()
    assert seen[0]["lr"] == pytest.approx(0.05 * 7 / 100)  # lr of step 7 after 6 steps
    assert not math.isnan(seen[0]["samples_per_s"])


def test_dropout_reaches_the_model() -> None:
    for dropout, head_dropout in ((0.0, 0.0), (0.3, 0.2)):
        arch = resolve_architecture(
            ModelConfig(budget="10k", dropout=dropout, head_dropout=head_dropout),
            n_features=4, context=16, n_tasks=2,
        )
        model = PatchTST(arch)
        rates = {m.p for m in model.modules() if isinstance(m, nn.Dropout)}
        assert rates == {dropout, head_dropout} or rates == {dropout}
        assert dropout in rates and head_dropout in rates
