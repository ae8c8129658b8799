"""Headless Chromium (Debian's `chromium`) for UI checks: the rendered DOM of a page after
its scripts ran, and a screenshot. Bounded by a timeout; fails naming what is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--no-first-run",
                  "--window-size=1400,900")
VIRTUAL_TIME_BUDGET_MS = 15000  # MLflow's charts need the full budget to draw
BROWSER_TIMEOUT_S = 120


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)


def rendered_dom(url: str, profile: Path) -> str:
    """The page's DOM after its JavaScript ran (a single-page app's real content)."""
    done = _run(["--dump-dom", url], profile)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, path: Path, profile: Path) -> Path:
    """A PNG of the page, written to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _run([f"--screenshot={path}", url], profile)
    assert done.returncode == 0 and path.is_file(), done.stderr[-2000:]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path
