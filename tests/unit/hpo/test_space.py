"""The HPO file: its space maps to Optuna distributions and to config overrides that the
trial config applies; a bad file is refused at load naming the field; the study name is the
cell's identity (stable across runs and trial counts, new for a new space)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from finscale.config.errors import ConfigError
from finscale.hpo.space import (
    TEST_WITHHELD,
    distributions,
    load_spec,
    param_overrides,
    params_from_overrides,
    suggest,
    yaml_scalar,
)
from finscale.training.run_key import RunKey

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "configs" / "hpo" / "demo.yaml"
CPU_DEMO = REPO / "configs" / "experiments" / "cpu_demo.yaml"
Dist = optuna.distributions


def _write(tmp_path: Path, space: dict, **extra: object) -> Path:
    data = {"config": str(CPU_DEMO), "space": space, **extra}
    path = tmp_path / "hpo.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_demo_space_maps_to_optuna_distributions() -> None:
    dists = distributions(load_spec(DEMO).file.space)
    assert dists["training.lr"] == Dist.FloatDistribution(1e-4, 3e-3, log=True)
    assert dists["training.weight_decay"] == Dist.FloatDistribution(0.0, 0.1)
    assert dists["model.n_layers"] == Dist.IntDistribution(1, 3)
    assert dists["model.instance_norm"] == Dist.CategoricalDistribution(
        ("none", "revin", "revin_stats"))
    assert dists["model.budget"] == Dist.CategoricalDistribution(("30k", "100k", "300k"))
    assert dists["training.batch_size"] == Dist.CategoricalDistribution((64, 128, 256))
    expected = {"training.lr", "training.weight_decay", "training.warmup_ratio",
                "training.batch_size", "model.dropout", "model.budget", "model.n_layers",
                "model.patch_len", "model.stride", "dataset.context", "model.instance_norm"}
    assert set(dists) == expected


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "hpo").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_hpo_file_loads(path: Path) -> None:
    assert load_spec(path).study_name().startswith("hpo|")


def test_channel_mode_and_shape_are_searchable(tmp_path: Path) -> None:
    space = {"model.channel_mode": {"type": "categorical", "choices": ["independent", "mixed"]},
             "model.n_layers": {"type": "int", "low": 1, "high": 4}}
    dists = distributions(load_spec(_write(tmp_path, space)).file.space)
    assert dists["model.channel_mode"] == Dist.CategoricalDistribution(("independent", "mixed"))
    assert dists["model.n_layers"] == Dist.IntDistribution(1, 4)


def test_suggestions_become_the_trial_config_with_the_test_split_withheld() -> None:
    spec = load_spec(DEMO)
    params = {"training.lr": 1.5e-04, "training.weight_decay": 0.05,
              "training.warmup_ratio": 0.1, "training.batch_size": 128, "model.dropout": 0.2,
              "model.budget": "30k", "model.n_layers": 2, "model.patch_len": 16,
              "model.stride": 8, "dataset.context": 64, "model.instance_norm": "none"}
    suggested = suggest(optuna.trial.FixedTrial(params), spec.file.space)
    assert suggested == params
    config = spec.trial_config(suggested)
    assert config.training.lr == 1.5e-04
    assert (config.model.budget, config.model.n_layers, config.model.instance_norm) == (
        "30k", 2, "none")
    assert (config.dataset.context, config.training.batch_size) == (64, 128)
    assert config.training.evaluate_test is False
    assert spec.trial_overrides(suggested)[-1] == TEST_WITHHELD
    assert params_from_overrides(param_overrides(params)) == params


@pytest.mark.parametrize("value", [1e-05, 0.001, "none", "yes", "30k", 128, True, 0.1])
def test_override_values_read_back_as_the_same_value(value: object) -> None:
    text = yaml_scalar(value)  # type: ignore[arg-type]
    assert yaml.safe_load(text) == value and type(yaml.safe_load(text)) is type(value)


BAD_SPACES = [
    ({"training.lrr": {"type": "float", "low": 0.1, "high": 0.2}}, "space.training.lrr",
     "no such config setting"),
    ({"model": {"type": "int", "low": 1, "high": 2}}, "space.model", "no such config setting"),
    ({"training.lr": {"type": "float", "low": 0.2, "high": 0.1}}, "space.training.lr",
     "must be below"),
    ({"training.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}},
     "space.training.lr", "log needs low > 0"),
    ({"training.lr": {"type": "uniform", "low": 0.0, "high": 0.1}}, "space.training.lr",
     "tag"),
    ({"model.stride": {"type": "int", "low": 0, "high": 4}}, "space.model.stride",
     "value 0 is refused"),
    ({"model.instance_norm": {"type": "categorical", "choices": ["revin", "batchnorm"]}},
     "space.model.instance_norm", "value 'batchnorm' is refused"),
    ({"model.head": {"type": "categorical", "choices": ["pool"]}},
     "space.model.head.choices", "at least 2"),
    ({"training.evaluate_test": {"type": "categorical", "choices": [True, False]}},
     "space.training.evaluate_test", "never load the test split"),
    ({"training.seed": {"type": "int", "low": 0, "high": 3}}, "space.training.seed",
     "replicate"),
    ({"training.device": {"type": "categorical", "choices": ["cpu", "cuda"]}},
     "space.training.device", "cannot change a result"),
]


OK_SPACE = {"training.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
BAD_FILES = [
    ({"overrides": ["training.evaluate_test=true"]}, "overrides", "test split"),
    ({"overrides": ["training.early_stopping_metric=val_loss"]}, "overrides", "study.metric"),
    ({"overrides": ["training.epochs=0"]}, "config", "training.epochs"),
    ({"study": {"pruner": {"type": "percentile"}}}, "study.pruner", "tag"),
    ({"study": {"n_trials": 0}}, "study.n_trials", "greater than or equal"),
    ({"study": {"heartbeat_s": 60, "grace_s": 30}}, "study", "grace_s"),
    ({"study": {"metric": "val_loss"}, "overrides": ["training.loss=focal"]}, "study.metric",
     "log loss only"),
    ({"sapce": {}}, "sapce", "Extra inputs"),
]


BAD = [(space, {}, field, reason) for space, field, reason in BAD_SPACES] + [
    (OK_SPACE, extra, field, reason) for extra, field, reason in BAD_FILES]


@pytest.mark.parametrize(("space", "extra", "field", "reason"), BAD,
                         ids=[b[2] + "-" + b[3][:12] for b in BAD])
def test_a_bad_file_is_refused_at_load_naming_the_field(
    tmp_path: Path, space: dict, extra: dict, field: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_spec(_write(tmp_path, space, **extra))
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(tmp_path / "hpo.yaml") in str(caught.value)


def test_the_study_name_is_the_cells_identity_and_its_space(tmp_path: Path) -> None:
    spec = load_spec(DEMO)
    name = spec.study_name()
    assert name == load_spec(DEMO).study_name()  # re-running the file continues the study
    cell = RunKey.from_config(spec.cell_config())
    assert name.startswith(f"hpo|{cell.as_tag()}|space=")
    first = load_spec(_write(tmp_path, OK_SPACE, study={"n_trials": 5})).study_name()
    more = load_spec(_write(tmp_path, OK_SPACE, study={"n_trials": 50})).study_name()
    assert first == more  # the trial count is not part of the study
    wider = {"training.lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}}
    assert load_spec(_write(tmp_path, wider)).study_name() != first
    other_cell = load_spec(_write(tmp_path, OK_SPACE, overrides=["dataset.horizon=5"]))
    assert other_cell.study_name() != first
