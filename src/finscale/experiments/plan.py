"""Counts and time of one or more matrices before anything runs, and what the plan's
choices save against the naive plan.

A final job's time: ``overhead + epochs x (steps x step_s + val x eval_s) + (val + test) x
eval_s`` (the best checkpoint is evaluated once more, and the test split once). A study:
``trials x (overhead + pruned_trial_fraction x epochs x epoch_s)`` at its trial config.
Epochs are the configured maximum: early stopping only makes a job shorter.

The naive plan is the same final runs with no pruning and no HPO reuse: a study of its own
for every final cell, at that cell's shape, every trial to its last epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from finscale.config.schema import AppConfig
from finscale.experiments.matrix import Job, Matrix
from finscale.experiments.shapes import DataSpans, JobShape, ShapeCache, job_shape
from finscale.experiments.throughput import Throughput

HOUR_S = 3600.0
ShapeRates = Callable[[Sequence[JobShape]], Mapping[str, Throughput]]


@dataclass(frozen=True)
class JobEstimate:
    """A job's shape and estimated seconds (as planned, and in the naive plan)."""

    job: Job
    shape: JobShape
    throughput: Throughput
    seconds: float


@dataclass(frozen=True)
class Totals:
    """Job counts and seconds of a plan, with one seed per final cell and as configured."""

    studies: int
    study_s: float
    finals: int
    final_s: float
    finals_one_seed: int
    final_one_seed_s: float
    naive_studies: int
    naive_study_s: float

    @property
    def total_s(self) -> float:
        return self.study_s + self.final_s

    @property
    def one_seed_s(self) -> float:
        return self.study_s + self.final_one_seed_s

    @property
    def naive_one_seed_s(self) -> float:
        return self.naive_study_s + self.final_one_seed_s

    @property
    def naive_s(self) -> float:
        return self.naive_study_s + self.final_s

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))


def _values(totals: Totals) -> tuple[float, ...]:
    return (totals.studies, totals.study_s, totals.finals, totals.final_s,
            totals.finals_one_seed, totals.final_one_seed_s, totals.naive_studies,
            totals.naive_study_s)


@dataclass(frozen=True)
class MatrixPlan:
    """One matrix: its estimated jobs and totals (studies it shares with an earlier matrix
    of the same plan are counted there)."""

    matrix: Matrix
    studies: tuple[JobEstimate, ...]
    finals: tuple[JobEstimate, ...]
    totals: Totals
    shared_studies: tuple[str, ...]


def epoch_seconds(shape: JobShape, tp: Throughput) -> float:
    """One epoch: the optimiser steps over train, then validation."""
    return math.ceil(shape.train / shape.batch_size) * tp.step_s + shape.val * tp.eval_sample_s


def final_seconds(shape: JobShape, tp: Throughput, overhead_s: float) -> float:
    return (overhead_s + shape.epochs * epoch_seconds(shape, tp)
            + (shape.val + shape.test) * tp.eval_sample_s)


def study_seconds(shape: JobShape, tp: Throughput, overhead_s: float, trials: int,
                  epoch_fraction: float) -> float:
    return trials * (overhead_s + epoch_fraction * shape.epochs * epoch_seconds(shape, tp))


@dataclass(frozen=True)
class PlanInputs:
    """What the estimate reads besides the matrices."""

    rates: ShapeRates  # throughput per shape: measured here or a device profile's
    overhead_s: float  # per job, unless the matrix states its own
    study_config: Callable[[Job], AppConfig]  # the config a study's trials start from
    spans: DataSpans | None = None
    default_batch: int | None = None
    shape_cache: ShapeCache = field(default_factory=lambda: ShapeCache(None))


def _shapes(configs: Sequence[AppConfig], inputs: PlanInputs) -> list[JobShape]:
    return [job_shape(c, inputs.spans, inputs.default_batch, inputs.shape_cache)
            for c in configs]


def _naive_shape(final: JobShape, study: JobShape) -> JobShape:
    """A naive study of a final cell: the cell's shape at the trials' epochs, no test."""
    return replace(final, epochs=study.epochs, test=0)


def plan_matrix(matrix: Matrix, inputs: PlanInputs, seen_studies: set[str]) -> MatrixPlan:
    """Estimate every job of ``matrix``; studies in ``seen_studies`` are not counted again
    (and this matrix's are added to it)."""
    studies = matrix.studies()
    study_configs = {sid: inputs.study_config(job) for sid, job in studies.items()}
    study_shapes = dict(zip(studies, _shapes(list(study_configs.values()), inputs),
                            strict=True))
    finals = matrix.final_jobs
    final_shapes = _shapes([j.config for j in finals], inputs)
    rates = inputs.rates([*study_shapes.values(), *final_shapes])
    spec = matrix.spec
    overhead = (spec.estimate.job_overhead_s if spec.estimate.job_overhead_s is not None
                else inputs.overhead_s)
    fraction = spec.estimate.pruned_trial_fraction
    study_estimates = tuple(
        JobEstimate(job, shape, rates[shape.key],
                    study_seconds(shape, rates[shape.key], overhead, job.trials, fraction))
        for job, shape in zip(studies.values(), study_shapes.values(), strict=True))
    final_estimates = tuple(
        JobEstimate(job, shape, rates[shape.key],
                    final_seconds(shape, rates[shape.key], overhead))
        for job, shape in zip(finals, final_shapes, strict=True))
    shared = tuple(sid for sid in studies if sid in seen_studies)
    counted = [e for e in study_estimates if e.job.id not in seen_studies]
    seen_studies.update(studies)
    one_seed = [e for e in final_estimates if e.job.seed in (None, 0)]
    naive = _naive_studies(final_estimates, study_estimates, overhead)
    totals = Totals(
        studies=len(counted), study_s=sum(e.seconds for e in counted),
        finals=len(final_estimates), final_s=sum(e.seconds for e in final_estimates),
        finals_one_seed=len(one_seed), final_one_seed_s=sum(e.seconds for e in one_seed),
        naive_studies=len(naive), naive_study_s=sum(naive),
    )
    return MatrixPlan(matrix, study_estimates, final_estimates, totals, shared)


def _naive_studies(finals: Sequence[JobEstimate], studies: Sequence[JobEstimate],
                   overhead_s: float) -> list[float]:
    """Seconds of one unpruned study per final cell (no reuse), at the cell's own shape."""
    by_id = {e.job.id: e for e in studies}
    cells: dict[str, JobEstimate] = {}
    for estimate in finals:
        cells.setdefault(estimate.job.cell, estimate)
    seconds = []
    for estimate in cells.values():
        study = by_id.get(str(estimate.job.study))
        if study is None:
            continue  # a matrix without studies: the naive plan has none either
        shape = _naive_shape(estimate.shape, study.shape)  # same architecture and batch
        seconds.append(study_seconds(shape, estimate.throughput, overhead_s, study.job.trials,
                                     1.0))
    return seconds


def plan_matrices(matrices: Sequence[Matrix], inputs: PlanInputs) -> list[MatrixPlan]:
    """Each matrix in order; a study shared by several is counted once, where it first is."""
    seen: set[str] = set()
    plans = [plan_matrix(matrix, inputs, seen) for matrix in matrices]
    inputs.shape_cache.save()
    return plans


def hours(seconds: float) -> float:
    return seconds / HOUR_S
