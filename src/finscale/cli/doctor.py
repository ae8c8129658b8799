"""`finscale doctor`: is this machine ready to run finscale?

Each check reports ok / warn / fail with a one-line detail. Only hard failures (a missing core
package, an unwritable workspace or MLflow store, a configured Prefect API that does not answer)
make the command exit non-zero; a missing thermal sensor or GPU is a warning.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from finscale.cli.common import build_context, print_table
from finscale.config.redact import redact_text

# The config schema (pydantic), platform, importlib.metadata and urllib.request are imported
# where a check uses them: `finscale --help` builds this parser and should not pay for them.
if TYPE_CHECKING:
    from finscale.config import AppConfig
    from finscale.workspace import Workspace

Status = Literal["ok", "warn", "fail"]

CORE_PACKAGES = (
    "torch", "pandas", "numpy", "pyarrow", "pydantic", "sqlalchemy", "prefect", "mlflow",
    "optuna", "yfinance", "fredapi", "exchange_calendars", "ta-lib",
)
MIN_FREE_DISK_BYTES = 2 * 1024**3
HTTP_PROBE_TIMEOUT_S = 2.0
PREFECT_API_ENV = "PREFECT_API_URL"
SYS_THERMAL_GLOB = "/sys/class/thermal/thermal_zone*/temp"
SQLITE_PREFIX = "sqlite:///"
EXIT_HARD_FAILURE = 1


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    detail: str


def check_python() -> Check:
    import platform

    return Check("python", "ok", f"{platform.python_version()} ({platform.platform()})")


def check_packages() -> list[Check]:
    """Installed versions of the packages finscale needs; a missing one is a hard failure."""
    import importlib.metadata

    checks = []
    for package in CORE_PACKAGES:
        try:
            checks.append(Check(package, "ok", importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(package, "fail", "not installed (run `make setup`)"))
    return checks


def check_torch_device() -> Check:
    """The accelerator torch would use: cuda, mps or cpu (cpu is a warning, not a failure)."""
    try:
        import torch
    except ImportError as exc:
        return Check("torch device", "fail", f"torch not importable: {exc}")
    if torch.cuda.is_available():
        return Check("torch device", "ok", f"cuda ({torch.cuda.get_device_name(0)})")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return Check("torch device", "ok", "mps (Apple Silicon)")
    return Check("torch device", "warn", f"cpu only ({os.cpu_count()} cores)")


def check_workspace(workspace: Workspace) -> list[Check]:
    """The workspace is writable (a real temp file) and has free disk."""
    try:
        workspace.ensure()
        with tempfile.NamedTemporaryFile(dir=workspace.home, prefix=".doctor-") as handle:
            handle.write(b"ok")
            handle.flush()
        writable = Check("workspace", "ok", f"{workspace.home} writable")
    except OSError as exc:
        return [Check("workspace", "fail", f"{workspace.home} not writable: {exc}")]
    free = shutil.disk_usage(workspace.home).free
    status: Status = "ok" if free >= MIN_FREE_DISK_BYTES else "warn"
    return [writable, Check("free disk", status, f"{free / 1024**3:.1f} GiB free")]


def check_thermal(config: AppConfig) -> Check:
    """Whether any temperature sensor is visible (the thermal guard needs one to train)."""
    found: list[str] = []
    file_path = config.thermal.file_path
    if file_path is not None:
        if Path(file_path).is_file():
            found.append(f"file {file_path}")
        elif config.thermal.sensor == "file":
            return Check("thermal sensor", "warn", f"configured file {file_path} does not exist")
    try:
        import psutil

        temps = getattr(psutil, "sensors_temperatures", lambda: {})()
        if temps:
            found.append(f"psutil ({', '.join(sorted(temps))})")
    except ImportError:
        pass
    if glob.glob(SYS_THERMAL_GLOB):
        found.append("/sys/class/thermal")
    nvml = nvml_state()
    if nvml == "ready":
        found.append("NVML")
    if found:
        return Check("thermal sensor", "ok", "; ".join(found))
    note = "; pynvml importable but NVML library absent" if nvml == "no library" else ""
    return Check("thermal sensor", "warn", f"none found (configure thermal.sensor=file){note}")


def nvml_state() -> Literal["ready", "no library", "absent"]:
    """Whether NVIDIA's NVML answers (pynvml importable and its shared library loads)."""
    if importlib.util.find_spec("pynvml") is None:
        return "absent"
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except Exception:  # pynvml raises NVMLError subclasses we cannot name portably
        return "no library"
    return "ready"


def http_ok(url: str, timeout_s: float = HTTP_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(answered with a non-5xx status, detail) for a GET of ``url``."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return True, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return exc.code < 500, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"unreachable: {getattr(exc, 'reason', exc)}"


def check_prefect(env: Mapping[str, str], probe: Callable[[str], tuple[bool, str]]) -> Check:
    """$PREFECT_API_URL answers /health, or Prefect will run ephemeral (no server needed)."""
    api_url = env.get(PREFECT_API_ENV)
    if not api_url:
        return Check("prefect api", "ok", f"ephemeral (no {PREFECT_API_ENV} set)")
    reachable, detail = probe(api_url.rstrip("/") + "/health")
    return Check("prefect api", "ok" if reachable else "fail", f"{api_url}: {detail}")


def check_mlflow(
    config: AppConfig, workspace: Workspace, probe: Callable[[str], tuple[bool, str]]
) -> Check:
    """The MLflow tracking URI: a writable SQLite file's folder, or an HTTP server that answers."""
    uri, source = workspace.tracking_uri(config.tracking.uri)  # the same choice training makes
    if uri.startswith(SQLITE_PREFIX):
        db_path = Path(uri.removeprefix(SQLITE_PREFIX))
        folder = db_path.parent
        if folder.is_dir() and os.access(folder, os.W_OK):
            return Check("mlflow uri", "ok", f"{uri} (from {source}; folder writable)")
        return Check("mlflow uri", "fail",
                     f"{uri} (from {source}): folder {folder} missing or not writable")
    if uri.startswith(("http://", "https://")):
        reachable, detail = probe(uri.rstrip("/") + "/health")
        return Check("mlflow uri", "ok" if reachable else "fail",
                     f"{redact_text(uri)} (from {source}): {redact_text(detail)}")
    return Check("mlflow uri", "warn", f"{redact_text(uri)} (from {source}): scheme not checked")


def run_checks(
    config: AppConfig,
    workspace: Workspace,
    env: Mapping[str, str] | None = None,
    probe: Callable[[str], tuple[bool, str]] = http_ok,
) -> list[Check]:
    """Every check, in report order."""
    env = os.environ if env is None else env
    return [
        check_python(),
        *check_packages(),
        check_torch_device(),
        *check_workspace(workspace),
        check_thermal(config),
        check_prefect(env, probe),
        check_mlflow(config, workspace, probe),
    ]


def doctor_command(args: argparse.Namespace) -> int:
    # the workspace is not created here: check_workspace creates it and reports a failure
    context = build_context(args, ensure_workspace=False)
    checks = run_checks(context.config, context.workspace)
    print_table(["check", "status", "detail"], [[c.name, c.status, c.detail] for c in checks])
    failures = [c for c in checks if c.status == "fail"]
    if failures:
        print(f"\n{len(failures)} hard failure(s): {', '.join(c.name for c in failures)}")
        return EXIT_HARD_FAILURE
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `doctor` sub-command."""
    parser = sub.add_parser("doctor", help="check versions, device, workspace, sensors, servers")
    parser.set_defaults(func=doctor_command)
