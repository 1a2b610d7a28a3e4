"""MLflow tracking: where runs go, and what each run records.

MLflow is imported inside the functions, so config validation never pays for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from src.errors import ConfigError
from src.paths import PROJECT_ROOT
from src.redact import redact_credentials, redact_text  # noqa: F401 - other modules import redact_credentials from here

log = logging.getLogger(__name__)

DEFAULT_DB = PROJECT_ROOT / "mlruns" / "mlflow.db"

# Keras history keys and the MLflow metric names they are logged under, one value per epoch.
HISTORY_METRICS = {
    "loss": "train_loss",
    "accuracy": "train_accuracy",
    "val_loss": "val_loss",
    "val_accuracy": "val_accuracy",
}


def resolve_tracking_uri(uri: str | None) -> str:
    """Return an absolute tracking URI.

    ``None`` means the SQLite store ``mlruns/mlflow.db`` under the project root. A
    ``sqlite:///`` URI with a relative path is resolved against the project root, not
    the working directory, so every job of a sweep writes to the same store.
    Other URIs (``http://...``, absolute SQLite paths) are returned unchanged.
    """
    if uri is None:
        return f"sqlite:///{DEFAULT_DB}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{(PROJECT_ROOT / uri[len('sqlite:///'):]).resolve()}"
    return uri


def artifact_location(tracking_uri: str) -> str | None:
    """Return where a new experiment keeps its artifacts: beside a SQLite store, else the server's choice."""
    if tracking_uri.startswith("sqlite:///"):
        db_path = Path(urlparse(tracking_uri).path)
        return (db_path.parent / "artifacts").resolve().as_uri()
    return None


def set_up_experiment(tracking_uri: str, experiment: str) -> str:
    """Point MLflow at the store and select the experiment, creating both if needed.

    Returns
    -------
    str
        The experiment id.
    """
    if tracking_uri.startswith(("http://", "https://")):
        check_server_responds(tracking_uri)
        if urlparse(tracking_uri).password or urlparse(tracking_uri).username:
            # MLflow prints "View run ... at <tracking URI>" at the end of each run, password included.
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        # MLflow's defaults retry a failed request for minutes; a sweep would pay that per job.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    import mlflow

    if tracking_uri.startswith("sqlite:///"):
        Path(urlparse(tracking_uri).path).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    existing = mlflow.get_experiment_by_name(experiment)
    if existing is not None:
        experiment_id = existing.experiment_id
    else:
        # The MLflow 3 UI opens an experiment of this kind on its runs table, not on the
        # GenAI trace overview.
        experiment_id = mlflow.create_experiment(
            experiment,
            artifact_location=artifact_location(tracking_uri),
            tags={"mlflow.experimentKind": "custom_model_development"},
        )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def check_server_responds(tracking_uri: str, timeout: float = 5.0) -> None:
    """Raise ConfigError unless a TCP connection to the tracking server opens within ``timeout`` seconds."""
    parsed = urlparse(tracking_uri)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        raise ConfigError(
            f"tracking.uri={redact_credentials(tracking_uri)}: no server responds at {parsed.hostname}:{port} "
            f"({error}). Start one with `mlflow server --host 127.0.0.1 --port {port}`, or drop tracking.uri "
            "to log to the local SQLite store."
        ) from None


def process_tags() -> dict[str, str]:
    """Tags that identify the process that owns a run: host, process id and its start time."""
    return {"process.host": socket.gethostname(), "process.pid": str(os.getpid()), "process.start": _start_time(os.getpid())}


def _start_time(pid: int) -> str:
    """Return the start time of a process in clock ticks since boot (Linux), or "" elsewhere.

    Tells a live process from a later one that was given the same id.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22; the command name (field 2) may contain spaces, so count from its closing parenthesis.
    return stat.rsplit(")", 1)[1].split()[19]


def _process_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not start or _start_time(pid) in ("", start)


def end_orphaned_runs(experiment_id: str) -> list[str]:
    """End as KILLED the RUNNING runs of this host whose process no longer exists.

    A job killed with SIGKILL, or a machine that lost power, cannot end its own run, which
    would stay RUNNING in the UI for ever. Each job started here checks its experiment
    for such runs first. Runs of other hosts are left alone: their processes cannot be seen.

    NOTE: two containers that share a host name and a store but not a process namespace
    would see each other's runs as orphaned. Give each container its own host name.

    Returns
    -------
    list of str
        Ids of the runs ended.
    """
    import mlflow

    client = mlflow.tracking.MlflowClient()
    host = socket.gethostname()
    running = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`process.host` = '{host}'",
        max_results=1000,
    )
    ended = []
    for run in running:
        tags = run.data.tags
        if not tags.get("process.pid", "").isdigit() or _process_alive(int(tags["process.pid"]), tags.get("process.start", "")):
            continue
        client.set_tag(run.info.run_id, "ended_by", f"a later job: process {tags['process.pid']} on {host} had died")
        client.set_terminated(run.info.run_id, status="KILLED")
        log.warning("MLflow run %s (%s) was RUNNING, but its process %s is gone; ended it as KILLED",
                    run.info.run_id, run.info.run_name, tags["process.pid"])
        ended.append(run.info.run_id)
    return ended


def flatten_params(config: Mapping, prefix: str = "") -> dict[str, str]:
    """Flatten a nested config into ``{"model.hidden_units": "[256, 64]", ...}``."""
    params: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            params.update(flatten_params(value, prefix=f"{name}."))
        else:
            params[name] = str(value)
    return params


@contextlib.contextmanager
def tracked_run(run_name: str, tags: Mapping[str, str], job_log: Path | None = None) -> Iterator[str]:
    """Start an MLflow run and end it with the status the job earned.

    The run ends FINISHED when the block completes, KILLED on Ctrl-C and FAILED on
    any other exception, which is re-raised. The Hydra job log is attached as an
    artifact in every case.

    Yields
    ------
    str
        The run id.
    """
    import mlflow

    run = mlflow.start_run(run_name=run_name, tags={**tags, **process_tags()})
    status = "FAILED"
    try:
        yield run.info.run_id
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except Exception as error:
        mlflow.set_tag("error", redact_text(f"{type(error).__name__}: {error}")[:5000])
        raise
    finally:
        if job_log is not None and job_log.is_file():
            try:
                mlflow.log_artifact(str(job_log))
            except OSError as error:
                # A full disk must not keep the run from ending with its status.
                log.warning("the job log was not attached to the run (%s)", error)
        mlflow.end_run(status=status)
        log.info("MLflow run %s ended %s", run.info.run_id, status)


def log_history(history: Mapping[str, list[float]]) -> None:
    """Log the per-epoch training curves, with ``step`` = epoch number (1-based)."""
    import mlflow
    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    run_id = mlflow.active_run().info.run_id
    now = get_current_time_millis()
    metrics = [
        Metric(key=HISTORY_METRICS.get(key, key), value=float(value), timestamp=now, step=epoch)
        for key, values in history.items()
        for epoch, value in enumerate(values, start=1)
    ]
    mlflow.tracking.MlflowClient().log_batch(run_id, metrics=metrics)


def log_accuracy_table(table: pd.DataFrame, name: str = "knn_accuracy") -> None:
    """Log the per-layer accuracy table as a CSV artifact and as an MLflow table."""
    import mlflow

    mlflow.log_table(data=table.reset_index(), artifact_file=f"{name}.json")
    with tempfile.TemporaryDirectory(prefix="layer-maps-") as folder:
        path = Path(folder) / f"{name}.csv"
        table.to_csv(path, float_format="%.4f")
        mlflow.log_artifact(str(path))


def log_cache_outcomes(outcomes: Mapping[str, str]) -> None:
    """Tag the run with where each cached stage came from (``cache.train = hit``) and log a summary."""
    import mlflow

    mlflow.set_tags({f"cache.{label}": outcome for label, outcome in outcomes.items()})
    hits = [label for label, outcome in outcomes.items() if outcome == "hit"]
    log.info("cache: %d of %d stages loaded from the cache (%s)", len(hits), len(outcomes), ", ".join(hits) or "none")
