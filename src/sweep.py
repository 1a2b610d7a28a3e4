"""One parent MLflow run per Hydra multirun, with the jobs' runs nested under it.

The callback runs in Hydra's process (``on_multirun_start``, ``on_multirun_end``) and in
each job's process (``on_job_end``), so it works for any launcher whose jobs can read the
sweep folder. The parent run's id is stored in ``<sweep dir>/mlflow_parent_run.json``;
each job tags its run with ``mlflow.parentRunId`` from there.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

PARENT_FILE = "mlflow_parent_run.json"


def job_overrides(config: DictConfig) -> list[list[str]]:
    """Return the overrides of each job the basic sweeper makes of the sweep's parameters."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params")
    arguments = [f"{key}={value}" for key, value in (params or {}).items()]
    arguments += list(config.hydra.overrides.task)
    overrides = OverridesParser.create().parse_overrides(arguments)
    return BasicSweeper.split_arguments(overrides, None)[0]


def count_jobs(config: DictConfig) -> int:
    """Return how many jobs the basic sweeper makes of the sweep's overrides."""
    return len(job_overrides(config))


def validate_jobs(config: DictConfig) -> None:
    """Compose and validate the config of every job of the sweep before any job starts.

    Raises
    ------
    ConfigError
        Listing, for each job with a broken rule, its overrides and every broken rule.
        Overrides that Hydra itself cannot compose are left for Hydra to report.
    """
    from hydra import compose

    from src.errors import ConfigError, DataError
    from src.redact import redact_text
    from src.validation import validate_config

    jobs = job_overrides(config)
    rejected = []
    for number, overrides in enumerate(jobs):
        try:
            job = compose(config_name=config.hydra.job.config_name, overrides=list(overrides))
        except Exception:  # noqa: BLE001 - Hydra reports composition errors itself when it launches.
            continue
        job_keys = [key for key in job if key != "hydra"]
        try:
            validate_config(OmegaConf.to_container(OmegaConf.masked_copy(job, job_keys), resolve=True))
        except (ConfigError, DataError) as error:
            rules = str(error).removeprefix("Invalid config:\n")
            # Hydra escapes ":" and other grammar characters in values, so they are shown as typed.
            typed = redact_text(" ".join(overrides).replace("\\", ""))
            rejected.append(f"job {number} ({typed}):\n{rules}")
    if rejected:
        raise ConfigError(
            f"Invalid sweep: {len(rejected)} of {len(jobs)} jobs have an invalid config, so no job was started.\n"
            + "\n".join(rejected)
            + "\nFix or remove these values in the sweep's overrides, then run it again."
        )


def read_parent(sweep_dir: str | Path) -> dict | None:
    """Return ``{"run_id", "sweep_id", "n_jobs"}`` of the sweep's parent run, or None."""
    path = Path(sweep_dir) / PARENT_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


class MlflowSweepCallback(Callback):
    """Create the parent run of a sweep, record each job's outcome, write the summary."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from src.errors import ConfigError
        from src.redact import redact_text
        from src.tracking import process_tags, resolve_tracking_uri, set_up_experiment

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            validate_jobs(config)
            tracking_uri = resolve_tracking_uri(config.tracking.uri)
            # Also checks that a tracking server responds, before any job starts.
            experiment_id = set_up_experiment(tracking_uri, config.tracking.experiment)
        except ConfigError as error:
            log.error("%s", error)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            raise SystemExit(2) from None
        except Exception as error:  # noqa: BLE001 - a sweep must not fail for want of a parent run.
            log.warning("sweep: no MLflow parent run was created (%s: %s); jobs are logged unnested",
                        type(error).__name__, redact_text(str(error)))
            return
        try:
            import mlflow

            n_jobs = count_jobs(config)
            overrides = redact_text(" ".join(config.hydra.overrides.task))
            run = mlflow.tracking.MlflowClient().create_run(
                experiment_id,
                run_name=f"sweep {sweep_dir.parent.name}/{sweep_dir.name}",
                tags={
                    "sweep_id": str(sweep_dir), "sweep.role": "parent", "hydra.overrides": overrides,
                    **process_tags(),
                },
            )
        except Exception as error:  # noqa: BLE001 - a sweep must not fail for want of a parent run.
            log.warning("sweep: no MLflow parent run was created (%s: %s); jobs are logged unnested",
                        type(error).__name__, error)
            return
        client = mlflow.tracking.MlflowClient()
        client.log_param(run.info.run_id, "sweep.overrides", overrides or "(none)")
        client.log_param(run.info.run_id, "sweep.n_jobs", n_jobs)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        record = {"run_id": run.info.run_id, "sweep_id": str(sweep_dir), "n_jobs": n_jobs, "tracking_uri": tracking_uri}
        (sweep_dir / PARENT_FILE).write_text(json.dumps(record))
        log.info("sweep: MLflow parent run %s for %d jobs", run.info.run_id, n_jobs)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if not HydraConfig.initialized() or HydraConfig.get().mode.name != "MULTIRUN":
            return
        parent = read_parent(HydraConfig.get().sweep.dir)
        if parent is None:
            return
        from src.summary import record_job_outcome

        error = None if job_return.status.name == "COMPLETED" else job_return._return_value
        record_job_outcome(parent, HydraConfig.get().job.num, list(job_return.overrides or []), error)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        parent = read_parent(config.hydra.sweep.dir)
        if parent is not None:
            from src.summary import finish_parent

            finish_parent(parent)
