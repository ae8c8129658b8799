"""Flows ``experiment`` and ``experiment-study``: a whole matrix through the work pool.

Orchestration only. ``experiment`` reads what is left (studies that final jobs wait for,
then unfinished final jobs; finished identities are skipped), waits on the thermal gate
before each submission, and submits each job with ``run_deployment`` to the deployments on
the ``finscale-gpu`` pool: a study to ``experiment-study`` (below), a final run to ``train``
(config path + overrides, the study's best parameters included). Jobs are submitted
without waiting, so several workers (hosts) share them; the flow then polls until they
end. A job whose flow run failed is submitted once more (resuming from its checkpoint when
there is one; a crashed one is re-run by the bootstrap's automation); a thermal stop or a
later failure leaves the job pending for the next ``experiment`` run. The experiment flow
itself runs on ``finscale-cpu``: holding a slot of the GPU pool while its jobs wait for one
would deadlock them.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.concurrency.sync import concurrency
from prefect.deployments import run_deployment

from tasks.experiment import matrix_summary, pending_finals, pending_studies, run_matrix_study
from tasks.training import thermal_gate

DEFAULT_MATRIX = "configs/experiments/demo.yaml"
TRAIN_DEPLOYMENT = "train/train"
STUDY_DEPLOYMENT = "experiment-study/experiment-study"
GPU_SLOT = "gpu"
GATE_TIMEOUT_S = 3600.0
WAIT_TIMEOUT_S = 7 * 24 * 3600.0
POLL_S = 5.0
# A crashed train run is re-run once by the automation deployments/bootstrap.py creates;
# submitting it again here as well would race that re-run.
RETRY_STATES = (StateType.FAILED,)


def _wait(flow_runs: dict[UUID, str], timeout_s: float, poll_s: float) -> dict[str, StateType]:
    """Poll the submitted flow runs until each is final; job id -> final state type."""
    ended: dict[str, StateType] = {}
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while len(ended) < len(flow_runs):
            for run_id, job_id in flow_runs.items():
                if job_id in ended:
                    continue
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    ended[job_id] = state.type
                    print(f"{job_id}: {state.type.value}")
            if len(ended) < len(flow_runs):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(flow_runs) - len(ended)} jobs still running "
                                       f"after {timeout_s:.0f} s")
                time.sleep(poll_s)
    return ended


def _submit(jobs: list[dict[str, Any]], deployment: str, parameters: Any,
            gate_timeout_s: float) -> dict[UUID, str]:
    """Gate, then submit each job without waiting; flow run id -> job id."""
    submitted: dict[UUID, str] = {}
    for job in jobs:
        gate = thermal_gate(job["config_path"], list(job["overrides"]), gate_timeout_s)
        print(f"thermal gate passed ({gate.celsius} °C, {gate.state}): submitting {job['id']}")
        run = run_deployment(deployment, parameters=parameters(job), timeout=0,
                             flow_run_name=job["id"])
        submitted[run.id] = job["id"]
    return submitted


@flow(name="experiment", log_prints=True)
def experiment(
    config_path: str = DEFAULT_MATRIX,
    home: str | None = None,
    gpu_slot: str | None = GPU_SLOT,
    gate_timeout_s: float = GATE_TIMEOUT_S,
    wait_timeout_s: float = WAIT_TIMEOUT_S,
    poll_s: float = POLL_S,
    train_deployment: str = TRAIN_DEPLOYMENT,
    study_deployment: str = STUDY_DEPLOYMENT,
) -> dict[str, int]:
    """Run what is left of an experiment matrix on the work pool; returns jobs by state.

    Args:
        config_path: matrix file relative to the repository root
            (e.g. configs/experiments/phase6a.yaml).
        home: workspace folder (data, checkpoints, MLflow, optuna.db) shared by the jobs;
            empty uses the config's.
        gpu_slot: global concurrency limit each job holds while it trains (strict: it must
            exist); empty runs the jobs without one.
        gate_timeout_s: seconds the thermal gate waits for a cool host before a submission.
        wait_timeout_s: seconds to wait for the submitted jobs of one stage to end.
        poll_s: seconds between checks of the submitted jobs.
        train_deployment: deployment that trains one final run (flow/deployment name).
        study_deployment: deployment that runs one study of a matrix.
    """
    def study_parameters(job: dict[str, Any]) -> dict[str, Any]:
        return {"config_path": config_path, "job_id": job["id"], "home": home,
                "gpu_slot": gpu_slot, "gate_timeout_s": gate_timeout_s}

    def final_parameters(job: dict[str, Any]) -> dict[str, Any]:
        return {"config_path": job["config_path"], "overrides": list(job["overrides"]),
                "resume": bool(job.get("resume", False)), "home": home, "gpu_slot": gpu_slot,
                "gate_timeout_s": gate_timeout_s}

    studies = pending_studies(config_path, home)
    print(f"{len(studies)} studies to run first")
    _wait(_submit(studies, study_deployment, study_parameters, gate_timeout_s),
          wait_timeout_s, poll_s)
    finals = pending_finals(config_path, home)
    print(f"{len(finals['to_run'])} final runs to start, {len(finals['finished'])} finished, "
          f"{len(finals['waiting'])} waiting for a study")
    ended = _wait(_submit(finals["to_run"], train_deployment, final_parameters,
                          gate_timeout_s), wait_timeout_s, poll_s)
    failed = {job_id for job_id, state in ended.items() if state in RETRY_STATES}
    if failed:  # once more, resuming from a checkpoint where the failure left one
        again = [job for job in pending_finals(config_path, home)["to_run"]
                 if job["id"] in failed]
        print(f"submitting {len(again)} failed final runs once more")
        _wait(_submit(again, train_deployment, final_parameters, gate_timeout_s),
              wait_timeout_s, poll_s)
    summary = matrix_summary(config_path, home)
    print("jobs by state: " + ", ".join(f"{n} {s}" for s, n in sorted(summary.items())))
    return summary


@flow(name="experiment-study", log_prints=True)
def experiment_study(
    config_path: str,
    job_id: str,
    home: str | None = None,
    gpu_slot: str | None = GPU_SLOT,
    gate_timeout_s: float = GATE_TIMEOUT_S,
) -> dict[str, Any]:
    """One study of an experiment matrix, run to its trial count behind the thermal gate.

    Args:
        config_path: matrix file relative to the repository root.
        job_id: the study's job id in that matrix (as `finscale experiment plan` lists it,
            e.g. phase6a/hpo/budget=2M,task=th1).
        home: workspace folder; empty uses the config's.
        gpu_slot: global concurrency limit held while the study trains (strict); empty
            runs without one.
        gate_timeout_s: seconds the thermal gate waits for a cool host first.
    """
    slot = concurrency(gpu_slot, occupy=1, strict=True) if gpu_slot else nullcontext()
    with slot:  # the gate inside the slot: the reading is of the host about to heat
        jobs = {job["id"]: job for job in pending_studies(config_path, home)}
        if job_id not in jobs:
            print(f"{job_id}: nothing to run (done, or not a study this matrix waits for)")
            return {"study": job_id, "state": "done"}
        job = jobs[job_id]
        thermal_gate(job["config_path"], list(job["overrides"]), gate_timeout_s)
        result = run_matrix_study(config_path, job_id, home)
    print(f"study {result['study']}: {result['state']}, {result['trials']} trials, "
          f"best {result['best_value']}")
    return result
