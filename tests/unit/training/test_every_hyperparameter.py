"""Every field of TrainingConfig and ModelConfig has a check that changing it has its effect.

The field lists are enumerated from the pydantic models: a field added later without an
entry in ``TRAINING_CHECKS`` / ``MODEL_CHECKS`` fails ``test_every_field_has_a_check``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from finscale.config import AppConfig
from finscale.models.budget import BudgetMismatchError, count_parameters, resolve_architecture
from finscale.models.config import ModelConfig
from finscale.models.patchtst import PatchTST
from finscale.thermal.config import ThermalConfig
from finscale.tracking import RunTracker, TrackingTarget
from finscale.training.batch_size import BatchKey, resolve_batch_size, with_headroom
from finscale.training.config import TrainingConfig
from finscale.training.data import BatchSource, iterate
from finscale.training.device import DeviceUnavailableError, cpu_has_native_bf16, resolve_device
from finscale.training.losses import FocalLossWithLogits
from finscale.training.metrics import NoUsableTaskError
from finscale.training.optim import lr_factor
from finscale.training.run import (
    build_thermal_guard,
    collapse_tags,
    last_epochs_mean,
    log_best_model,
)
from finscale.training.run_key import RunKey
from finscale.training.trainer import Trainer
from finscale.workspace import Workspace
from tests.unit.training.conftest import CONTEXT, N_FEATURES, TinyNet, synthetic

BASE: dict[str, object] = {
    "epochs": 1, "batch_size": 16, "warmup_steps": 2, "device": "cpu", "patience": 10,
    "lr": 1e-2,
}


def _cfg(**overrides: object) -> TrainingConfig:
    return TrainingConfig(**{**BASE, **overrides})


def _trainer(tmp: Path, **overrides: object) -> Trainer:
    """A trainer on the tiny synthetic task; the model's init does not depend on the config."""
    torch.manual_seed(0)
    return Trainer(TinyNet(), synthetic(96, 1), synthetic(48, 2), _cfg(**overrides),
                   checkpoint_dir=tmp / f"ckpt{len(list(tmp.glob('ckpt*')))}")


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _fake_gpu(limit: int) -> Callable[[int], None]:
    def try_step(batch: int) -> None:
        if batch > limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory at batch {batch}")

    return try_step


GPU_KEY = BatchKey("100k", (CONTEXT, N_FEATURES, 2), "cuda")


# ------------------------------------------------------------------ TrainingConfig checks
def check_seed(tmp: Path) -> None:
    runs = []
    for seed in (3, 3, 4):
        trainer = _trainer(tmp, seed=seed)
        trainer.fit()
        runs.append(_weights(trainer.model))
    assert _same(runs[0], runs[1]) and not _same(runs[0], runs[2])


def check_epochs(tmp: Path) -> None:
    for epochs in (1, 3):
        trainer = _trainer(tmp, epochs=epochs)
        trainer.fit()
        assert trainer.progress.epoch == epochs
        assert trainer.progress.step == epochs * trainer.steps_per_epoch


def check_batch_size(tmp: Path) -> None:
    assert _trainer(tmp, batch_size=16).steps_per_epoch == 6  # 96 samples
    assert _trainer(tmp, batch_size=32).steps_per_epoch == 3


def check_effective_batch_size(tmp: Path) -> None:
    trainer = _trainer(tmp, effective_batch_size=48)
    assert trainer.accumulation == 3 and trainer.steps_per_epoch == 2
    assert _trainer(tmp, effective_batch_size=None).accumulation == 1


def check_lr(tmp: Path) -> None:
    for lr in (1e-2, 3e-4):
        trainer = _trainer(tmp, lr=lr, warmup_steps=0)
        assert [g["lr"] for g in trainer.optimizer.param_groups] == [lr, lr]


def check_weight_decay(tmp: Path) -> None:
    for decay in (0.0, 0.3):
        groups = _trainer(tmp, weight_decay=decay).optimizer.param_groups
        assert [g["weight_decay"] for g in groups] == [decay, 0.0]  # biases/norms never decay


def check_betas(tmp: Path) -> None:
    groups = _trainer(tmp, betas=(0.8, 0.95)).optimizer.param_groups
    assert all(g["betas"] == (0.8, 0.95) for g in groups)


def check_warmup_steps(tmp: Path) -> None:
    for warmup in (2, 10):
        trainer = _trainer(tmp, warmup_steps=warmup, lr=1.0)
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1 / warmup)


def check_min_lr_ratio(tmp: Path) -> None:
    for ratio in (0.0, 0.25):
        trainer = _trainer(tmp, min_lr_ratio=ratio, lr=1.0, epochs=2)
        trainer.fit()  # ends at the last step of the schedule: lr at its floor
        assert trainer.scheduler.get_last_lr()[0] == pytest.approx(ratio, abs=1e-9)
    assert lr_factor(50, warmup_steps=0, total_steps=100, min_lr_ratio=0.2) == pytest.approx(0.6)


def check_grad_clip(tmp: Path) -> None:
    norms: dict[float | None, float] = {}
    for clip in (0.01, None):
        trainer = _trainer(tmp, grad_clip=clip)
        seen: list[float] = []
        trainer.optimizer.register_step_pre_hook(lambda opt, *_, _s=seen: _s.append(float(
            torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad)
                                                  for g in opt.param_groups
                                                  for p in g["params"] if p.grad is not None])))))
        trainer.fit()
        norms[clip] = max(seen)
    assert norms[0.01] <= 0.01 + 1e-6 < norms[None]



def check_min_task_positives(tmp: Path) -> None:
    # val: task0 has 25 pos / 23 neg, task1 14 pos / 34 neg
    strict, loose = _trainer(tmp, min_task_positives=20), _trainer(tmp, min_task_positives=10)
    assert strict.excluded_tasks == ("task1",) and loose.excluded_tasks == ()
    val = synthetic(48, 2)
    strict_metrics, loose_metrics = strict.evaluate(val), loose.evaluate(val)  # same weights
    assert strict_metrics["val_auc"] == strict_metrics["val_auc_task0"]
    assert loose_metrics["val_auc"] == pytest.approx(
        (loose_metrics["val_auc_task0"] + loose_metrics["val_auc_task1"]) / 2)
    with pytest.raises(NoUsableTaskError):
        _trainer(tmp, min_task_positives=26)

def check_loss(tmp: Path) -> None:
    assert isinstance(_trainer(tmp, loss="bce").loss_fn, nn.BCEWithLogitsLoss)
    assert isinstance(_trainer(tmp, loss="focal").loss_fn, FocalLossWithLogits)


def check_focal_gamma(tmp: Path) -> None:
    logits, targets = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    bce = float(_trainer(tmp, loss="bce").loss_fn(logits, targets))
    plain = float(_trainer(tmp, loss="focal", focal_gamma=0.0).loss_fn(logits, targets))
    focused = float(_trainer(tmp, loss="focal", focal_gamma=2.0).loss_fn(logits, targets))
    assert plain == pytest.approx(bce) and focused < plain  # easy examples down-weighted


def check_pos_weight(tmp: Path) -> None:
    assert _trainer(tmp, pos_weight="none").loss_fn.pos_weight is None
    labels = synthetic(96, 1).tensors[1]
    expected = (96 - labels.sum(0)) / labels.sum(0)  # negatives / positives of TRAIN
    assert torch.allclose(_trainer(tmp, pos_weight="balanced").loss_fn.pos_weight, expected)


def check_early_stopping_metric(tmp: Path) -> None:
    for metric, pick in (("val_loss", min), ("val_auc", max)):
        trainer = _trainer(tmp, early_stopping_metric=metric, epochs=3)
        trainer.fit()
        history = [h[metric] for h in trainer.progress.history]
        assert trainer.progress.best_metric == pick(history)


def check_patience(tmp: Path) -> None:
    for patience in (1, 3):
        trainer = _trainer(tmp, patience=patience, epochs=8)
        real = trainer.evaluate

        def flat(data: object, prefix: str = "val_", _real=real) -> dict[str, float]:
            return {**_real(data, prefix), f"{prefix}auc": 0.5}  # never improves

        trainer.evaluate = flat  # type: ignore[method-assign]
        trainer.fit()
        assert trainer.progress.epoch == 1 + patience


def check_device(tmp: Path) -> None:
    assert _trainer(tmp, device="cpu").device.name == "cpu"
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        resolve_device(_cfg(device="cuda").device, cuda_available=lambda: False)
    assert resolve_device(_cfg(device="auto").device, cuda_available=lambda: False,
                          mps_available=lambda: True).name == "mps"


def _collapsed(tmp: Path, **overrides: object) -> str:
    trainer = _trainer(tmp)
    metrics = trainer.fit().final_metrics
    config = AppConfig(training=_cfg(**overrides))
    return collapse_tags(config, metrics, trainer.included_tasks)["collapsed"]


def check_collapse_std_floor(tmp: Path) -> None:
    trainer = _trainer(tmp)
    metrics = trainer.fit().final_metrics
    relative = min(metrics[f"val_pred_rel_std_{t}"] for t in trainer.included_tasks)
    for floor, expected in ((relative * 2, "true"), (relative / 2, "false")):
        config = AppConfig(training=_cfg(collapse_std_floor=floor))
        assert collapse_tags(config, metrics, trainer.included_tasks)["collapsed"] == expected


def check_collapse_min_distinct(tmp: Path) -> None:
    assert _collapsed(tmp, collapse_min_distinct=1) == "false"
    assert _collapsed(tmp, collapse_min_distinct=49) == "true"  # 48 val samples at most


def check_warmup_ratio(tmp: Path) -> None:
    for ratio, steps in ((0.1, 6), (0.5, 30)):  # 10 epochs x 6 steps planned
        trainer = _trainer(tmp, warmup_steps=None, warmup_ratio=ratio, lr=1.0, epochs=10)
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1 / steps)


def check_evaluate_test(tmp: Path) -> None:
    # the split-level behaviour is in tests/integration/test_test_discipline.py (real data);
    # here: the flag is what the run reads to decide whether the test split exists
    import inspect

    from finscale.training import run

    assert "include_test=config.training.evaluate_test" in inspect.getsource(run._open_data)
    assert _cfg(evaluate_test=False).evaluate_test is False


def check_last_epochs_window(tmp: Path) -> None:
    history = [{"val_auc": v} for v in (0.5, 0.6, 0.7, 0.9)]
    assert last_epochs_mean(history, "val_auc", _cfg(last_epochs_window=2).last_epochs_window) \
        == pytest.approx(0.8)
    assert last_epochs_mean(history, "val_auc", _cfg(last_epochs_window=3).last_epochs_window) \
        == pytest.approx(0.7333333)


class _PidSource(BatchSource):
    """A batch source whose x says which process fetched it."""

    def __len__(self) -> int:
        return 8

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.full((len(indices), 1), float(os.getpid())), torch.zeros(len(indices), 1)


def check_num_workers(tmp: Path) -> None:
    batches = [torch.arange(4), torch.arange(4, 8)]
    pids = {int(x[0, 0]) for x, _ in iterate(_PidSource(), batches, 0)}
    assert pids == {os.getpid()}
    pids = {int(x[0, 0]) for x, _ in iterate(_PidSource(), batches, 1)}
    assert os.getpid() not in pids  # fetched by a worker process


def check_cpu_batch_size(tmp: Path) -> None:
    assert _trainer(tmp, batch_size=None, cpu_batch_size=32).batch_size == 32
    cpu_key = BatchKey("100k", (CONTEXT, N_FEATURES, 2), "cpu")
    assert resolve_batch_size(_cfg(batch_size=None, cpu_batch_size=48), cpu_key, tmp, None) == 48


def check_batch_headroom(tmp: Path) -> None:
    for headroom in (0.5, 1.0):
        cfg = _cfg(batch_size=None, batch_headroom=headroom)
        chosen = resolve_batch_size(cfg, GPU_KEY, tmp / str(headroom), _fake_gpu(1000))
        assert chosen == with_headroom(1000, headroom)


def check_max_batch_size(tmp: Path) -> None:
    for largest in (64, 512):
        cfg = _cfg(batch_size=None, batch_headroom=1.0, max_batch_size=largest)
        assert resolve_batch_size(cfg, GPU_KEY, tmp / str(largest), _fake_gpu(10**6)) == largest


def check_eval_batch_size(tmp: Path) -> None:
    for eval_batch, expected in ((None, {16}), (40, {40, 8})):
        trainer = _trainer(tmp, eval_batch_size=eval_batch)
        sizes: set[int] = set()
        trainer.model.register_forward_hook(lambda _m, args, _o, _s=sizes: _s.add(len(args[0])))
        trainer.evaluate(synthetic(48, 2))
        assert sizes == expected


def check_thermal_check_every_steps(tmp: Path) -> None:
    probe = tmp / "temp"
    probe.write_text("40")
    thermal = ThermalConfig(sensor="file", file_path=probe)
    for every, reads in ((1, 20), (5, 4)):
        config = AppConfig(training=_cfg(thermal_check_every_steps=every), thermal=thermal)
        guard = build_thermal_guard(config)
        count = 0
        real_read = guard.read

        def counting_read(_real=real_read):
            nonlocal count
            count += 1
            return _real()

        guard.read = counting_read  # type: ignore[method-assign]
        for step in range(1, 21):
            assert guard(step) is None
        assert count == reads


def check_log_model(tmp: Path) -> None:
    from mlflow.tracking import MlflowClient

    workspace = Workspace.resolve(tmp / "ws").ensure()
    target = TrackingTarget.for_workspace(workspace, "log-model")
    model, example = TinyNet(), torch.randn(2, CONTEXT, N_FEATURES)
    for flag in (False, True):
        tracker = RunTracker(target)
        key = RunKey("t", "SPY", "daily", "10k", 1, "a20", "all", int(flag), "0" * 10)
        run_id = tracker.start(key)
        config = AppConfig(training=_cfg(log_model=flag))
        assert (log_best_model(config, tracker, model, example) is None) is (not flag)
        tracker.end()
        client = MlflowClient(target.uri)
        experiment = client.get_experiment_by_name("log-model").experiment_id
        logged = [m for m in client.search_logged_models([experiment])
                  if m.source_run_id == run_id]
        assert len(logged) == int(flag)
        if flag:  # the logged model serves any batch size, not only the example's
            import mlflow.pytorch

            loaded = mlflow.pytorch.load_model(f"models:/{logged[0].model_id}")
            batch = torch.randn(5, CONTEXT, N_FEATURES)
            assert torch.allclose(loaded(batch), model.eval()(batch), atol=1e-5)


def _graph_calls(tmp: Path, **overrides: object) -> tuple[Trainer, list[int]]:
    """Fit with a spy torch.compile backend; the batch size of each compiled-graph call."""
    calls: list[int] = []

    def spy_backend(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> object:
        def run(*args: torch.Tensor) -> object:
            calls.append(max((a.shape[0] for a in args if a.dim() == 3), default=-1))
            return graph(*args)
        return run

    torch.manual_seed(0)
    trainer = Trainer(TinyNet(), synthetic(100, 1), synthetic(48, 2), _cfg(**overrides),
                      checkpoint_dir=tmp / f"ckpt{len(list(tmp.glob('ckpt*')))}",
                      compile_backend=spy_backend)
    trainer.fit()
    return trainer, calls


def check_compile(tmp: Path) -> None:
    eager, calls = _graph_calls(tmp, compile=False)
    assert calls == [] and not eager.forward.active
    compiled, calls = _graph_calls(tmp, compile="default")
    # the probe, then the 6 full batches of 16; the short batch of 4 runs eagerly
    assert compiled.forward.active and calls == [16] * 7
    assert _trainer(tmp, compile="max-autotune").forward.mode == "max-autotune"
    assert _trainer(tmp, compile="auto").forward.mode is None  # auto on CPU: eager (measured)


def check_cpu_autocast(tmp: Path) -> None:
    native = torch.bfloat16 if cpu_has_native_bf16() else torch.float32  # what auto picks here
    for flag, dtype in ((False, torch.float32), (True, torch.bfloat16), ("auto", native)):
        trainer = _trainer(tmp, cpu_autocast=flag)
        seen: set[torch.dtype] = set()
        trainer.model.hidden.register_forward_hook(lambda _m, _a, out, _s=seen: _s.add(out.dtype))
        trainer.fit()
        assert seen == {dtype}


TRAINING_CHECKS: dict[str, Callable[[Path], None]] = {
    "seed": check_seed, "epochs": check_epochs, "batch_size": check_batch_size,
    "effective_batch_size": check_effective_batch_size, "lr": check_lr,
    "weight_decay": check_weight_decay, "betas": check_betas, "warmup_steps": check_warmup_steps,
    "min_lr_ratio": check_min_lr_ratio, "grad_clip": check_grad_clip, "loss": check_loss,
    "focal_gamma": check_focal_gamma, "pos_weight": check_pos_weight,
    "early_stopping_metric": check_early_stopping_metric, "patience": check_patience,
    "min_task_positives": check_min_task_positives,
    "device": check_device, "collapse_std_floor": check_collapse_std_floor,
    "collapse_min_distinct": check_collapse_min_distinct, "warmup_ratio": check_warmup_ratio,
    "evaluate_test": check_evaluate_test, "last_epochs_window": check_last_epochs_window,
    "num_workers": check_num_workers, "cpu_batch_size": check_cpu_batch_size,
    "batch_headroom": check_batch_headroom, "max_batch_size": check_max_batch_size,
    "eval_batch_size": check_eval_batch_size,
    "thermal_check_every_steps": check_thermal_check_every_steps, "log_model": check_log_model,
    "compile": check_compile, "cpu_autocast": check_cpu_autocast,
}


# ------------------------------------------------------------------ ModelConfig checks
F, CTX, TASKS = 5, 32, 3
SIZES = {"budget": None, "d_model": 32, "n_layers": 1}


def _arch(**fields: object):
    return resolve_architecture(ModelConfig(**{**SIZES, **fields}), F, CTX, TASKS)


def _count(**fields: object) -> int:
    return count_parameters(_arch(**fields))


def _model(seed: int = 0, **fields: object) -> PatchTST:
    torch.manual_seed(seed)
    return PatchTST(_arch(**fields)).eval()


def check_budget(tmp: Path) -> None:
    for budget, target in (("10k", 10_000), ("30k", 30_000)):
        arch = resolve_architecture(ModelConfig(budget=budget), F, CTX, TASKS)
        assert abs(count_parameters(arch) - target) <= 0.05 * target


def check_budget_tolerance(tmp: Path) -> None:
    real = _count()
    loose = ModelConfig(budget=str(real * 2), budget_tolerance=0.6, d_model=32, n_layers=1)
    assert count_parameters(resolve_architecture(loose, F, CTX, TASKS)) == real
    tight = ModelConfig(budget=str(real * 2), budget_tolerance=0.05, d_model=32, n_layers=1)
    with pytest.raises(BudgetMismatchError, match="tolerance"):
        resolve_architecture(tight, F, CTX, TASKS)


def check_patch_len(tmp: Path) -> None:
    assert _arch(patch_len=4, stride=4).n_patches > _arch(patch_len=8, stride=4).n_patches
    assert _model(patch_len=4).embed.in_features * 2 == _model(patch_len=8).embed.in_features


def check_stride(tmp: Path) -> None:
    assert _arch(stride=4).n_patches > _arch(stride=8).n_patches
    assert _model(stride=4).pos.shape[0] == _arch(stride=4).n_patches


def check_pad_end(tmp: Path) -> None:
    assert _arch(pad_end=True).n_patches == _arch(pad_end=False).n_patches + 1


def check_channel_mode(tmp: Path) -> None:
    assert _arch(channel_mode="independent").tokens_per_sample == F * _arch().n_patches
    assert _arch(channel_mode="mixed").tokens_per_sample == _arch().n_patches
    x = torch.randn(2, CTX, F)
    assert _model(channel_mode="independent")(x).shape == _model(channel_mode="mixed")(x).shape


def check_head(tmp: Path) -> None:
    pooled = _model(head="pool").head.linear.in_features
    assert _model(head="flatten").head.linear.in_features == _arch().n_patches * pooled


def check_d_model(tmp: Path) -> None:
    assert _model(d_model=32).embed.out_features == 32
    assert _model(d_model=48).embed.out_features == 48


def check_n_layers(tmp: Path) -> None:
    assert len(_model(n_layers=1).blocks) == 1 and len(_model(n_layers=3).blocks) == 3


def check_n_heads(tmp: Path) -> None:
    one, two = _model(n_heads=1), _model(n_heads=2)
    two.load_state_dict(one.state_dict())  # same weights, only the head split differs
    x = torch.randn(4, CTX, F)
    assert not torch.allclose(one(x), two(x))


def check_d_ff(tmp: Path) -> None:
    assert _model(d_ff=40).blocks[0].mlp.fc.out_features == 40


def _dropout_rates(model: nn.Module) -> set[float]:
    return {m.p for m in model.modules() if isinstance(m, nn.Dropout)}


def check_dropout(tmp: Path) -> None:
    assert _dropout_rates(_model(dropout=0.3, head_dropout=0.0)) == {0.3, 0.0}


def check_head_dropout(tmp: Path) -> None:
    assert _model(head_dropout=0.2).head.dropout.p == 0.2
    assert _dropout_rates(_model(dropout=0.0, head_dropout=0.2)) == {0.0, 0.2}


def check_instance_norm(tmp: Path) -> None:
    """Same weights, only the mode differs: each mode changes the output; revin alone is
    blind to a window's level and scale, revin_stats sees them, none sees raw values."""
    x = torch.randn(4, CTX, F)
    moved = x * 3.0 + 7.0  # same windows in another level and scale
    revin = _model(instance_norm="revin")
    none = _model(instance_norm="none")
    none.load_state_dict(revin.state_dict(), strict=False)  # all but RevIN's affine
    stats = _model(instance_norm="revin_stats")
    shared = {k: v for k, v in revin.state_dict().items() if not k.startswith("head.linear.w")}
    stats.load_state_dict(shared, strict=False)
    with torch.no_grad():  # the head's first D inputs: revin's weights; then the level's
        stats.head.linear.weight[:, : SIZES["d_model"]] = revin.head.linear.weight
    outputs = {m.cfg.instance_norm: m(x) for m in (none, revin, stats)}
    for a, b in (("none", "revin"), ("revin", "revin_stats"), ("none", "revin_stats")):
        assert not torch.allclose(outputs[a], outputs[b], atol=1e-4), (a, b)
    assert torch.allclose(revin(x), revin(moved), atol=1e-4)
    assert not torch.allclose(stats(x), stats(moved), atol=1e-4)
    assert not torch.allclose(none(x), none(moved), atol=1e-4)


def check_revin_affine(tmp: Path) -> None:
    for mode in ("revin", "revin_stats"):
        assert (_count(instance_norm=mode, revin_affine=True)
                - _count(instance_norm=mode, revin_affine=False)) == 2 * F


MODEL_CHECKS: dict[str, Callable[[Path], None]] = {
    "budget": check_budget, "budget_tolerance": check_budget_tolerance,
    "patch_len": check_patch_len, "stride": check_stride, "pad_end": check_pad_end,
    "channel_mode": check_channel_mode, "head": check_head, "d_model": check_d_model,
    "n_layers": check_n_layers, "n_heads": check_n_heads, "d_ff": check_d_ff,
    "dropout": check_dropout, "head_dropout": check_head_dropout,
    "instance_norm": check_instance_norm,
    "revin_affine": check_revin_affine,
}


@pytest.mark.parametrize(("config", "checks"), [(TrainingConfig, TRAINING_CHECKS),
                                                 (ModelConfig, MODEL_CHECKS)])
def test_every_field_has_a_check(config: type, checks: dict[str, object]) -> None:
    fields = set(config.model_fields)
    assert fields - checks.keys() == set(), f"{config.__name__} fields without a check"
    assert checks.keys() - fields == set(), "checks of fields that no longer exist"


@pytest.mark.parametrize("field", sorted(TRAINING_CHECKS))
def test_training_field_has_its_effect(field: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    check_effect = TRAINING_CHECKS[field]  # asserts the field's effect
    check_effect(tmp_path)


@pytest.mark.parametrize("field", sorted(MODEL_CHECKS))
def test_model_field_has_its_effect(field: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    check_effect = MODEL_CHECKS[field]  # asserts the field's effect
    check_effect(tmp_path)
