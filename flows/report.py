"""Flow ``report``: an experiment's report (results table, plots, summary) logged to MLflow.

Orchestration only: one task that scores the matrix's missing baselines, builds the results
table from MLflow, renders the report into the workspace and logs it under the
experiment's parent run. It needs no GPU: the deployment runs on the CPU pool.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from tasks.evaluation import publish_report_task

DEFAULT_EXPERIMENT = "demo"


@flow(name="report", log_prints=True)
def report(
    experiment: str = DEFAULT_EXPERIMENT,
    config_path: str | None = None,
    home: str | None = None,
    baselines: bool = True,
) -> dict[str, object]:
    """Publish the report of an experiment; returns where it is and what it holds.

    Args:
        experiment: an MLflow experiment name (all its runs), an experiment matrix (a file
            such as configs/experiments/demo.yaml, or its name: demo) or a config file.
        config_path: config giving the tracking store and workspace (relative to the
            repository root); empty uses the default config.
        home: workspace folder (data, MLflow, reports); empty uses the config's.
        baselines: score the matrix's baselines that are not logged yet before reporting.
    """
    ref = publish_report_task(experiment, config_path, home, baselines)
    print(f"report of {experiment}: {ref.rows} rows, {ref.images} plots, "
          f"{ref.baselines_logged} baseline runs logged; {ref.index} (MLflow run "
          f"{ref.parent_run_id})")
    return asdict(ref)
