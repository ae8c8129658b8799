"""``render_report``: a results table -> index.html + report.md + PNGs in one folder.

The report is built once as a list of blocks (heading, paragraph, image, table) and
written twice, as Markdown and as HTML, so the two always say the same thing.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from finscale.evaluation.config import EvaluationConfig
from finscale.evaluation.report.analysis import ERROR_METRICS, Panel, analyse, is_baseline
from finscale.evaluation.report.plots import calibration_figure, heatmap_figure, scaling_figure
from finscale.evaluation.report.summary import (
    comparison_sentence,
    excluded_sentence,
    fit_sentence,
    headline,
)
from finscale.evaluation.results import typed
from finscale.evaluation.scaling import LawFit
from finscale.io.atomic import atomic_path

HTML_NAME = "index.html"
MARKDOWN_NAME = "report.md"
METHOD_NOTES = (
    "Scaling fits use the real parameter count of each run; replicates (seeds, folds) at one "
    "budget are one point weighted by their pooled spread plus the day-bootstrap error.",
    "alpha's interval is a bootstrap over replicates and day resamples. The label reads the "
    "pure law's interval: scaling (above 0), inverse (below 0), flat (spans 0).",
    "AIC/BIC compare the two laws on the same weighted residuals; a difference below 2 is "
    "reported as no preference.",
    "Best model and best baseline are chosen on validation AUC; their test AUC difference is "
    "unpaired (treats their errors as independent), so its interval is wider than a paired "
    "day-bootstrap comparison of the same samples.",
    "Collapsed runs (predictions at the prior on a task) and thermal-stopped runs stay in the "
    "results table but not in the fits; they are counted above.",
)

Block = tuple[str, Any]


@dataclass(frozen=True)
class ReportFiles:
    """What ``render_report`` wrote."""

    index: Path
    markdown: Path
    images: tuple[Path, ...]


def _groups(panels: Sequence[Panel]) -> dict[tuple[str, str, str], list[Panel]]:
    out: dict[tuple[str, str, str], list[Panel]] = {}
    for panel in panels:
        k = panel.key
        out.setdefault((k["tickers"], k["timescale"], k["task_label"]), []).append(panel)
    return out


def _law_row(metric: str, law: LawFit) -> list[str]:
    e = law.params.get("E")
    return [metric, law.law, f"{law.alpha.estimate:.4f}",
            f"{law.alpha.low:.4f} to {law.alpha.high:.4f}",
            "" if e is None else f"{e:.4f}", f"{law.params['A']:.4g}", f"{law.r2:.3f}",
            f"{law.aic:.2f}", f"{law.bic:.2f}"]


def _panel_blocks(panel: Panel) -> list[Block]:
    blocks: list[Block] = [("h3", panel.title)]
    blocks += [("p", fit_sentence(panel, fit)) for fit in panel.fits]
    blocks += [("p", comparison_sentence(panel.comparison)),
               ("p", excluded_sentence(panel.excluded))]
    laws = [_law_row(f.metric.label, law) for f in panel.fits if f.result is not None
            for law in (f.result.power, f.result.saturating) if law is not None]
    if laws:
        blocks.append(("table", (["metric", "law", "alpha", "alpha CI", "E", "A", "R^2", "AIC",
                                  "BIC"], laws)))
    lines = [[line.name, f.metric.label, f"{line.interval.estimate:.4f}",
              "" if math.isnan(line.interval.se) else
              f"{line.interval.low:.4f} to {line.interval.high:.4f}"]
             for f in panel.fits for line in f.baselines]
    if lines:
        blocks.append(("table", (["baseline", "metric", "value", "CI"], lines)))
    return blocks + _fold_blocks(panel)


def _fold_blocks(panel: Panel) -> list[Block]:
    """Walk-forward folds: each predictor per fold (mean over seeds) and pooled."""
    if not panel.folds:
        return []
    folds = sorted({k for line in panel.folds for k in line.per_fold})
    rows = [[line.predictor, line.metric,
             *(f"{line.per_fold[k].estimate:.4f}" if k in line.per_fold else "" for k in folds),
             f"{line.pooled.estimate:.4f}", "" if math.isnan(line.pooled.se) else
             f"{line.pooled.low:.4f} to {line.pooled.high:.4f}"] for line in panel.folds]
    return [("p", f"Walk-forward: {len(folds)} folds, each scored on its own test days; "
                  "pooled = mean over folds, its interval from the folds' independent errors."),
            ("table", (["predictor", "metric", *(f"fold {k}" for k in folds), "pooled",
                        "pooled CI"], rows))]


def _counts(table: pd.DataFrame) -> str:
    models = table[~is_baseline(table["model"])]
    collapsed = models[models["collapsed"]]
    thermal = models[models["thermal_stopped"]]
    return (f"{len(table)} rows (run x task) from {table['run_id'].nunique()} runs: "
            f"{models['run_id'].nunique()} model runs, "
            f"{table[is_baseline(table['model'])]['run_id'].nunique()} baseline runs. "
            f"Excluded from fits and counted: {collapsed['run_id'].nunique()} collapsed runs "
            f"({len(collapsed)} rows), {thermal['run_id'].nunique()} thermal-stopped runs "
            f"({len(thermal)} rows).")


def _figures(table: pd.DataFrame, panels: list[Panel], out: Path, level: float
             ) -> tuple[list[Block], list[Path]]:
    blocks: list[Block] = [("h2", "AUC of the matrix")]
    images = []
    for (tickers, timescale), rows in table.groupby(["tickers", "timescale"], sort=True):
        path = heatmap_figure(rows, out / f"heatmap-{tickers}-{timescale}.png".lower())
        images.append(path)
        blocks.append(("img", path.name))
    for (tickers, timescale, task), group in _groups(panels).items():
        blocks.append(("h2", f"{tickers} {timescale}: task {task}"))
        for metric in ERROR_METRICS:
            if any(f.metric.column == metric.column for p in group for f in p.fits):
                name = f"scaling-{group[0].slug}-{metric.column}.png"
                images.append(scaling_figure(group, metric.column, level, out / name))
                blocks.append(("img", name))
        rows = table[(table["tickers"] == tickers) & (table["timescale"] == timescale)]
        if (rows["test_reliability"] != "").any():
            name = f"calibration-{group[0].slug}.png"
            images.append(calibration_figure(group, rows, out / name))
            blocks.append(("img", name))
        for panel in group:
            blocks += _panel_blocks(panel)
    return blocks, images


def _markdown(blocks: list[Block]) -> str:
    lines = []
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3"):
            lines.append(f"{'#' * int(kind[1])} {payload}")
        elif kind == "p":
            lines.append(str(payload))
        elif kind == "img":
            lines.append(f"![{payload}]({payload})")
        elif kind == "ul":
            lines.extend(f"- {item}" for item in payload)
        else:
            head, rows = payload
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            lines.extend("| " + " | ".join(row) + " |" for row in rows)
        lines.append("")
    return "\n".join(lines)


def _html(blocks: list[Block], title: str) -> str:
    esc = html.escape
    body = []
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            body.append(f"<{kind}>{esc(str(payload))}</{kind}>")
        elif kind == "img":
            body.append(f'<img src="{esc(str(payload))}" alt="{esc(str(payload))}">')
        elif kind == "ul":
            items = "".join(f"<li>{esc(i)}</li>" for i in payload)
            body.append(f"<ul>{items}</ul>")
        else:
            head, rows = payload
            cells = "".join(f"<th>{esc(h)}</th>" for h in head)
            trs = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                          for row in rows)
            body.append(f"<table><tr>{cells}</tr>{trs}</table>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
             "img{max-width:100%}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def render_report(results_table: pd.DataFrame, out_dir: Path,
                  config: EvaluationConfig | None = None) -> ReportFiles:
    """Write index.html, report.md and the PNGs of a results table into ``out_dir``."""
    config = config or EvaluationConfig()
    table = typed(results_table)
    if table.empty:
        raise ValueError("the results table has no rows: nothing to report")
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = analyse(table, config)
    experiments = ", ".join(sorted(set(table["experiment"])))
    title = f"finscale report: {experiments}"
    figure_blocks, images = _figures(table, panels, out_dir, config.bootstrap.level)
    blocks: list[Block] = [("h1", title), ("p", headline(panels)), ("p", _counts(table)),
                           *figure_blocks, ("h2", "How to read this"),
                           ("ul", list(METHOD_NOTES))]
    markdown = _write_text(out_dir / MARKDOWN_NAME, _markdown(blocks))
    index = _write_text(out_dir / HTML_NAME, _html(blocks, title))
    return ReportFiles(index=index, markdown=markdown, images=tuple(images))
