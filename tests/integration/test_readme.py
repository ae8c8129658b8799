"""The README's shell blocks fenced as ``sh runnable`` run as written (cheap commands: help,
listings) in a fresh workspace; the README names the two commands and what CI runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
RUNNABLE = re.compile(r"^```sh runnable\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMAND_TIMEOUT_S = 120


def runnable_commands() -> list[str]:
    blocks = RUNNABLE.findall(README.read_text(encoding="utf-8"))
    return [line for block in blocks for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_has_runnable_blocks_and_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert runnable_commands(), "no ```sh runnable block: this test would check nothing"
    assert "make demo" in text and "make test" in text
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", runnable_commands())
def test_runnable_readme_command(command: str, tmp_path: Path) -> None:
    argv = shlex.split(command)
    if argv[0] == "finscale":  # the CLI of this checkout's interpreter
        argv = [sys.executable, "-m", "finscale.cli.main", *argv[1:]]
    env = {**os.environ, "FINSCALE_HOME": str(tmp_path / "ws")}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S)
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    assert done.stdout.strip(), f"{command} printed nothing"
