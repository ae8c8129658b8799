"""A mirror file above ``data.mirror_max_file_mb`` is refused before it is parsed, with a
message naming the file, its size and the setting; the stored version stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.config import ConfigError, load_config
from finscale.data.config import DataConfig
from finscale.data.refresh import RefreshStatus, RefreshSummary, refresh_universe
from finscale.data.sources import make_macro_source, make_market_source
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

LIMIT_MB = 0.25  # SPY.csv is about 0.5 MB; its last 1000 rows about 0.07 MB


def _refresh(workspace: Workspace, config: DataConfig, mirror: Path) -> RefreshSummary:
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        (summary,) = refresh_universe(
            manifest, workspace, config, market_source=make_market_source(config, mirror),
            macro_source=make_macro_source(config, mirror), tickers=["SPY"], fred_series=[])
        return summary
    finally:
        manifest.close()


def test_oversized_mirror_file_is_refused_naming_file_size_and_setting(
    shared_data_dir: Path, tmp_path: Path, workspace: Workspace
) -> None:
    lines = (shared_data_dir / "market" / "SPY.csv").read_text().splitlines()
    path = tmp_path / "market" / "SPY.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([lines[0], *lines[-1000:]]) + "\n")
    config = DataConfig(mirror_max_file_mb=LIMIT_MB)
    first = _refresh(workspace, config, tmp_path)
    assert first.status is RefreshStatus.NEW_ROWS

    # the whole history plus trailing junk: too big, and it would not even parse
    path.write_text("\n".join(lines) + "\n" + "garbage,,,\n" * 100)
    size = path.stat().st_size
    summary = _refresh(workspace, config, tmp_path)

    assert summary.status is RefreshStatus.FAILED and summary.version == first.version
    assert str(path) in summary.reason and f"{size} bytes" in summary.reason
    assert f"data.mirror_max_file_mb={LIMIT_MB:g}" in summary.reason
    assert "not a" not in summary.reason  # refused before parsing, not a parse error
    assert _refresh(workspace, DataConfig(), tmp_path).status is RefreshStatus.FAILED  # junk


def test_default_limit_reads_the_real_mirror_and_bad_limits_fail_at_load(
    shared_data_dir: Path, tmp_path: Path, workspace: Workspace
) -> None:
    assert DataConfig().mirror_max_file_mb == 64
    assert _refresh(workspace, DataConfig(), shared_data_dir).rows == 7802
    with pytest.raises(ConfigError, match="mirror_max_file_mb"):
        load_config(overrides=["data.mirror_max_file_mb=0"])
