"""training.compile: compiled and eager training agree, checkpoints cross over, resume holds,
and a broken compiler falls back to eager with one warning (CPU, inductor where it matters)."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import pytest
import torch

from finscale.training.checkpoint import (
    COMPILED_PREFIX,
    TrainingProgress,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from finscale.training.compile import CompiledForward, compile_mode_for
from finscale.training.trainer import Trainer
from tests.unit.training.conftest import CONTEXT, N_FEATURES, TinyNet, synthetic

# 100 train samples at batch 16: six full batches and a short one of 4 every epoch
TRAIN, VAL, BATCH = 100, 48, 16
ATOL = 1e-4


def _trainer(tmp: Path, name: str, make_cfg, *, dropout: float = 0.0,
             backend: object = None, **overrides: object) -> Trainer:
    """A trainer on the tiny task; the model's init is the same whatever the config."""
    torch.manual_seed(0)
    kwargs = {"compile_backend": backend} if backend is not None else {}
    return Trainer(TinyNet(dropout), synthetic(TRAIN, 1), synthetic(VAL, 2),
                   make_cfg(batch_size=BATCH, **overrides), checkpoint_dir=tmp / name, **kwargs)


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = ATOL) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol) for k in a)


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ the auto rule
@pytest.mark.parametrize(("setting", "device", "expected"), [
    (False, "cuda", None), ("auto", "cuda", "default"), ("auto", "mps", None),
    ("auto", "cpu", None), ("max-autotune", "cpu", "max-autotune"), ("default", "mps", "default"),
])
def test_compile_mode_per_device(setting, device, expected) -> None:
    assert compile_mode_for(setting, device) == expected


# ------------------------------------------------------------------ fallback
def _broken_backend(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> object:
    raise RuntimeError("no working compiler here")


@pytest.mark.parametrize("backend", ["no_such_backend", _broken_backend],
                         ids=["unknown-backend", "backend-that-fails"])
def test_a_compiler_failure_warns_once_and_trains_eagerly(backend, make_cfg, tmp_path) -> None:
    eager = _trainer(tmp_path, "eager", make_cfg, dropout=0.1, compile=False)
    eager.fit()
    broken = _trainer(tmp_path, "broken", make_cfg, dropout=0.1, compile="default",
                      backend=backend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = broken.fit()
        broken.fit(resume=True)  # a second fit in the same process: no second warning
    messages = [str(w.message) for w in caught if "training.compile" in str(w.message)]
    assert len(messages) == 1 and "training eagerly" in messages[0]
    assert result.finished and not broken.forward.active
    # the failed attempt left no trace: the run is the eager run, bit for bit
    assert _equal(eager.model.state_dict(), broken.model.state_dict())


def test_compiling_changes_no_state_the_run_depends_on(make_cfg, tmp_path) -> None:
    """Dynamo's ``eager`` backend runs the captured graph with the same kernels, so a compiled
    run with dropout is bit-identical to the eager one only if compiling (the probe batch
    included) consumed no random numbers and left no gradients or buffers behind."""
    eager = _trainer(tmp_path, "eager", make_cfg, dropout=0.1, compile=False)
    eager.fit()
    traced = _trainer(tmp_path, "traced", make_cfg, dropout=0.1, compile="default",
                      backend="eager")
    traced.fit()
    assert traced.forward.active
    assert _equal(eager.model.state_dict(), traced.model.state_dict())


# ------------------------------------------------------------------ checkpoints cross over
def test_state_dict_keys_load_both_ways(tmp_path: Path) -> None:
    torch.manual_seed(0)
    eager = TinyNet()
    wrapped = torch.compile(TinyNet(), backend="eager")  # the wrapper only: no graph is built
    assert all(k.startswith(COMPILED_PREFIX) for k in wrapped.state_dict())
    load_model_state(wrapped, eager.state_dict())  # eager checkpoint -> compiled model
    assert _equal(wrapped._orig_mod.state_dict(), eager.state_dict())
    other = TinyNet()
    prefixed = wrapped.state_dict()
    load_model_state(other, prefixed)  # compiled model's own keys -> eager model
    assert _equal(other.state_dict(), eager.state_dict())
    assert all(k.startswith(COMPILED_PREFIX) for k in prefixed)  # the caller's dict untouched


@pytest.mark.slow
def test_compiled_and_eager_runs_agree_and_their_checkpoints_cross_over(make_cfg,
                                                                        tmp_path) -> None:
    eager = _trainer(tmp_path, "eager", make_cfg, compile=False, epochs=2)
    compiled = _trainer(tmp_path, "compiled", make_cfg, compile="default", epochs=2)
    eager.fit()
    compiled.fit()
    assert compiled.forward.active  # inductor really ran
    losses = [[h["train_loss"] for h in t.progress.history] for t in (eager, compiled)]
    assert losses[0] == pytest.approx(losses[1], abs=ATOL)  # same loss trajectory
    assert _close(eager.model.state_dict(), compiled.model.state_dict())
    saved = load_checkpoint(compiled.best_path)["model"]
    assert not any(k.startswith(COMPILED_PREFIX) for k in saved)
    plain = TinyNet(0.0)
    plain.load_state_dict(saved)  # strict: a compiled run's checkpoint loads into eager
    x = synthetic(8, 5).tensors[0]
    assert torch.allclose(plain.eval()(x), compiled.model.eval()(x))
    # an eager run stopped after epoch 1 resumes in a compiled trainer and ends where the
    # uninterrupted eager run ended
    stopped = _trainer(tmp_path, "stopped", make_cfg, compile=False, epochs=2)
    stopped.fit(stop_after_epoch=1)
    resumed = _trainer(tmp_path, "stopped", make_cfg, compile="default", epochs=2)
    resumed.fit(resume=True)
    assert resumed.forward.active
    assert _close(load_checkpoint(eager.last_path)["model"],
                  load_checkpoint(resumed.last_path)["model"])


@pytest.mark.slow
def test_resume_mid_epoch_with_compile_on_is_within_tolerance(make_cfg, tmp_path) -> None:
    straight = _trainer(tmp_path, "a", make_cfg, dropout=0.1, compile="default", epochs=2)
    straight.fit()
    stopper = _trainer(tmp_path, "b", make_cfg, dropout=0.1, compile="default", epochs=2)
    stopper.step_hooks.append(lambda step: "thermal" if step == 4 else None)
    assert stopper.fit().stop_reason == "thermal"
    torch.manual_seed(12345)  # a fresh process's RNG is whatever: resume restores it
    resumed = _trainer(tmp_path, "b", make_cfg, dropout=0.1, compile="default", epochs=2)
    resumed.fit(resume=True)
    assert resumed.forward.active
    assert _close(load_checkpoint(straight.last_path)["model"],
                  load_checkpoint(resumed.last_path)["model"])


def test_resume_mid_epoch_with_compile_off_stays_exact(make_cfg, tmp_path) -> None:
    straight = _trainer(tmp_path, "a", make_cfg, dropout=0.1, compile=False, epochs=2)
    straight.fit()
    stopper = _trainer(tmp_path, "b", make_cfg, dropout=0.1, compile=False, epochs=2)
    stopper.step_hooks.append(lambda step: "thermal" if step == 4 else None)
    assert stopper.fit().stop_reason == "thermal"
    torch.manual_seed(12345)
    resumed = _trainer(tmp_path, "b", make_cfg, dropout=0.1, compile=False, epochs=2)
    resumed.fit(resume=True)
    assert _equal(load_checkpoint(straight.last_path)["model"],
                  load_checkpoint(resumed.last_path)["model"])


# ------------------------------------------------------------------ short batches
def test_short_batches_run_eagerly_and_full_ones_compiled() -> None:
    model = TinyNet(0.0)
    calls: list[int] = []

    def spy_backend(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> object:
        def run(*args: torch.Tensor) -> object:
            calls.append(1)
            return graph(*args)
        return run

    forward = CompiledForward(model, "default", batch_size=BATCH, backend=spy_backend)
    forward.prepare((CONTEXT, N_FEATURES), torch.device("cpu"), contextlib.nullcontext)
    calls.clear()  # the probe's call
    forward(torch.randn(BATCH, CONTEXT, N_FEATURES))
    assert calls == [1]
    forward(torch.randn(4, CONTEXT, N_FEATURES))  # the epoch's short tail: eager, no compile
    assert calls == [1]


def test_checkpoint_of_a_compiled_wrapper_has_plain_keys(tmp_path: Path) -> None:
    model = TinyNet()
    wrapped = torch.compile(model, backend="eager")
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    path = save_checkpoint(tmp_path / "c.pt", model=wrapped, optimizer=optimizer,
                           scheduler=scheduler, progress=TrainingProgress(), config_yaml="")
    assert set(load_checkpoint(path)["model"]) == set(model.state_dict())
