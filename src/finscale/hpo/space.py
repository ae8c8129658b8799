"""Load an HPO file and map its space to Optuna: distributions, suggestions, overrides.

``load_spec`` refuses a bad file at load, naming the field: besides the typed checks of
``finscale.hpo.config`` it checks every space path against the config schema, tries every
bound and choice on the cell's config (so ``model.patch_len: {low: 0}`` fails here, not in
trial 7), and refuses settings that must not be searched: the test split switch (no
selection may read test data) and settings that cannot change a result.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from pydantic import BaseModel, ValidationError

from finscale.config.errors import ConfigError
from finscale.config.loader import config_hash, load_config, read_yaml_mapping
from finscale.config.schema import AppConfig
from finscale.hpo.config import Choice, FloatParam, HpoFile, IntParam, Param
from finscale.training.run_key import NON_RESULT_SETTINGS, RunKey

# Appended LAST to every trial's overrides: nothing earlier can switch the test split back on.
TEST_WITHHELD = "training.evaluate_test=false"
NOT_SEARCHABLE: Mapping[str, str] = {
    "training.evaluate_test": "HPO trials never load the test split (it is forced off)",
    "training.early_stopping_metric": "it is the study's metric (study.metric)",
    "training.seed": "a seed is a replicate, not a hyperparameter",
    **{path: f"it cannot change a result ({why})" for path, why in NON_RESULT_SETTINGS.items()},
}
LOG_LOSS_NEEDS = {"training.loss": "bce", "training.pos_weight": "none"}
STUDY_PREFIX = "hpo"
UNION_TAGS = frozenset({"float", "int", "categorical", "median", "hyperband", "none"})
SPACE_HASH_CHARS = 8


@dataclass(frozen=True)
class StudySpec:
    """A loaded HPO file: its settings, where it lives and the cell config it tunes."""

    file: HpoFile
    source: Path
    config_path: Path

    @property
    def base_overrides(self) -> tuple[str, ...]:
        """The file's overrides plus the study metric as the early-stopping metric (so the
        best checkpoint of a trial is selected on what the study optimises)."""
        return (*self.file.overrides,
                f"training.early_stopping_metric={self.file.study.metric}")

    def trial_overrides(self, params: Mapping[str, Choice]) -> list[str]:
        """Overrides of one trial: base, suggestions, then the test split withheld."""
        return [*self.base_overrides, *param_overrides(params), TEST_WITHHELD]

    def trial_config(self, params: Mapping[str, Choice]) -> AppConfig:
        """The validated config one trial trains (test split withheld)."""
        return load_config(self.config_path, overrides=self.trial_overrides(params))

    def cell_config(self) -> AppConfig:
        """The cell before any suggestion (test split withheld): its identity names the study."""
        return load_config(self.config_path, overrides=[*self.base_overrides, TEST_WITHHELD])

    def study_name(self) -> str:
        """``hpo|<cell run key>|space=<hash>``: re-running the file continues its study; a
        changed space or metric is a different study."""
        space = {path: param.model_dump() for path, param in sorted(self.file.space.items())}
        digest = config_hash({"space": space, "metric": self.file.study.metric})
        key = RunKey.from_config(self.cell_config())
        return f"{STUDY_PREFIX}|{key.as_tag()}|space={digest[:SPACE_HASH_CHARS]}"


def load_spec(path: str | Path) -> StudySpec:
    """Read and check an HPO file; a ``ConfigError`` names the file, field and reason."""
    source = Path(path).resolve()
    data = read_yaml_mapping(source, "HPO file")
    try:
        hpo = HpoFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(str(source), _field_of(first["loc"]), first["msg"]) from exc
    spec = StudySpec(file=hpo, source=source, config_path=(source.parent / hpo.config).resolve())
    _check_overrides(spec)
    base = _cell_or_error(spec)
    for name, param in hpo.space.items():
        _check_param(spec, name, param)
    _check_metric(spec, base)
    return spec


def _field_of(loc: Sequence[Any]) -> str:
    """A pydantic error location as a dotted field, without the union tags pydantic adds
    (``space.training.lr.float.low`` -> ``space.training.lr.low``)."""
    parts = [str(p) for p in loc]
    kept = [p for i, p in enumerate(parts)
            if not (p in UNION_TAGS and i > 0 and (parts[i - 1] == "pruner"
                                                   or (i > 1 and parts[i - 2] == "space")))]
    return ".".join(kept) or "-"


def _cell_or_error(spec: StudySpec) -> AppConfig:
    try:
        return spec.cell_config()
    except ConfigError as exc:
        raise ConfigError(str(spec.source), "config", str(exc)) from exc


def _check_overrides(spec: StudySpec) -> None:
    for text in spec.file.overrides:
        key = text.split("=", 1)[0].strip()
        if key == "training.evaluate_test":
            raise ConfigError(str(spec.source), "overrides", f"'{text}': "
                              f"{NOT_SEARCHABLE[key]}")
        if key == "training.early_stopping_metric":
            raise ConfigError(str(spec.source), "overrides",
                              f"'{text}': set study.metric instead")


def _check_param(spec: StudySpec, name: str, param: Param) -> None:
    field = f"space.{name}"
    if name in NOT_SEARCHABLE:
        raise ConfigError(str(spec.source), field, f"not searchable: {NOT_SEARCHABLE[name]}")
    if not _schema_has(name):
        raise ConfigError(str(spec.source), field, "no such config setting")
    for value in representative_values(param):
        try:
            load_config(spec.config_path,
                        overrides=[*spec.base_overrides, *param_overrides({name: value})])
        except ConfigError as exc:
            raise ConfigError(str(spec.source), field,
                              f"value {value!r} is refused: {exc.reason}") from exc


def _check_metric(spec: StudySpec, base: AppConfig) -> None:
    """val_loss is the run's loss on validation: log loss only for plain BCE."""
    if spec.file.study.metric != "val_loss":
        return
    for path, needed in LOG_LOSS_NEEDS.items():
        if path in spec.file.space:
            raise ConfigError(str(spec.source), f"space.{path}",
                              "study.metric val_loss (log loss) needs a fixed " + path)
        section, key = path.split(".")
        actual = getattr(getattr(base, section), key)
        if actual != needed:
            raise ConfigError(str(spec.source), "study.metric", f"val_loss is log loss only "
                              f"with {path}={needed}; the cell has {actual}")


def _schema_has(path: str) -> bool:
    """Whether ``a.b.c`` names a leaf setting of ``AppConfig``."""
    model: type[BaseModel] | None = AppConfig
    parts = path.split(".")
    for index, part in enumerate(parts):
        if model is None or part not in model.model_fields:
            return False
        if index == len(parts) - 1:
            return _section_of(model.model_fields[part].annotation) is None
        model = _section_of(model.model_fields[part].annotation)
    return False


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The config section class inside an annotation (``X`` or ``X | None``), else None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def representative_values(param: Param) -> tuple[Choice, ...]:
    """The values load-time checks try: both bounds, or every choice."""
    if isinstance(param, FloatParam | IntParam):
        return (param.low, param.high)
    return param.choices


def distribution(param: Param) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of one space entry."""
    if isinstance(param, FloatParam):
        return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log,
                                                      step=param.step)
    if isinstance(param, IntParam):
        return optuna.distributions.IntDistribution(param.low, param.high, log=param.log,
                                                    step=param.step)
    return optuna.distributions.CategoricalDistribution(param.choices)


def distributions(space: Mapping[str, Param]) -> dict[str, optuna.distributions.BaseDistribution]:
    """Every space entry as its Optuna distribution, by config path."""
    return {name: distribution(param) for name, param in space.items()}


def suggest_value(trial: optuna.Trial, name: str, param: Param) -> Choice:
    """Ask the trial for one space entry (the same distribution as ``distribution``)."""
    if isinstance(param, FloatParam):
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step)
    return trial.suggest_categorical(name, param.choices)


def suggest(trial: optuna.Trial, space: Mapping[str, Param]) -> dict[str, Choice]:
    """Ask the trial for a value of every space entry (in file order)."""
    return {name: suggest_value(trial, name, param) for name, param in space.items()}


def yaml_scalar(value: Choice) -> str:
    """``value`` as YAML text that reads back as the same value (``1e-05`` would not)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf)
    text = text.removesuffix("\n").removesuffix("\n...").strip()
    if yaml.safe_load(text) != value:
        raise ValueError(f"{value!r} does not survive a YAML round trip")
    return text


def param_overrides(params: Mapping[str, Choice]) -> list[str]:
    """``path=value`` overrides for suggested values."""
    return [f"{name}={yaml_scalar(value)}" for name, value in params.items()]


def params_from_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """The inverse of ``param_overrides`` (for stored best parameters)."""
    out: dict[str, Any] = {}
    for text in overrides:
        key, raw = text.split("=", 1)
        out[key] = yaml.safe_load(raw)
    return out
