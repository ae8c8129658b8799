"""Device choice (auto: cuda > mps > cpu, or an override) and the autocast precision per device."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal

import torch

AUTO = "auto"
log = logging.getLogger(__name__)


class DeviceUnavailableError(RuntimeError):
    """The config names a device this host does not have."""


def _mps_available() -> bool:
    return bool(torch.backends.mps.is_available())


# training.cpu_autocast: off, on, or on where the CPU has native bf16 (measured faster there)
CpuAutocast = bool | Literal["auto"]
CPU_AUTOCAST_AUTO = "auto"


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
        """Autocast on CUDA/MPS (and on CPU with ``training.cpu_autocast``); otherwise a no-op,
        so CPU runs stay fp32 and bit-reproducible."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


    def with_cpu_autocast(self, setting: CpuAutocast) -> DeviceChoice:
        """This choice with bf16 autocast on a CPU when ``setting`` says so: ``True``, or
        ``"auto"`` on a CPU with native bf16 (other devices unchanged)."""
        if setting is False or self.device.type != "cpu" or self.autocast_dtype == torch.bfloat16:
            return self  # already chosen (the run logs it, then the trainer applies it)
        native = cpu_has_native_bf16()
        if setting == CPU_AUTOCAST_AUTO and not native:
            return self  # auto: fp32 where bf16 would be emulated (slower)
        if not native:
            log.warning("training.cpu_autocast: this CPU has no native bf16 (AVX512-BF16 or "
                        "AMX), so bf16 is emulated: measured about 5x slower than fp32 on an "
                        "AVX2 CPU (benchmarks/README.md)")
        return DeviceChoice(device=self.device, autocast_dtype=torch.bfloat16)


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU; without them bf16 is slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def autocast_dtype_for(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA, float16 (the reduced precision MPS autocast supports) on MPS, none (fp32)
    on CPU unless ``training.cpu_autocast`` asks for it (``DeviceChoice.with_cpu_autocast``)."""
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "mps":
        return torch.float16
    return None


def resolve_device(
    requested: str,
    *,
    cpu_autocast: CpuAutocast = False,
    cuda_available: Callable[[], bool] = torch.cuda.is_available,
    mps_available: Callable[[], bool] = _mps_available,
) -> DeviceChoice:
    """``auto`` picks cuda, then mps, then cpu; an explicit name must exist on this host.

    ``cpu_autocast``: bf16 autocast when the choice is the CPU (``training.cpu_autocast``:
    true, or auto on a CPU with native bf16).
    """
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
    choice = DeviceChoice(device=device, autocast_dtype=autocast_dtype_for(device))
    return choice.with_cpu_autocast(cpu_autocast)
