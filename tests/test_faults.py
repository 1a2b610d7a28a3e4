"""Faults injected into real jobs: each ends in a consistent state, and the next run resumes.

A fault is requested with ``LAYER_MAPS_FAULT=<point>:<fault>`` (see src/faults.py). The
job then sends itself the signal at that point, so it is handled as one sent from outside.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from conftest import run_main

from src.cache import ARRAYS_FILE, META_FILE

# One small job: 1,797 8x8 digits, a small network, t-SNE maps of a few seconds each.
JOB = ["data=digits", "model.hidden_units=[32,16]", "train.epochs=4", "embedder=tsne", "progress=true"]
LAYERS = ("input", "hidden_1", "hidden_2")
KS = (3, 5, 10)
EXPECTED_METRICS = {
    *(f"knn_acc/{layer}/k{k}" for layer in LAYERS for k in KS),
    *(f"knn_acc_full/{layer}/k{k}" for layer in LAYERS for k in KS),
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
}


def _runs(tmp_path) -> list:
    """All job runs of the test's store, oldest first."""
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("layer-maps")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [run for run in runs if run.data.tags.get("sweep.role") != "parent"]


def _artifacts(tmp_path, run_id: str, folder: str | None = None) -> set[str]:
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    return {item.path for item in client.list_artifacts(run_id, folder)}


def cache_problems(cache_dir) -> list[str]:
    """Return every cache folder that is not a complete entry: leftovers and unloadable entries."""
    problems = []
    for stage in ("train", "embed"):
        folder = cache_dir / stage
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.suffix == ".lock":
                continue
            if entry.name.startswith("."):
                problems.append(f"scratch folder left: {entry}")
                continue
            try:
                json.loads((entry / META_FILE).read_text())
                with np.load(entry / ARRAYS_FILE, allow_pickle=False) as stored:
                    for name in stored.files:
                        stored[name]
            except Exception as error:  # noqa: BLE001 - any failure means the entry is not complete.
                problems.append(f"{entry}: {type(error).__name__}: {error}")
    return problems


SIGNAL_FAULTS = [(point, signal) for point in ("train", "embed", "artifacts") for signal in ("SIGINT", "SIGTERM")]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "signal"), SIGNAL_FAULTS, ids=[f"{p}-{s}" for p, s in SIGNAL_FAULTS])
def test_interrupted_run_ends_killed_and_resumes(point, signal, tmp_path, reliability_record):
    interrupted = run_main(JOB, tmp_path, extra_env={"LAYER_MAPS_FAULT": f"{point}:{signal}"}, handle_sigint=True)
    output = interrupted.stdout + interrupted.stderr

    (killed,) = _runs(tmp_path)
    logged = set(killed.data.metrics)
    leftovers = cache_problems(tmp_path / "cache")

    resumed = run_main(JOB, tmp_path)
    runs = _runs(tmp_path)
    final = runs[-1]
    lost = EXPECTED_METRICS - set(final.data.metrics)
    consistent = (
        interrupted.returncode == 130 and killed.info.status == "KILLED" and not leftovers
        and resumed.returncode == 0 and final.info.status == "FINISHED"
    )
    reliability_record(
        kind="fault", name=f"{signal} during {point}", consistent=consistent,
        runs_lost=int(final.info.status != "FINISHED"), metrics_lost=len(lost),
    )

    assert interrupted.returncode == 130, output[-3000:]
    assert "interrupted: the MLflow run was ended KILLED" in output
    assert killed.info.status == "KILLED"
    assert "main.log" in _artifacts(tmp_path, killed.info.run_id)
    assert leftovers == []
    if point in ("embed", "artifacts"):
        # Training finished before the fault: its metrics stay on the killed run.
        assert {"train_loss", "test_accuracy"} <= logged
    if point == "artifacts":
        assert {f"knn_acc/input/k{k}" for k in KS} <= logged
        assert _artifacts(tmp_path, killed.info.run_id, "scatter") == {"scatter/scatter_input.png"}

    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert len(runs) == 2
    assert final.info.status == "FINISHED"
    assert lost == set()
    assert final.data.tags["cache.train"] == ("miss" if point == "train" else "hit")
    if point == "artifacts":
        assert final.data.tags["cache.embed/input"] == "hit"


@pytest.mark.slow
def test_killed_job_leaves_no_entry_that_loads(tmp_path, reliability_record):
    killed = run_main(JOB, tmp_path, extra_env={"LAYER_MAPS_FAULT": "embed:SIGKILL"})
    leftovers = cache_problems(tmp_path / "cache")
    scratch = [problem for problem in leftovers if problem.startswith("scratch folder left")]
    # Only the scratch folder of the map being fitted can be left, and it is not an entry.
    assert killed.returncode == -9
    assert len(scratch) == len(leftovers) <= 1

    resumed = run_main(JOB, tmp_path)
    orphan, final = _runs(tmp_path)
    lost = EXPECTED_METRICS - set(final.data.metrics)
    reliability_record(
        kind="fault", name="SIGKILL during embed",
        consistent=resumed.returncode == 0 and not lost and orphan.info.status == "KILLED",
        runs_lost=int(final.info.status != "FINISHED"), metrics_lost=len(lost),
    )
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    # The next job finds the killed job's run RUNNING with its process gone, and ends it.
    assert orphan.info.status == "KILLED"
    assert "had died" in orphan.data.tags["ended_by"]
    assert final.info.status == "FINISHED"
    assert final.data.tags["cache.train"] == "hit"
    assert final.data.tags["cache.embed/input"] == "miss"
    assert lost == set()
    assert cache_problems(tmp_path / "cache") == []


def _write_digits_npz(path, corrupt: bool = False) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8).astype(np.float32) / 255
    if corrupt:
        images[7, 3, 3] = np.nan
    labels = (np.arange(60) % 10).astype(np.uint8)
    np.savez(path, x_train=images[:40], y_train=labels[:40], x_test=images[40:], y_test=labels[40:])


def test_failing_job_of_parallel_sweep(tmp_path, reliability_record):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    _write_digits_npz(good)
    _write_digits_npz(bad, corrupt=True)
    result = run_main(
        [
            "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"data.path={good},{bad}",
            "embedder=pca,tsne", "data=mnist", "model.hidden_units=[16]", "train.epochs=2", "knn.k=[3]",
            "progress=false",
        ],
        tmp_path,
    )
    output = result.stdout + result.stderr
    runs = _runs(tmp_path)
    by_status = {status: [run for run in runs if run.info.status == status] for status in ("FINISHED", "FAILED")}
    reliability_record(
        kind="fault", name="one job of a parallel sweep raises", consistent=len(by_status["FINISHED"]) == 2,
        runs_lost=4 - len(runs), metrics_lost=0,
    )

    assert result.returncode != 0
    assert len(runs) == 4, output[-3000:]
    assert len(by_status["FINISHED"]) == 2
    assert len(by_status["FAILED"]) == 2
    for run in by_status["FINISHED"]:
        assert {f"knn_acc/{layer}/k3" for layer in ("input", "hidden_1")} <= set(run.data.metrics)
    for run in by_status["FAILED"]:
        assert "bad.npz contains NaN or infinite pixels" in run.data.tags["error"]
        assert "main.log" in _artifacts(tmp_path, run.info.run_id)

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    (parent,) = client.search_runs(
        [runs[0].info.experiment_id], filter_string="tags.`sweep.role` = 'parent'"
    )
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["jobs_finished"] == 2
    assert parent.data.metrics["jobs_failed"] == 2
    failed_tags = [value for key, value in parent.data.tags.items() if key.startswith("failed_job.")]
    assert len(failed_tags) == 2
    assert all("NaN or infinite pixels" in value for value in failed_tags)


def test_same_seed_same_metrics(tmp_path, reliability_record):
    job = ["data=digits", "model.hidden_units=[32,16]", "train.epochs=2", "embedder=tsne", "progress=false",
           "cache.enabled=false"]
    first = run_main(job, tmp_path)
    second = run_main(job, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]

    older, newer = _runs(tmp_path)
    metrics = {key for key in older.data.metrics if not key.startswith("time/")}
    differences = {key: (older.data.metrics[key], newer.data.metrics[key])
                   for key in metrics if older.data.metrics[key] != newer.data.metrics[key]}
    reliability_record(kind="determinism", name="same seed and config twice", identical=not differences)
    assert len(metrics) >= len(EXPECTED_METRICS)
    assert differences == {}
    for run in (older, newer):
        for library in ("numpy", "scikit-learn", "keras", "openTSNE", "mlflow", "python"):
            assert run.data.tags[f"version.{library}"]
