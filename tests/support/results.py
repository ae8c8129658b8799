"""A small synthetic results table (the schema of ``evaluation.results``) for report tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from finscale.evaluation.results import RESULT_COLUMNS, typed

BUDGETS = {"10k": 10_412, "30k": 29_870, "100k": 101_234, "300k": 297_455, "1M": 1_013_001}


def _row(**values: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(RESULT_COLUMNS, "")
    row.update({"experiment": "demo", "phase": "demo", "tickers": "SPY",
                "timescale": "daily", "tier": "a20", "horizon": 1, "task": "all",
                "settings": "0123456789", "fold": None, "collapsed": False,
                "thermal_stopped": False, "n_parameters": None})
    row.update({c: np.nan for c in RESULT_COLUMNS if c.startswith(("test_", "val_"))
                and c != "test_reliability"})
    row.update(values)
    return row


def _reliability(rng: np.random.Generator) -> str:
    predicted = np.linspace(0.1, 0.5, 5)
    return json.dumps([{"bin": i, "mean_predicted": float(p),
                        "observed_rate": float(np.clip(p + rng.normal(0, 0.03), 0, 1)),
                        "count": 100} for i, p in enumerate(predicted)])


def synthetic_results(alpha: float, seeds: int = 3, seed: int = 0) -> pd.DataFrame:
    """Task 1pct: log loss = 0.6 N^-alpha and 1 - AUC = 0.5 N^-alpha/2 with 2% noise; task
    2pct: nothing changes with N (flat). Seed 2 of the largest budget collapsed; three
    baselines per task."""
    rng = np.random.default_rng(seed)
    rows = []
    for target, a in (("y_h1_1pct", alpha), ("y_h1_2pct", 0.0)):
        for budget, n in BUDGETS.items():
            for s in range(seeds):
                noise = np.exp(rng.normal(0, 0.02, 2))
                auc = 1 - 0.5 * n ** (-a / 2) * noise[1]
                rows.append(_row(
                    run_id=f"{budget}-{s}", run_key=f"budget={budget}|seed={s}", budget=budget,
                    seed=s, model="patchtst", target=target, n_parameters=n,
                    test_log_loss=0.6 * n**-a * noise[0], test_auc=auc, test_auc_se=0.015,
                    test_skill=0.02 + 0.01 * noise[1], val_auc=auc + 0.01,
                    collapsed=budget == "1M" and s == 2, test_reliability=_reliability(rng)))
        for name, auc, loss in (("base-rate", 0.5, 0.58), ("vix_level", 0.74, np.nan),
                                ("logistic", 0.757, 0.5)):
            rows.append(_row(run_id=f"baseline-{name}", run_key=f"baseline={name}",
                             budget="100k", seed=0, model=f"baseline-{name}", target=target,
                             test_auc=auc, test_auc_se=0.016, test_log_loss=loss,
                             val_auc=auc, test_log_loss_se=0.01))
    return typed(pd.DataFrame(rows))
