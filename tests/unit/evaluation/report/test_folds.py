"""Walk-forward folds in the report: per-fold values, pooled with independent fold errors."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from finscale.evaluation.bootstrap import Interval
from finscale.evaluation.config import EvaluationConfig
from finscale.evaluation.report import render_report
from finscale.evaluation.report.analysis import analyse
from finscale.evaluation.report.folds import pooled_over_folds
from finscale.evaluation.results import typed
from tests.support.results import synthetic_results

QUICK = EvaluationConfig(fit_replicates=60)
FOLD_SHIFT = {0: -0.02, 1: 0.0, 2: 0.03}  # fold k's test AUC is the fold-free one + shift


def _interval(estimate: float, se: float) -> Interval:
    return Interval(estimate, estimate - 2 * se, estimate + 2 * se, 0.95, se, 1)


def test_folds_pool_as_independent_errors() -> None:
    pooled = pooled_over_folds([_interval(0.6, 0.03), _interval(0.7, 0.04)], 0.95)
    assert pooled.estimate == pytest.approx(0.65)
    assert pooled.se == pytest.approx(math.hypot(0.03, 0.04) / 2)  # 0.025, not 0.035
    assert pooled.high - pooled.estimate == pytest.approx(1.959964 * 0.025, rel=1e-5)


def _folded() -> pd.DataFrame:
    base = synthetic_results(alpha=0.08, seeds=2)
    parts = [base.assign(fold=k, run_id=base["run_id"] + f"-f{k}",
                         test_auc=base["test_auc"] + shift)
             for k, shift in FOLD_SHIFT.items()]
    return typed(pd.concat(parts, ignore_index=True))


def test_each_predictor_has_its_folds_and_their_pooled_value(tmp_path: Path) -> None:
    table = _folded()
    panel = next(p for p in analyse(table, QUICK) if p.key["task_label"] == "1pct")
    line = next(f for f in panel.folds
                if f.predictor == "budget 10k" and f.metric == "test AUC")
    rows = table[(table["budget"] == "10k") & (table["model"] == "patchtst")
                 & (table["target"] == "y_h1_1pct")]
    for fold, shift in FOLD_SHIFT.items():
        expected = rows[rows["fold"] == fold]["test_auc"].mean()
        assert line.per_fold[fold].estimate == pytest.approx(expected)
        assert line.per_fold[fold].estimate - shift == pytest.approx(
            line.per_fold[1].estimate, abs=0.02)
    assert line.pooled.estimate == pytest.approx(rows["test_auc"].mean())
    assert {f.predictor for f in panel.folds} >= {"budget 1M", "vix_level", "logistic"}
    markdown = render_report(table, tmp_path, QUICK).markdown.read_text()
    assert "| predictor | metric | fold 0 | fold 1 | fold 2 | pooled | pooled CI |" in markdown
    assert f"| budget 10k | test AUC | {line.per_fold[0].estimate:.4f} |" in markdown


def test_a_table_without_folds_has_no_fold_section(tmp_path: Path) -> None:
    table = synthetic_results(alpha=0.08, seeds=2)
    assert all(p.folds == () for p in analyse(table, QUICK))
