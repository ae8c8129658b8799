"""Matrix expansion: exact counts per phase, HPO reuse as data, stable identities, and a
bad matrix refused at load naming the file and the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from finscale.config import ConfigError, load_config
from finscale.config.loader import parse_override
from finscale.experiments.matrix import FINAL, HPO, Matrix, load_matrix, override_text
from finscale.training.run_key import RunKey

REPO = Path(__file__).resolve().parents[3]
PHASES = REPO / "configs" / "experiments"


@pytest.fixture(scope="module")
def matrices() -> dict[str, Matrix]:
    return {name: load_matrix(PHASES / f"{name}.yaml")
            for name in ("phase6a", "phase6b", "phase6c", "phase6d", "demo")}


def test_phase_6a_has_16_studies_and_16_final_cells_times_seeds(
    matrices: dict[str, Matrix]
) -> None:
    m = matrices["phase6a"]
    assert len(m.hpo_jobs) == 16 and m.reused_hpo_jobs == ()
    assert m.final_cells == 16 and m.spec.final.seeds == 3
    assert len(m.final_jobs) == 16 * 3
    # one study per cell: each study serves exactly its cell's 3 seeds
    assert set(Counter(job.study for job in m.final_jobs).values()) == {3}
    assert {job.run_key.budget for job in m.final_jobs} == {"2M", "20M", "200M", "2B"}
    assert {job.run_key.task for job in m.final_jobs} == {"th0.005", "th0.01", "th0.02", "th0.03"}


def test_phase_6b_has_64_final_cells_reusing_6a_studies(matrices: dict[str, Matrix]) -> None:
    b, a = matrices["phase6b"], matrices["phase6a"]
    assert b.hpo_jobs == () and b.final_cells == 64 and len(b.final_jobs) == 64 * 3
    assert [j.id for j in b.reused_hpo_jobs] == [j.id for j in a.hpo_jobs]
    # each 6A study (budget, task) serves 4 horizons x 3 seeds of 6B
    assert set(Counter(job.study for job in b.final_jobs).values()) == {12}
    for job in b.final_jobs:
        study = b.studies()[str(job.study)]
        labels, study_labels = dict(job.labels), dict(study.labels)
        assert (labels["budget"], labels["task"]) == (study_labels["budget"], study_labels["task"])
    assert {(j.run_key.timescale, j.run_key.horizon) for j in b.final_jobs} == {
        ("daily", 2), ("daily", 3), ("daily", 5), ("weekly", 1)}


def test_phase_6c_has_48_studies_at_h1_and_240_final_cells(matrices: dict[str, Matrix]) -> None:
    c = matrices["phase6c"]
    assert len(c.hpo_jobs) == 48 and c.final_cells == 240 and len(c.final_jobs) == 720
    assert {(j.run_key.horizon, j.run_key.timescale) for j in c.hpo_jobs} == {(1, "daily")}
    # a study per (tier, budget, task) serves the five horizons x 3 seeds
    assert set(Counter(job.study for job in c.final_jobs).values()) == {15}
    assert {job.run_key.tier for job in c.final_jobs} == {"a100", "a250", "a500"}


def test_phase_6d_and_demo(matrices: dict[str, Matrix]) -> None:
    d, demo = matrices["phase6d"], matrices["demo"]
    assert d.final_cells == 48 and len(d.reused_hpo_jobs) == 16
    assert {job.run_key.tickers for job in d.final_jobs} == {"SPY", "SPY+DIA+QQQ"}
    assert len(demo.hpo_jobs) == 1 and demo.final_cells == 5 and len(demo.final_jobs) == 10
    assert {job.study for job in demo.final_jobs} == {demo.hpo_jobs[0].id}


def test_final_runs_score_test_and_studies_never_do(matrices: dict[str, Matrix]) -> None:
    for m in matrices.values():
        assert all(job.config.training.evaluate_test for job in m.final_jobs)
        assert not any(job.config.training.evaluate_test for job in m.studies().values())
        assert all(job.kind == FINAL for job in m.final_jobs)
        assert all(job.kind == HPO for job in m.studies().values())


def test_identities_unique_and_what_a_worker_loads(matrices: dict[str, Matrix]) -> None:
    for m in matrices.values():
        keys = [job.identity for job in m.final_jobs]
        assert len(set(keys)) == len(keys), m.name
        assert len({job.id for job in m.jobs()}) == len(m.jobs())
    sample = [*matrices["phase6b"].final_jobs[::37], *matrices["phase6c"].hpo_jobs[::11]]
    for job in sample:  # the config a worker loads from path + overrides has the same identity
        loaded = load_config(job.config_path, overrides=list(job.all_overrides))
        assert RunKey.from_config(loaded) == job.run_key


IDS_CODE = ("import json, sys; from finscale.experiments.matrix import load_matrix; "
            "print(json.dumps([[j.id, j.identity] for j in load_matrix(sys.argv[1]).jobs()]))")


def test_identities_are_stable_across_processes(matrices: dict[str, Matrix]) -> None:
    """Another process (another hash seed) expands the same ids and identities."""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", IDS_CODE, str(PHASES / "phase6b.yaml")],
                          cwd=REPO, env=env, capture_output=True, text=True, check=True,
                          timeout=120)
    here = [[job.id, job.identity] for job in matrices["phase6b"].jobs()]
    assert json.loads(done.stdout) == here


@pytest.mark.parametrize("value", ["2M", [0.01], {"start": "1993-01-01"}, True, 3, "1", None])
def test_override_text_round_trips(value: object) -> None:
    assert parse_override(override_text("a.b", value)) == (["a", "b"], value)


GOOD = """
name: bad
phase: t
base: {base}
axes:
  budget: {{set: model.budget, values: [10k, 30k]}}
hpo: {{by: [budget]}}
"""


@pytest.mark.parametrize(
    ("replace", "field", "reason"),
    [
        (("set: model.budget", "set: model.budgt"), "model.budgt", "Extra inputs"),
        (("values: [10k, 30k]", "values: [10k, 3x]"), "model.budget", "3x"),
        (("set: model.budget, ", ""), "axes.budget", "needs `set`"),
        (("by: [budget]", "by: [size]"), "hpo.by", "unknown axes ['size']"),
        (("by: [budget]", "by: []"), "hpo.at", "axes ['budget']"),
        (("by: [budget]", "by: [], at: {budget: 1M}"), "hpo.at.budget", "not a level"),
        (("by: [budget]", "reuse: other.yaml, trials: 3"), "hpo", "drop ['trials']"),
        (("phase: t", "phase: t\nseeds: 3"), "seeds", "Extra inputs"),
        (("phase: t", "phase: t\nfinal: {seeds: 0}"), "final.seeds", "greater than or equal"),
        (("name: bad", "name: Bad Name"), "name", "pattern"),
    ],
)
def test_bad_matrix_fails_at_load_naming_the_field(
    tmp_path: Path, replace: tuple[str, str], field: str, reason: str
) -> None:
    text = GOOD.format(base=REPO / "configs" / "base.yaml").replace(*replace)
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    assert str(path) in info.value.source
    assert info.value.field == field
    assert reason in info.value.reason


def test_reuse_of_a_matrix_without_the_axes_is_refused(tmp_path: Path) -> None:
    base = REPO / "configs" / "base.yaml"
    (tmp_path / "a.yaml").write_text(GOOD.format(base=base), encoding="utf-8")
    other = GOOD.format(base=base).replace("budget: {set: model.budget, values: [10k, 30k]}",
                                           "seed: {set: training.lr, values: [0.1]}")
    (tmp_path / "b.yaml").write_text(other.replace("by: [budget]", "reuse: a.yaml"),
                                     encoding="utf-8")
    with pytest.raises(ConfigError, match="no axis") as info:
        load_matrix(tmp_path / "b.yaml")
    assert info.value.field == "hpo.reuse"
    (tmp_path / "c.yaml").write_text(
        GOOD.format(base=base).replace("[10k, 30k]", "[10k, 1M]").replace("by: [budget]",
                                                                          "reuse: a.yaml"),
        encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_matrix(tmp_path / "c.yaml")
    assert "no study with {'budget': '1M'}" in info.value.reason
