"""Device choice (auto: cuda > mps > cpu, or an override) and the autocast precision per device."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

AUTO = "auto"


class DeviceUnavailableError(RuntimeError):
    """The config names a device this host does not have."""


def _mps_available() -> bool:
    return bool(torch.backends.mps.is_available())


@dataclass(frozen=True)
class DeviceChoice:
    """The device a run uses and the reduced precision autocast runs in (None: fp32)."""

    device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def name(self) -> str:
        return self.device.type

    @property
    def label(self) -> str:
        """Type plus the GPU model, so a cached batch size is never reused on another card."""
        if self.device.type == "cuda":
            return f"cuda:{torch.cuda.get_device_name(self.device)}"
        return self.device.type

    def autocast(self) -> AbstractContextManager[object]:
        """Autocast on CUDA/MPS; a no-op on CPU so CPU runs stay fp32 and bit-reproducible."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def autocast_dtype_for(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA, float16 (the reduced precision MPS autocast supports) on MPS, none on CPU."""
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "mps":
        return torch.float16
    return None


def resolve_device(
    requested: str,
    *,
    cuda_available: Callable[[], bool] = torch.cuda.is_available,
    mps_available: Callable[[], bool] = _mps_available,
) -> DeviceChoice:
    """``auto`` picks cuda, then mps, then cpu; an explicit name must exist on this host."""
    if requested == AUTO:
        if cuda_available():
            name = "cuda"
        elif mps_available():
            name = "mps"
        else:
            name = "cpu"
    else:
        name = requested
        if name == "cuda" and not cuda_available():
            raise DeviceUnavailableError("training.device=cuda but CUDA is not available here")
        if name == "mps" and not mps_available():
            raise DeviceUnavailableError("training.device=mps but MPS is not available here")
        if name not in ("cpu", "cuda", "mps"):
            raise DeviceUnavailableError(f"training.device={name!r} is not cpu, cuda, mps or auto")
    device = torch.device(name)
    return DeviceChoice(device=device, autocast_dtype=autocast_dtype_for(device))
