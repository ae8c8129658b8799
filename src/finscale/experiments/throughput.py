"""How fast a shape trains: measured on this device by a short timed probe, or from its
FLOPs on a named device profile.

FLOPs per sample come with the shape (``shapes.shape_flops``). The probe times a few
optimiser steps of the real model at the job's batch on the device training would use,
after one warm-up step, and caches the result per device in
``<workspace>/cache/throughput.json`` (like the batch size). Shapes whose predicted step
would take longer than ``max_step_s`` are not probed: their time is extrapolated from the
two largest probed shapes (``extrapolated``; see ``extrapolate``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import Field, ValidationError

from finscale.config.base import FrozenModel
from finscale.config.errors import ConfigError
from finscale.config.loader import read_yaml_mapping
from finscale.experiments.shapes import JobShape
from finscale.io.atomic import atomic_path
from finscale.models.patchtst import PatchTST
from finscale.training.device import DeviceChoice

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "throughput.json"
MEASURED = "measured"
EXTRAPOLATED = "extrapolated"
TERA = 1e12
MIN_SLOPE_SHARE = 0.5


@dataclass(frozen=True)
class Throughput:
    """Seconds per optimiser step of the shape's batch, and per evaluated sample."""

    step_s: float
    eval_sample_s: float
    source: str  # measured, extrapolated, or the device profile's name


class DeviceProfile(FrozenModel):
    """A device named for planning: peak tensor throughput and the share of it reached."""

    description: str
    peak_tflops: float = Field(gt=0, description="dense bf16/fp16 tensor peak, TFLOP/s")
    mfu: float = Field(gt=0, le=1, description="model FLOPs utilisation assumed")
    step_overhead_s: float = Field(0.0, ge=0, description="fixed cost per optimiser step")
    job_overhead_s: float = Field(0.0, ge=0, description="per job: data, MLflow, model log")

    def throughput(self, shape: JobShape, name: str) -> Throughput:
        train, forward = shape.train_flops, shape.eval_flops
        rate = self.peak_tflops * TERA * self.mfu
        return Throughput(step_s=train * shape.batch_size / rate + self.step_overhead_s,
                          eval_sample_s=forward / rate, source=name)


def load_profiles(path: Path) -> dict[str, DeviceProfile]:
    """The device profiles file; an error names the file, the profile and the field."""
    data = read_yaml_mapping(path, what="device profiles file")
    profiles = {}
    for name, entry in data.items():
        try:
            profiles[str(name)] = DeviceProfile.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in (name, *first["loc"]))
            raise ConfigError(str(path), field, first["msg"]) from exc
    return profiles


def device_label(device: DeviceChoice) -> str:
    """The probe cache's device key: the GPU model, or the CPU with its thread count (and
    bf16 when the jobs train with ``training.cpu_autocast``: another speed)."""
    if device.name == "cpu":
        precision = " bf16" if device.autocast_dtype == torch.bfloat16 else ""
        return f"cpu x{torch.get_num_threads()} threads{precision}"
    return device.label


def _sync(device: DeviceChoice) -> None:
    if device.device.type == "cuda":
        torch.cuda.synchronize(device.device)
    elif device.device.type == "mps":
        torch.mps.synchronize()


def _timed(call: Callable[[], None], device: DeviceChoice, min_s: float, max_steps: int
           ) -> float:
    """Mean seconds of ``call()`` after one warm-up call: at least one, until ``min_s``."""
    call()
    _sync(device)
    started, steps = time.perf_counter(), 0
    while steps < max_steps and (steps == 0 or time.perf_counter() - started < min_s):
        call()
        steps += 1
    _sync(device)
    return (time.perf_counter() - started) / steps


def probe(shape: JobShape, device: DeviceChoice, min_s: float, max_steps: int) -> Throughput:
    """Time AdamW steps and no-grad forwards of the real model on random inputs."""
    arch, batch = shape.arch, shape.batch_size
    torch.manual_seed(0)
    model = PatchTST(arch).to(device.device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.randn(batch, arch.context, arch.n_features, device=device.device)
    y = torch.zeros(batch, arch.n_tasks, device=device.device)

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with device.autocast():
            logits = model(x)
        loss_fn(logits.float(), y).backward()
        optimiser.step()

    def forward() -> None:
        with torch.no_grad(), device.autocast():
            model(x)

    model.train()
    step_s = _timed(step, device, min_s, max_steps)
    model.eval()
    eval_s = _timed(forward, device, min_s, max_steps) / batch
    return Throughput(step_s=step_s, eval_sample_s=eval_s, source=MEASURED)


class ProbeSettings(FrozenModel):
    """How long the probe may look at one shape."""

    min_s: float = Field(0.3, gt=0, description="time each measurement at least this long")
    max_steps: int = Field(8, ge=1)
    max_step_s: float = Field(3.0, gt=0, description="shapes predicted slower than this per "
                              "step are extrapolated from FLOPs, not probed")


class MeasuredRates:
    """Throughput per shape on this device: cached probes, probes, extrapolations."""

    def __init__(self, device: DeviceChoice, cache_dir: Path,
                 settings: ProbeSettings | None = None) -> None:
        self.device = device
        self.path = cache_dir / CACHE_FILE_NAME
        self.settings = settings or ProbeSettings()
        self.label = device_label(device)

    def _read(self) -> dict[str, dict[str, dict[str, float]]]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            log.warning("throughput cache %s unreadable; probing again", self.path)
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict[str, dict[str, float]]) -> None:
        data = self._read()  # merge: another process may have probed other shapes
        data[self.label] = {**data.get(self.label, {}), **entries}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")

    def throughputs(self, shapes: Iterable[JobShape]) -> dict[str, Throughput]:
        """Every distinct shape's throughput, smallest first so the measured ones predict
        whether a larger shape is too slow to probe (and its time if it is)."""
        unique = {shape.key: shape for shape in shapes}
        order = sorted(unique.values(), key=lambda s: s.train_flops * s.batch_size)
        cached = self._read().get(self.label, {})
        found: dict[str, Throughput] = {}
        fresh: dict[str, dict[str, float]] = {}
        measured: list[tuple[JobShape, Throughput]] = []
        for shape in order:
            entry = cached.get(shape.key)
            predicted = extrapolate(shape, measured) if measured else None
            if entry is None and predicted is not None and (
                    predicted.step_s > self.settings.max_step_s):
                found[shape.key] = predicted
                continue
            if entry is None:
                tp = probe(shape, self.device, self.settings.min_s, self.settings.max_steps)
                entry = {"step_s": tp.step_s, "eval_sample_s": tp.eval_sample_s}
                fresh[shape.key] = entry
            found[shape.key] = Throughput(entry["step_s"], entry["eval_sample_s"], MEASURED)
            measured.append((shape, found[shape.key]))
        if fresh:
            self._write(fresh)
        return found


def _slope(x1: float, y1: float, x2: float, y2: float) -> float:
    """Seconds per FLOP beyond the larger point: the slope between two measurements, kept
    at least half the larger one's average (probe noise must not make big shapes free)."""
    average = y2 / x2
    if x2 <= x1 or y2 <= y1:
        return average
    return max((y2 - y1) / (x2 - x1), MIN_SLOPE_SHARE * average)


def extrapolate(shape: JobShape, measured: list[tuple[JobShape, Throughput]]) -> Throughput:
    """A larger shape's time from the two largest measured ones: their time plus the extra
    FLOPs at the marginal cost between them (a small model's fixed per-step cost does not
    grow with size); with one measurement, its time scaled by FLOPs."""
    (small, s_tp), (large, l_tp) = (measured[-2] if len(measured) > 1 else measured[-1],
                                    measured[-1])
    step_x = (small.train_flops * small.batch_size, large.train_flops * large.batch_size)
    eval_x = (small.eval_flops, large.eval_flops)
    step_slope = _slope(step_x[0], s_tp.step_s, step_x[1], l_tp.step_s)
    eval_slope = _slope(eval_x[0], s_tp.eval_sample_s, eval_x[1], l_tp.eval_sample_s)
    flops = shape.train_flops * shape.batch_size
    return Throughput(step_s=l_tp.step_s + (flops - step_x[1]) * step_slope,
                      eval_sample_s=l_tp.eval_sample_s
                      + (shape.eval_flops - eval_x[1]) * eval_slope,
                      source=EXTRAPOLATED)
