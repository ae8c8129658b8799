"""File sensor + policy: soft pauses, hard stops with `thermal`, unknown is never normal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from finscale.thermal.config import ThermalConfig
from finscale.thermal.policy import (
    STOP_REASON_THERMAL,
    ThermalGuard,
    ThermalLevel,
    ThermalPolicy,
    ThermalTimeoutError,
    ThermalUnknownError,
    wait_until_safe,
)
from finscale.thermal.sensors import (
    FileSensor,
    LinuxSensor,
    NoneSensor,
    NoThermalSensorError,
    Reading,
    SensorState,
    make_sensor,
    parse_pmset_therm,
)
from finscale.training.checkpoint import load_checkpoint
from finscale.training.config import TrainingConfig
from finscale.training.trainer import Trainer

POLICY = ThermalPolicy(soft_limit_c=80, hard_limit_c=90, hysteresis_c=5, poll_s=1,
                       max_backoff_s=8, unknown_timeout_s=30)


class FakeTime:
    """Injected clock + sleep: sleeping advances the clock and runs a per-sleep action."""

    def __init__(self, on_sleep=None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


class RecordingSensor:
    """Wraps a sensor and keeps every reading the guard took, in order."""

    def __init__(self, inner: FileSensor) -> None:
        self.inner = inner
        self.name = inner.name
        self.readings: list[Reading] = []

    def read(self) -> Reading:
        reading = self.inner.read()
        self.readings.append(reading)
        return reading


def _script(path: Path, values: list[str]) -> FakeTime:
    """Write values[0] now and values[i] after the i-th sleep."""
    path.write_text(values[0])

    def advance(count: int) -> None:
        path.write_text(values[min(count, len(values) - 1)])

    return FakeTime(advance)


@pytest.mark.parametrize("content", ["", "hot", "nan", "inf", "  ", "1e999x"])
def test_garbage_file_is_unknown_never_normal(tmp_path: Path, content: str) -> None:
    path = tmp_path / "temp"
    path.write_text(content)
    reading = FileSensor(path).read()
    assert reading.state is SensorState.UNKNOWN and reading.celsius is None
    assert POLICY.classify(reading) is ThermalLevel.UNKNOWN


def test_missing_or_unreadable_file_is_unknown(tmp_path: Path) -> None:
    assert FileSensor(tmp_path / "absent").read().state is SensorState.UNKNOWN
    assert FileSensor(tmp_path).read().state is SensorState.UNKNOWN  # a directory


def test_classification_and_hysteresis(tmp_path: Path) -> None:
    def r(c: float) -> Reading:
        return Reading.measured("file", c)

    assert POLICY.classify(r(79.9)) is ThermalLevel.NORMAL
    assert POLICY.classify(r(80)) is ThermalLevel.SOFT
    assert POLICY.classify(r(90)) is ThermalLevel.HARD
    assert not POLICY.cooled(r(76))  # below soft, not below soft - hysteresis
    assert POLICY.cooled(r(74.9))
    with pytest.raises(ValueError, match="hard_limit_c"):
        ThermalPolicy(90, 80, 5, 1, 8, 30)


def test_soft_limit_pauses_with_backoff_until_below_hysteresis(tmp_path: Path) -> None:
    path = tmp_path / "temp"
    fake = _script(path, ["85", "84", "82", "77", "76", "70"])
    sensor = RecordingSensor(FileSensor(path))
    guard = ThermalGuard(sensor, POLICY, sleep=fake.sleep, clock=fake.clock)
    assert guard.check() is None  # resumed, not stopped
    assert fake.sleeps == [1, 2, 4, 8, 8]  # back-off doubles, capped at max_backoff_s
    # it resumed on the first reading below soft - hysteresis (76 was not enough)
    assert [reading.celsius for reading in sensor.readings] == [85, 84, 82, 77, 76, 70]


def test_hard_limit_stops_with_thermal(tmp_path: Path) -> None:
    path = tmp_path / "temp"
    path.write_text("95")
    fake = FakeTime()
    guard = ThermalGuard(FileSensor(path), POLICY, sleep=fake.sleep, clock=fake.clock)
    assert guard.check() == STOP_REASON_THERMAL
    assert fake.sleeps == []
    warm_then_hot = _script(path, ["85", "88", "91"])
    guard = ThermalGuard(FileSensor(path), POLICY, sleep=warm_then_hot.sleep,
                         clock=warm_then_hot.clock)
    assert guard.check() == STOP_REASON_THERMAL


def test_unknown_pauses_then_fails_after_timeout(tmp_path: Path) -> None:
    path = tmp_path / "temp"
    path.write_text("garbage")
    fake = FakeTime()
    guard = ThermalGuard(FileSensor(path), POLICY, sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(ThermalUnknownError, match="unreadable"):
        guard.check()
    assert fake.now >= POLICY.unknown_timeout_s
    recovering = _script(path, ["garbage", "", "60"])
    guard = ThermalGuard(FileSensor(path), POLICY, sleep=recovering.sleep,
                         clock=recovering.clock)
    assert guard.check() is None and recovering.sleeps == [1, 2]


def test_gate_returns_the_reading_it_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "temp"
    path.write_text("50")
    assert wait_until_safe(FileSensor(path), POLICY, 60).celsius == 50
    fake = _script(path, ["92", "86", "78", "73"])
    reading = wait_until_safe(FileSensor(path), POLICY, 600, sleep=fake.sleep, clock=fake.clock)
    assert reading.celsius == 73 and reading.state is SensorState.MEASURED
    stuck = _script(path, ["85"])
    with pytest.raises(ThermalTimeoutError, match="not cool"):
        wait_until_safe(FileSensor(path), POLICY, 20, sleep=stuck.sleep, clock=stuck.clock)
    path.write_text("x")
    never = FakeTime()
    with pytest.raises(ThermalUnknownError):
        wait_until_safe(FileSensor(path), POLICY, 600, sleep=never.sleep, clock=never.clock)


def test_make_sensor_choices(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(make_sensor(ThermalConfig(sensor="file", file_path=tmp_path / "t")),
                      FileSensor)
    assert "WITHOUT thermal protection" not in caplog.text
    none = make_sensor(ThermalConfig(sensor="none"))  # the explicit opt-out warns
    assert "thermal.sensor=none" in caplog.text and "WITHOUT thermal protection" in caplog.text
    assert isinstance(none, NoneSensor) and none.read().state is SensorState.DISABLED
    assert none.read().celsius is None  # no fake temperature
    with pytest.raises(ValueError, match="file_path"):
        make_sensor(ThermalConfig(sensor="file"))


def test_auto_without_any_sensor_is_a_clear_error(monkeypatch, tmp_path) -> None:
    class Dead:
        name = "dead"

        def read(self) -> Reading:
            return Reading.unknown("dead", "no device")

    monkeypatch.setattr("finscale.thermal.sensors._auto_candidates", lambda: (Dead(),))
    with pytest.raises(NoThermalSensorError, match=r"thermal\.sensor=file"):
        make_sensor(ThermalConfig(sensor="auto"))


def test_linux_sysfs_zones_in_millidegrees(tmp_path: Path, monkeypatch) -> None:
    for i, value in enumerate(["45000", "61500", "junk"]):
        zone = tmp_path / f"thermal_zone{i}"
        zone.mkdir()
        (zone / "temp").write_text(value)
    sensor = LinuxSensor(sys_root=tmp_path)
    monkeypatch.setattr(sensor, "_psutil", lambda: [])
    assert sensor.read().celsius == 61.5
    empty = LinuxSensor(sys_root=tmp_path / "none")
    monkeypatch.setattr(empty, "_psutil", lambda: [])
    assert empty.read().state is SensorState.UNKNOWN


def test_pmset_parsing() -> None:
    assert parse_pmset_therm("Note: No thermal warning level has been recorded\n"
                             "\tCPU_Speed_Limit \t= 100\n") is SensorState.NOMINAL
    assert parse_pmset_therm("CPU_Speed_Limit = 70") is SensorState.SERIOUS
    assert parse_pmset_therm("CPU_Speed_Limit = 30") is SensorState.CRITICAL
    assert parse_pmset_therm("gibberish") is SensorState.UNKNOWN
    assert POLICY.classify(Reading(None, SensorState.SERIOUS, "apple")) is ThermalLevel.SOFT
    assert POLICY.classify(Reading(None, SensorState.CRITICAL, "apple")) is ThermalLevel.HARD
    assert POLICY.classify(Reading(None, SensorState.FAIR, "apple")) is ThermalLevel.NORMAL


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, 2, generator=g)
    return TensorDataset(x, (x[:, -1, :1] > 0).float())


def test_hard_limit_during_training_checkpoints_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "temp"
    path.write_text("60")
    fake = FakeTime()
    guard = ThermalGuard(FileSensor(path), POLICY, sleep=fake.sleep, clock=fake.clock)
    steps: Iterator[int] = iter(range(100))

    def heat_up(step: int) -> None:
        if next(steps) == 2:
            path.write_text("95")  # overheats after the third optimiser step

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 1))
    trainer = Trainer(model, _data(64, 1), _data(32, 2),
                      TrainingConfig(epochs=3, batch_size=8, device="cpu", min_task_positives=5),
                      checkpoint_dir=tmp_path / "ckpt", step_hooks=[heat_up, guard])
    result = trainer.fit()
    assert result.stop_reason == STOP_REASON_THERMAL
    saved = load_checkpoint(trainer.last_path)
    assert saved["progress"]["step"] == 3 and saved["progress"]["epoch"] == 0
    assert not result.finished
