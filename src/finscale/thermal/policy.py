"""Soft/hard limits with hysteresis: pause when warm, stop when hot, never trust 'unknown'.

- soft: training pauses (sleep with exponential back-off up to ``max_backoff_s``) until the
  reading drops below ``soft - hysteresis`` (or the OS pressure returns to nominal/fair);
- hard: the caller checkpoints and stops with reason ``thermal``;
- unknown (a failed read): pause and retry like soft, and fail after ``unknown_timeout_s``.

``sleep`` and ``clock`` are injected so tests run in no time.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from finscale.thermal.config import ThermalConfig
from finscale.thermal.sensors import Reading, Sensor, SensorState

log = logging.getLogger(__name__)

STOP_REASON_THERMAL = "thermal"


class ThermalLevel(enum.Enum):
    """A reading classified against the policy."""

    NORMAL = "normal"
    SOFT = "soft"
    HARD = "hard"
    UNKNOWN = "unknown"


class ThermalUnknownError(RuntimeError):
    """The sensor gave no usable reading for longer than ``unknown_timeout_s``."""


class ThermalTimeoutError(RuntimeError):
    """The gate waited longer than its timeout for the host to cool down."""


PRESSURE_LEVELS = {
    SensorState.NOMINAL: ThermalLevel.NORMAL,
    SensorState.FAIR: ThermalLevel.NORMAL,
    SensorState.SERIOUS: ThermalLevel.SOFT,
    SensorState.CRITICAL: ThermalLevel.HARD,
    SensorState.DISABLED: ThermalLevel.NORMAL,  # explicit opt-out, logged by make_sensor
    SensorState.UNKNOWN: ThermalLevel.UNKNOWN,
}


@dataclass(frozen=True)
class ThermalPolicy:
    """Limits in °C and timing of pauses."""

    soft_limit_c: float
    hard_limit_c: float
    hysteresis_c: float
    poll_s: float
    max_backoff_s: float
    unknown_timeout_s: float

    def __post_init__(self) -> None:
        if self.hard_limit_c <= self.soft_limit_c:
            raise ValueError(
                f"thermal.hard_limit_c ({self.hard_limit_c}) must be above "
                f"thermal.soft_limit_c ({self.soft_limit_c})"
            )

    @classmethod
    def from_config(cls, cfg: ThermalConfig) -> ThermalPolicy:
        return cls(cfg.soft_limit_c, cfg.hard_limit_c, cfg.hysteresis_c, cfg.poll_s,
                   cfg.max_backoff_s, cfg.unknown_timeout_s)

    def classify(self, reading: Reading) -> ThermalLevel:
        """NORMAL / SOFT / HARD / UNKNOWN; an unusable reading is UNKNOWN, never NORMAL."""
        if reading.state is not SensorState.MEASURED:
            return PRESSURE_LEVELS[reading.state]
        if reading.celsius is None:
            return ThermalLevel.UNKNOWN
        if reading.celsius >= self.hard_limit_c:
            return ThermalLevel.HARD
        if reading.celsius >= self.soft_limit_c:
            return ThermalLevel.SOFT
        return ThermalLevel.NORMAL

    def cooled(self, reading: Reading) -> bool:
        """Below ``soft - hysteresis`` (temperatures) or back to nominal/fair (pressure)."""
        if reading.state is SensorState.MEASURED and reading.celsius is not None:
            return reading.celsius < self.soft_limit_c - self.hysteresis_c
        return self.classify(reading) is ThermalLevel.NORMAL

    def backoff(self, attempt: int) -> float:
        """Seconds to sleep before retry ``attempt`` (0-based): poll_s * 2^attempt, capped."""
        return min(self.max_backoff_s, self.poll_s * (2.0**attempt))


def _still_unknown(
    reading: Reading, since: float | None, policy: ThermalPolicy, clock: Callable[[], float]
) -> float:
    """When the unreadable spell began; raises once it lasts ``unknown_timeout_s``."""
    since = clock() if since is None else since
    if clock() - since >= policy.unknown_timeout_s:
        raise ThermalUnknownError(
            f"sensor {reading.source} unreadable for {policy.unknown_timeout_s}s: "
            f"{reading.detail}"
        )
    return since


@dataclass
class ThermalGuard:
    """The in-training check: pause while warm or unknown, report ``thermal`` when hot."""

    sensor: Sensor
    policy: ThermalPolicy
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    every_steps: int = 1
    pauses: list[float] = field(default_factory=list)

    def read(self) -> Reading:
        """A fresh reading of the sensor (also the per-epoch temperature metric's source)."""
        return self.sensor.read()

    def __call__(self, step: int) -> str | None:
        """Step hook: None to continue, ``thermal`` to checkpoint and stop."""
        if step % self.every_steps:
            return None
        return self.check()

    def check(self) -> str | None:
        """Read; pause until cool if warm/unknown; ``thermal`` if the hard limit is reached."""
        reading = self.read()
        level = self.policy.classify(reading)
        if level is ThermalLevel.NORMAL:
            return None
        if level is ThermalLevel.HARD:
            log.error("thermal hard limit: %s", reading)
            return STOP_REASON_THERMAL
        return self._pause_until_cool(reading)

    def _pause_until_cool(self, reading: Reading) -> str | None:
        unknown_since = self.clock() if reading.state is SensorState.UNKNOWN else None
        attempt = 0
        while True:
            delay = self.policy.backoff(attempt)
            log.warning("thermal pause %.1fs (reading %s %s, %s)", delay, reading.celsius,
                        reading.state.value, reading.detail or reading.source)
            self.pauses.append(delay)
            self.sleep(delay)
            attempt += 1
            reading = self.read()
            level = self.policy.classify(reading)
            if level is ThermalLevel.HARD:
                log.error("thermal hard limit during pause: %s", reading)
                return STOP_REASON_THERMAL
            if level is ThermalLevel.UNKNOWN:
                unknown_since = _still_unknown(reading, unknown_since, self.policy, self.clock)
                continue
            unknown_since = None
            if self.policy.cooled(reading):
                log.info("thermal: cooled to %s, resuming", reading.celsius)
                return None


def wait_until_safe(
    sensor: Sensor,
    policy: ThermalPolicy,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Reading:
    """Gate for flows: return the first safe reading (the one waited for).

    Safe is NORMAL at once, or, after a warm/hot/unknown reading, cooled below
    ``soft - hysteresis``. Raises ``ThermalTimeoutError`` after ``timeout`` seconds, or
    ``ThermalUnknownError`` once the sensor has been unreadable for ``unknown_timeout_s``.
    """
    started = clock()
    reading = sensor.read()
    if policy.classify(reading) is ThermalLevel.NORMAL:
        return reading
    unknown_since: float | None = None
    attempt = 0
    while True:
        if policy.classify(reading) is ThermalLevel.UNKNOWN:
            unknown_since = _still_unknown(reading, unknown_since, policy, clock)
        else:
            unknown_since = None
            if policy.cooled(reading):
                return reading
        if clock() - started >= timeout:
            raise ThermalTimeoutError(
                f"host not cool after {timeout}s (last reading {reading.celsius} "
                f"{reading.state.value} from {reading.source})"
            )
        delay = policy.backoff(attempt)
        log.info("thermal gate: waiting %.1fs (%s %s)", delay, reading.celsius,
                 reading.state.value)
        sleep(delay)
        attempt += 1
        reading = sensor.read()
