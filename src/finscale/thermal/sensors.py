"""Thermal sensors: nvml, apple, linux, file, none; ``auto`` picks the first that reads.

Every sensor returns a ``Reading`` and never raises: a failed read is ``UNKNOWN``, never
a normal temperature. Sensors report either a temperature in °C (nvml, linux, file) or an
OS thermal-pressure level (apple), which the policy maps onto the same soft/hard scale.
"""

from __future__ import annotations

import enum
import logging
import math
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from finscale.thermal.config import ThermalConfig

log = logging.getLogger(__name__)

PMSET_TIMEOUT_S = 5.0
SYS_THERMAL_ROOT = Path("/sys/class/thermal")
MILLIDEGREES_ABOVE = 1000.0  # sysfs values above this are millidegrees
NVML_GPU_SENSOR = 0  # NVML_TEMPERATURE_GPU


class SensorState(enum.Enum):
    """What a reading says: a measured temperature, an OS pressure level, or nothing."""

    MEASURED = "measured"
    NOMINAL = "nominal"
    FAIR = "fair"
    SERIOUS = "serious"
    CRITICAL = "critical"
    UNKNOWN = "unknown"
    DISABLED = "disabled"  # thermal.sensor=none: the user opted out of monitoring


@dataclass(frozen=True)
class Reading:
    """One sensor read: (celsius | None, state), plus where it came from and why if unknown."""

    celsius: float | None
    state: SensorState
    source: str
    detail: str = ""

    @classmethod
    def unknown(cls, source: str, detail: str) -> Reading:
        return cls(None, SensorState.UNKNOWN, source, detail)

    @classmethod
    def measured(cls, source: str, celsius: float) -> Reading:
        if not math.isfinite(celsius):
            return cls.unknown(source, f"non-finite temperature {celsius!r}")
        return cls(float(celsius), SensorState.MEASURED, source)


class Sensor(Protocol):
    """Anything that reads the host's thermal state."""

    name: str

    def read(self) -> Reading: ...


class FileSensor:
    """Reads a number in °C from a text file (custom probes, tests)."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Reading:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            return Reading.unknown(self.name, f"{self.path}: cannot read: {exc}")
        try:
            return Reading.measured(self.name, float(text))
        except ValueError:
            return Reading.unknown(self.name, f"{self.path}: not a number: {text[:40]!r}")


class NoneSensor:
    """No monitoring (explicit opt-out); its readings are DISABLED, not a temperature."""

    name = "none"

    def read(self) -> Reading:
        return Reading(None, SensorState.DISABLED, self.name, "thermal.sensor=none")


class NvmlSensor:
    """NVIDIA GPU core temperature via nvidia-ml-py (hottest of all GPUs)."""

    name = "nvml"

    def __init__(self) -> None:
        self._initialised = False

    def read(self) -> Reading:
        try:
            import pynvml

            if not self._initialised:
                pynvml.nvmlInit()
                self._initialised = True
            count = pynvml.nvmlDeviceGetCount()
            if count == 0:
                return Reading.unknown(self.name, "no NVIDIA GPU found")
            temps = [
                float(pynvml.nvmlDeviceGetTemperature(
                    pynvml.nvmlDeviceGetHandleByIndex(i), NVML_GPU_SENSOR))
                for i in range(count)
            ]
        except Exception as exc:  # NVMLError, ImportError: anything means "could not read"
            return Reading.unknown(self.name, f"NVML read failed: {exc}")
        return Reading.measured(self.name, max(temps))


def parse_pmset_therm(output: str) -> SensorState:
    """Map ``pmset -g therm`` output to a pressure level (CPU speed limit / warning level)."""
    limit = re.search(r"CPU_Speed_Limit\s*=\s*(\d+)", output)
    level = re.search(r"[Tt]hermal warning level\s*[:=]?\s*(\d+)", output)
    if level is not None and int(level.group(1)) > 0:
        return SensorState.CRITICAL if int(level.group(1)) >= 2 else SensorState.SERIOUS
    if limit is not None:
        speed = int(limit.group(1))
        if speed >= 100:
            return SensorState.NOMINAL
        return SensorState.SERIOUS if speed >= 50 else SensorState.CRITICAL
    if "No thermal warning level has been recorded" in output:
        return SensorState.NOMINAL
    return SensorState.UNKNOWN


APPLE_STATES = (SensorState.NOMINAL, SensorState.FAIR, SensorState.SERIOUS, SensorState.CRITICAL)


class AppleSensor:
    """macOS thermal pressure: NSProcessInfo.thermalState (pyobjc), else ``pmset -g therm``."""

    name = "apple"

    def __init__(self, run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run):
        self._run = run

    def read(self) -> Reading:
        if sys.platform != "darwin":
            return Reading.unknown(self.name, "not macOS")
        try:
            from Foundation import NSProcessInfo

            value = int(NSProcessInfo.processInfo().thermalState())
            return Reading(None, APPLE_STATES[min(value, 3)], self.name, "NSProcessInfo")
        except Exception:  # pyobjc absent or failed: fall back to pmset
            log.debug("pyobjc thermalState unavailable; using pmset")
        try:
            done = self._run(["pmset", "-g", "therm"], capture_output=True, text=True,
                             timeout=PMSET_TIMEOUT_S, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            return Reading.unknown(self.name, f"pmset failed: {exc}")
        state = parse_pmset_therm(done.stdout)
        if state is SensorState.UNKNOWN:
            return Reading.unknown(self.name, "pmset output not understood")
        return Reading(None, state, self.name, "pmset")


class LinuxSensor:
    """Hottest of psutil.sensors_temperatures(), else /sys/class/thermal zones."""

    name = "linux"

    def __init__(self, sys_root: Path = SYS_THERMAL_ROOT) -> None:
        self.sys_root = sys_root

    def _psutil(self) -> list[float]:
        reader = getattr(psutil, "sensors_temperatures", None)  # absent on macOS/Windows
        if reader is None:
            return []
        try:
            groups = reader()
        except (OSError, RuntimeError):
            return []
        return [float(t.current) for entries in groups.values() for t in entries
                if t.current is not None]

    def _sysfs(self) -> list[float]:
        values: list[float] = []
        for temp_file in sorted(self.sys_root.glob("thermal_zone*/temp")):
            try:
                raw = float(temp_file.read_text().strip())
            except (OSError, ValueError):
                continue
            values.append(raw / 1000.0 if raw > MILLIDEGREES_ABOVE else raw)
        return values

    def read(self) -> Reading:
        values = [v for v in self._psutil() if math.isfinite(v)] or self._sysfs()
        if not values:
            return Reading.unknown(self.name, "no psutil temperatures or thermal zones")
        return Reading.measured(self.name, max(values))


class NoThermalSensorError(RuntimeError):
    """``thermal.sensor=auto`` found no sensor that reads on this host."""


def _auto_candidates() -> tuple[Sensor, ...]:
    """The order ``auto`` tries: GPU first (hottest part when training), then OS, then board."""
    return (NvmlSensor(), AppleSensor(), LinuxSensor())


def make_sensor(cfg: ThermalConfig) -> Sensor:
    """The configured sensor; ``auto`` returns the first that gives a real reading."""
    if cfg.sensor == "file":
        if cfg.file_path is None:
            raise ValueError("thermal.sensor=file needs thermal.file_path")
        return FileSensor(cfg.file_path)
    if cfg.sensor == "none":
        log.warning("thermal.sensor=none: training runs WITHOUT thermal protection")
        return NoneSensor()
    if cfg.sensor == "nvml":
        return NvmlSensor()
    if cfg.sensor == "apple":
        return AppleSensor()
    if cfg.sensor == "linux":
        return LinuxSensor()
    tried: list[str] = []
    for sensor in _auto_candidates():
        reading = sensor.read()
        if reading.state is not SensorState.UNKNOWN:
            log.info("thermal sensor auto -> %s", sensor.name)
            return sensor
        tried.append(f"{sensor.name} ({reading.detail})")
    raise NoThermalSensorError(
        "thermal.sensor=auto: no sensor reads on this host; tried " + "; ".join(tried)
        + ". Set thermal.sensor=file with thermal.file_path, or thermal.sensor=none to "
        "train without thermal protection."
    )
