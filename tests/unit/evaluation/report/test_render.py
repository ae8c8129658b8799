"""The report renders from a small synthetic results table: every PNG it references exists
and opens as an image, and the summary carries the fitted numbers and labels."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from finscale.evaluation.config import EvaluationConfig
from finscale.evaluation.report import render_report
from finscale.evaluation.report.summary import ci
from finscale.evaluation.results import rows_for_fits
from finscale.evaluation.scaling import ScalingPoints, fit_scaling
from tests.support.results import synthetic_results

QUICK = EvaluationConfig(fit_replicates=60)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("report")
    files = render_report(synthetic_results(alpha=0.08), out, QUICK)
    return out, files.index.read_text(), files.markdown.read_text()


def test_every_png_is_referenced_exists_and_opens(rendered: tuple[Path, str, str]) -> None:
    out, html, markdown = rendered
    referenced = set(re.findall(r'<img src="([^"]+)"', html))
    assert referenced == set(re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown))
    assert referenced == {p.name for p in out.glob("*.png")}
    assert {n.split("-")[0] for n in referenced} == {"heatmap", "scaling", "calibration"}
    assert len(referenced) == 1 + 2 * 3 + 2  # heat map, 2 tasks x 3 metrics, 2 calibrations
    for name in referenced:
        image = imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_summary_carries_the_fitted_alpha_and_its_interval(
    rendered: tuple[Path, str, str]
) -> None:
    _, html, markdown = rendered
    table = synthetic_results(alpha=0.08)
    rows = rows_for_fits(table[(table["model"] == "patchtst")
                               & (table["target"] == "y_h1_1pct")], "test_log_loss").frame
    points = ScalingPoints.from_rows("n_parameters", "test log loss",
                                     rows["n_parameters"].to_numpy(np.float64),
                                     rows["test_log_loss"].to_numpy(np.float64))
    expected = fit_scaling(points, replicates=QUICK.fit_replicates,
                           level=QUICK.bootstrap.level, seed=QUICK.bootstrap.seed)
    alpha = expected.power.alpha
    assert 0.06 < alpha.estimate < 0.10 and expected.outcome == "scaling"
    sentence = (f"SPY daily H1 a20: 1pct, test log loss scales as N^-{alpha.estimate:.3f} "
                f"(alpha {alpha.estimate:.3f}, {ci(alpha)}) across 10.4k-1.01M parameters")
    first_line = markdown.splitlines()[2]
    assert sentence in first_line and "(scaling)" in first_line
    assert sentence in html
    assert "the model does not beat the baseline; the baseline is better" in markdown


def test_flat_task_is_labelled_flat_and_collapsed_runs_are_counted(
    rendered: tuple[Path, str, str]
) -> None:
    _, _, markdown = rendered
    flat = [line for line in markdown.splitlines()
            if line.startswith("On SPY daily H1 a20: 2pct, test log loss")]
    assert len(flat) == 1 and "(flat)" in flat[0]
    assert "1 collapsed runs (2 rows)" in markdown
    assert "Excluded from the fits and counted: 1 collapsed" in markdown
    assert "E + A N^-alpha gives E" in markdown  # five budgets: the saturating law is fitted


def test_too_few_budgets_say_why_there_is_no_fit(tmp_path: Path) -> None:
    table = synthetic_results(alpha=0.08)
    table = table[table["budget"].isin(["10k", "30k", "100k"]) | (table["model"] != "patchtst")]
    files = render_report(table, tmp_path, QUICK)
    text = files.markdown.read_text()
    assert "was not fitted: power law of test log loss vs n_parameters has 2 parameters and " \
           "needs >= 4 distinct n_parameters values, got 3" in text
    for name in re.findall(r'<img src="([^"]+)"', files.index.read_text()):
        assert imread(tmp_path / name).size > 0


def test_report_code_imports_no_torch() -> None:
    code = ("import sys, finscale.evaluation.report, finscale.evaluation.results; "
            "print(sorted(m for m in ('torch', 'mlflow', 'prefect') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"
