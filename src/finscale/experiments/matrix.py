"""Axes -> cells -> jobs: each job a base config plus overrides, with its run identity.

A cell is one combination of axis levels. Each cell gives ``seeds x folds`` final jobs;
the HPO settings give one study (an HPO job) per combination of the ``by`` axes. A final
job knows which study's best parameters it takes (``study``); those parameters enter its
overrides when the study has finished (``with_study_overrides``), so a final job's
identity is its planned identity until then and its trained identity after.

Jobs are plain data (config path + ``key=value`` overrides): the same job runs in-process,
through the ``train`` deployment, or on another host, and loads the same config there.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from finscale.config.errors import ConfigError
from finscale.config.loader import build_config, config_to_dict, load_config, parse_override
from finscale.config.schema import AppConfig
from finscale.experiments.config import MatrixSpec, read_matrix_spec
from finscale.training.run_key import RunKey

HPO = "hpo"
FINAL = "final"
FLOW_WIDTH = 10**9  # one line per override, however long


def override_text(key: str, value: Any) -> str:
    """``key=value`` with the value as one line of YAML (what ``parse_override`` reads)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=FLOW_WIDTH).strip()
    if text.endswith("\n..."):  # a plain scalar ends with YAML's document-end marker
        text = text[: -len("\n...")].strip()
    return f"{key}={text}"


def override_texts(keys: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(override_text(key, value) for key, value in keys.items())


@dataclass(frozen=True)
class Job:
    """One HPO study or one final training run of a matrix."""

    matrix: str
    kind: str  # HPO or FINAL
    cell: str  # "budget=2M,task=th1"
    labels: tuple[tuple[str, str], ...]
    config_path: str
    overrides: tuple[str, ...]  # the cell's (matrix, axes, kind), before the study's
    fixed: tuple[str, ...]  # the matrix's own, applied last: phase, seed, evaluate_test, fold
    run_key: RunKey
    config: AppConfig = field(repr=False, compare=False)
    seed: int | None = None
    fold: int | None = None
    study: str | None = None  # final: id of the HPO job whose best parameters it takes
    study_overrides: tuple[str, ...] = ()  # final: that study's best parameters, once known
    hpo_config: str | None = None
    hpo_exclude: tuple[str, ...] = ()
    trials: int = 0
    timeout_s: float | None = None

    @property
    def id(self) -> str:
        """``phase6a/final/budget=2M,task=th1/seed=0[/fold=1]`` (stable across runs)."""
        parts = [self.matrix, self.kind, self.cell]
        if self.seed is not None and self.kind == FINAL:
            parts.append(f"seed={self.seed}")
        if self.fold is not None:
            parts.append(f"fold={self.fold}")
        return "/".join(parts)

    @property
    def all_overrides(self) -> tuple[str, ...]:
        """Everything applied to ``config_path``, in order (what a worker loads): the
        study's best parameters first, so what the cell sets itself wins (a weekly cell
        keeps its context when it reuses a daily study)."""
        return (*self.study_overrides, *self.overrides, *self.fixed)

    @property
    def identity(self) -> str:
        return self.run_key.as_tag()


@dataclass(frozen=True)
class Matrix:
    """An expanded matrix file: its studies, the studies it reuses, its final jobs."""

    spec: MatrixSpec
    path: Path
    hpo_jobs: tuple[Job, ...]
    reused_hpo_jobs: tuple[Job, ...]
    final_jobs: tuple[Job, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def final_cells(self) -> int:
        return len({job.cell for job in self.final_jobs})

    def studies(self) -> dict[str, Job]:
        """Every study a final job may need (own and reused), by job id."""
        return {job.id: job for job in (*self.reused_hpo_jobs, *self.hpo_jobs)}

    def jobs(self) -> tuple[Job, ...]:
        """Studies first (a final job needs its study), then the final jobs."""
        return (*self.reused_hpo_jobs, *self.hpo_jobs, *self.final_jobs)


class ConfigBuilder:
    """Base config read once; a job's config is the base plus its overrides, validated.

    Errors name the part of the matrix file an override came from and the field.
    """

    def __init__(self, base_path: Path) -> None:
        self.base_path = base_path
        self._base = config_to_dict(load_config(base_path))

    def build(self, overrides: Iterable[tuple[str, str]]) -> AppConfig:
        """``overrides``: (``key=value``, where it came from) pairs, applied in order."""
        merged = dict(self._base)
        origin: dict[str, str] = {}
        for text, source in overrides:
            parts, value = _parsed(text)
            node = merged
            for part in parts[:-1]:  # copy each section on the path: the base stays intact
                node[part] = dict(node[part]) if isinstance(node.get(part), dict) else {}
                node = node[part]
            node[parts[-1]] = copy.deepcopy(value)
            origin[".".join(parts)] = source
        return build_config(merged, origin)


@cache
def _parsed(text: str) -> tuple[tuple[str, ...], Any]:
    """``parse_override`` once per distinct text (a matrix repeats them across jobs)."""
    parts, value = parse_override(text)
    return tuple(parts), value


def _builder(base_path: Path) -> ConfigBuilder:
    """One builder per base file version (its modification time is part of the key)."""
    return _cached_builder(base_path, base_path.stat().st_mtime_ns)


@cache
def _cached_builder(base_path: Path, mtime_ns: int) -> ConfigBuilder:
    del mtime_ns  # only part of the cache key
    return ConfigBuilder(base_path)


def _relative_base(matrix_path: Path, base: str) -> str:
    """The base config's path as a worker in the same folder as this process opens it."""
    path = Path(base) if Path(base).is_absolute() else matrix_path.parent / base
    return os.path.normpath(path)


@dataclass(frozen=True)
class _Cell:
    labels: tuple[tuple[str, str], ...]
    overrides: tuple[tuple[str, str], ...]  # (text, source)

    @property
    def name(self) -> str:
        return ",".join(f"{axis}={label}" for axis, label in self.labels)


def _cells(spec: MatrixSpec, source: str, only: Mapping[str, str] | None = None) -> list[_Cell]:
    """The product of the axes (``only`` pins some axes to one label), in file order."""
    axes = []
    for name, axis in spec.axes.items():
        levels = axis.levels()
        if only is not None and name in only:
            levels = {only[name]: levels[only[name]]}
        axes.append([(name, label, keys) for label, keys in levels.items()])
    common = [(text, f"{source} overrides") for text in override_texts(spec.overrides)]
    cells = []
    for combo in itertools.product(*axes):
        texts = [(text, f"{source} axes.{name}.{label}")
                 for name, label, keys in combo for text in override_texts(keys)]
        cells.append(_Cell(tuple((n, lab) for n, lab, _ in combo), (*common, *texts)))
    return cells


def _fixed(spec: MatrixSpec, kind: str, seed: int | None, fold: int | None) -> list[str]:
    fixed = [f"experiment.name={spec.name}", override_text("experiment.phase", spec.phase),
             f"training.evaluate_test={'true' if kind == FINAL else 'false'}"]
    if seed is not None:
        fixed.append(f"training.seed={seed}")
    if fold is not None and spec.final.folds is not None:
        fixed += [f"dataset.splits.walk_forward.folds={spec.final.folds}",
                  f"dataset.splits.walk_forward.fold={fold}"]
    return fixed


def _job(
    spec: MatrixSpec, source: str, base: str, cell: _Cell, kind: str,
    kind_overrides: Mapping[str, Any], seed: int | None = None, fold: int | None = None,
) -> Job:
    own = [(text, f"{source} {kind}.overrides") for text in override_texts(kind_overrides)]
    body = (*cell.overrides, *own)
    fixed = _fixed(spec, kind, seed, fold)
    config = _builder(Path(base)).build([*body, *((t, f"{source} (set by the matrix)")
                                                   for t in fixed)])
    hpo = spec.hpo if kind == HPO else None
    return Job(
        matrix=spec.name, kind=kind, cell=cell.name, labels=cell.labels, config_path=base,
        overrides=tuple(text for text, _ in body), fixed=tuple(fixed),
        run_key=RunKey.from_config(config), config=config, seed=seed, fold=fold,
        hpo_config=hpo.config if hpo else None, hpo_exclude=hpo.exclude if hpo else (),
        trials=hpo.trials if hpo else 0,
        timeout_s=hpo.timeout_s if hpo else None,
    )


def _hpo_jobs(spec: MatrixSpec, source: str, base: str) -> tuple[Job, ...]:
    hpo = spec.hpo
    if hpo is None or hpo.reuse is not None:
        return ()
    return tuple(_job(spec, source, base, cell, HPO, hpo.overrides)
                 for cell in _cells(spec, source, only=hpo.at))


def _study_index(studies: Sequence[Job], by: Sequence[str]) -> dict[tuple[str, ...], str]:
    """Study id by its labels on the ``by`` axes."""
    return {tuple(dict(study.labels)[axis] for axis in by): study.id for study in studies}


def _reused(spec: MatrixSpec, path: Path) -> tuple[Matrix | None, tuple[str, ...]]:
    """The matrix whose studies this one reuses (checked) and its ``by`` axes."""
    if spec.hpo is None:
        return None, ()
    if spec.hpo.reuse is None:
        return None, spec.hpo.by
    other = load_matrix(path.parent / spec.hpo.reuse)
    if other.spec.hpo is None or other.spec.hpo.reuse is not None:
        raise ConfigError(str(path), "hpo.reuse",
                          f"{spec.hpo.reuse} runs no studies of its own to reuse")
    by = other.spec.hpo.by
    missing = [axis for axis in by if axis not in spec.axes]
    if missing:
        raise ConfigError(str(path), "hpo.reuse", f"{other.name}'s studies are per {list(by)}; "
                          f"this matrix has no axis {missing}")
    return other, by


def _final_jobs(
    spec: MatrixSpec, path: Path, base: str, studies: Sequence[Job], by: Sequence[str]
) -> tuple[Job, ...]:
    source = str(path)
    folds: list[int | None] = (list(range(spec.final.folds)) if spec.final.folds is not None
                               else [None])
    index = _study_index(studies, by)
    jobs = []
    for cell in _cells(spec, source):
        study = None
        if spec.hpo is not None:
            wanted = tuple(dict(cell.labels)[axis] for axis in by)
            study = index.get(wanted)
            if study is None:
                raise ConfigError(source, "hpo.reuse", f"cell {cell.name}: no study with "
                                  f"{dict(zip(by, wanted, strict=True))} to reuse")
        for seed in range(spec.final.seeds):
            for fold in folds:
                job = _job(spec, source, base, cell, FINAL, spec.final.overrides, seed, fold)
                jobs.append(replace(job, study=study))
    return tuple(jobs)


def load_matrix(path: str | Path) -> Matrix:
    """Read, validate and expand a matrix file (every job's config is validated here)."""
    path = Path(path)
    spec = read_matrix_spec(path)
    base = _relative_base(path, spec.base)
    if not Path(base).is_file():
        raise ConfigError(str(path), "base", f"base config {base} not found")
    own = _hpo_jobs(spec, str(path), base)
    other, by = _reused(spec, path)
    reused = other.hpo_jobs if other is not None else ()
    finals = _final_jobs(spec, path, base, own or reused, by)
    needed = {job.study for job in finals}
    reused = tuple(job for job in reused if job.id in needed)
    return Matrix(spec=spec, path=path, hpo_jobs=own, reused_hpo_jobs=reused,
                  final_jobs=finals)


def with_study_overrides(job: Job, study_overrides: Sequence[str]) -> Job:
    """The final job with its study's best parameters applied: the identity it trains."""
    config = _builder(Path(job.config_path)).build(
        (text, f"{job.id} ({source})") for text, source in
        [*((t, "study") for t in study_overrides), *((t, "cell") for t in job.overrides),
         *((t, "matrix") for t in job.fixed)]
    )
    return replace(job, study_overrides=tuple(study_overrides), config=config,
                   run_key=RunKey.from_config(config))
