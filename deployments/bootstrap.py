"""Idempotent bootstrap of a Prefect API for finscale: pools, the GPU limit, deployments.

1. work pools ``finscale-cpu`` and ``finscale-gpu`` (type ``process``; GPU limit 1),
2. the global concurrency limit ``gpu`` (limit 1, active) that training takes with
   ``concurrency("gpu", occupy=1, strict=True)``; without it a strict slot fails,
3. ``prefect --no-prompt deploy --all`` from the repository root with ``FINSCALE_REPO``
   set (prefect.yaml's pull step changes into it), then checks that every deployment
   declared in prefect.yaml is registered.

Running it again changes nothing that is already right. Every API call and the deploy
subprocess are bounded by timeouts.

    python deployments/bootstrap.py --api-url http://127.0.0.1:4200/api
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    WorkPoolCreate,
    WorkPoolUpdate,
)
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.workers.process import ProcessWorker

REPO_ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = "prefect.yaml"
REPO_ENV = "FINSCALE_REPO"
POOL_TYPE = "process"
GPU_LIMIT_NAME = "gpu"
GPU_LIMIT_SLOTS = 1
DEFAULT_CALL_TIMEOUT_S = 30.0
DEFAULT_HEALTH_TIMEOUT_S = 60.0
DEFAULT_DEPLOY_TIMEOUT_S = 300.0
HEALTH_POLL_INTERVAL_S = 0.5
OUTPUT_TAIL_CHARS = 4000
OFFLINE_SETTINGS: Mapping[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
}

T = TypeVar("T")


class BootstrapError(RuntimeError):
    """The bootstrap could not bring the API to the declared state; says what and why."""


@dataclass(frozen=True)
class PoolSpec:
    """A work pool finscale needs; ``concurrency_limit=None`` leaves the pool's as it is."""

    name: str
    description: str
    concurrency_limit: int | None = None


POOLS: tuple[PoolSpec, ...] = (
    PoolSpec("finscale-cpu", "finscale data and feature flows (process worker)"),
    PoolSpec("finscale-gpu", "finscale training: one run at a time on the GPU", 1),
)


@dataclass(frozen=True)
class BootstrapReport:
    """What the bootstrap did to each object: created, updated or unchanged."""

    actions: tuple[tuple[str, str], ...]
    deployments: tuple[str, ...]


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed per API call, for the API to become healthy, and for the deploy."""

    call_s: float = DEFAULT_CALL_TIMEOUT_S
    health_s: float = DEFAULT_HEALTH_TIMEOUT_S
    deploy_s: float = DEFAULT_DEPLOY_TIMEOUT_S


async def bounded(call: Awaitable[T], what: str, timeout_s: float) -> T:
    """Await ``call`` for at most ``timeout_s``; a timeout becomes a BootstrapError naming it."""
    try:
        return await asyncio.wait_for(call, timeout=timeout_s)
    except TimeoutError as error:
        raise BootstrapError(f"{what}: no answer within {timeout_s:.0f} s") from error


async def wait_for_api(client: PrefectClient, timeout_s: float) -> None:
    """Poll the API's health endpoint until it answers, at most ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Exception | None = None
    while loop.time() < deadline:
        last = await bounded(client.api_healthcheck(), "health check", timeout_s)
        if last is None:
            return
        await asyncio.sleep(HEALTH_POLL_INTERVAL_S)
    raise BootstrapError(
        f"Prefect API at {client.api_url} is not reachable after {timeout_s:.0f} s "
        f"(last error: {last!r}); start one with `python deployments/server.py`"
    )


async def ensure_work_pool(client: PrefectClient, spec: PoolSpec, timeout_s: float) -> str:
    """Create the pool with the process worker's default job template, or fix its limit."""
    try:
        pool = await bounded(client.read_work_pool(spec.name), f"read pool {spec.name}", timeout_s)
    except ObjectNotFound:
        create = WorkPoolCreate(
            name=spec.name,
            type=POOL_TYPE,
            description=spec.description,
            base_job_template=ProcessWorker.get_default_base_job_template(),
            concurrency_limit=spec.concurrency_limit,
        )
        await bounded(client.create_work_pool(create), f"create pool {spec.name}", timeout_s)
        return "created"
    if pool.type != POOL_TYPE:
        raise BootstrapError(
            f"work pool {spec.name!r} exists with type {pool.type!r}, expected {POOL_TYPE!r}; "
            f"a pool's type cannot change: delete it (`prefect work-pool delete {spec.name}`)"
        )
    if spec.concurrency_limit is None or pool.concurrency_limit == spec.concurrency_limit:
        return "unchanged"
    update = WorkPoolUpdate(concurrency_limit=spec.concurrency_limit)
    await bounded(client.update_work_pool(spec.name, update), f"update pool {spec.name}", timeout_s)
    return "updated"


async def ensure_global_limit(
    client: PrefectClient, name: str, slots: int, timeout_s: float
) -> str:
    """Create the global concurrency limit, or reset its slots and re-activate it."""
    try:
        limit = await bounded(
            client.read_global_concurrency_limit_by_name(name), f"read limit {name}", timeout_s
        )
    except ObjectNotFound:
        create = GlobalConcurrencyLimitCreate(name=name, limit=slots, active=True)
        await bounded(
            client.create_global_concurrency_limit(create), f"create limit {name}", timeout_s
        )
        return "created"
    if limit.limit == slots and limit.active:
        return "unchanged"
    update = GlobalConcurrencyLimitUpdate(limit=slots, active=True)
    await bounded(
        client.update_global_concurrency_limit(name, update), f"update limit {name}", timeout_s
    )
    return "updated"


def declared_deployments(repo: Path) -> list[str]:
    """Deployment names declared in the repository's prefect.yaml."""
    path = repo / PREFECT_YAML
    if not path.is_file():
        raise BootstrapError(f"{path} not found: --repo must be the finscale checkout")
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = [str(entry["name"]) for entry in spec.get("deployments") or []]
    if not names:
        raise BootstrapError(f"{path}: no deployments declared")
    return names


def deploy_env(repo: Path, api_url: str, base: Mapping[str, str]) -> dict[str, str]:
    return {**base, **OFFLINE_SETTINGS, "PREFECT_API_URL": api_url, REPO_ENV: str(repo)}


def deploy_all(repo: Path, api_url: str, timeout_s: float) -> None:
    """Run ``prefect --no-prompt deploy --all`` in ``repo``; errors carry the output tail."""
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]
    try:
        done = subprocess.run(
            command, cwd=repo, env=deploy_env(repo, api_url, os.environ),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as error:
        raise BootstrapError(f"`prefect deploy --all` ran over {timeout_s:.0f} s") from error
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-OUTPUT_TAIL_CHARS:]
        raise BootstrapError(f"`prefect deploy --all` exited {done.returncode}:\n{output}")


async def registered_deployments(
    client: PrefectClient, names: Sequence[str], timeout_s: float
) -> list[str]:
    """The subset of ``names`` that the API knows as deployments."""
    name_filter = DeploymentFilter(name=DeploymentFilterName(any_=list(names)))
    found = await bounded(
        client.read_deployments(deployment_filter=name_filter), "read deployments", timeout_s
    )
    return sorted({deployment.name for deployment in found})


async def prepare_api(client: PrefectClient, timeouts: Timeouts) -> list[tuple[str, str]]:
    """Health, pools and the GPU limit: everything ``deploy --all`` relies on."""
    await wait_for_api(client, timeouts.health_s)
    actions = [
        (f"work pool {spec.name}", await ensure_work_pool(client, spec, timeouts.call_s))
        for spec in POOLS
    ]
    limit_action = await ensure_global_limit(
        client, GPU_LIMIT_NAME, GPU_LIMIT_SLOTS, timeouts.call_s
    )
    actions.append((f"global concurrency limit {GPU_LIMIT_NAME}", limit_action))
    return actions


async def bootstrap(api_url: str, repo: Path, timeouts: Timeouts) -> BootstrapReport:
    """Bring the API at ``api_url`` to finscale's declared state; idempotent."""
    names = declared_deployments(repo)
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client(httpx_settings={"timeout": timeouts.call_s}) as client:
            actions = await prepare_api(client, timeouts)
            await asyncio.to_thread(deploy_all, repo, api_url, timeouts.deploy_s)
            found = await registered_deployments(client, names, timeouts.call_s)
    missing = sorted(set(names) - set(found))
    if missing:
        raise BootstrapError(f"deployments missing after `deploy --all`: {', '.join(missing)}")
    return BootstrapReport(actions=tuple(actions), deployments=tuple(found))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--api-url", default=os.environ.get("PREFECT_API_URL"),
        help="Prefect API, e.g. http://127.0.0.1:4200/api (default $PREFECT_API_URL)",
    )
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="finscale checkout")
    parser.add_argument("--call-timeout", type=float, default=DEFAULT_CALL_TIMEOUT_S)
    parser.add_argument("--health-timeout", type=float, default=DEFAULT_HEALTH_TIMEOUT_S)
    parser.add_argument("--deploy-timeout", type=float, default=DEFAULT_DEPLOY_TIMEOUT_S)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.api_url:
        print("error: no Prefect API: pass --api-url or set PREFECT_API_URL", file=sys.stderr)
        return 2
    timeouts = Timeouts(args.call_timeout, args.health_timeout, args.deploy_timeout)
    try:
        report = asyncio.run(bootstrap(args.api_url, args.repo.resolve(), timeouts))
    except BootstrapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except httpx.HTTPError as error:
        print(f"error: Prefect API at {args.api_url} failed: {error!r}", file=sys.stderr)
        return 1
    for subject, action in report.actions:
        print(f"{subject}: {action}")
    print(f"deployments registered: {', '.join(report.deployments)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
