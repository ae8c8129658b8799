"""Batch-size discovery: the largest batch that fits the device, minus a headroom.

Doubling until the first out-of-memory, then a binary search between the last fit and
the first failure. The result is cached per (budget, input shape, device) in
``<workspace>/cache/batch_sizes.json`` so later runs skip the search. A batch size fixed
in the config is used when it fits; when it does not, the run uses the fitting batch and
the trainer accumulates gradients so the optimiser still sees the configured batch. On CPU
no search runs (memory is not the limit there, throughput is).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from finscale.io.atomic import atomic_path
from finscale.training.config import TrainingConfig

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "batch_sizes.json"
START_BATCH = 8
BATCH_MULTIPLE = 8  # keep discovered batches a multiple of this (tensor-core friendly)
MPS_OOM_MARKERS = ("MPS backend out of memory", "out of memory")

TryStep = Callable[[int], None]


class BatchSizeError(RuntimeError):
    """Even the smallest batch does not fit the device."""


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM, or the RuntimeError MPS raises when its allocator is exhausted."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in MPS_OOM_MARKERS)


def _fits(try_step: TryStep, batch: int) -> bool:
    try:
        try_step(batch)
    except Exception as exc:
        if is_out_of_memory(exc):
            return False
        raise
    return True


def largest_fitting_batch(try_step: TryStep, *, max_batch: int, start: int = START_BATCH) -> int:
    """The largest batch <= ``max_batch`` for which ``try_step`` raises no OOM."""
    start = min(start, max_batch)
    if not _fits(try_step, start):
        if start == 1 or not _fits(try_step, 1):
            raise BatchSizeError("a batch of 1 does not fit the device")
        good, bad = 1, start
    else:
        good, bad = start, None
        while bad is None and good < max_batch:
            candidate = min(good * 2, max_batch)
            if _fits(try_step, candidate):
                good = candidate
            else:
                bad = candidate
        if bad is None:
            return good
    while bad - good > 1:
        middle = (good + bad) // 2
        if _fits(try_step, middle):
            good = middle
        else:
            bad = middle
    return good


def with_headroom(batch: int, headroom: float) -> int:
    """``headroom`` x batch, rounded down to a multiple of 8 when that leaves at least 8."""
    kept = max(1, int(batch * headroom))
    return kept - kept % BATCH_MULTIPLE if kept >= BATCH_MULTIPLE else kept


@dataclass(frozen=True)
class BatchKey:
    """What the largest batch depends on."""

    budget: str
    input_shape: tuple[int, ...]
    device: str

    def as_text(self) -> str:
        shape = "x".join(str(d) for d in self.input_shape)
        return f"{self.budget}|{shape}|{self.device}"


def _read_cache(path: Path) -> dict[str, int]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("batch-size cache %s unreadable; searching again", path)
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_cache(path: Path, entries: dict[str, int]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(entries, indent=2, sort_keys=True), encoding="utf-8")


def resolve_batch_size(
    cfg: TrainingConfig, key: BatchKey, cache_dir: Path, try_step: TryStep | None
) -> int:
    """The micro-batch a run uses (see the module docstring).

    CPU (or no ``try_step``): the configured batch, else ``cpu_batch_size``. An accelerator:
    the largest batch that fits (cached); a batch fixed in the config is used when it fits,
    else the fitting one, and the trainer accumulates gradients up to the configured batch.
    """
    if key.device == "cpu" or try_step is None:
        return cfg.batch_size if cfg.batch_size is not None else cfg.cpu_batch_size
    fitting = _fitting_batch(cfg, key, cache_dir, try_step)
    if cfg.batch_size is None:
        return fitting
    if fitting < cfg.batch_size:
        log.warning("training.batch_size=%d does not fit %s; micro-batches of %d accumulate "
                    "to it", cfg.batch_size, key.as_text(), fitting)
    return min(cfg.batch_size, fitting)


def _fitting_batch(cfg: TrainingConfig, key: BatchKey, cache_dir: Path, try_step: TryStep) -> int:
    """Cached, or discovered with headroom and cached, per (budget, input shape, device)."""
    path = cache_dir / CACHE_FILE_NAME
    entries = _read_cache(path)
    if key.as_text() in entries:
        return entries[key.as_text()]
    largest = largest_fitting_batch(try_step, max_batch=cfg.max_batch_size)
    chosen = with_headroom(largest, cfg.batch_headroom)
    log.info("batch-size discovery %s: largest %d, using %d", key.as_text(), largest, chosen)
    _write_cache(path, {**_read_cache(path), key.as_text(): chosen})
    return chosen


def make_try_step(
    model: nn.Module,
    loss_fn: nn.Module,
    sample_shape: tuple[int, ...],
    n_tasks: int,
    device: torch.device,
    autocast: Callable[[], object],
) -> TryStep:
    """A forward+backward on random data of batch ``b`` (frees memory afterwards)."""

    def try_step(batch: int) -> None:
        try:
            x = torch.randn((batch, *sample_shape), device=device)
            y = torch.zeros((batch, n_tasks), device=device)
            with autocast():  # type: ignore[attr-defined]
                logits = model(x)
            loss_fn(logits.float(), y).backward()
        finally:
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            elif device.type == "mps":
                torch.mps.empty_cache()

    return try_step
