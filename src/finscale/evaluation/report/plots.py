"""The report's PNGs (matplotlib's object API on the Agg canvas: no pyplot state).

- scaling: an error metric against the real parameter count on log-log axes, one subplot
  per (horizon, tier), replicate points, both laws with their bootstrap bands, and every
  baseline as a horizontal line with its interval band;
- heat map: mean test AUC of each cell and budget (best baseline in the last column);
- calibration: pooled reliability curves per budget, one subplot per (horizon, tier).
Each file is written to a temp path and renamed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from finscale.evaluation.report.analysis import AXIS, MetricFit, Panel, is_baseline, task_label
from finscale.evaluation.report.summary import human
from finscale.io.atomic import atomic_path

SUBPLOT_INCHES = (5.2, 4.0)
DPI = 110
GRID_POINTS = 100
BAND_ALPHA = 0.18
LAW_STYLES = {"power": ("tab:blue", "A N^-alpha"), "saturating": ("tab:red", "E + A N^-alpha")}
BASELINE_COLOURS = ("tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink",
                    "tab:olive", "tab:cyan", "tab:gray")


def save(figure: Figure, path: Path) -> Path:
    """Render on the Agg canvas and write the PNG atomically."""
    FigureCanvasAgg(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _grid(panels: Sequence[Panel]) -> tuple[Figure, dict[str, Axes]]:
    """One subplot per (horizon, tier) of these panels, keyed by panel slug."""
    horizons = sorted({p.key["horizon"] for p in panels}, key=int)
    tiers = sorted({p.key["tier"] for p in panels})
    figure = Figure(figsize=(SUBPLOT_INCHES[0] * len(tiers), SUBPLOT_INCHES[1] * len(horizons)))
    axes = figure.subplots(len(horizons), len(tiers), squeeze=False)
    by_slug = {p.slug: axes[horizons.index(p.key["horizon"])][tiers.index(p.key["tier"])]
               for p in panels}
    for row in axes:
        for ax in row:
            if ax not in by_slug.values():
                ax.set_visible(False)
    return figure, by_slug


def _draw_fit(ax: Axes, fit: MetricFit, level: float) -> None:
    ax.scatter(fit.x, fit.y, s=12, color="black", alpha=0.5, label="runs (seed, fold)")
    if fit.result is None:
        ax.text(0.02, 0.02, "not fitted:\n" + fit.refusal[:120], transform=ax.transAxes,
                fontsize=7, va="bottom", wrap=True)
        return
    grid = np.geomspace(fit.x.min(), fit.x.max(), GRID_POINTS)
    for law in (fit.result.power, fit.result.saturating):
        if law is None:
            continue
        colour, name = LAW_STYLES[law.law]
        low, high = law.band(grid, level)
        ax.plot(grid, law.predict(grid), color=colour,
                label=f"{name}: alpha {law.alpha.estimate:.3f} "
                      f"[{law.alpha.low:.3f}, {law.alpha.high:.3f}]")
        ax.fill_between(grid, low, high, color=colour, alpha=BAND_ALPHA, linewidth=0)
    ax.text(0.98, 0.98, fit.result.outcome, transform=ax.transAxes, ha="right", va="top",
            fontsize=9, fontweight="bold")


def _draw_baselines(ax: Axes, fit: MetricFit) -> None:
    for colour, line in zip(BASELINE_COLOURS * 4, fit.baselines, strict=False):
        value = line.interval
        ax.axhline(value.estimate, color=colour, linestyle="--", linewidth=1,
                   label=f"{line.name} {value.estimate:.3f}")
        if np.isfinite(value.low) and np.isfinite(value.high):
            ax.axhspan(value.low, value.high, color=colour, alpha=BAND_ALPHA / 2, linewidth=0)


def scaling_figure(panels: Sequence[Panel], metric: str, level: float, path: Path) -> Path:
    """One error metric against N for every (horizon, tier) panel of one task."""
    figure, axes = _grid(panels)
    for panel in panels:
        ax = axes[panel.slug]
        fit = next((f for f in panel.fits if f.metric.column == metric), None)
        if fit is None:
            ax.set_visible(False)
            continue
        _draw_fit(ax, fit, level)
        _draw_baselines(ax, fit)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters (real count)")
        ax.set_ylabel(fit.metric.label)
        ax.set_title(panel.title, fontsize=10)
        ax.legend(fontsize=6, loc="best")
    return save(figure, path)


def heatmap_figure(table: pd.DataFrame, path: Path) -> Path:
    """Mean test AUC per cell (rows) and budget (columns), best baseline last."""
    usable = table[~table["collapsed"] & ~table["thermal_stopped"]]
    usable = usable.assign(cell=[f"H{h} {t} {task_label(g)}" for h, t, g in
                                 zip(usable["horizon"], usable["tier"], usable["target"],
                                     strict=True)])
    models = usable[~is_baseline(usable["model"])]
    order = models.groupby("budget")[AXIS].median().sort_values().index.tolist()
    grid = models.pivot_table(index="cell", columns="budget", values="test_auc", aggfunc="mean")
    grid = grid.reindex(columns=order)
    baselines = usable[is_baseline(usable["model"])]
    if not baselines.empty:
        best = baselines.groupby(["cell", "model"])["test_auc"].mean().groupby("cell").max()
        grid["best baseline"] = best.reindex(grid.index)
    figure = Figure(figsize=(1.2 * len(grid.columns) + 3, 0.5 * len(grid.index) + 2))
    ax = figure.subplots()
    image = ax.imshow(grid.to_numpy(np.float64), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns], rotation=30)
    ax.set_yticks(range(len(grid.index)), list(grid.index))
    for (i, j), value in np.ndenumerate(grid.to_numpy(np.float64)):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white", fontsize=8)
    figure.colorbar(image, ax=ax, label="mean test AUC")
    ax.set_title("test AUC of the matrix (collapsed and thermal-stopped runs left out)")
    return save(figure, path)


def _pooled_bins(rows: pd.DataFrame) -> pd.DataFrame:
    """Reliability bins of several runs pooled by bin, weighted by their counts."""
    records = [b for text in rows["test_reliability"] if text for b in json.loads(text)]
    frame = pd.DataFrame(records)
    frame["hits"] = frame["observed_rate"] * frame["count"]
    frame["mass"] = frame["mean_predicted"] * frame["count"]
    pooled = frame.groupby("bin")[["count", "hits", "mass"]].sum()
    return pd.DataFrame({"predicted": pooled["mass"] / pooled["count"],
                         "observed": pooled["hits"] / pooled["count"]})


def calibration_figure(panels: Sequence[Panel], table: pd.DataFrame, path: Path) -> Path:
    """Reliability curves per budget for every (horizon, tier) panel of one task."""
    figure, axes = _grid(panels)
    for panel in panels:
        ax = axes[panel.slug]
        k = panel.key
        rows = table[(table["horizon"].astype(str) == k["horizon"]) & (table["tier"] == k["tier"])
                     & (table["target"].map(task_label) == k["task_label"])
                     & (table["tickers"] == k["tickers"]) & (table["timescale"] == k["timescale"])
                     & (table["test_reliability"] != "") & ~table["collapsed"]
                     & ~is_baseline(table["model"])]
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        for (budget, size), group in rows.groupby(["budget", AXIS], sort=False):
            bins = _pooled_bins(group)
            ax.plot(bins["predicted"], bins["observed"], marker="o", markersize=3,
                    label=f"{budget} ({human(float(size))})")
        top = float(rows["test_reliability"].map(
            lambda t: max(max(b["mean_predicted"], b["observed_rate"]) for b in json.loads(t))
        ).max()) if not rows.empty else 1.0
        ax.set_xlim(0, min(1.0, top * 1.1))
        ax.set_ylim(0, min(1.0, top * 1.1))
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed rate")
        ax.set_title(panel.title, fontsize=10)
        ax.legend(fontsize=6)
    return save(figure, path)
