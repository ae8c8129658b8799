"""`finscale --help` stays fast: building the parser imports no heavy library.

The house rule: the CLI imports a verb's heavy modules when that verb runs. Checked by what is
in ``sys.modules`` of a fresh interpreter (deterministic), not by timing it;
benchmarks/cli_startup.py measures the time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

from finscale.cli import choices

REPO = Path(__file__).resolve().parents[3]
# Libraries that take from tens of milliseconds to seconds to import, and the config schema
# (pydantic): none of them is needed to print help.
HEAVY_ROOTS = (
    "pandas", "numpy", "sqlalchemy", "torch", "mlflow", "prefect", "optuna", "pyarrow", "scipy",
    "sklearn", "exchange_calendars", "talib", "yfinance", "fredapi", "matplotlib", "plotly",
    "pydantic", "pydantic_core", "psycopg", "requests", "yaml",
)
# Runs in a fresh interpreter: imports every module of finscale.cli (registered in main.py or
# not yet), prints the help of the command and of every verb, then reports sys.modules.
PROBE = """
import argparse, contextlib, importlib, io, json, pkgutil, sys
import finscale.cli
from finscale.cli.main import build_parser, main

def verbs_of(register):
    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    return sorted(sub.choices)

modules = [importlib.import_module(f"finscale.cli.{m.name}")
           for m in pkgutil.iter_modules(finscale.cli.__path__)]
module_verbs = {m.__name__: verbs_of(m.register) for m in modules if hasattr(m, "register")}
verbs = sorted(next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction)).choices)
for argv in (["--help"], *([verb, "--help"] for verb in verbs)):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(json.dumps({"modules": sorted(sys.modules), "verbs": verbs, "module_verbs": module_verbs}))
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSCALE_")}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def _probe() -> dict[str, list[str]]:
    result = _run("-c", PROBE)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_parser_and_every_help_import_no_heavy_module() -> None:
    probe = _probe()
    heavy = sorted({m.split(".")[0] for m in probe["modules"]} & set(HEAVY_ROOTS))
    assert heavy == [], f"imported while building the parser or printing help: {heavy}"
    assert "finscale.config.schema" not in probe["modules"]
    assert len(probe["module_verbs"]) >= 8  # the probe did import the verb modules


def test_help_exits_0_and_lists_every_verb_of_every_command_module() -> None:
    probe = _probe()
    module_verbs = sorted(v for verbs in probe["module_verbs"].values() for v in verbs)
    assert probe["verbs"] == module_verbs  # every verb module is registered in main.py
    result = _run("-m", "finscale.cli.main", "--help")
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^ {4}(\w+)", result.stdout, flags=re.MULTILINE)
    assert sorted(listed) == module_verbs, result.stdout


def test_literal_choices_match_the_config_schema() -> None:
    from finscale.data.config import SourceName
    from finscale.datasets.config import DatasetConfig

    assert get_args(SourceName) == choices.SOURCES
    assert get_args(DatasetConfig.model_fields["timescale"].annotation) == choices.TIMESCALES
