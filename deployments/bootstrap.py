"""Idempotent bootstrap of a Prefect API for finscale: pools, the GPU limit, deployments.

1. work pools ``finscale-cpu`` and ``finscale-gpu`` (type ``process``; the GPU pool's limit
   is ``--gpus``, 1 by default: one job per GPU across every host serving the pool),
2. the global concurrency limit ``gpu`` (``--gpus`` slots, active) that training takes with
   ``concurrency("gpu", occupy=1, strict=True)``; without it a strict slot fails,
3. ``prefect --no-prompt deploy --all`` from the repository root with ``FINSCALE_REPO``
   set (prefect.yaml's pull step changes into it), then checks that every deployment
   declared in prefect.yaml is registered,
4. crash recovery for every deployment whose job variables set
   ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``: an automation that marks a run Crashed when its
   heartbeats stop for ``--heartbeats-missed`` intervals (which frees the deployment and
   pool slots), and for the deployments in ``CRASH_RETRY_DEPLOYMENTS`` one that schedules a
   run crashed on its first attempt again (once: the match is on run count 1).

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
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

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
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.workers.process import ProcessWorker

REPO_ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = "prefect.yaml"
REPO_ENV = "FINSCALE_REPO"
POOL_TYPE = "process"
GPU_LIMIT_NAME = "gpu"
DEFAULT_GPUS = 1  # GPUs serving the finscale-gpu pool, all hosts together
DEFAULT_CALL_TIMEOUT_S = 30.0
DEFAULT_HEALTH_TIMEOUT_S = 60.0
DEFAULT_DEPLOY_TIMEOUT_S = 300.0
HEALTH_POLL_INTERVAL_S = 0.5
OUTPUT_TAIL_CHARS = 4000
HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
MIN_HEARTBEAT_S = 30  # Prefect's floor (flow_engine.MINIMUM_HEARTBEAT_INTERVAL)
DEFAULT_HEARTBEATS_MISSED = 3
MIN_HEARTBEATS_MISSED = 2  # one late heartbeat must never crash a live run
# Flows that are safe to run again after a crash: train resumes its checkpoint or returns
# the finished run; a study (hpo, experiment-study) continues to its trial count, the killed
# trial failed by Optuna's heartbeat.
CRASH_RETRY_DEPLOYMENTS = frozenset({"train", "hpo", "experiment-study"})
FLOW_RUNS = "prefect.flow-run.*"
HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
# A heartbeat is followed by another one or by a final state; TimedOut is a Failed state.
ALIVE_OR_DONE_EVENTS = frozenset({
    HEARTBEAT_EVENT, "prefect.flow-run.Completed", "prefect.flow-run.Failed",
    "prefect.flow-run.TimedOut", "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed",
})
CRASHED_EVENT = "prefect.flow-run.Crashed"
FIRST_ATTEMPT = "1"
RETRY_STATE_NAME = "AwaitingRetry"
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


def pools(gpus: int) -> tuple[PoolSpec, ...]:
    """The pools finscale needs; the GPU pool runs at most one job per GPU."""
    return (
        PoolSpec("finscale-cpu", "finscale data and feature flows (process worker)"),
        PoolSpec("finscale-gpu", "finscale training and studies: one job per GPU", gpus),
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


@dataclass(frozen=True)
class DeclaredDeployment:
    """A deployment of prefect.yaml and the heartbeat interval its job variables set."""

    name: str
    heartbeat_s: int | None = None  # None: no heartbeat declared, no crash detection


def declared_heartbeat(entry: Mapping[str, Any], path: Path) -> int | None:
    """The deployment's ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` job variable, checked."""
    job_variables = (entry.get("work_pool") or {}).get("job_variables") or {}
    env = job_variables.get("env") or {}
    raw = env.get(HEARTBEAT_ENV)
    if raw is None:
        return None
    seconds = int(raw) if str(raw).isdigit() else 0
    if seconds < MIN_HEARTBEAT_S:
        raise BootstrapError(
            f"{path}: deployment {entry['name']!r}: {HEARTBEAT_ENV}={raw!r} must be a whole "
            f"number of seconds >= {MIN_HEARTBEAT_S} (Prefect's minimum)"
        )
    return seconds


def declared_deployments(repo: Path) -> list[DeclaredDeployment]:
    """Deployments declared in the repository's prefect.yaml, with their heartbeats."""
    path = repo / PREFECT_YAML
    if not path.is_file():
        raise BootstrapError(f"{path} not found: --repo must be the finscale checkout")
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    declared = [DeclaredDeployment(str(entry["name"]), declared_heartbeat(entry, path))
                for entry in spec.get("deployments") or []]
    if not declared:
        raise BootstrapError(f"{path}: no deployments declared")
    return declared


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
) -> dict[str, list[UUID]]:
    """The ids of the deployments named ``names`` that the API knows, by name."""
    name_filter = DeploymentFilter(name=DeploymentFilterName(any_=list(names)))
    found = await bounded(
        client.read_deployments(deployment_filter=name_filter), "read deployments", timeout_s
    )
    ids: dict[str, list[UUID]] = {}
    for deployment in found:
        ids.setdefault(deployment.name, []).append(deployment.id)
    return ids


def heartbeat_automation(
    deployment: DeclaredDeployment, heartbeat_s: int, deployment_id: UUID, heartbeats_missed: int
) -> AutomationCore:
    """Mark a run of ``deployment`` Crashed when its heartbeats stop (frees its slots)."""
    window_s = heartbeat_s * heartbeats_missed
    return AutomationCore(
        name=f"finscale {deployment.name}: crash runs whose heartbeats stopped",
        enabled=True,
        description=(
            f"A {deployment.name} run sends a heartbeat every {heartbeat_s} s; "
            f"{window_s} s after one without another or a final state, its process is gone: "
            "mark it Crashed, which frees its deployment and work-pool slots."
        ),
        trigger=EventTrigger(
            after={HEARTBEAT_EVENT}, expect=set(ALIVE_OR_DONE_EVENTS),
            match={"prefect.resource.id": FLOW_RUNS}, match_related=of_deployment(deployment_id),
            for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
            within=timedelta(seconds=window_s),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED, message=f"no heartbeat for {window_s} s: process gone")],
    )


def rerun_automation(deployment: DeclaredDeployment, deployment_id: UUID) -> AutomationCore:
    """Schedule a run of ``deployment`` that crashed on its first attempt once more."""
    return AutomationCore(
        name=f"finscale {deployment.name}: run a crashed run again once",
        enabled=True,
        description=(
            f"Schedules a {deployment.name} run that crashed on its first attempt again "
            "(run count 1 only, so a second crash stays Crashed)."
        ),
        trigger=EventTrigger(
            expect={CRASHED_EVENT}, for_each={"prefect.resource.id"},
            match={"prefect.resource.id": FLOW_RUNS, "prefect.run-count": FIRST_ATTEMPT},
            match_related=of_deployment(deployment_id), posture=Posture.Reactive, threshold=1,
        ),
        actions=[ChangeFlowRunState(
            state=StateType.SCHEDULED, name=RETRY_STATE_NAME,
            message="crashed on its first attempt: running it once more")],
    )


def of_deployment(deployment_id: UUID) -> dict[str, str]:
    """Match events whose related deployment is this one."""
    return {"prefect.resource.role": "deployment",
            "prefect.resource.id": f"prefect.deployment.{deployment_id}"}


def crash_automations(
    deployment: DeclaredDeployment, deployment_id: UUID, heartbeats_missed: int
) -> list[AutomationCore]:
    """Crash detection (and, where the flow is safe to re-run, one re-run) for a deployment.

    Not owned by the deployment: `prefect deploy` deletes the automations a deployment
    owns (it replaces them with the deployment's own triggers). Found by name instead.
    """
    if deployment.heartbeat_s is None:
        return []
    automations = [heartbeat_automation(deployment, deployment.heartbeat_s, deployment_id,
                                        heartbeats_missed)]
    if deployment.name in CRASH_RETRY_DEPLOYMENTS:
        automations.append(rerun_automation(deployment, deployment_id))
    return automations


def same_automation(existing: AutomationCore, desired: AutomationCore) -> bool:
    """Equal in what the bootstrap declares (``update_automation`` sends only set fields,
    so the builders set every one of these explicitly)."""
    fields = {"description", "enabled", "trigger", "actions"}
    return existing.model_dump(include=fields) == desired.model_dump(include=fields)


async def ensure_automation(
    client: PrefectClient, desired: AutomationCore, timeout_s: float
) -> str:
    """Create the automation named like ``desired``, or bring the one there to it.

    Duplicates of the name (from a bootstrap interrupted mid-way) are deleted.
    """
    what = f"automation {desired.name!r}"
    found = await bounded(client.read_automations_by_name(desired.name), f"read {what}",
                          timeout_s)
    if not found:
        await bounded(client.create_automation(desired), f"create {what}", timeout_s)
        return "created"
    keep, *duplicates = found
    for duplicate in duplicates:
        await bounded(client.delete_automation(duplicate.id), f"delete {what}", timeout_s)
    if not duplicates and same_automation(keep, desired):
        return "unchanged"
    await bounded(client.update_automation(keep.id, desired), f"update {what}", timeout_s)
    return "updated"


async def ensure_crash_recovery(
    client: PrefectClient, declared: Sequence[DeclaredDeployment],
    ids: Mapping[str, Sequence[UUID]], heartbeats_missed: int, timeout_s: float,
) -> list[tuple[str, str]]:
    """The crash automations of every deployment that declares a heartbeat."""
    actions = []
    for deployment in (d for d in declared if d.heartbeat_s is not None):
        if len(ids[deployment.name]) != 1:
            raise BootstrapError(
                f"{len(ids[deployment.name])} deployments are named {deployment.name!r}: "
                "crash detection needs exactly one; delete the stray ones"
            )
        for automation in crash_automations(deployment, ids[deployment.name][0],
                                            heartbeats_missed):
            action = await ensure_automation(client, automation, timeout_s)
            actions.append((f"automation {automation.name}", action))
    return actions


async def prepare_api(
    client: PrefectClient, timeouts: Timeouts, gpus: int = DEFAULT_GPUS
) -> list[tuple[str, str]]:
    """Health, pools and the GPU limit: everything ``deploy --all`` relies on."""
    await wait_for_api(client, timeouts.health_s)
    actions = [
        (f"work pool {spec.name}", await ensure_work_pool(client, spec, timeouts.call_s))
        for spec in pools(gpus)
    ]
    limit_action = await ensure_global_limit(client, GPU_LIMIT_NAME, gpus, timeouts.call_s)
    actions.append((f"global concurrency limit {GPU_LIMIT_NAME}", limit_action))
    return actions


async def bootstrap(
    api_url: str, repo: Path, timeouts: Timeouts,
    heartbeats_missed: int = DEFAULT_HEARTBEATS_MISSED, gpus: int = DEFAULT_GPUS,
) -> BootstrapReport:
    """Bring the API at ``api_url`` to finscale's declared state; idempotent."""
    if heartbeats_missed < MIN_HEARTBEATS_MISSED:
        raise BootstrapError(f"--heartbeats-missed must be >= {MIN_HEARTBEATS_MISSED}, "
                             f"got {heartbeats_missed}")
    if gpus < 1:
        raise BootstrapError(f"--gpus must be >= 1 (GPUs serving finscale-gpu), got {gpus}")
    declared = declared_deployments(repo)
    names = [deployment.name for deployment in declared]
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client(httpx_settings={"timeout": timeouts.call_s}) as client:
            actions = await prepare_api(client, timeouts, gpus)
            await asyncio.to_thread(deploy_all, repo, api_url, timeouts.deploy_s)
            ids = await registered_deployments(client, names, timeouts.call_s)
            missing = sorted(set(names) - set(ids))
            if missing:
                raise BootstrapError(
                    f"deployments missing after `deploy --all`: {', '.join(missing)}")
            actions += await ensure_crash_recovery(client, declared, ids, heartbeats_missed,
                                                   timeouts.call_s)
    return BootstrapReport(actions=tuple(actions), deployments=tuple(sorted(ids)))


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
    parser.add_argument(
        "--heartbeats-missed", type=int, default=DEFAULT_HEARTBEATS_MISSED,
        help="heartbeat intervals without a heartbeat before a run is marked Crashed "
             f"(at least {MIN_HEARTBEATS_MISSED}; default {DEFAULT_HEARTBEATS_MISSED})",
    )
    parser.add_argument(
        "--gpus", type=int, default=DEFAULT_GPUS,
        help="GPUs serving the finscale-gpu pool, all hosts together: the pool's limit and "
             f"the `gpu` slots (default {DEFAULT_GPUS}; run each GPU worker with --limit 1)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.api_url:
        print("error: no Prefect API: pass --api-url or set PREFECT_API_URL", file=sys.stderr)
        return 2
    timeouts = Timeouts(args.call_timeout, args.health_timeout, args.deploy_timeout)
    try:
        report = asyncio.run(bootstrap(args.api_url, args.repo.resolve(), timeouts,
                                       args.heartbeats_missed, args.gpus))
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
