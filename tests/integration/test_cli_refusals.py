"""The CLI and the flow refuse bad names before anything is read, stored or logged; a damaged
raw file makes `features build` and `dataset build` print one line with the repair command,
not a traceback; `data status` does not show names no refresh accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.cli.main import main
from finscale.config import load_config
from finscale.data.config import DataConfig
from finscale.data.refresh import refresh_universe
from finscale.data.refresh_log import RefreshLog
from finscale.data.sources import make_macro_source
from finscale.data.sources.fred import FRED_API_KEY_ENV
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support.fake_fred import FakeFredServer
from tests.support.raw_workspace import fill_raw_workspace

pytestmark = pytest.mark.integration
assert load_config  # finscale.config first: avoids the config <-> data.config import cycle

API_KEY = "0123456789abcdef-test-key"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``finscale *argv`` in-process: exit code (argparse's too), stdout, stderr."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _damage_raw(workspace: Workspace, name: str) -> Path:
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        record = manifest.latest(name)
        assert record is not None
        path = manifest.absolute(record)
    finally:
        manifest.close()
    path.write_bytes(path.read_bytes() + b"x")
    return path


@pytest.mark.parametrize(
    "args",
    [["--tickers", "../../x", "--series"], ["--tickers", "/etc/passwd", "--series"],
     ["--tickers", "--series", "DGS10&api_key=x"]],
)
def test_refresh_refuses_bad_names_and_stores_or_logs_nothing(
    args: list[str], workspace: Workspace, shared_data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = ["--home", str(workspace.home)]
    code, _, err = _run(capsys, *home, "data", "refresh", "--mirror", str(shared_data_dir),
                        *args)

    assert code == 2 and "is not a valid ticker or series id" in err
    code, out, _ = _run(capsys, *home, "data", "status")
    assert code == 0 and "no raw data" in out


def test_status_leaves_out_names_logged_before_names_were_checked(
    workspace: Workspace, shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(workspace.home)]
    assert _run(capsys, *home, "data", "refresh", "--mirror", str(shared_data_dir),
                "--tickers", "DIA", "--series")[0] == 0
    check_log = RefreshLog(workspace.manifest_url)
    check_log.record(name="raw/market/../../x", source="csv", status="new_rows",
                     rows_added=1, version=1, reason="an old escape")
    check_log.close()

    code, out, err = _run(capsys, *home, "data", "status")

    assert code == 0 and "raw/market/DIA" in out and "../../x" not in out
    assert "ignored 1 name(s)" in err


def test_flow_parameters_refuse_bad_names() -> None:
    from prefect.exceptions import ParameterTypeError

    from flows.data_refresh import data_refresh

    ok = data_refresh.validate_parameters({"tickers": ["SPY", "BRK-B"],
                                           "fred_series": ["DGS10"]})
    assert ok["tickers"] == ["SPY", "BRK-B"]
    for bad in ({"tickers": ["../../x"]}, {"fred_series": ["DGS10&api_key=x"]}):
        with pytest.raises(ParameterTypeError, match="not a valid ticker or series id"):
            data_refresh.validate_parameters(bad)
    schema = data_refresh.parameters.model_dump()["properties"]["tickers"]["anyOf"][0]
    assert schema["items"]["pattern"].startswith("^")  # the UI form checks it too


def test_a_query_rewriting_series_id_never_reaches_fred(
    workspace: Workspace, shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FRED_API_KEY_ENV, API_KEY)
    manifest = Manifest(workspace.manifest_url, workspace.home)
    with FakeFredServer(shared_data_dir / "fred", api_key=API_KEY) as server:
        config = DataConfig(source="fred", fred_api_root=server.root_url, timeout_s=5)
        source = make_macro_source(config)
        with pytest.raises(ValueError, match="not a valid ticker or series id"):
            refresh_universe(manifest, workspace, config, market_source=None,
                             macro_source=source, fred_series=["DGS10&api_key=x"])
        assert server.observation_requests() == []
    manifest.close()


@pytest.mark.parametrize("command", [["features", "build"], ["dataset", "build"]])
def test_damaged_raw_file_prints_one_line_with_the_full_refresh_hint(
    command: list[str], workspace: Workspace, shared_data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill_raw_workspace(workspace, shared_data_dir)
    damaged = _damage_raw(workspace, "raw/market/SPY")

    code, _, err = _run(capsys, "--home", str(workspace.home), *command)

    assert code == 3
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: raw/market/SPY: ") and str(damaged) in lines[0]
    assert "does not match manifest" in lines[0]
    assert "`finscale data refresh --full --tickers SPY --series`" in lines[0]
