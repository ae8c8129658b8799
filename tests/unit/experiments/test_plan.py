"""The plan: counts, the estimate's arithmetic, the saving against the naive plan, FLOPs,
and the per-device probe cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from finscale.cli.main import main
from finscale.experiments.matrix import Matrix, load_matrix
from finscale.experiments.plan import (
    PlanInputs,
    epoch_seconds,
    final_seconds,
    plan_matrices,
)
from finscale.experiments.shapes import ShapeCache, job_shape, shape_flops
from finscale.experiments.throughput import (
    EXTRAPOLATED,
    MEASURED,
    DeviceProfile,
    MeasuredRates,
    ProbeSettings,
    device_label,
)
from finscale.models.patchtst import PatchTST
from finscale.training.device import resolve_device

REPO = Path(__file__).resolve().parents[3]
PHASES = REPO / "configs" / "experiments"
# slow enough that every term of the estimate is visible next to the job overhead
PROFILE = DeviceProfile(description="test", peak_tflops=0.001, mfu=0.5, step_overhead_s=0.01,
                        job_overhead_s=7.0)
TINY = """
name: tiny
phase: t
base: {base}
overrides: {{dataset.context: 32, dataset.include_macro: false, training.epochs: 2}}
axes:
  budget: {{set: model.budget, values: [10k, 30k]}}
  task: {{set: dataset.thresholds, values: {{th1: [0.01], th2: [0.02]}}}}
final: {{seeds: 2}}
hpo: {{by: [budget], at: {{task: th1}}, trials: 5, overrides: {{training.epochs: 3}}}}
estimate: {{pruned_trial_fraction: {fraction}}}
"""


def _inputs() -> PlanInputs:
    return PlanInputs(rates=lambda shapes: {s.key: PROFILE.throughput(s, "test")
                                            for s in shapes},
                      overhead_s=PROFILE.job_overhead_s, study_config=lambda job: job.config)


def _tiny(tmp_path: Path, fraction: float) -> Matrix:
    path = tmp_path / f"tiny{fraction}.yaml"
    path.write_text(TINY.format(base=REPO / "configs" / "base.yaml", fraction=fraction),
                    encoding="utf-8")
    return load_matrix(path)


@pytest.mark.slow  # resolving 200M and 2B budgets for 500 features takes a while
def test_counts_of_6a_to_6c_with_shared_studies_counted_once() -> None:
    matrices = [load_matrix(PHASES / f"{n}.yaml") for n in ("phase6a", "phase6b", "phase6c")]
    plans = plan_matrices(matrices, _inputs())
    a, b, c = (p.totals for p in plans)
    assert (a.studies, a.finals, a.finals_one_seed, a.naive_studies) == (16, 48, 16, 16)
    assert (b.studies, b.finals, b.finals_one_seed, b.naive_studies) == (0, 192, 64, 64)
    assert len(plans[1].shared_studies) == 16  # 6A's, counted under 6A
    assert (c.studies, c.finals, c.finals_one_seed, c.naive_studies) == (48, 720, 240, 240)
    total = a + b + c
    assert total.studies + total.finals_one_seed == 384  # the research plan's run count
    assert total.one_seed_s < total.naive_one_seed_s


def test_estimate_is_the_stated_arithmetic(tmp_path: Path) -> None:
    plan = plan_matrices([_tiny(tmp_path, 0.5)], _inputs())[0]
    final = plan.finals[0]
    shape, tp = final.shape, final.throughput
    assert shape.epochs == 2 and shape.batch_size == 256 and shape.test > 0
    steps = math.ceil(shape.train / 256)
    expected = 7.0 + 2 * (steps * tp.step_s + shape.val * tp.eval_sample_s) + (
        shape.val + shape.test) * tp.eval_sample_s
    assert final.seconds == pytest.approx(expected)
    study = plan.studies[0]
    assert study.shape.epochs == 3 and study.shape.test == 0  # trials: hpo overrides, no test
    assert study.seconds == pytest.approx(
        5 * (7.0 + 0.5 * 3 * epoch_seconds(study.shape, study.throughput)))
    assert tp.step_s == pytest.approx(shape.train_flops * 256 / (1e9 * 0.5) + 0.01)


def test_saving_comes_from_pruning_and_reuse(tmp_path: Path) -> None:
    pruned = plan_matrices([_tiny(tmp_path, 0.5)], _inputs())[0].totals
    unpruned = plan_matrices([_tiny(tmp_path, 1.0)], _inputs())[0].totals
    # 2 studies (per budget, reused by both tasks); naive: one unpruned study per final cell
    assert (pruned.studies, pruned.naive_studies) == (2, 4)
    assert unpruned.naive_study_s == pytest.approx(pruned.naive_study_s)
    assert pruned.study_s < unpruned.study_s < unpruned.naive_study_s
    plan = plan_matrices([_tiny(tmp_path, 0.5)], _inputs())[0]
    naive = sum(5 * (7.0 + 3 * epoch_seconds(e.shape, e.throughput))  # 5 trials x 3 epochs
                for e in plan.finals if e.job.seed == 0)
    assert pruned.naive_study_s == pytest.approx(naive)
    # without reuse and without pruning nothing is saved: 6A's studies are one per cell
    plan = plan_matrices([load_matrix(PHASES / "phase6a.yaml")], _inputs())[0]
    per_cell = {e.job.study: e for e in plan.finals}
    for study in plan.studies:
        final = per_cell[study.job.id]
        assert study.shape.arch == final.shape.arch
    assert final_seconds(final.shape, final.throughput, 0) > 0


def test_flops_match_torch_flop_counter_and_the_shape_cache(tmp_path: Path) -> None:
    config = load_matrix(PHASES / "demo.yaml").final_jobs[-1].config  # 1M
    cache = ShapeCache(tmp_path)
    shape = job_shape(config, cache=cache)
    model = PatchTST(shape.arch)
    x = torch.randn(1, shape.arch.context, shape.arch.n_features)
    with FlopCounterMode(display=False) as train:
        model(x).sum().backward()
    with FlopCounterMode(display=False) as forward, torch.no_grad():
        model(x)
    assert shape_flops(shape.arch)[1] == forward.get_total_flops()
    # 3 x forward is an upper bound: the input of the first layer needs no gradient
    assert train.get_total_flops() <= shape.train_flops < 1.05 * train.get_total_flops()
    cache.save()
    again = job_shape(config, cache=ShapeCache(tmp_path))
    assert again == shape and (tmp_path / "shapes.json").is_file()


def test_probe_is_cached_per_device_and_large_shapes_extrapolated(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    shapes = [job_shape(job.config) for job in _tiny(tmp_path, 0.5).final_jobs[::4]]
    small, large = sorted(shapes, key=lambda s: s.n_parameters)
    fast = ProbeSettings(min_s=0.05, max_steps=2, max_step_s=1e-9)  # only the first probed
    rates = MeasuredRates(resolve_device("cpu"), tmp_path / "cache", fast)
    found = rates.throughputs(shapes)
    assert found[small.key].source == MEASURED and found[large.key].source == EXTRAPOLATED
    ratio = shape_flops(large.arch)[0] / shape_flops(small.arch)[0]
    assert found[large.key].step_s == pytest.approx(found[small.key].step_s * ratio)
    cache = json.loads(rates.path.read_text(encoding="utf-8"))
    assert list(cache) == [rates.label] and list(cache[rates.label]) == [small.key]
    cache[rates.label][small.key]["step_s"] = 123.0  # a later plan reads the cache, no probe
    rates.path.write_text(json.dumps(cache), encoding="utf-8")
    again = MeasuredRates(resolve_device("cpu"), tmp_path / "cache", fast).throughputs(shapes)
    assert again[small.key].step_s == 123.0


def test_larger_shapes_extrapolate_at_the_marginal_cost(tmp_path: Path) -> None:
    """Two measured shapes: a larger one costs their fixed per-step part plus its extra
    FLOPs at the marginal cost between them (not the small model's average rate)."""
    jobs = load_matrix(PHASES / "demo.yaml").final_jobs
    s10k, s30k, s1m = (job_shape(jobs[i].config) for i in (0, 2, 8))
    rates = MeasuredRates(resolve_device("cpu"), tmp_path, ProbeSettings(max_step_s=1e-9))
    rates.path.write_text(json.dumps({rates.label: {
        s10k.key: {"step_s": 0.1, "eval_sample_s": 1e-4},
        s30k.key: {"step_s": 0.2, "eval_sample_s": 3e-4}}}), encoding="utf-8")
    found = rates.throughputs([s1m, s30k, s10k])
    assert found[s1m.key].source == EXTRAPOLATED
    x10, x30, x1m = (s.train_flops * s.batch_size for s in (s10k, s30k, s1m))
    slope = (0.2 - 0.1) / (x30 - x10)
    assert found[s1m.key].step_s == pytest.approx(0.2 + (x1m - x30) * slope)
    assert found[s1m.key].step_s < 0.2 * x1m / x30  # below the 30k model's average rate


def test_plan_command_prints_jobs_counts_and_saving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = _tiny(tmp_path, 0.5)
    code = main(["--home", str(tmp_path / "ws"), "experiment", "plan", str(matrix.path),
                 "--device-profile", "h100"])
    out = capsys.readouterr().out
    assert code == 0
    assert "device profile h100" in out and "MFU 0.30" in out
    for job in matrix.jobs():
        assert job.id in out and job.identity in out
    assert "2 studies + 4 final runs (one seed per final cell)" in out
    assert "8 final runs" in out and "naive plan" in out and "saving against the naive" in out
    assert main(["--home", str(tmp_path / "ws"), "experiment", "plan", str(matrix.path),
                 "--device-profile", "tpu9"]) == 2
    assert "no such profile" in capsys.readouterr().err


def test_probes_are_cached_per_precision() -> None:
    """A bf16 CPU job runs at another speed than an fp32 one: their probes never mix."""
    fp32, bf16 = resolve_device("cpu"), resolve_device("cpu", cpu_autocast=True)
    assert device_label(bf16) == device_label(fp32) + " bf16"
