"""The feature and dataset CLI on a fresh workspace filled from the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.cli.main import main
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

pytestmark = pytest.mark.integration
BUILD_TIER = "a500"


@pytest.fixture()
def filled(workspace: Workspace, shared_data_dir: Path) -> Workspace:
    fill_raw_workspace(workspace, shared_data_dir)
    return workspace


def test_features_build_a500_three_tickers_then_reuse(
    filled: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--home", str(filled.home), "features", "build", "--tier", BUILD_TIER,
            "--tickers", "SPY", "DIA", "QQQ"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count(" built ") == 3
    manifest = Manifest(filled.manifest_url, filled.home)
    try:
        for ticker in ("SPY", "DIA", "QQQ"):
            record = manifest.latest(f"features/{BUILD_TIER}/{ticker}")
            assert record is not None and record.kind == "features"
            assert len(record.meta["features"]) == 500
            raw = manifest.latest(f"raw/market/{ticker}")
            assert raw is not None and raw.id in record.parent_ids
    finally:
        manifest.close()
    assert main(argv) == 0
    assert capsys.readouterr().out.count(" reused ") == 3


def test_dataset_describe_and_build(filled: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(filled.home)]
    assert main([*home, "dataset", "describe"]) == 0
    out = capsys.readouterr().out
    for horizon in ("1d", "2d", "3d", "5d", "1w"):
        assert sum(line.startswith(horizon + " ") for line in out.splitlines()) == 3
    assert "pos 0.5%" in out and "pos 3%" in out
    # weekly with context 80 is too small: the output says which split and why
    assert "1w val: refused: " in out and "context 80 + horizon 1 weeks" in out
    assert "rows missing macro (hy_oas_z_252 until 1997-12-22" in out
    folds = ["--set", "dataset.splits.walk_forward={folds: 2, val_days: 365}"]
    assert main([*home, *folds, "dataset", "describe", "--no-weekly"]) == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("1d fold 1 ") for line in out.splitlines()) == 3
    assert main([*home, "--config", "configs/experiments/weekly.yaml", "dataset", "build"]) == 0
    assert "datasets/SPY/a20/weekly/h1" in capsys.readouterr().out
    assert main([*home, "dataset", "build"]) == 0
    built = capsys.readouterr().out
    assert "datasets/SPY/a20/daily/h1" in built and "train:" in built
    # a floor no split can meet: refused with a message naming the splits
    assert main([*home, "--set", "dataset.splits.min_samples=100000", "dataset", "build"]) == 3
    assert "below splits.min_samples=100000" in capsys.readouterr().err


def test_dataset_build_and_describe_one_walk_forward_fold(
    filled: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(filled.home)]
    assert main([*home, "dataset", "build", "--fold", "1"]) == 0
    out = capsys.readouterr().out
    assert "walk-forward fold 1 of 3" in out and "datasets/SPY/a20/daily/h1/fold1 v1" in out
    assert "val: " in out and "(range 2016-04-25..2017-08-17)" in out
    assert main([*home, "dataset", "describe", "--no-weekly", "--fold", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("1d fold 1 ") for line in lines) == 3
    assert not any(line.startswith(("1d fold 0 ", "1d ")) and "fold 1" not in line
                   for line in lines)
    assert not any("refused" in line for line in lines)  # default folds pass the floor
    assert main([*home, "dataset", "build", "--fold", "3"]) == 2
    assert "fold 3 is out of range: walk_forward has 3 folds" in capsys.readouterr().err


def test_features_list_prints_every_feature_with_description(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--home", str(tmp_path / "ws"), "features", "list", "--tier", "a20"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line[:1].isdigit()]
    assert len(rows) == 20
    assert all(len(line.split()) > 4 for line in rows)
    assert "tier a20: 20 features" in out


def test_features_build_without_raw_data_names_the_artifact(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--home", str(workspace.home), "features", "build", "--tier", "a20",
            "--tickers", "SPY"]
    assert main(argv) == 3
    assert "raw/market/SPY" in capsys.readouterr().err


def test_features_list_covers_vix_and_macro_and_names_known_tiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(tmp_path)]
    assert main([*home, "features", "list", "--tier", "vix"]) == 0
    assert "tier vix: 8 features" in capsys.readouterr().out
    assert main([*home, "features", "list", "--tier", "macro"]) == 0
    assert "tier macro:" in capsys.readouterr().out
    assert main([*home, "features", "list", "--tier", "a999"]) == 2
    err = capsys.readouterr().err
    assert "tier 'a999' not found" in err and "a20, a50, a100, a200, a250, a500" in err
    assert main([*home, "features", "build", "--tier", "vix", "--tickers", "SPY"]) == 2
    assert "'vix' is not a per-ticker tier" in capsys.readouterr().err
