"""The typed experiment-matrix file: axes, seeds, folds, HPO reuse and estimate settings.

A matrix file (``configs/experiments/phase6a.yaml``) names a base config and the axes
whose product makes the cells; every cell is that base plus overrides::

    name: phase6a
    phase: 6a
    base: ../base.yaml                       # relative to the matrix file
    overrides: {dataset.tier: a20}           # every job of the matrix
    axes:
      budget: {set: model.budget, values: [2M, 20M]}          # label = the value
      task: {set: dataset.thresholds, values: {th1: [0.01]}}  # label -> value
      horizon:
        values: {H1: {dataset.horizon: 1}, W1: {dataset.timescale: weekly}}  # label -> keys
    final: {seeds: 3, folds: null}
    hpo: {by: [budget, task], at: {}, trials: 50, config: configs/hpo/x.yaml}
    # or: hpo: {reuse: phase6a.yaml}          # use another matrix's studies

A final cell uses the study of the HPO cell with the same labels on the ``by`` axes; the
study itself runs at the ``at`` labels of the other axes. Everything is checked at load:
a bad matrix fails naming the file and the field before any job starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from finscale.config.base import FrozenModel
from finscale.config.errors import ConfigError
from finscale.config.loader import read_yaml_mapping

LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
DEFAULT_SEEDS = 3
DEFAULT_TRIALS = 50


class Axis(FrozenModel):
    """One axis: its levels, each a label and the config keys it sets.

    With ``set``, a level is a plain value for that dotted key (``values`` a list, labelled
    by the value, or a label -> value mapping); without it, each level is a mapping of
    dotted keys to values.
    """

    set: str | None = Field(None, description="dotted config key every level sets")
    values: list[Any] | dict[str, Any] = Field(min_length=1)

    @model_validator(mode="after")
    def _levels_are_well_formed(self) -> Axis:
        if isinstance(self.values, list):
            if self.set is None:
                raise ValueError("a list of values needs `set` (the key they set); without "
                                 "it give a mapping label -> {dotted.key: value}")
            labels = [str(v) for v in self.values]
            if len(set(labels)) != len(labels):
                raise ValueError(f"duplicate values {labels}")
        elif self.set is None:
            for label, keys in self.values.items():
                if not isinstance(keys, dict) or not keys:
                    raise ValueError(f"level {label!r}: without `set` a level is a non-empty "
                                     "mapping of dotted config keys to values")
        return self

    def levels(self) -> dict[str, dict[str, Any]]:
        """label -> {dotted key: value}, in file order."""
        if isinstance(self.values, list):
            return {str(v): {str(self.set): v} for v in self.values}
        if self.set is not None:
            return {label: {self.set: value} for label, value in self.values.items()}
        return {label: dict(keys) for label, keys in self.values.items()}


class FinalSpec(FrozenModel):
    """Final runs: seeds per cell, optional walk-forward folds, overrides for finals only."""

    seeds: int = Field(DEFAULT_SEEDS, ge=1, description="seeds 0..seeds-1 per final cell")
    folds: int | None = Field(None, ge=1, description="walk-forward folds per seed; None: the "
                              "fixed train/val/test ranges")
    overrides: dict[str, Any] = Field(default_factory=dict)


class HpoSpec(FrozenModel):
    """One study per combination of the ``by`` axes, run at the ``at`` labels of the others;
    or ``reuse``: the final cells use the studies of another matrix file."""

    by: tuple[str, ...] = ()
    at: dict[str, str] = Field(default_factory=dict)
    config: str | None = Field(None, description="HPO settings file (search space, sampler, "
                               "pruner) handed to finscale.hpo, relative to the repository")
    trials: int = Field(DEFAULT_TRIALS, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    overrides: dict[str, Any] = Field(default_factory=dict, description="trials only")
    exclude: tuple[str, ...] = Field((), description="settings of the HPO file's space this "
                                     "matrix does not search (e.g. a shape variant that would "
                                     "not carry over to the other budgets of a shared study)")
    reuse: str | None = Field(None, description="matrix file (relative to this one) whose "
                              "studies the final cells use; no own studies then")

    @model_validator(mode="after")
    def _reuse_excludes_own_studies(self) -> HpoSpec:
        own = self.model_fields_set - {"reuse"}
        if self.reuse is not None and own:
            raise ValueError(f"`reuse` takes the other matrix's studies as they are: drop "
                             f"{sorted(own)}")
        return self


class EstimateSpec(FrozenModel):
    """What the time estimate cannot measure, stated as data."""

    pruned_trial_fraction: float = Field(
        0.5, gt=0, le=1, description="mean share of a full trial's epochs a trial runs under "
        "the pruner (1: no pruning); measured by benchmarks/hpo.py"
    )
    job_overhead_s: float | None = Field(
        None, ge=0, description="seconds per job besides training (data, MLflow, model "
        "logging); None: the device profile's"
    )


class MatrixSpec(FrozenModel):
    """A whole experiment phase as data."""

    name: str = Field(pattern=NAME_PATTERN)
    phase: str = Field(pattern=LABEL_PATTERN, description="experiment.phase of every run")
    description: str = ""
    base: str = Field(description="base config, relative to the matrix file")
    overrides: dict[str, Any] = Field(default_factory=dict)
    axes: dict[str, Axis] = Field(min_length=1)
    final: FinalSpec = FinalSpec()
    hpo: HpoSpec | None = None
    estimate: EstimateSpec = EstimateSpec()


def _check_labels(spec: MatrixSpec, source: str) -> None:
    for name, axis in spec.axes.items():
        for label in (name, *axis.levels()):
            if not re.match(LABEL_PATTERN, label):
                raise ConfigError(source, f"axes.{name}",
                                  f"label {label!r} must match {LABEL_PATTERN}")


def _check_hpo_axes(spec: MatrixSpec, source: str) -> None:
    """``by`` and ``at`` name known axes, together every axis once, ``at`` known labels."""
    hpo = spec.hpo
    if hpo is None or hpo.reuse is not None:
        return
    unknown = [axis for axis in (*hpo.by, *hpo.at) if axis not in spec.axes]
    if unknown:
        raise ConfigError(source, "hpo.by" if unknown[0] in hpo.by else "hpo.at",
                          f"unknown axes {unknown}; the axes are {list(spec.axes)}")
    both = sorted(set(hpo.by) & set(hpo.at))
    if both:
        raise ConfigError(source, "hpo.at", f"axes {both} are in both `by` and `at`")
    missing = [axis for axis in spec.axes if axis not in hpo.by and axis not in hpo.at]
    if missing:
        raise ConfigError(source, "hpo.at", f"give the level each study runs at for axes "
                          f"{missing} (or add them to hpo.by)")
    for axis, label in hpo.at.items():
        levels = list(spec.axes[axis].levels())
        if label not in levels:
            raise ConfigError(source, f"hpo.at.{axis}",
                              f"{label!r} is not a level of axis {axis} ({levels})")


def _field_of(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error["loc"]) or "-"


def read_matrix_spec(path: Path) -> MatrixSpec:
    """Parse and validate a matrix file; errors name the file, the field and the reason."""
    data = read_yaml_mapping(path, what="matrix file")
    try:
        spec = MatrixSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(str(path), _field_of(first), first["msg"]) from exc
    _check_labels(spec, str(path))
    _check_hpo_axes(spec, str(path))
    return spec
