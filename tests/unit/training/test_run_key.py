"""Run keys: a walk-forward fold joins the key only when set; fixed-split keys keep their form."""

from __future__ import annotations

from pathlib import Path

from finscale.config import load_config
from finscale.training.run_key import RunKey

REPO = Path(__file__).resolve().parents[3]
FIXED_TAG = ("phase=dev|tickers=SPY|timescale=daily|budget=100k|horizon=1|tier=a20|task=all|"
             "seed=3|settings=0123456789")


def _key(fold: int | None = None) -> RunKey:
    return RunKey("dev", "SPY", "daily", "100k", 1, "a20", "all", 3, "0123456789", fold=fold)


def test_fixed_split_key_has_no_fold_field() -> None:
    key = _key()
    assert key.fold is None
    assert key.as_tag() == FIXED_TAG
    assert "fold" not in key.as_tags()
    assert key.as_path() == FIXED_TAG.replace("|", "__")


def test_fold_joins_tag_tags_and_path() -> None:
    key = _key(fold=2)
    assert key.as_tag() == FIXED_TAG + "|fold=2"
    assert key.as_tags()["fold"] == "2" and key.as_tags()["run_key"] == key.as_tag()
    assert key.as_path().endswith("__fold=2")


def test_folds_from_config_never_collide() -> None:
    base = REPO / "configs" / "base.yaml"
    fixed = RunKey.from_config(load_config(base))
    folds = [RunKey.from_config(load_config(base, overrides=[
        f"dataset.splits.walk_forward.fold={k}"])) for k in range(3)]
    assert fixed.fold is None and [k.fold for k in folds] == [0, 1, 2]
    tags = {fixed.as_tag(), *(k.as_tag() for k in folds)}
    paths = {fixed.as_path(), *(k.as_path() for k in folds)}
    assert len(tags) == len(paths) == 4
