"""Baselines of a dataset logged as MLflow runs beside the model runs.

``score_and_log_baselines`` opens the dataset a config trains on (the same artifact, so the
same samples: the sample hashes are compared with the identity's finished model run when
there is one, and a mismatch raises), scores every baseline on validation and test, and
logs each as one FINISHED run holding every task, under the metric names a model run logs
(``evaluation.final``), so the results table sets them side by side.

A baseline run carries the model's readable identity fields with ``budget=baseline``, a
settings hash of only what can change a baseline (data, features, dataset, evaluation) and
``model=baseline-<name>``: one baseline run per dataset and settings however many budgets,
seeds and model settings train on it (duplicates would pass for replicates in the report),
and never a key a training run could take for its own (``find_finished_run`` matches
``model=patchtst`` only, besides). A baseline already logged for the identity, dataset MD5
and test-split state is not logged again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from finscale.config.loader import config_hash, config_to_dict, flatten
from finscale.config.schema import AppConfig
from finscale.datasets.build import build_dataset
from finscale.datasets.load import DatasetSplits, open_splits
from finscale.evaluation.baselines import BaselineResult, SkippedBaseline, run_baselines
from finscale.evaluation.config import BaselinesConfig
from finscale.evaluation.final import pair_metrics
from finscale.evaluation.scored import BASELINE_PREFIX, SampleMismatchError
from finscale.manifest.store import Manifest
from finscale.tracking import (
    MODEL_TAG,
    TrackingTarget,
    find_finished_run,
    finished_run_ids,
    get_run_record,
    log_finished_run,
)
from finscale.training.run_key import SETTINGS_HASH_CHARS, RunKey, result_settings
from finscale.workspace import Workspace

log = logging.getLogger(__name__)

BASELINE_BUDGET = "baseline"  # the budget field of a baseline run's identity
BASELINE_SECTIONS = ("data", "features", "dataset", "evaluation")  # what can change one
ALWAYS_RUN = ("base-rate", "logistic", "hgb")  # need no particular dataset column
SPLIT_HASHES = ("sample_hash_train", "sample_hash_val", "sample_hash_test")


@dataclass(frozen=True)
class BaselineOutcome:
    """What one call logged (name -> run id), found already logged, or skipped (why)."""

    run_key: str
    logged: dict[str, str]
    reused: tuple[str, ...]
    skipped: tuple[SkippedBaseline, ...]


def baseline_key(config: AppConfig) -> RunKey:
    """The identity of ``config``'s baselines: its readable fields, ``budget=baseline``,
    the baselines' seed and a hash of only the sections that can change a baseline."""
    settings = result_settings(config_to_dict(config))
    hashed = {name: settings.get(name) for name in BASELINE_SECTIONS}
    return dataclasses.replace(RunKey.from_config(config), budget=BASELINE_BUDGET,
                               seed=config.evaluation.baselines.seed,
                               settings=config_hash(hashed)[:SETTINGS_HASH_CHARS])


def _runnable(config: BaselinesConfig, feature_names: Sequence[str]) -> tuple[str, ...]:
    """Names (``baseline-*``) that will score on a dataset with these feature columns."""
    scores = [s.name for s in config.scores if any(c in feature_names for c in s.columns)]
    return tuple(BASELINE_PREFIX + name for name in (*ALWAYS_RUN, *scores))


def _open(config: AppConfig, workspace: Workspace) -> tuple[DatasetSplits, dict[str, str]]:
    """The config's dataset (built or reused) and the run tags that pin it."""
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        record = build_dataset(manifest, workspace, config)
        splits = open_splits(manifest, record, include_test=config.training.evaluate_test)
        parents = [manifest.get(pid) for pid in record.parent_ids]
    finally:
        manifest.close()
    tags = {"dataset": record.name, "dataset_version": str(record.version),
            "dataset_md5": record.md5,
            "input_md5s": ",".join(f"{p.name}:{p.md5}" for p in parents),
            "sample_hash_train": splits.train.sample_hash,
            "sample_hash_val": splits.val.sample_hash,
            "test_split": "scored" if splits.has_test else "withheld"}
    if splits.has_test:
        tags["sample_hash_test"] = splits.test.sample_hash
    return splits, tags


def check_model_samples(target: TrackingTarget, config: AppConfig,
                        tags: Mapping[str, str]) -> None:
    """Raise ``SampleMismatchError`` when the identity's finished model run scored other
    samples than these (a dataset rebuilt since, other data): never compare across them."""
    run_id = find_finished_run(target, RunKey.from_config(config))
    if run_id is None:
        return
    model_tags = get_run_record(target, run_id).tags
    differ = [name for name in SPLIT_HASHES
              if name in model_tags and name in tags and model_tags[name] != tags[name]]
    if differ:
        raise SampleMismatchError(
            f"model run {run_id} scored other samples than the baselines would "
            f"({', '.join(f'{n} {model_tags[n]} vs {tags[n]}' for n in differ)}): the dataset "
            "changed since it trained; retrain it or score baselines on its dataset version"
        )


def _metrics(results: list[BaselineResult], horizon: int, config: AppConfig
             ) -> dict[str, float]:
    out: dict[str, float] = {}
    for result in results:
        out.update(pair_metrics(result.val, result.test, base_rate=result.val_metrics.base_rate,
                                threshold=result.threshold, horizon=horizon,
                                config=config.evaluation))
    return out


def _params(results: list[BaselineResult], config: AppConfig) -> dict[str, str]:
    flat = flatten({name: config_to_dict(config)[name] for name in BASELINE_SECTIONS})
    for result in results:
        flat[f"threshold.{result.task}"] = f"{result.threshold:g}"
        flat.update({f"baseline.{key}.{result.task}": value
                     for key, value in result.settings.items()})
    return flat


def score_and_log_baselines(config: AppConfig, workspace: Workspace) -> BaselineOutcome:
    """Score and log every baseline of ``config``'s dataset not yet logged; see module doc."""
    target = TrackingTarget.for_workspace(workspace, config.tracking.experiment,
                                          config.tracking.uri)
    key = baseline_key(config)
    splits, data_tags = _open(config, workspace)
    check_model_samples(target, config, data_tags)
    pinned = {"run_key": key.as_tag(), "dataset_md5": data_tags["dataset_md5"],
              "test_split": data_tags["test_split"]}
    names = _runnable(config.evaluation.baselines, splits.val.feature_names)
    reused = tuple(n for n in names if finished_run_ids(target, {**pinned, MODEL_TAG: n}))
    if len(reused) == len(names):
        log.info("baselines of %s already logged: %s", key.as_tag(), ", ".join(names))
        return BaselineOutcome(key.as_tag(), {}, reused, ())
    outcome = run_baselines(splits, config.evaluation.baselines)
    logged: dict[str, str] = {}
    for name in names:
        results = [r for r in outcome.results if r.name == name]
        if name in reused or not results:
            continue
        tags = {**key.as_tags(), **data_tags, MODEL_TAG: name, "collapsed": "false",
                "stop_reason": "completed"}
        logged[name] = log_finished_run(
            target, f"{name}|{key.as_tag()}", tags=tags, params=_params(results, config),
            metrics=_metrics(results, config.dataset.horizon, config))
    log.info("baselines of %s: logged %s, already logged %s", key.as_tag(),
             ", ".join(logged) or "none", ", ".join(reused) or "none")
    return BaselineOutcome(key.as_tag(), logged, reused, outcome.skipped)
