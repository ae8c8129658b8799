"""Checkpoints: model, optimiser, scheduler, RNG states, progress and the resolved config.

Written atomically (temp file + rename) and read with ``torch.load(weights_only=True)``:
every RNG state is stored as tensors / lists of ints so nothing needs unpickling.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from finscale.io.atomic import atomic_path

FORMAT_VERSION = 1
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
COMPILED_PREFIX = "_orig_mod."  # what torch.compile's wrapper puts before every state key


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or of an unknown format."""


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) generator states as weights_only-safe values."""
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": [str(np_name), torch.from_numpy(np_keys.astype(np.int64)), int(np_pos),
                  int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng_state``."""
    py_version, py_internal, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_internal), py_gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state(
        (np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss)
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainingProgress:
    """Where training stands: completed epochs, optimiser steps and early-stopping state."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    best_metric: float | None = None
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
            "history": [dict(h) for h in self.history],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingProgress:
        return cls(**{**data, "history": [dict(h) for h in data["history"]]})


def plain_module(model: nn.Module) -> nn.Module:
    """The module inside a ``torch.compile`` wrapper (the module itself when not compiled)."""
    inner = getattr(model, "_orig_mod", None)
    return inner if isinstance(inner, nn.Module) else model


def model_state(model: nn.Module) -> dict[str, Any]:
    """State dict with the plain module's keys, so compiled and eager runs write the same."""
    return plain_module(model).state_dict()


def load_model_state(model: nn.Module, state: dict[str, Any]) -> None:
    """Load a state dict saved from a compiled or an eager model into either (strict).

    Works on a copy (metadata included): the caller's dict keeps its keys.
    """
    plain = OrderedDict(state)
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        plain._metadata = OrderedDict(metadata)  # type: ignore[attr-defined]
    torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(plain, COMPILED_PREFIX)
    plain_module(model).load_state_dict(plain)


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: TrainingProgress,
    config_yaml: str,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write everything needed to continue training; readers see the old or the new file."""
    payload = {
        "format_version": FORMAT_VERSION,
        "model": model_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": capture_rng_state(),
        "progress": progress.to_dict(),
        "config_yaml": config_yaml,
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary unpickling)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unknown checkpoint format (want {FORMAT_VERSION})")
    return payload
