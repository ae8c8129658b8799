"""Which runs a report reads: an MLflow experiment, a matrix (file or name) or a config."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.config import load_config
from finscale.evaluation.publish import ReportError, resolve_source
from finscale.evaluation.results import results_from_runs
from finscale.tracking import EXPERIMENT_PARENT_ROLE, EXPERIMENT_ROLE_TAG, RunRecord
from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]
BASE = REPO / "configs" / "base.yaml"


def test_a_matrix_name_reads_its_phase_and_scores_one_baseline_set_per_dataset(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    source = resolve_source("demo", load_config(BASE), workspace)
    assert (source.name, source.phase) == ("demo", "demo")
    # five budgets x two seeds train on one dataset: one set of baselines, not ten
    assert len(source.configs) == 1
    assert source.configs[0].dataset.thresholds == (0.01,)
    by_file = resolve_source(str(REPO / "configs" / "experiments" / "demo.yaml"),
                             load_config(BASE), workspace)
    assert by_file.phase == "demo" and len(by_file.configs) == 1


def test_a_config_file_reads_its_phase_and_an_unknown_name_is_refused(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    source = resolve_source(str(REPO / "configs" / "experiments" / "cpu_demo.yaml"),
                            load_config(BASE), workspace)
    assert (source.name, source.experiment, source.phase) == ("cpu-demo", "finscale", "demo")
    with pytest.raises(ReportError, match="no-such"):
        resolve_source("no-such", load_config(BASE), workspace)


def test_the_experiment_parent_run_gives_no_results_row() -> None:
    parent = RunRecord("p", "1", "FINISHED", {EXPERIMENT_ROLE_TAG: EXPERIMENT_PARENT_ROLE},
                       {}, {"test_roc_auc_y_h1_1pct": 0.6})
    table = results_from_runs([parent], "demo")
    assert table.frame.empty
    assert table.skipped_runs == {"experiment-parent run": 1}
