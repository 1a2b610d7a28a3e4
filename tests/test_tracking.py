"""MLflow URIs, parameters and run status, against a real SQLite store in tmp_path."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from src.paths import PROJECT_ROOT
from src.tracking import (
    artifact_location,
    flatten_params,
    log_accuracy_table,
    log_history,
    resolve_tracking_uri,
    set_up_experiment,
    tracked_run,
)


def test_default_uri_is_sqlite_under_project_root():
    assert resolve_tracking_uri(None) == f"sqlite:///{PROJECT_ROOT}/mlruns/mlflow.db"


def test_relative_sqlite_uri_resolves_from_project_root():
    assert resolve_tracking_uri("sqlite:///other/runs.db") == f"sqlite:///{PROJECT_ROOT}/other/runs.db"


@pytest.mark.parametrize("uri", ["sqlite:////tmp/x/mlflow.db", "http://127.0.0.1:5000"])
def test_absolute_and_server_uris_unchanged(uri):
    assert resolve_tracking_uri(uri) == uri


def test_artifacts_sit_beside_sqlite_store():
    assert artifact_location("sqlite:////tmp/x/mlflow.db") == "file:///tmp/x/artifacts"
    assert artifact_location("http://127.0.0.1:5000") is None


def test_flatten_params_keeps_lists_readable():
    params = flatten_params({"model": {"hidden_units": [256, 64], "activation": "relu"}, "seed": 0})
    assert params == {"model.hidden_units": "[256, 64]", "model.activation": "relu", "seed": "0"}


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    set_up_experiment(uri, "tests")
    yield uri
    mlflow.set_tracking_uri(None)


def _status(run_id):
    return mlflow.get_run(run_id).info.status


def test_tracked_run_finishes_and_logs_history(store, tmp_path):
    job_log = tmp_path / "job.log"
    job_log.write_text("a log line\n")
    with tracked_run("ok", {"embedder": "pca"}, job_log) as run_id:
        log_history({"loss": [1.0, 0.5, 0.25], "val_accuracy": [0.1, 0.2, 0.3]})
        log_accuracy_table(pd.DataFrame({"2d_k3": [0.9]}, index=pd.Index(["input"], name="layer")))
    assert _status(run_id) == "FINISHED"
    client = mlflow.tracking.MlflowClient()
    losses = client.get_metric_history(run_id, "train_loss")
    assert [(m.step, m.value) for m in losses] == [(1, 1.0), (2, 0.5), (3, 0.25)]
    assert len(client.get_metric_history(run_id, "val_accuracy")) == 3
    artifacts = {item.path for item in client.list_artifacts(run_id)}
    assert {"job.log", "knn_accuracy.csv", "knn_accuracy.json"} <= artifacts
    assert mlflow.get_run(run_id).data.tags["embedder"] == "pca"


def test_tracked_run_fails_on_error(store):
    with pytest.raises(RuntimeError, match="boom"):
        with tracked_run("bad", {}) as run_id:
            raise RuntimeError("boom")
    assert _status(run_id) == "FAILED"
    assert mlflow.get_run(run_id).data.tags["error"] == "RuntimeError: boom"


def test_tracked_run_killed_on_interrupt(store):
    with pytest.raises(KeyboardInterrupt):
        with tracked_run("interrupted", {}) as run_id:
            raise KeyboardInterrupt
    assert _status(run_id) == "KILLED"


def test_orphaned_run_is_ended_and_live_one_kept(tmp_path):
    import socket
    import subprocess

    from src.tracking import end_orphaned_runs, process_tags, set_up_experiment

    experiment_id = set_up_experiment(f"sqlite:///{tmp_path}/mlflow.db", "orphans")
    client = mlflow.tracking.MlflowClient()
    # A process that has exited: its id names no running process now.
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    host = {"process.host": socket.gethostname()}
    orphan = client.create_run(experiment_id, tags={**host, "process.pid": str(dead_pid.pid), "process.start": "1"})
    live = client.create_run(experiment_id, tags=process_tags())
    elsewhere = client.create_run(experiment_id, tags={"process.host": "another-host", "process.pid": str(dead_pid.pid)})

    try:
        ended = end_orphaned_runs(experiment_id)
    finally:
        mlflow.set_tracking_uri(None)

    assert ended == [orphan.info.run_id]
    assert client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert client.get_run(live.info.run_id).info.status == "RUNNING"
    assert client.get_run(elsewhere.info.run_id).info.status == "RUNNING"


def test_redact_text_removes_every_password():
    from src.redact import redact_text

    text = "tracking.uri=http://alice:s3cret@host:5000 other=https://bob@example.org/x plain=sqlite:///a.db"

    assert redact_text(text) == "tracking.uri=http://host:5000 other=https://example.org/x plain=sqlite:///a.db"
    assert redact_text(r"tracking.uri=http\://alice\:s3cret@host\:5000") == r"tracking.uri=http\://host\:5000"


def test_credential_filter_rewrites_log_records():
    import logging

    from src.redact import CredentialFilter

    record = logging.LogRecord("hydra", logging.INFO, __file__, 1, "#%d : %s", (0, "tracking.uri=http://u:pw@h:1"), None)

    assert CredentialFilter().filter(record)
    assert record.getMessage() == "#0 : tracking.uri=http://h:1"
