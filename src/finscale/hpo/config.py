"""The HPO file (``configs/hpo/*.yaml``): which cell to tune, the search space, the study.

A space entry is named by the dotted config path it sets (``training.lr``). Suggestions are
applied as config overrides, so they pass the same validation as any setting and enter the
run identity of each trial. A bad file fails at load naming the field: a type, a bound, an
unknown path, a value the config refuses, or a setting that must not be searched.

    config: ../experiments/cpu_demo.yaml   # the cell's training config (relative to this file)
    overrides: [training.epochs=8]         # applied to it before any suggestion
    study: {metric: val_auc, n_trials: 20, sampler: {...}, pruner: {type: median, ...}}
    space:
      training.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      model.instance_norm: {type: categorical, choices: [none, revin, revin_stats]}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from finscale.config.base import FrozenModel

Choice = bool | int | float | str


class FloatParam(FrozenModel):
    """A float in [low, high]; ``log`` samples log-uniformly (learning rates)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0, description="a grid step; not with log")

    @model_validator(mode="after")
    def _bounds(self) -> FloatParam:
        _check_bounds(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("log and step cannot both be set")
        return self


class IntParam(FrozenModel):
    """An integer in [low, high] (inclusive), on a ``step`` grid or log-uniform."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> IntParam:
        _check_bounds(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("log needs step 1")
        return self


class CategoricalParam(FrozenModel):
    """One of ``choices`` (at least two, no repeats)."""

    type: Literal["categorical"]
    choices: tuple[Choice, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> CategoricalParam:
        if len({(type(c), c) for c in self.choices}) != len(self.choices):
            raise ValueError(f"choices repeat a value: {list(self.choices)}")
        return self


def _check_bounds(low: float, high: float, log: bool) -> None:
    if not low < high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ValueError(f"log needs low > 0, got {low}")


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class TpeSamplerConfig(FrozenModel):
    """Optuna's TPE, seeded; multivariate models the parameters jointly."""

    type: Literal["tpe"] = "tpe"
    seed: int = 0
    multivariate: bool = True
    n_startup_trials: int = Field(5, ge=0, description="random trials before TPE takes over")


class MedianPrunerConfig(FrozenModel):
    """Stop a trial whose epoch value is worse than the median of earlier trials' at that
    epoch (after ``n_startup_trials`` finished trials and ``n_warmup_steps`` epochs)."""

    type: Literal["median"]
    n_startup_trials: int = Field(3, ge=0)
    n_warmup_steps: int = Field(1, ge=0, description="epochs a trial always trains")


class HyperbandPrunerConfig(FrozenModel):
    """Successive halving in brackets; the maximum resource is ``training.epochs``."""

    type: Literal["hyperband"]
    min_resource: int = Field(1, ge=1, description="epochs before the first rung")
    reduction_factor: int = Field(3, ge=2)


class NoPrunerConfig(FrozenModel):
    """Every trial trains to the end (the reference a pruner is measured against)."""

    type: Literal["none"]


Pruner = Annotated[
    MedianPrunerConfig | HyperbandPrunerConfig | NoPrunerConfig, Field(discriminator="type")
]


class StudyConfig(FrozenModel):
    """What a study optimises and how it samples, prunes and stores."""

    metric: Literal["val_auc", "val_loss"] = Field(
        "val_auc", description="val_auc: mean val AUC of the included tasks (maximised); "
        "val_loss: validation log loss (minimised; needs training.loss bce, pos_weight none)"
    )
    n_trials: int = Field(20, ge=1, description="trials the study should hold in total")
    timeout_s: float | None = Field(None, gt=0, description="no new trial after this long")
    storage: str | None = Field(None, description="SQLAlchemy URL; null: <workspace>/optuna.db")
    max_consecutive_failures: int = Field(
        3, ge=1, description="stop when this many trials in a row failed with an error"
    )
    heartbeat_s: int = Field(60, ge=1, description="a running trial's heartbeat period")
    grace_s: int = Field(600, ge=1, description="a trial silent this long (its process died) "
                         "is marked failed by the next worker")
    sampler: TpeSamplerConfig = TpeSamplerConfig()
    pruner: Pruner = MedianPrunerConfig(type="median")

    @model_validator(mode="after")
    def _grace_after_heartbeat(self) -> StudyConfig:
        if self.grace_s <= self.heartbeat_s:
            raise ValueError(f"grace_s ({self.grace_s}) must exceed heartbeat_s "
                             f"({self.heartbeat_s}): a live trial would be declared dead")
        return self


class HpoFile(FrozenModel):
    """The YAML of one HPO study (see the module docstring)."""

    config: str = Field(description="the cell's training config, relative to this file")
    overrides: tuple[str, ...] = Field((), description="key=value applied before suggestions")
    study: StudyConfig = StudyConfig()
    space: dict[str, Param] = Field(min_length=1)
