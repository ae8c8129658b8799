"""Device choice, batch-size discovery (fake memory limit), checkpoints and run keys."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from finscale.config import AppConfig
from finscale.training.batch_size import (
    CACHE_FILE_NAME,
    BatchKey,
    BatchSizeError,
    largest_fitting_batch,
    resolve_batch_size,
    with_headroom,
)
from finscale.training.checkpoint import (
    CheckpointError,
    TrainingProgress,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from finscale.training.config import TrainingConfig
from finscale.training.device import DeviceUnavailableError, resolve_device
from finscale.training.optim import build_optimizer, build_scheduler
from finscale.training.run_key import RunKey, settings_hash


def test_auto_prefers_cuda_then_mps_then_cpu() -> None:
    yes, no = (lambda: True), (lambda: False)
    cuda = resolve_device("auto", cuda_available=yes, mps_available=yes)
    assert cuda.name == "cuda" and cuda.autocast_dtype == torch.bfloat16
    mps = resolve_device("auto", cuda_available=no, mps_available=yes)
    assert mps.name == "mps" and mps.autocast_dtype == torch.float16
    cpu = resolve_device("auto", cuda_available=no, mps_available=no)
    assert cpu.name == "cpu" and cpu.autocast_dtype is None
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        resolve_device("cuda", cuda_available=no)
    assert resolve_device("cpu", cuda_available=yes).name == "cpu"  # the override wins


def test_cpu_autocast_is_bf16_on_cpu_only_and_warns_without_native_bf16(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    yes, no = (lambda: True), (lambda: False)
    cpu = resolve_device("cpu", cpu_autocast=True, cuda_available=no)
    assert cpu.autocast_dtype == torch.bfloat16
    with cpu.autocast():
        assert torch.nn.Linear(2, 2)(torch.randn(1, 2)).dtype == torch.bfloat16
    assert resolve_device("cpu", cuda_available=no).autocast_dtype is None
    assert resolve_device("auto", cpu_autocast=True, cuda_available=no,
                          mps_available=yes).autocast_dtype == torch.float16  # MPS as always
    from finscale.training import device as device_module

    for native, warned in ((True, False), (False, True)):
        monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda n=native: n)
        caplog.clear()
        plain = resolve_device("cpu", cuda_available=no)
        assert plain.with_cpu_autocast(True).autocast_dtype == torch.bfloat16
        assert ("no native bf16" in caplog.text) is warned
        assert plain.with_cpu_autocast(False) is plain
        caplog.clear()  # auto: bf16 only where native, and never a warning
        auto = resolve_device("cpu", cpu_autocast="auto", cuda_available=no)
        assert auto.autocast_dtype == (torch.bfloat16 if native else None)
        assert "no native bf16" not in caplog.text


class FakeOOM(torch.cuda.OutOfMemoryError):
    pass


def _fake_device(limit: int, calls: list[int]):
    def try_step(batch: int) -> None:
        calls.append(batch)
        if batch > limit:
            raise FakeOOM(f"CUDA out of memory trying batch {batch}")

    return try_step


@pytest.mark.parametrize("limit", [1, 7, 8, 100, 1000, 4096])
def test_search_finds_the_largest_fitting_batch(limit: int) -> None:
    calls: list[int] = []
    assert largest_fitting_batch(_fake_device(limit, calls), max_batch=65536) == limit
    assert len(calls) < 40  # doubling + bisection, not a linear scan


def test_search_respects_max_and_mps_message() -> None:
    assert largest_fitting_batch(lambda b: None, max_batch=300) == 300

    def mps(batch: int) -> None:
        if batch > 50:
            raise RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)")

    assert largest_fitting_batch(mps, max_batch=1000) == 50
    with pytest.raises(BatchSizeError):
        largest_fitting_batch(_fake_device(0, []), max_batch=64)

    def broken(batch: int) -> None:
        raise ValueError("shape mismatch")  # not an OOM: must surface

    with pytest.raises(ValueError, match="shape mismatch"):
        largest_fitting_batch(broken, max_batch=64)


def test_resolve_uses_fixed_cpu_default_then_cache(tmp_path) -> None:
    key = BatchKey("100k", (80, 20, 4), "cuda")
    calls: list[int] = []
    fixed = TrainingConfig(batch_size=64)
    discover = TrainingConfig(batch_size=None, cpu_batch_size=128, batch_headroom=0.8)
    cpu_key = BatchKey("100k", (80, 20, 4), "cpu")
    assert resolve_batch_size(discover, cpu_key, tmp_path, _fake_device(1000, calls)) == 128
    assert calls == []
    chosen = resolve_batch_size(discover, key, tmp_path, _fake_device(1000, calls))
    assert chosen == with_headroom(1000, 0.8) == 800
    cached = json.loads((tmp_path / CACHE_FILE_NAME).read_text())
    assert cached == {key.as_text(): 800}
    calls.clear()
    assert resolve_batch_size(discover, key, tmp_path, _fake_device(10, calls)) == 800
    assert calls == []  # served from the cache
    assert resolve_batch_size(fixed, key, tmp_path, _fake_device(10, calls)) == 64  # fits
    assert calls == []
    other = BatchKey("2M", (80, 20, 4), "cuda")
    assert resolve_batch_size(discover, other, tmp_path, _fake_device(100, calls)) == 80
    assert len(json.loads((tmp_path / CACHE_FILE_NAME).read_text())) == 2
    # a fixed batch that does not fit runs as fitting micro-batches (cached key "2M": 80)...
    too_big = TrainingConfig(batch_size=256)
    assert resolve_batch_size(too_big, other, tmp_path, _fake_device(10, calls)) == 80
    assert TrainingConfig(batch_size=64).batch_size == resolve_batch_size(
        TrainingConfig(batch_size=64), other, tmp_path, None)


def test_fixed_batch_that_does_not_fit_keeps_the_effective_batch(tmp_path) -> None:
    """...and the trainer accumulates them back to the configured batch of 256."""
    from torch.utils.data import TensorDataset

    from finscale.training.trainer import Trainer

    labels = (torch.arange(512) % 2).float().unsqueeze(1)  # both classes: val AUC defined
    data = TensorDataset(torch.randn(512, 4), labels)
    cfg = TrainingConfig(batch_size=256, device="cpu", epochs=1)
    trainer = Trainer(torch.nn.Linear(4, 1), data, data, cfg, checkpoint_dir=tmp_path,
                      batch_size=80)
    assert trainer.accumulation == 4 and trainer.steps_per_epoch == 2  # 4 x 80 >= 256
    plain = Trainer(torch.nn.Linear(4, 1), data, data, cfg, checkpoint_dir=tmp_path)
    assert plain.accumulation == 1 and plain.batch_size == 256


def test_checkpoint_roundtrip_with_weights_only_and_rng(tmp_path) -> None:
    model = torch.nn.Linear(3, 2)
    cfg = TrainingConfig()
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, 10)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    path = tmp_path / "c.pt"
    save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler,
                    progress=TrainingProgress(epoch=2, step=7, best_metric=0.6),
                    config_yaml="training:\n  lr: 0.001\n")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    payload = load_checkpoint(path)
    restore_rng_state(payload["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert payload["progress"]["step"] == 7
    assert payload["config_yaml"].startswith("training:")
    assert payload["scheduler"]["last_epoch"] == 1
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_run_key_from_config() -> None:
    config = AppConfig.model_validate({"model": {"budget": "100k"}, "training": {"seed": 3}})
    key = RunKey.from_config(config)
    assert key == RunKey("dev", "SPY", "daily", "100k", 1, "a20", "all", 3,
                         settings_hash(config))
    assert key.as_tag() == ("phase=dev|tickers=SPY|timescale=daily|budget=100k|horizon=1|"
                            f"tier=a20|task=all|seed=3|settings={settings_hash(config)}")
    assert key.as_tags()["run_key"] == key.as_tag()
    assert "/" not in key.as_path() and "|" not in key.as_path()
    single = AppConfig.model_validate({"dataset": {"thresholds": [0.01]}})
    assert RunKey.from_config(single).task == "th0.01"
