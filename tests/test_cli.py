"""The command line: config errors fail fast, and a sweep leaves one complete MLflow run per job."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys

import mlflow
import numpy as np
import pytest

from src.paths import PROJECT_ROOT

HEAVY_MODULES = ("tensorflow", "keras", "mlflow", "umap", "numba", "openTSNE", "trimap")


def _imported_modules(importtime_log: str) -> set[str]:
    """Top-level package names from the output of ``python -X importtime``."""
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_config_error_exits_before_heavy_imports(run_cli):
    result = run_cli(["dropout=1.5"], extra_env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 2
    assert "dropout must be a number in [0, 1), that is from 0 up to but not including 1; got 1.5" in result.stdout + result.stderr
    imported = _imported_modules(result.stderr)
    assert "hydra" in imported
    for module in HEAVY_MODULES:
        assert module not in imported, module


def test_unknown_embedder_lists_choices(run_cli):
    result = run_cli(["embedder=isomap"])
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "isomap" in output
    for choice in ("pca", "tsne", "umap", "trimap"):
        assert choice in output


def test_help_lists_config_groups(run_cli):
    result = run_cli(["--help"])
    assert result.returncode == 0
    for group in ("data:", "embedder:", "model:", "knn:", "tracking:", "train:"):
        assert group in result.stdout


def _finished_runs(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    try:
        runs = mlflow.search_runs(experiment_names=["layer-maps"], output_format="list")
        return [run for run in runs if run.data.tags.get("sweep.role") != "parent"]
    finally:
        mlflow.set_tracking_uri(None)


def _check_run_complete(run, tmp_path, layers=("input", "hidden_1", "hidden_2"), ks=(3, 5, 10)):
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for layer in layers:
        for k in ks:
            assert 0.0 <= metrics[f"knn_acc/{layer}/k{k}"] <= 1.0
            assert 0.0 <= metrics[f"knn_acc_full/{layer}/k{k}"] <= 1.0
    knn_metrics = [key for key in metrics if key.startswith("knn_acc")]
    assert len(knn_metrics) == 2 * len(layers) * len(ks)
    for layer in layers:
        for name in ("trustworthiness", "continuity", "triplet_acc", "probe_acc"):
            assert 0.0 <= metrics[f"{name}/{layer}"] <= 1.0
        for name in ("distance_spearman", "silhouette"):
            assert -1.0 <= metrics[f"{name}/{layer}"] <= 1.0
        for k in ks:
            retention = metrics[f"knn_retention/{layer}/k{k}"]
            assert retention == pytest.approx(metrics[f"knn_acc/{layer}/k{k}"] / metrics[f"knn_acc_full/{layer}/k{k}"])
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy", "test_loss"):
        assert key in metrics, key

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    top = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "knn_accuracy.csv", "knn_accuracy.json", "training_curves.png", "main.log"} <= top
    scatter = {item.path for item in client.list_artifacts(run.info.run_id, "scatter")}
    assert scatter == {f"scatter/scatter_{layer}.png" for layer in layers}
    embeddings = {item.path for item in client.list_artifacts(run.info.run_id, "embeddings")}
    assert embeddings == {f"embeddings/embedding_{layer}.npz" for layer in layers}


def test_sweep_logs_one_complete_run_per_job(run_cli, tmp_path, small_job):
    overrides = [o for o in small_job if not o.startswith("embedder=")]
    result = run_cli(["-m", "embedder=pca,tsne", *overrides, "train.epochs=2"])
    assert result.returncode == 0, result.stderr[-3000:]

    runs = _finished_runs(tmp_path)
    assert sorted(run.data.tags["embedder"] for run in runs) == ["pca", "tsne"]
    for run in runs:
        _check_run_complete(run, tmp_path)
        assert run.data.params["model.hidden_units"] == "[32, 16]"
        assert run.data.tags["dataset"] == "digits"
        assert run.data.tags["protocol"] == "transductive"
        history = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db").get_metric_history(
            run.info.run_id, "val_loss"
        )
        assert [metric.step for metric in history] == [1, 2]


    parent = _parent_run(tmp_path)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.n_jobs"] == "2"
    assert parent.data.metrics["jobs_finished"] == 2
    assert parent.data.metrics["jobs_failed"] == 0
    for run in runs:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    artifacts = {item.path for item in client.list_artifacts(parent.info.run_id)}
    expected = {
        "jobs.json", "summary_knn_accuracy.csv", "summary_knn_accuracy.md",
        "summary_heatmap.png", "summary_scatter_grid.png", "summary_quality.csv", "summary_quality_heatmaps.png",
    }
    assert expected <= artifacts

    out = tmp_path / "compare"
    compare = subprocess.run(
        [sys.executable, "-m", "src.compare", "--tracking-uri", f"sqlite:///{tmp_path}/mlruns/mlflow.db", "--out", str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert compare.returncode == 0, compare.stderr[-2000:]
    for run in runs:
        assert f"{run.data.metrics['knn_acc/hidden_2/k5']:.3f}" in compare.stdout
    assert "best map at k=5:" in compare.stdout
    assert "map quality" in compare.stdout
    for run in runs:
        assert f"{run.data.metrics['trustworthiness/hidden_2']:.3f}" in compare.stdout
    assert "Downloading artifacts" not in compare.stderr
    assert sorted(path.name for path in out.iterdir()) == sorted(expected - {"jobs.json"})


def _parent_run(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    try:
        runs = mlflow.search_runs(experiment_names=["layer-maps"], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    (parent,) = [run for run in runs if run.data.tags.get("sweep.role") == "parent"]
    return parent


def test_sweep_with_an_invalid_job_starts_no_job(run_cli, tmp_path, small_job):
    result = run_cli(["-m", *small_job, "dropout=0.2,1.5"])
    output = result.stdout + result.stderr

    assert result.returncode == 2
    assert "Invalid sweep: 1 of 2 jobs have an invalid config, so no job was started." in output
    assert "dropout must be a number in [0, 1), that is from 0 up to but not including 1; got 1.5" in output
    assert "Traceback" not in output
    assert "stage data: started" not in output
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    try:
        assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
    finally:
        mlflow.set_tracking_uri(None)


def test_parallel_sweep_loses_no_run(run_cli, tmp_path, small_job):
    overrides = [o for o in small_job if not o.startswith("embedder=")]
    result = run_cli(
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "embedder=pca,tsne,umap,trimap", *overrides]
    )
    assert result.returncode == 0, result.stderr[-3000:]

    runs = _finished_runs(tmp_path)
    assert sorted(run.data.tags["embedder"] for run in runs) == ["pca", "trimap", "tsne", "umap"]
    for run in runs:
        _check_run_complete(run, tmp_path)
    assert sorted(run.data.tags["cache.train"] for run in runs) == ["hit", "hit", "hit", "miss"]
    parent = _parent_run(tmp_path)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["jobs_finished"] == 4


def test_sweep_trains_once_and_reruns_from_cache(run_cli, tmp_path, small_job):
    overrides = [o for o in small_job if not o.startswith("embedder=")]
    first = run_cli(["-m", "embedder=pca,tsne", *overrides])
    assert first.returncode == 0, first.stderr[-3000:]
    assert (first.stdout + first.stderr).count("stage train: started") == 1
    tags = {run.data.tags["embedder"]: run.data.tags for run in _finished_runs(tmp_path)}
    assert tags["pca"]["cache.train"] == "miss"
    assert tags["tsne"]["cache.train"] == "hit"
    assert tags["tsne"]["cache.embed/hidden_2"] == "miss"

    second = run_cli(["-m", "embedder=pca,tsne", *overrides])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "stage train: started" not in second.stdout + second.stderr
    reruns = sorted(_finished_runs(tmp_path), key=lambda run: run.info.start_time)[2:]
    assert len(reruns) == 2
    for run in reruns:
        outcomes = {key: value for key, value in run.data.tags.items() if key.startswith("cache.")}
        # The network, then per layer its map, the map's quality scores and a linear probe.
        assert len(outcomes) == 10
        assert set(outcomes.values()) == {"hit"}, outcomes

    metrics = {}
    for run in _finished_runs(tmp_path):
        metrics.setdefault(run.data.tags["embedder"], []).append(run.data.metrics["knn_acc/hidden_2/k5"])
    assert metrics["tsne"][0] == metrics["tsne"][1]


def _write_idx(path, array):
    """Write an uint8 array as an IDX file: magic 0x00 0x00 0x08 ndim, big-endian sizes, data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_from_local_npz(run_cli, tmp_path, mnist_dir, small_job):
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz") as file:
        images = np.frombuffer(file.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz") as file:
        labels = np.frombuffer(file.read(), dtype=np.uint8, offset=8)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=images[:8000], y_train=labels[:8000], x_test=images[8000:], y_test=labels[8000:])

    overrides = [o for o in small_job if not o.startswith("data=")]
    result = run_cli(["data=mnist", f"data.path={npz}", "data.n_train=1000", "data.n_test=300", *overrides])
    assert result.returncode == 0, result.stderr[-3000:]

    (run,) = _finished_runs(tmp_path)
    _check_run_complete(run, tmp_path)
    assert run.data.params["data.n_train_used"] == "1000"
    assert run.data.params["data.n_test_used"] == "300"
    assert run.data.metrics["knn_acc_full/input/k5"] > 0.8


@pytest.mark.slow
def test_default_sweep_on_bundled_sample(tmp_path, run_cli):
    """The README's main command on the bundled sample: four embedders, the hidden layers well separated."""
    result = run_cli(["-m", "embedder=pca,tsne,umap,trimap"], timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]

    runs = {run.data.tags["embedder"]: run for run in _finished_runs(tmp_path)}
    assert sorted(runs) == ["pca", "trimap", "tsne", "umap"]
    for run in runs.values():
        _check_run_complete(run, tmp_path)
    for embedder in ("tsne", "umap"):
        for layer in ("hidden_1", "hidden_2"):
            accuracy = runs[embedder].data.metrics[f"knn_acc/{layer}/k5"]
            assert accuracy >= 0.85, (embedder, layer, accuracy)


def test_unreachable_tracking_server_fails_fast(run_cli, small_job):
    # Port 9 (discard) has no listener here, so the connection is refused at once.
    result = run_cli([*small_job, "tracking.uri=http://127.0.0.1:9"])
    assert result.returncode == 2
    assert "tracking.uri=http://127.0.0.1:9: no server responds at 127.0.0.1:9" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_sigterm_ends_run_killed(tmp_path, small_job):
    command = [
        sys.executable, "-m", "src.main", *small_job, "progress=true", "train.epochs=500",
        f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
        f"hydra.run.dir={tmp_path}/outputs",
        f"cache.dir={tmp_path}/cache",
    ]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = []
    for line in process.stdout:
        output.append(line)
        if "epoch 2/500" in line:
            process.send_signal(signal.SIGTERM)
            break
    rest, _ = process.communicate(timeout=120)
    output.append(rest)

    assert process.returncode == 130, "".join(output)[-2000:]
    assert "interrupted: the MLflow run was ended KILLED" in "".join(output)
    (run,) = _finished_runs(tmp_path)
    assert run.info.status == "KILLED"
    leftovers = list((tmp_path / "cache" / "train").glob(".*"))
    assert leftovers == []


def test_evolution_logs_aligned_frames_and_curves(run_cli, tmp_path, small_job):
    from PIL import Image

    overrides = [o for o in small_job if not o.startswith("train.epochs=")]
    result = run_cli([*overrides, "train.epochs=6", "evolution.enabled=true", "evolution.n_points=300"])
    assert result.returncode == 0, result.stderr[-3000:]

    (run,) = _finished_runs(tmp_path)
    snapshot_epochs = [0, 1, 2, 5, 6]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id, "evolution")}
    for layer in ("hidden_1", "hidden_2"):
        assert {f"evolution/evolution_{layer}.gif", f"evolution/evolution_{layer}.png"} <= artifacts
        gif = client.download_artifacts(run.info.run_id, f"evolution/evolution_{layer}.gif", str(tmp_path))
        with Image.open(gif) as image:
            assert image.n_frames == len(snapshot_epochs)
        curve = client.get_metric_history(run.info.run_id, f"evolution_knn/{layer}/k3")
        assert [metric.step for metric in sorted(curve, key=lambda m: m.step)] == snapshot_epochs
    # The last snapshot's map and the run's own map score the same digits alike. They are
    # different PCA fits (300 digits versus all of them), so they agree only roughly.
    last = max(client.get_metric_history(run.info.run_id, "evolution_knn/hidden_2/k3"), key=lambda m: m.step)
    assert last.value == pytest.approx(run.data.metrics["evolution_knn_final_map/hidden_2/k3"], abs=0.1)
    output = result.stdout + result.stderr
    assert "stage evolution/hidden_2: done" in output
    assert run.data.tags["cache.evolution/hidden_1"] == "miss"
